#include "plexus/supervisor/supervisor.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "plexus/core/clock.hpp"
#include "test_util.hpp"

using namespace plexus;
using namespace plexus::supervisor;
using namespace std::chrono_literals;
using plexus::supervisor::test_support::kWaitLimit;
using plexus::supervisor::test_support::read_file;
using plexus::supervisor::test_support::TempDir;
using ::testing::HasSubstr;

namespace {

bool gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// The process is stopped (state T in /proc/<pid>/stat).
bool stopped(int pid) {
    auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'T';
}

ServiceSpec service(std::string name, std::vector<std::string> command, int replicas = 1) {
    ServiceSpec s;
    s.name = std::move(name);
    s.command = std::move(command);
    s.replicas = replicas;
    return s;
}

DaemonSpec daemon(std::string name, std::vector<std::string> command, std::string health = "") {
    DaemonSpec d;
    d.name = std::move(name);
    d.command = std::move(command);
    d.health = std::move(health);
    return d;
}

const std::vector<std::string> kSleep = {"/bin/sleep", "60"};

// Owns the supervisor under test; TearDown stops every child even when an assertion failed.
class SupervisorTest : public ::testing::Test {
  protected:
    void TearDown() override {
        if (sup_) sup_->stop_all(2s);
    }

    Manifest manifest() {
        Manifest m;
        m.name = "test";
        m.manifest_dir = dir_.path();
        m.restart = RestartPolicy{200ms, 1s, 30s};
        m.stop_timeout = 2s;
        return m;
    }

    SupervisorOptions options() {
        SupervisorOptions o;
        o.data_dir = dir_.path() + "/data";
        o.bin_dir = "/bin";
        o.plexus_binary = "/bin/sleep";
        o.tick_interval = 5ms;
        o.on_event = [this](const InstanceStatus& s, std::string_view message) {
            std::lock_guard lock(events_mutex_);
            events_.push_back(s.name + ": " + std::string(message));
        };
        return o;
    }

    Supervisor& make(Manifest m, SupervisorOptions o, core::Clock& clock) {
        sup_ = std::make_unique<Supervisor>(std::move(m), std::move(o), clock);
        return *sup_;
    }
    Supervisor& make(Manifest m, SupervisorOptions o) { return make(std::move(m), std::move(o), clock_); }

    // The instance called `name`, or a default one with state stopped and an empty name.
    InstanceStatus find(const std::string& name) const {
        for (auto& s : sup_->status()) {
            if (s.name == name) return s;
        }
        InstanceStatus none;
        none.state = InstanceState::stopped;
        return none;
    }

    bool wait_for(const std::function<bool()>& done) { return sup_->run_until(done, kWaitLimit); }

    bool all_running(std::size_t count) {
        auto all = sup_->status();
        return all.size() == count && std::all_of(all.begin(), all.end(), [](const InstanceStatus& s) {
                   return s.state == InstanceState::running && s.pid > 0;
               });
    }

    std::vector<std::string> events() {
        std::lock_guard lock(events_mutex_);
        return events_;
    }

    TempDir dir_;
    core::ManualClock clock_;
    std::unique_ptr<Supervisor> sup_;
    std::mutex events_mutex_;
    std::vector<std::string> events_;
};

}  // namespace

TEST_F(SupervisorTest, RestartsAChildThatExitsWithExponentialBackoff) {
    auto m = manifest();
    m.services.push_back(service("flaky", {"/bin/sh", "-c", "exit 3"}));
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());

    ASSERT_TRUE(wait_for([&] { return find("flaky-0").state == InstanceState::backoff; }));
    auto s = find("flaky-0");
    EXPECT_EQ(s.last_exit, "exited with status 3");
    EXPECT_EQ(s.restarts, 0);
    EXPECT_EQ(s.next_start - clock_.now(), 200ms);

    clock_.advance(199ms);
    sup.tick();
    EXPECT_EQ(find("flaky-0").restarts, 0);  // not before its time

    clock_.advance(1ms);
    ASSERT_TRUE(wait_for([&] {
        auto s = find("flaky-0");
        return s.restarts == 1 && s.state == InstanceState::backoff;
    }));
    EXPECT_EQ(find("flaky-0").next_start - clock_.now(), 400ms);  // second failure in a row

    clock_.advance(400ms);
    ASSERT_TRUE(wait_for([&] {
        auto s = find("flaky-0");
        return s.restarts == 2 && s.state == InstanceState::backoff;
    }));
    EXPECT_EQ(find("flaky-0").next_start - clock_.now(), 800ms);
}

TEST_F(SupervisorTest, RetriesACommandThatCannotBeStarted) {
    auto m = manifest();
    m.services.push_back(service("ghost", {"{bin_dir}/no-such-program-plexus"}));
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());
    auto s = find("ghost-0");
    EXPECT_EQ(s.state, InstanceState::backoff);
    EXPECT_THAT(s.last_error, HasSubstr("cannot start '/bin/no-such-program-plexus'"));
    EXPECT_THAT(s.last_error, HasSubstr("No such file or directory"));
    clock_.advance(200ms);
    sup.tick();
    EXPECT_EQ(find("ghost-0").restarts, 1);
}

TEST_F(SupervisorTest, ScalesUpAndDown) {
    auto m = manifest();
    m.services.push_back(service("web", kSleep, 1));
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());
    ASSERT_TRUE(wait_for([&] { return all_running(1); }));

    ASSERT_TRUE(sup.scale("web", 3));
    ASSERT_TRUE(wait_for([&] { return all_running(3); }));
    auto status = sup.status();
    EXPECT_EQ(status[0].name, "web-0");
    EXPECT_EQ(status[2].name, "web-2");
    const int first = status[0].pid;
    const int removed1 = status[1].pid;
    const int removed2 = status[2].pid;

    ASSERT_TRUE(sup.scale("web", 1));
    ASSERT_TRUE(wait_for([&] { return sup.status().size() == 1; }));
    EXPECT_EQ(find("web-0").pid, first);  // the lowest replica is kept
    EXPECT_TRUE(gone(removed1));
    EXPECT_TRUE(gone(removed2));

    ASSERT_TRUE(sup.scale("web", 0));
    ASSERT_TRUE(wait_for([&] { return sup.status().empty(); }));
    EXPECT_TRUE(gone(first));

    EXPECT_EQ(sup.scale("nope", 1).error(), errc::unknown_service);
    EXPECT_EQ(sup.scale("web", 65).error(), errc::invalid_replicas);
    EXPECT_EQ(sup.scale("web", -1).error(), errc::invalid_replicas);
}

TEST_F(SupervisorTest, ScaleAndStatusWorkFromAnotherThreadWhileTheLoopRuns) {
    auto m = manifest();
    m.services.push_back(service("web", kSleep, 1));
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());
    std::atomic<bool> seen_three{false};
    std::jthread api([&](std::stop_token stop) {  // stands in for the HTTP control API
        if (!sup.scale("web", 3)) return;
        while (!stop.stop_requested()) {
            auto all = sup.status();
            if (all.size() == 3 &&
                std::all_of(all.begin(), all.end(), [](const auto& s) { return s.pid > 0; })) {
                seen_three = true;
                return;
            }
            std::this_thread::yield();
        }
    });
    // The control loop stays on this thread, which forks the children and outlives them.
    EXPECT_TRUE(sup.run_until([&] { return seen_three.load(); }, kWaitLimit));
}

TEST_F(SupervisorTest, StopAllStopsServicesThenDaemonsAndLeavesNoChild) {
    auto m = manifest();
    m.daemons.push_back(daemon("first", {"{plexus}", "60"}));
    m.daemons.push_back(daemon("second", {"{plexus}", "60"}));
    m.services.push_back(service("web", kSleep, 2));
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());
    ASSERT_TRUE(wait_for([&] { return all_running(4); }));
    std::vector<int> pids;
    for (const auto& s : sup.status()) pids.push_back(s.pid);

    sup.stop_all(2s);
    for (int pid : pids) EXPECT_TRUE(gone(pid)) << pid;
    for (const auto& s : sup.status()) {
        EXPECT_EQ(s.state, InstanceState::stopped) << s.name;
        EXPECT_EQ(s.pid, 0) << s.name;
        EXPECT_EQ(s.last_exit, "killed by SIGTERM") << s.name;
    }

    // Order of the "stopped" events: both replicas, then the daemons in reverse start order.
    std::vector<std::string> stopped;
    for (const auto& e : events()) {
        if (e.find(": stopped") != std::string::npos) stopped.push_back(e.substr(0, e.find(':')));
    }
    ASSERT_EQ(stopped.size(), 4u);
    EXPECT_EQ(stopped[2], "second");
    EXPECT_EQ(stopped[3], "first");

    EXPECT_EQ(sup.scale("web", 3).error(), errc::shutting_down);
    sup.tick();  // nothing is restarted any more
    EXPECT_EQ(sup.status().size(), 4u);
    for (const auto& s : sup.status()) EXPECT_EQ(s.pid, 0);
}

TEST_F(SupervisorTest, StopAllKillsChildrenThatIgnoreSigterm) {
    auto m = manifest();
    m.services.push_back(service("stubborn", {"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 60"}));
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());
    const auto log = find("stubborn-0").log_file;
    ASSERT_TRUE(wait_for([&] { return read_file(log).find("ready") != std::string::npos; }));
    const int pid = find("stubborn-0").pid;

    const auto begin = std::chrono::steady_clock::now();
    sup.stop_all(300ms);
    EXPECT_GE(std::chrono::steady_clock::now() - begin, 300ms);
    EXPECT_TRUE(gone(pid));
    EXPECT_EQ(find("stubborn-0").last_exit, "killed by SIGKILL");
}

TEST_F(SupervisorTest, StartsDaemonsInOrderEachHealthyBeforeTheNext) {
    auto m = manifest();
    m.daemons.push_back(daemon("a", {"{plexus}", "60"}, "/ready"));
    m.daemons.push_back(daemon("b", {"/bin/sh", "-c", "echo a={port:a} me={port}; exec sleep 60"}, "/ready"));
    m.services.push_back(service("web", kSleep));
    auto o = options();
    o.probe_interval = 10ms;
    std::map<std::string, int> calls;
    std::vector<std::string> violations;
    o.health_probe = [&](const InstanceStatus& s) {
        ++calls[s.name];
        auto all = sup_->status();
        if (s.name == "a") {
            // Probes 1 to 3 come before a is healthy; later ones (it stays probed) may see b.
            if (calls["a"] <= 3) {
                for (const auto& other : all) {
                    if (other.name != "a") violations.push_back(other.name + " exists before a is healthy");
                }
            }
            return calls["a"] >= 3;  // healthy on the third probe
        }
        if (s.name == "b" && calls["b"] == 1) {
            if (find("a").state != InstanceState::running)
                violations.push_back("b started before a was healthy");
            if (all.size() != 2) violations.push_back("a service started before b was healthy");
        }
        return true;
    };
    auto& sup = make(std::move(m), std::move(o), core::Clock::real());
    ASSERT_TRUE(sup.start());
    EXPECT_TRUE(violations.empty()) << violations.front();
    EXPECT_GE(calls["a"], 3);
    EXPECT_EQ(find("a").state, InstanceState::running);
    EXPECT_TRUE(find("a").healthy);
    EXPECT_EQ(find("a").health_path, "/ready");
    EXPECT_EQ(find("b").state, InstanceState::running);
    ASSERT_TRUE(wait_for([&] { return find("web-0").healthy; }));

    const int port_a = *sup.daemon_port("a");
    const int port_b = *sup.daemon_port("b");
    EXPECT_GT(port_a, 0);
    EXPECT_NE(port_a, port_b);
    EXPECT_EQ(find("a").port, port_a);
    const auto expected = "a=" + std::to_string(port_a) + " me=" + std::to_string(port_b);
    ASSERT_TRUE(wait_for([&] { return read_file(find("b").log_file).find(expected) != std::string::npos; }));
}

TEST_F(SupervisorTest, StartFailsWhenADaemonNeverBecomesHealthy) {
    auto m = manifest();
    m.daemons.push_back(daemon("registry", kSleep, "/health/ready"));
    m.services.push_back(service("web", kSleep));
    auto o = options();
    o.startup_timeout = 3s;
    o.health_probe = [&](const InstanceStatus&) {
        clock_.advance(1s);  // each probe takes a simulated second
        return false;
    };
    auto& sup = make(std::move(m), std::move(o));
    try {
        sup.start();
        FAIL() << "start() should have thrown";
    } catch (const StartupError& e) {
        EXPECT_THAT(e.what(), HasSubstr("daemon 'registry' did not become healthy within 3s"));
        EXPECT_THAT(e.what(), HasSubstr("state starting"));
        EXPECT_THAT(e.what(), HasSubstr("/health/ready"));
        EXPECT_THAT(e.what(), HasSubstr("logs/registry.log"));
    }
    EXPECT_EQ(find("web-0").name, "");   // services were not started
    EXPECT_GT(find("registry").pid, 0);  // still running until stop_all (TearDown)
}

TEST_F(SupervisorTest, StartFailsClearlyWhenAPlaceholderHasNoValue) {
    auto m = manifest();
    m.services.push_back(service("web", {"{bin_dir}/web"}));
    auto o = options();
    o.bin_dir.clear();
    auto& sup = make(std::move(m), std::move(o));
    try {
        sup.start();
        FAIL() << "start() should have thrown";
    } catch (const StartupError& e) {
        EXPECT_THAT(e.what(), HasSubstr("service 'web': {bin_dir} is used but no value was given"));
    }
}

TEST_F(SupervisorTest, ServicesGetThePlexusEnvironmentAndTheirLogFile) {
    auto m = manifest();
    m.daemons.push_back(daemon("registry", kSleep));
    auto web = service("web",
                       {"/bin/sh", "-c",
                        "echo \"id=$PLEXUS_INSTANCE_ID svc=$PLEXUS_SERVICE listen=$PLEXUS_LISTEN "
                        "reg=$PLEXUS_REGISTRY data=$PLEXUS_DATA_DIR extra=$EXTRA\"; exec sleep 60"},
                       2);
    web.env["EXTRA"] = "{data_dir}/x-{replica}-{instance}";
    m.services.push_back(web);
    auto& sup = make(std::move(m), options());
    ASSERT_TRUE(sup.start());

    const auto data = sup.data_dir();
    EXPECT_EQ(data, dir_.path() + "/data");
    EXPECT_EQ(sup.logs_dir(), data + "/logs");
    EXPECT_TRUE(std::filesystem::is_directory(data + "/web"));
    const auto log = find("web-1").log_file;
    EXPECT_EQ(log, data + "/logs/web-1.log");
    const auto expected = "id=web-1 svc=web listen=127.0.0.1:0 reg=http://127.0.0.1:" +
                          std::to_string(*sup.daemon_port("registry")) + " data=" + data +
                          "/web extra=" + data + "/x-1-web-1\n";
    ASSERT_TRUE(wait_for([&] { return read_file(log).find(expected) != std::string::npos; }))
        << read_file(log);
}

TEST_F(SupervisorTest, DaemonsWithTlsArgsGetThemOnlyInARunWithTls) {
    auto command = [](const std::string& name) {
        return std::vector<std::string>{"/bin/sh", "-c", "echo \"" + name + " $0 $*\"; exec sleep 60",
                                        "{scheme}://127.0.0.1:{port}", "peer={scheme:gateway}"};
    };
    for (bool tls : {false, true}) {
        auto m = manifest();
        auto gateway = daemon("gateway", command("gateway"));
        gateway.tls_args = {"--tls-cert", "{tls_cert}", "--tls-key", "{tls_key}"};
        m.daemons.push_back(gateway);
        m.daemons.push_back(daemon("registry", command("registry")));
        auto o = options();
        if (tls) {
            o.tls_cert = "/certs/server.pem";
            o.tls_key = "/certs/server-key.pem";
        }
        auto& sup = make(std::move(m), std::move(o));
        ASSERT_TRUE(sup.start());
        auto gw = find("gateway"), reg = find("registry");
        EXPECT_EQ(gw.tls, tls);
        EXPECT_FALSE(reg.tls);
        auto gw_port = std::to_string(gw.port), reg_port = std::to_string(reg.port);
        const std::string gw_line =
            tls ? "gateway https://127.0.0.1:" + gw_port +
                      " peer=https --tls-cert /certs/server.pem --tls-key /certs/server-key.pem\n"
                : "gateway http://127.0.0.1:" + gw_port + " peer=http\n";
        const std::string reg_line =
            "registry http://127.0.0.1:" + reg_port + (tls ? " peer=https\n" : " peer=http\n");
        EXPECT_TRUE(wait_for([&] { return read_file(gw.log_file).find(gw_line) != std::string::npos; }))
            << read_file(gw.log_file) << " expected " << gw_line;
        EXPECT_TRUE(wait_for([&] { return read_file(reg.log_file).find(reg_line) != std::string::npos; }))
            << read_file(reg.log_file) << " expected " << reg_line;
        sup.stop_all(2s);
        sup_.reset();
        std::filesystem::remove_all(dir_.path() + "/data");
    }
    auto o = options();
    o.tls_cert = "/certs/server.pem";
    EXPECT_THROW(make(manifest(), o), StartupError);
}

TEST_F(SupervisorTest, ProbesAtMostOncePerIntervalAndRecordsHealth) {
    auto m = manifest();
    m.services.push_back(service("web", kSleep));
    auto o = options();
    std::atomic<int> calls{0};
    std::atomic<bool> healthy{true};
    o.health_probe = [&](const InstanceStatus&) {
        ++calls;
        return healthy.load();
    };
    auto& sup = make(std::move(m), std::move(o));
    ASSERT_TRUE(sup.start());
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(find("web-0").state, InstanceState::running);
    EXPECT_TRUE(find("web-0").healthy);
    for (int i = 0; i < 5; ++i) sup.tick();
    EXPECT_EQ(calls, 1);  // the clock did not move

    healthy = false;
    clock_.advance(1s);
    sup.tick();
    EXPECT_EQ(calls, 2);
    EXPECT_FALSE(find("web-0").healthy);
    EXPECT_EQ(find("web-0").state, InstanceState::running);  // unhealthy is not dead: no restart
}

TEST_F(SupervisorTest, RejectsAnInvalidManifest) {
    auto m = manifest();
    m.services.push_back(service("web", {}));
    EXPECT_THROW(make(std::move(m), options()), StartupError);
}

namespace {

// A service of one sleeping replica with a scripted liveness probe: each call takes the next
// answer of `answers` (true once they run out) and counts itself.
class LivenessTest : public SupervisorTest {
  protected:
    SupervisorOptions liveness_options() {
        auto o = options();
        o.liveness_interval = 1s;
        o.liveness_failures = 3;
        o.liveness_grace = 10s;
        o.liveness_probe = [this](const InstanceStatus& s) {
            ++calls_;
            probed_pids_.push_back(s.pid);
            if (answers_.empty()) return true;
            bool ok = answers_.front();
            answers_.pop_front();
            return ok;
        };
        return o;
    }

    Supervisor& start_web(SupervisorOptions o) {
        auto m = manifest();
        m.services.push_back(service("web", kSleep));
        auto& sup = make(std::move(m), std::move(o));
        EXPECT_TRUE(sup.start());
        EXPECT_EQ(find("web-0").state, InstanceState::running);
        return sup;
    }

    // Advances the clock by `d` and ticks once.
    void step(std::chrono::milliseconds d) {
        clock_.advance(d);
        sup_->tick();
    }

    bool has_event(const std::string& text) {
        auto all = events();
        return std::find(all.begin(), all.end(), text) != all.end();
    }

    std::deque<bool> answers_;
    int calls_ = 0;
    std::vector<int> probed_pids_;
};

}  // namespace

TEST_F(LivenessTest, ConsecutiveFailuresKillTheProcessAndItIsRestarted) {
    answers_ = {false, false, false};
    start_web(liveness_options());
    const int pid = find("web-0").pid;

    step(10s);  // the grace period is over: first probe
    EXPECT_EQ(calls_, 1);
    EXPECT_EQ(find("web-0").liveness_failures, 1);
    EXPECT_TRUE(has_event("web-0: liveness probe failed (1 of 3)"));
    step(1s);
    EXPECT_EQ(find("web-0").liveness_failures, 2);
    EXPECT_EQ(find("web-0").pid, pid);  // not yet
    step(1s);
    EXPECT_EQ(calls_, 3);
    EXPECT_EQ(find("web-0").last_error, "not alive: 3 liveness probes failed; killed");
    EXPECT_FALSE(find("web-0").healthy);
    EXPECT_TRUE(has_event("web-0: not alive: 3 liveness probes failed; killed"));

    // The ordinary exit path: reaped, backoff, restarted.
    ASSERT_TRUE(wait_for([&] { return find("web-0").state == InstanceState::backoff; }));
    EXPECT_TRUE(gone(pid));
    EXPECT_EQ(find("web-0").last_exit, "killed by SIGKILL (not alive: 3 liveness probes failed)");
    EXPECT_EQ(calls_, 3);  // nothing probes a dying process
    step(200ms);
    auto s = find("web-0");
    EXPECT_EQ(s.state, InstanceState::running);
    EXPECT_EQ(s.restarts, 1);
    EXPECT_GT(s.pid, 0);
    EXPECT_NE(s.pid, pid);
    EXPECT_EQ(s.liveness_failures, 0);
    EXPECT_EQ(s.last_error, "");

    // The new process gets its own grace period, then is probed again (and passes).
    step(9s);
    EXPECT_EQ(calls_, 3);
    step(1s);
    EXPECT_EQ(calls_, 4);
    EXPECT_EQ(probed_pids_.back(), s.pid);
    EXPECT_EQ(find("web-0").pid, s.pid);
}

TEST_F(LivenessTest, AProcessNeverHealthyWithinTheStartupTimeoutIsRestarted) {
    auto o = options();
    o.startup_timeout = 30s;
    bool healthy = false;
    o.health_probe = [&](const InstanceStatus&) { return healthy; };
    auto m = manifest();
    m.services.push_back(service("web", kSleep));
    auto& sup = make(std::move(m), std::move(o));
    ASSERT_TRUE(sup.start());
    const int pid = find("web-0").pid;
    EXPECT_EQ(find("web-0").state, InstanceState::starting);

    step(29s);
    EXPECT_EQ(find("web-0").pid, pid);  // not yet
    step(1s);
    EXPECT_EQ(find("web-0").last_error, "not healthy within 30s of its start; killed");
    EXPECT_TRUE(has_event("web-0: not healthy within 30s of its start; killed"));
    ASSERT_TRUE(wait_for([&] { return find("web-0").state == InstanceState::backoff; }));
    EXPECT_TRUE(gone(pid));
    EXPECT_EQ(find("web-0").last_exit, "killed by SIGKILL (not healthy within 30s of its start)");

    // Restarted; this time it becomes healthy and stays.
    healthy = true;
    step(200ms);
    step(1s);
    auto s = find("web-0");
    EXPECT_EQ(s.restarts, 1);
    EXPECT_NE(s.pid, pid);
    EXPECT_EQ(s.state, InstanceState::running);
    step(60s);
    EXPECT_EQ(find("web-0").pid, s.pid);
}

TEST_F(LivenessTest, APassingProbeResetsTheCount) {
    answers_ = {false, false, true, false, false, true, false, false, false};
    start_web(liveness_options());
    const int pid = find("web-0").pid;

    step(10s);
    step(1s);
    EXPECT_EQ(find("web-0").liveness_failures, 2);
    step(1s);  // passes
    EXPECT_EQ(find("web-0").liveness_failures, 0);
    EXPECT_TRUE(has_event("web-0: alive again after 2 failed liveness probes"));
    step(1s);
    step(1s);
    step(1s);  // passes
    step(1s);
    step(1s);
    EXPECT_EQ(calls_, 8);
    EXPECT_EQ(find("web-0").liveness_failures, 2);
    EXPECT_EQ(find("web-0").pid, pid);  // never three in a row
    EXPECT_EQ(find("web-0").restarts, 0);
    step(1s);  // the third in a row
    EXPECT_EQ(find("web-0").last_error, "not alive: 3 liveness probes failed; killed");
    ASSERT_TRUE(wait_for([&] { return find("web-0").state == InstanceState::backoff; }));
    EXPECT_TRUE(gone(pid));
}

TEST_F(LivenessTest, NoVerdictDuringTheGracePeriod) {
    answers_ = {false, false, false};
    auto o = liveness_options();
    o.liveness_failures = 1;
    start_web(std::move(o));
    const int pid = find("web-0").pid;

    for (int i = 0; i < 9; ++i) step(1s);
    step(999ms);
    EXPECT_EQ(calls_, 0);
    EXPECT_EQ(find("web-0").pid, pid);
    step(1ms);  // 10 s after the start
    EXPECT_EQ(calls_, 1);
    EXPECT_EQ(find("web-0").last_error, "not alive: 1 liveness probe failed; killed");
}

TEST_F(LivenessTest, NoVerdictBeforeTheHealthProbePassedOnce) {
    answers_ = {false};
    auto o = liveness_options();
    o.liveness_failures = 1;
    o.liveness_grace = 0ms;
    o.startup_timeout = 1h;  // long unhealthy, but not stuck for the startup deadline
    std::atomic<bool> healthy{false};
    o.health_probe = [&](const InstanceStatus&) { return healthy.load(); };
    auto m = manifest();
    m.services.push_back(service("web", kSleep));
    auto& sup = make(std::move(m), std::move(o));
    ASSERT_TRUE(sup.start());
    const int pid = find("web-0").pid;

    for (int i = 0; i < 30; ++i) step(1s);
    EXPECT_EQ(find("web-0").state, InstanceState::starting);
    EXPECT_EQ(calls_, 0);
    healthy = true;
    step(1s);  // healthy: running from now on
    EXPECT_EQ(find("web-0").state, InstanceState::running);
    EXPECT_EQ(calls_, 0);  // the probes due are chosen before the health probe's verdict
    step(1s);
    EXPECT_EQ(calls_, 1);
    EXPECT_EQ(probed_pids_.back(), pid);
    EXPECT_EQ(find("web-0").last_error, "not alive: 1 liveness probe failed; killed");
}

TEST_F(LivenessTest, ProbesAtMostOncePerInterval) {
    start_web(liveness_options());
    step(10s);
    EXPECT_EQ(calls_, 1);
    for (int i = 0; i < 5; ++i) sup_->tick();
    step(999ms);
    EXPECT_EQ(calls_, 1);
    step(1ms);
    EXPECT_EQ(calls_, 2);
    step(5s);  // a late tick probes once, not once per missed interval
    EXPECT_EQ(calls_, 3);
    step(500ms);
    EXPECT_EQ(calls_, 3);
}

TEST_F(LivenessTest, WithoutAProbeNothingIsKilled) {
    auto o = options();
    std::atomic<bool> healthy{true};
    o.health_probe = [&](const InstanceStatus&) { return healthy.load(); };
    o.liveness_failures = 1;
    o.liveness_grace = 0ms;
    start_web(std::move(o));
    const int pid = find("web-0").pid;
    healthy = false;
    for (int i = 0; i < 60; ++i) step(1s);
    auto s = find("web-0");
    EXPECT_EQ(s.pid, pid);
    EXPECT_EQ(s.state, InstanceState::running);
    EXPECT_FALSE(s.healthy);
    EXPECT_EQ(s.restarts, 0);
    EXPECT_FALSE(gone(pid));
}

TEST_F(LivenessTest, AProbeThatThrowsCountsAsAFailure) {
    auto o = liveness_options();
    o.liveness_probe = [this](const InstanceStatus&) -> bool {
        ++calls_;
        throw std::runtime_error("boom");
    };
    start_web(std::move(o));
    const int pid = find("web-0").pid;

    step(10s);
    EXPECT_EQ(find("web-0").liveness_failures, 1);
    EXPECT_EQ(find("web-0").last_error, "liveness probe threw: boom");
    EXPECT_TRUE(has_event("web-0: liveness probe failed (1 of 3): liveness probe threw: boom"));
    step(1s);
    step(1s);
    EXPECT_EQ(calls_, 3);
    EXPECT_EQ(find("web-0").last_error, "not alive: 3 liveness probes failed; killed");
    ASSERT_TRUE(wait_for([&] { return find("web-0").state == InstanceState::backoff; }));
    EXPECT_TRUE(gone(pid));
    step(200ms);
    EXPECT_EQ(find("web-0").restarts, 1);
}

// A real stopped process: the probe reads its state from /proc, as a hung HTTP server would not
// answer. SIGKILL ends it although it is stopped.
TEST_F(LivenessTest, HealsAStoppedProcess) {
    auto o = liveness_options();
    o.liveness_probe = [this](const InstanceStatus& s) {
        ++calls_;
        return !stopped(s.pid);
    };
    start_web(std::move(o));
    const int pid = find("web-0").pid;
    step(10s);
    EXPECT_EQ(find("web-0").liveness_failures, 0);

    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    ASSERT_TRUE(wait_for([&] { return stopped(pid); }));
    step(1s);
    step(1s);
    step(1s);
    EXPECT_EQ(find("web-0").liveness_failures, 3);
    ASSERT_TRUE(wait_for([&] { return find("web-0").state == InstanceState::backoff; }));
    EXPECT_TRUE(gone(pid));
    step(200ms);
    auto s = find("web-0");
    EXPECT_EQ(s.state, InstanceState::running);
    EXPECT_NE(s.pid, pid);
    EXPECT_EQ(s.restarts, 1);
}

TEST_F(LivenessTest, StopAllEndsAStoppedProcessWithoutWaitingForTheTimeout) {
    start_web(options());
    const int pid = find("web-0").pid;
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    ASSERT_TRUE(wait_for([&] { return stopped(pid); }));
    // Waiting out the timeout would end in SIGKILL: SIGTERM as the cause shows the stopped
    // process was woken to act on it.
    sup_->stop_all(60s);
    EXPECT_TRUE(gone(pid));
    EXPECT_EQ(find("web-0").last_exit, "killed by SIGTERM");
}

TEST_F(LivenessTest, RejectsLivenessSettingsOutOfRange) {
    auto m = manifest();
    m.services.push_back(service("web", kSleep));
    auto o = options();
    o.liveness_failures = 0;
    EXPECT_THROW(make(m, o), StartupError);
    o = options();
    o.liveness_interval = 0ms;
    EXPECT_THROW(make(m, o), StartupError);
    o = options();
    o.liveness_grace = -1ms;
    EXPECT_THROW(make(m, o), StartupError);
}
