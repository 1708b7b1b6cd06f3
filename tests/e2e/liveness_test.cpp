// Liveness restarts: `plexus up --detach` with the default manifest, then an inventory instance is
// stopped with SIGSTOP. Its process still exists, so nothing exits; but it no longer answers
// /health/live, and the supervisor's liveness probe kills it (SIGKILL ends a stopped process) and
// restarts it. The new process serves and is healthy, nothing else was restarted, and
// `plexus down` leaves no process behind.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <sstream>
#include <string>

#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// The grace period (10 s from the process's start), three failed probes a second apart, the
// restart backoff and the new process's registration take about 15 s; the rest is room for a busy
// machine.
constexpr auto kRestartWithin = 60s;

bool gone(int pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

int port_of(const json::object& instance) {
    std::string address(instance.at("address").as_string());
    auto colon = address.rfind(':');
    return colon == std::string::npos ? 0 : std::stoi(address.substr(colon + 1));
}

// The line of `plexus status` for `name`, or "".
std::string status_line(const std::string& table, const std::string& name) {
    std::istringstream in(table);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string service, instance;
        words >> service >> instance;
        if (instance == name) return line;
    }
    return "";
}

}  // namespace

TEST(PlexusUpLiveness, RestartsAStoppedInstance) {
    Deployment d;
    ASSERT_TRUE(d.up()) << d.up_output() << d.supervisor_log();

    auto victim = d.instance("inventory-0");
    ASSERT_FALSE(victim.empty()) << json::serialize(d.instances());
    const int pid = static_cast<int>(victim.at("pid").as_int64());
    ASSERT_GT(pid, 0);
    ASSERT_EQ(victim.at("restarts").as_int64(), 0);
    const int old_port = port_of(victim);
    ASSERT_EQ(http("GET", old_port, "/health/live", {}, {}, 2s).status, 200);

    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    // Stopped, not gone: the supervisor sees no exit.
    EXPECT_FALSE(gone(pid));

    const bool restarted = eventually(
        [&] {
            auto i = d.instance("inventory-0");
            return !i.empty() && i.at("restarts").as_int64() >= 1 && i.at("pid").as_int64() > 0 &&
                   i.at("pid").as_int64() != pid && i.at("state").as_string() == "running" &&
                   i.at("healthy").as_bool();
        },
        kRestartWithin);
    ASSERT_TRUE(restarted) << json::serialize(d.instances()) << "\n" << d.supervisor_log();

    auto now = d.instance("inventory-0");
    EXPECT_EQ(now.at("restarts").as_int64(), 1);
    EXPECT_NE(std::string(now.at("last_exit").as_string()).find("not alive: 3 liveness probes failed"),
              std::string::npos)
        << json::serialize(now);
    EXPECT_NE(d.supervisor_log().find("inventory-0: not alive: 3 liveness probes failed; killed"),
              std::string::npos)
        << d.supervisor_log();
    EXPECT_TRUE(eventually([&] { return gone(pid); }, 5s))
        << "the stopped process " << pid << " is still there";

    // The new process serves, directly and through the gateway.
    const int new_port = port_of(now);
    ASSERT_GT(new_port, 0) << json::serialize(now);
    EXPECT_EQ(http("GET", new_port, "/health/live", {}, {}, 2s).status, 200);
    EXPECT_TRUE(eventually([&] {
        return http("GET", d.gateway_port(), "/api/stock/1", {}, {}, 2s).status == 200;
    })) << d.grep_logs("inventory");

    // Healthy processes were left alone.
    for (const auto& v : d.instances()) {
        const auto& i = v.as_object();
        if (i.at("name").as_string() == "inventory-0") continue;
        EXPECT_EQ(i.at("restarts").as_int64(), 0) << json::serialize(i);
    }

    std::string table;
    ASSERT_EQ(d.plexus("status", &table), 0) << table;
    const auto line = status_line(table, "inventory-0");
    EXPECT_NE(line.find(" healthy "), std::string::npos) << table;
    EXPECT_NE(line.find(std::to_string(now.at("pid").as_int64())), std::string::npos) << table;

    std::string out;
    ASSERT_EQ(d.down(&out), 0) << out;
    EXPECT_TRUE(eventually([&] { return gone(d.supervisor_pid()); }, 5s));
    for (int seen : d.seen_pids()) {
        EXPECT_TRUE(eventually([&] { return gone(seen); }, 5s)) << "pid " << seen << " is still alive";
    }
}
