// `plexus up --detach` with the default manifest on a temporary data dir and free ports: the
// gateway serves the shop, a catalog instance killed with SIGKILL while a client keeps calling
// costs no failed call, the supervisor restarts it, the registry drops the dead registration,
// and `plexus down` leaves no process behind.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

class PlexusUp : public ::testing::Test {
  protected:
    void SetUp() override {
        gateway_port = free_port();
        std::string out;
        int rc = run_command(std::string("timeout 120 ") + PLEXUS_BIN + " up --detach -f " +
                                 PLEXUS_SOURCE_DIR + "/deploy/plexus.yaml --data-dir " + dir.path() +
                                 " --gateway-port " + std::to_string(gateway_port),
                             &out);
        up_output = out;
        ASSERT_EQ(rc, 0) << out << supervisor_log();
        auto st = state();
        ASSERT_TRUE(st) << "no supervisor.json";
        supervisor_pid = static_cast<int>(st->at("pid").as_int64());
        control_port = static_cast<int>(st->at("control_port").as_int64());
        registry_port = static_cast<int>(st->at("registry_port").as_int64());
    }

    void TearDown() override {
        std::string out;
        run_command(std::string("timeout 90 ") + PLEXUS_BIN + " down --data-dir " + dir.path(), &out);
        // Whatever happened above, nothing of this test may outlive it.
        if (supervisor_pid > 0 && ::kill(supervisor_pid, 0) == 0) ::kill(supervisor_pid, SIGKILL);
        for (int pid : seen_pids) {
            if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
        }
    }

    std::optional<json::object> state() {
        std::ifstream in(dir.path() + "/supervisor.json");
        if (!in) return std::nullopt;
        std::stringstream s;
        s << in.rdbuf();
        return json::parse(s.str()).as_object();
    }

    std::string supervisor_log() {
        std::ifstream in(dir.path() + "/logs/supervisor.log");
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    json::array instances() {
        auto r = http_get(control_port, "/v1/status");
        if (r.status != 200) return {};
        auto arr = json::parse(r.body).at("instances").as_array();
        for (const auto& i : arr) {
            auto pid = static_cast<int>(i.at("pid").as_int64());
            if (pid > 0) seen_pids.insert(pid);
        }
        return arr;
    }

    json::object instance(const std::string& name) {
        for (const auto& i : instances()) {
            if (i.at("name").as_string() == name) return i.as_object();
        }
        return {};
    }

    std::vector<std::int64_t> registered_ports(const std::string& service) {
        auto r = http_get(registry_port, "/v1/services/" + service);
        std::vector<std::int64_t> ports;
        if (r.status != 200) return ports;
        auto body = json::parse(r.body);
        for (const auto& i : body.at("instances").as_array()) ports.push_back(i.at("port").as_int64());
        return ports;
    }

    TempDir dir;
    int gateway_port = 0, control_port = 0, registry_port = 0, supervisor_pid = 0;
    std::string up_output;
    std::set<int> seen_pids;
};

}  // namespace

TEST_F(PlexusUp, ServesTheShopSurvivesAKilledInstanceAndStopsClean) {
    EXPECT_NE(up_output.find("http://127.0.0.1:" + std::to_string(gateway_port)), std::string::npos)
        << up_output;
    auto first = http_get(gateway_port, "/api/products/1");
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(json::parse(first.body).at("availability").at("quantity").as_int64(), 25);
    EXPECT_FALSE(first.headers["x-request-id"].empty());
    EXPECT_EQ(http_get(gateway_port, "/api/nothing-here").status, 404);

    auto victim = instance("catalog-0");
    ASSERT_FALSE(victim.empty());
    int victim_pid = static_cast<int>(victim.at("pid").as_int64());
    auto victim_address = std::string(victim.at("address").as_string());
    auto victim_port = std::stoll(victim_address.substr(victim_address.rfind(':') + 1));
    ASSERT_GT(victim_pid, 0);

    // A client keeps calling through the gateway while the instance dies.
    std::atomic<bool> stop{false};
    std::atomic<int> calls{0}, failures{0};
    std::string last_failure;
    std::thread client([&] {
        while (!stop) {
            auto r = http_get(gateway_port, "/api/products/" + std::to_string(1 + calls % 5));
            ++calls;
            if (r.status != 200) {
                ++failures;
                last_failure = std::to_string(r.status) + " " + r.body + r.error;
            }
        }
    });
    ASSERT_TRUE(eventually([&] { return calls > 50; }));
    ASSERT_EQ(::kill(victim_pid, SIGKILL), 0);
    auto killed_at = std::chrono::steady_clock::now();

    // The supervisor restarts it under the same instance name with a new pid.
    bool restarted = eventually([&] {
        auto i = instance("catalog-0");
        return !i.empty() && i.at("restarts").as_int64() >= 1 && i.at("healthy").as_bool() &&
               i.at("pid").as_int64() != victim_pid;
    });
    // The registry no longer lists the dead process's address (TTL 5 s).
    bool dropped = eventually([&] {
        auto ports = registered_ports("catalog");
        return std::find(ports.begin(), ports.end(), victim_port) == ports.end();
    });
    auto dropped_after = std::chrono::steady_clock::now() - killed_at;
    int calls_at_drop = calls;
    ASSERT_TRUE(eventually([&] { return calls > calls_at_drop + 50; }));
    stop = true;
    client.join();

    EXPECT_TRUE(restarted) << json::serialize(instances());
    EXPECT_TRUE(dropped);
    EXPECT_LT(dropped_after, std::chrono::seconds(7));
    EXPECT_EQ(failures, 0) << "of " << calls << " calls; last: " << last_failure;
    EXPECT_GT(calls, 100);

    // plexus status prints the table.
    std::string status_out;
    ASSERT_EQ(run_command(std::string(PLEXUS_BIN) + " status --data-dir " + dir.path(), &status_out), 0);
    EXPECT_NE(status_out.find("catalog-1"), std::string::npos) << status_out;
    EXPECT_NE(status_out.find("healthy"), std::string::npos) << status_out;

    // plexus scale: a third catalog replica starts, registers and becomes healthy; scaling back
    // stops it.
    std::string scale_out;
    ASSERT_EQ(run_command(std::string(PLEXUS_BIN) + " scale catalog 3 --data-dir " + dir.path(), &scale_out),
              0)
        << scale_out;
    EXPECT_TRUE(eventually([&] {
        auto i = instance("catalog-2");
        return !i.empty() && i.at("healthy").as_bool() && i.at("state").as_string() == "running";
    })) << json::serialize(instances());
    EXPECT_TRUE(eventually([&] { return registered_ports("catalog").size() == 3; }));
    ASSERT_EQ(run_command(std::string(PLEXUS_BIN) + " scale catalog 2 --data-dir " + dir.path(), &scale_out),
              0)
        << scale_out;
    EXPECT_TRUE(eventually([&] { return instance("catalog-2").empty(); })) << json::serialize(instances());
    EXPECT_NE(run_command(std::string(PLEXUS_BIN) + " scale nosuch 1 --data-dir " + dir.path(), &scale_out),
              0);
    EXPECT_NE(scale_out.find("nosuch"), std::string::npos) << scale_out;

    // plexus down leaves no process behind.
    instances();
    std::string down_out;
    ASSERT_EQ(
        run_command(std::string("timeout 90 ") + PLEXUS_BIN + " down --data-dir " + dir.path(), &down_out), 0)
        << down_out;
    EXPECT_EQ(::kill(supervisor_pid, 0), -1);
    for (int pid : seen_pids) {
        EXPECT_TRUE(
            eventually([&] { return ::kill(pid, 0) == -1 && errno == ESRCH; }, std::chrono::seconds(5)))
            << "pid " << pid << " is still alive";
    }
    EXPECT_NE(http_get(gateway_port, "/api/products/1").status, 200);
}
