// Active health checks end to end: a registry process checks a stub server (whose answers the test
// sets) and a real SDK service on loopback. Check timeouts are far longer than any answer takes, so
// a probe slowed by a busy machine does not count as a failure; only the answers the test sets do.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <future>

#include "support/http.hpp"
#include "support/process.hpp"
#include "support/stub_server.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

class HealthChecks : public ::testing::Test {
  protected:
    void SetUp() override {
        registry_port = free_port();
        registry = Process({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:" + std::to_string(registry_port),
                            "--data-dir", dir.path() + "/registry"},
                           {}, dir.path() + "/registry.log");
        ASSERT_TRUE(eventually([&] { return http_get(registry_port, "/health/ready").status == 200; }))
            << registry.log();
    }

    HttpResult put(const std::string& path, const std::string& body) {
        return http("PUT", registry_port, path, body, {{"Content-Type", "application/json"}});
    }

    // Registers `id` of "web" at the stub, checked every `interval_ms` (each check may take as
    // long); the TTL is long enough not to matter.
    void register_web(const std::string& id, int port, int interval_ms = 500) {
        auto r = put("/v1/services/web/instances/" + id,
                     R"({"address":"127.0.0.1","port":)" + std::to_string(port) +
                         R"(,"ttl_ms":60000,"check":{"http":"/health/ready","interval_ms":)" +
                         std::to_string(interval_ms) + R"(,"timeout_ms":)" + std::to_string(interval_ms) +
                         R"(,"healthy_threshold":1,"unhealthy_threshold":2}})");
        ASSERT_EQ(r.status, 200) << r.body;
    }

    json::object service(const std::string& name, const std::string& query = {}) {
        auto r = http_get(registry_port, "/v1/services/" + name + query);
        EXPECT_EQ(r.status, 200) << r.body;
        if (r.status != 200) return {};
        return json::parse(r.body).as_object();
    }

    std::vector<std::string> listed(const std::string& name) {
        std::vector<std::string> ids;
        auto snapshot = service(name);
        for (const auto& in : snapshot["instances"].as_array()) ids.emplace_back(in.at("id").as_string());
        return ids;
    }

    // The instance's status from ?all=true, or "" if it is not registered.
    std::string status(const std::string& name, const std::string& id) {
        auto snapshot = service(name, "?all=true");
        for (const auto& in : snapshot["instances"].as_array()) {
            if (in.at("id").as_string() == id) return std::string(in.at("status").as_string());
        }
        return "";
    }

    std::string metrics() { return http_get(registry_port, "/metrics").body; }

    TempDir dir;
    int registry_port = 0;
    Process registry;
};

}  // namespace

TEST_F(HealthChecks, StatusFollowsTheCheckAndWatchesSeeItAtOnce) {
    StubServer web;
    register_web("web-1", web.port());
    // A check passed (not just the status a new instance starts with).
    ASSERT_TRUE(eventually([&] {
        return metrics().find(R"(plexus_registry_health_checks_total{result="pass"})") != std::string::npos;
    })) << registry.log();
    EXPECT_EQ(status("web", "web-1"), "passing");
    EXPECT_EQ(listed("web"), std::vector<std::string>{"web-1"});
    auto instance = service("web")["instances"].as_array().at(0).as_object();
    EXPECT_EQ(json::serialize(instance.at("check")),
              R"({"http":"/health/ready","interval_ms":500,"timeout_ms":500,"healthy_threshold":1,)"
              R"("unhealthy_threshold":2})");

    // Failing: critical after two checks, out of the default list, and a waiting watch answers. The
    // watch would wait 60 s, longer than the client waits (10 s): an answer means it was woken.
    auto index = service("web")["index"].as_int64();
    auto watch = std::async(std::launch::async, [&] {
        return http_get(registry_port, "/v1/services/web?index=" + std::to_string(index) + "&wait=60s");
    });
    ASSERT_TRUE(
        eventually([&] { return metrics().find("plexus_registry_watchers 1") != std::string::npos; }));
    web.set_status(503);
    auto changed = watch.get();
    ASSERT_EQ(changed.status, 200) << "the watch was not woken: " << changed.error << changed.body;
    auto body = json::parse(changed.body).as_object();
    EXPECT_GT(body["index"].as_int64(), index);
    EXPECT_TRUE(body["instances"].as_array().empty()) << changed.body;
    EXPECT_EQ(status("web", "web-1"), "critical");
    EXPECT_TRUE(listed("web").empty());
    EXPECT_TRUE(eventually([&] { return registry.log().find("answered 503") != std::string::npos; }))
        << registry.log();

    // Passing again: back in the list.
    web.set_status(200);
    ASSERT_TRUE(eventually([&] { return status("web", "web-1") == "passing"; }));
    EXPECT_EQ(listed("web"), std::vector<std::string>{"web-1"});

    // 429: a warning, still listed.
    web.set_status(429);
    ASSERT_TRUE(eventually([&] { return status("web", "web-1") == "warning"; }));
    EXPECT_EQ(listed("web"), std::vector<std::string>{"web-1"});

    auto m = metrics();
    EXPECT_NE(m.find(R"(plexus_registry_health_checks_total{result="pass"})"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(plexus_registry_health_checks_total{result="fail"})"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(plexus_registry_health_checks_total{result="warning"})"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(plexus_registry_status_changes_total{status="critical"} 1)"), std::string::npos) << m;
    EXPECT_NE(m.find(R"(plexus_registry_status_changes_total{status="warning"} 1)"), std::string::npos) << m;

    // Deregistered: no more checks (but the one that may have been in flight), while another
    // instance, checked on the same schedule, is checked three times.
    StubServer other;
    register_web("web-2", other.port());
    ASSERT_TRUE(eventually([&] { return other.requests("/health/ready") >= 1; }));
    ASSERT_EQ(http("DELETE", registry_port, "/v1/services/web/instances/web-1").status, 200);
    auto checks = web.requests("/health/ready");
    auto other_checks = other.requests("/health/ready");
    ASSERT_TRUE(eventually([&] { return other.requests("/health/ready") >= other_checks + 3; }));
    EXPECT_LE(web.requests("/health/ready"), checks + 1);
}

TEST_F(HealthChecks, TheFirstCheckRunsAtRegistrationNotAnIntervalLater) {
    StubServer web;
    web.set_status(503);
    register_web("web-1", web.port(), 600000);  // ten minutes between checks
    ASSERT_TRUE(eventually([&] { return web.requests("/health/ready") >= 1; })) << registry.log();
    EXPECT_EQ(web.requests("/health/ready"), 1);
    // One failure is below unhealthy_threshold (2): still passing, and the check result is counted.
    EXPECT_TRUE(eventually([&] {
        return metrics().find(R"(plexus_registry_health_checks_total{result="fail"} 1)") != std::string::npos;
    })) << metrics();
    EXPECT_EQ(status("web", "web-1"), "passing");
}

TEST_F(HealthChecks, AnUnreachableInstanceGoesCritical) {
    int port = free_port();  // nothing listens there
    register_web("web-1", port);
    ASSERT_TRUE(eventually([&] { return status("web", "web-1") == "critical"; })) << registry.log();
    EXPECT_TRUE(listed("web").empty());
    EXPECT_NE(registry.log().find("connection refused"), std::string::npos) << registry.log();
}

TEST_F(HealthChecks, BadChecksAreRejectedNamingTheField) {
    auto r = put("/v1/services/web/instances/web-1",
                 R"({"address":"127.0.0.1","port":8080,"check":{"http":"/h","interval_ms":10}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.headers["content-type"], "application/problem+json");
    EXPECT_NE(r.body.find("check.interval_ms"), std::string::npos) << r.body;
    r = put("/v1/services/web/instances/web-1",
            R"({"address":"127.0.0.1","port":8080,"check":{"http":"h"}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("check.http"), std::string::npos) << r.body;
}

TEST_F(HealthChecks, AnSdkServiceIsCheckedOnItsReadinessAndComesBack) {
    auto start_inventory = [&](const std::string& id, std::vector<std::string> extra) {
        std::vector<std::string> argv{
            SHOP_INVENTORY_BIN, "--instance-id", id, "--heartbeat", "200ms", "--ttl", "20s"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        // Inventory will not start without an identity provider for its guarded route; this test
        // never calls that route, so one that does not answer is enough.
        return Process(argv,
                       {{"PLEXUS_REGISTRY", "http://127.0.0.1:" + std::to_string(registry_port)},
                        {"PLEXUS_DATA_DIR", dir.path() + "/" + id},
                        {"PLEXUS_IDENTITY", "http://127.0.0.1:" + std::to_string(free_port())},
                        {"PLEXUS_ISSUER", "http://127.0.0.1/auth"},
                        {"PLEXUS_CREDENTIALS", dir.path() + "/" + id + "/credentials.json"},
                        {"PLEXUS_THREADS", "1"}},
                       dir.path() + "/" + id + ".log");
    };
    // Checked every second, each check allowed half of that: long past any answer on a busy machine.
    auto checked = start_inventory("inventory-0", {"--check-interval", "1s"});
    auto unchecked = start_inventory("inventory-1", {"--check-interval", "0"});
    ASSERT_TRUE(eventually([&] { return listed("inventory").size() == 2; }))
        << checked.log() << unchecked.log();

    int port = 0;
    auto snapshot = service("inventory");
    for (const auto& in : snapshot["instances"].as_array()) {
        if (in.at("id").as_string() == "inventory-0") {
            port = static_cast<int>(in.at("port").as_int64());
            ASSERT_TRUE(in.as_object().contains("check")) << json::serialize(in);
            EXPECT_EQ(in.at("check").at("http").as_string(), "/health/ready");
            EXPECT_EQ(in.at("check").at("interval_ms").as_int64(), 1000);
        } else {
            EXPECT_FALSE(in.as_object().contains("check")) << json::serialize(in);
        }
    }
    ASSERT_GT(port, 0);
    auto ready = http_get(port, "/health/ready");
    EXPECT_EQ(ready.status, 200);
    EXPECT_EQ(json::parse(ready.body), json::parse(R"({"status":"pass","checks":{"database":"pass"}})"))
        << ready.body;

    // A stopped process answers nothing: its checks time out and it leaves discovery, while the
    // unchecked instance stays (its TTL has not passed). Resumed, it comes back without a restart.
    checked.signal(SIGSTOP);
    bool went_critical = eventually([&] { return status("inventory", "inventory-0") == "critical"; });
    auto while_stopped = listed("inventory");
    checked.signal(SIGCONT);
    ASSERT_TRUE(went_critical) << registry.log();
    EXPECT_EQ(while_stopped, std::vector<std::string>{"inventory-1"});
    EXPECT_NE(registry.log().find("timed out after 500ms"), std::string::npos) << registry.log();
    ASSERT_TRUE(eventually([&] { return status("inventory", "inventory-0") == "passing"; }))
        << registry.log();
    EXPECT_EQ(listed("inventory").size(), 2u);
    EXPECT_TRUE(checked.running());

    // A check interval the registry would refuse stops the service at startup.
    auto bad = start_inventory("inventory-2", {"--check-interval", "50ms"});
    EXPECT_EQ(bad.wait(), 2);
    EXPECT_NE(bad.log().find("--check-interval"), std::string::npos) << bad.log();
}
