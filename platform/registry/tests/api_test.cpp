// The registry's HTTP API in process: the catalog (no database, manual clock) and Api routes on a
// net::Server over a two-thread runtime on loopback port 0, driven with raw net::fetch calls.
// Every test runs twice: on a catalog of this registry alone, and on a catalog shared through a
// real etcd member on loopback (one per binary, a key prefix per test).
// Every wait is bounded by kWait. A watch that must be woken waits kLongWait, longer than any
// request is waited for, so one that is not woken fails the test by timing out; no assertion puts an
// upper bound on wall-clock time.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

#include "catalog_stores.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/registry/catalog.hpp"
#include "plexus/registry/registry.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace std::chrono_literals;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

using namespace plexus::net::testing;

namespace {

// Owns everything the request needs, so nothing refers to the test's locals while it runs.
net::Task<Result<net::Response>> fetch_owned(net::Endpoint ep, std::string method, std::string target,
                                             std::string body) {
    std::string content_type = body.empty() ? "" : "application/json";
    co_return co_await net::fetch(ep, std::move(method), std::move(target), std::move(body),
                                  std::move(content_type), kWait);
}

// Longer than kWait: a watch asked to wait this long answers within a test only when something woke it.
constexpr const char* kLongWait = "&wait=60s";

std::string registration(std::uint16_t port) {
    return R"({"address":"127.0.0.1","port":)" + std::to_string(port) + R"(,"ttl_ms":30000})";
}

// A response's JSON body; throws (failing the test) if it is not an object.
json::object body_of(const net::Response& res) { return json::parse(res.body).as_object(); }

std::uint64_t body_index(const net::Response& res) {
    return static_cast<std::uint64_t>(body_of(res).at("index").to_number<std::int64_t>());
}

std::uint64_t header_index(const net::Response& res) {
    auto h = res.headers.get("X-Plexus-Index");
    if (!h) throw std::runtime_error("no X-Plexus-Index header");
    return std::stoull(std::string(*h));
}

std::vector<std::string> ids_of(const net::Response& res) {
    std::vector<std::string> ids;
    auto body = body_of(res);
    for (const auto& in : body.at("instances").as_array()) {
        ids.push_back(json::value_to<std::string>(in.as_object().at("id")));
    }
    return ids;
}

using registry::testing::Store;

class RegistryApiTest : public ::testing::TestWithParam<Store> {
  protected:
    explicit RegistryApiTest(std::chrono::milliseconds max_wait = 60s)
        : catalog_(registry::testing::new_catalog(clock_, GetParam())), api_(*catalog_, metrics_, max_wait) {}

    void SetUp() override {
        telemetry::set_log_level(telemetry::Level::warn);
        api_.add_routes(router_);
        server_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        ep_ = net::Endpoint{"127.0.0.1", server_->port()};
        runner_ = std::thread([this] { runtime_.run(); });
    }

    // Terminal stop: watches still pending are destroyed with the runtime's work.
    void TearDown() override {
        catalog_->stop_following();  // nothing reaches the Api's listener from here on
        runtime_.stop();
        if (runner_.joinable()) runner_.join();
        server_.reset();
    }

    // Sends a request from io_context `context` without waiting for the answer.
    std::future<Result<net::Response>> start(std::string method, std::string target, std::string body = {},
                                             std::size_t context = 0) {
        auto promise = std::make_shared<std::promise<Result<net::Response>>>();
        auto future = promise->get_future();
        net::spawn(runtime_.executor(context),
                   deliver(fetch_owned(ep_, std::move(method), std::move(target), std::move(body)), promise),
                   "test request");
        return future;
    }

    // Sends a request and returns its response; a transport error fails the test.
    net::Response request(std::string method, std::string target, std::string body = {},
                          std::size_t context = 0) {
        auto future = start(std::move(method), std::move(target), std::move(body), context);
        auto res = wait(future);
        if (!res) throw std::runtime_error("request failed: " + res.error().message());
        return std::move(*res);
    }

    net::Response get(std::string target) { return request("GET", std::move(target)); }

    // Registers an instance through the API; returns the index it answered with.
    std::uint64_t put(const std::string& service, const std::string& id, std::uint16_t port,
                      std::size_t context = 0) {
        auto res =
            request("PUT", "/v1/services/" + service + "/instances/" + id, registration(port), context);
        EXPECT_EQ(res.status, 200) << res.body;
        return body_index(res);
    }

    double watchers() {
        return metrics_.gauge("plexus_registry_watchers", "Blocking watches currently waiting")
            .labels()
            .value();
    }

    // Sets a status as a health check would, and waits until the catalog shows it (on etcd it is
    // written first and applied when the watch brings it back).
    void set_status(const std::string& service, const std::string& id, const std::string& status) {
        ASSERT_TRUE(catalog_->set_status(service, id, status));
        ASSERT_TRUE(wait_until([&] {
            auto all = catalog_->snapshot(service, true).instances;
            return std::any_of(all.begin(), all.end(),
                               [&](const auto& in) { return in.id == id && in.status == status; });
        })) << "the status never showed";
    }

    core::ManualClock clock_;
    std::unique_ptr<registry::Catalog> catalog_;
    telemetry::Registry metrics_;
    registry::Api api_;
    net::Router router_;
    net::Runtime runtime_{2};
    std::unique_ptr<net::Server> server_;
    net::Endpoint ep_;
    std::thread runner_;
};

}  // namespace

TEST_P(RegistryApiTest, RegistrationAnswersWithTheNewIndex) {
    auto first = request("PUT", "/v1/services/x/instances/x1", registration(9001));
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(body_index(first), catalog_->service_index("x"));
    EXPECT_EQ(header_index(first), body_index(first));
    auto second = put("x", "x2", 9002);
    EXPECT_GT(second, body_index(first));

    auto snap = catalog_->snapshot("x", false);
    ASSERT_EQ(snap.instances.size(), 2u);
    EXPECT_EQ(snap.instances[0].address, "127.0.0.1");
    EXPECT_EQ(snap.instances[0].port, 9001);
    EXPECT_EQ(snap.instances[0].ttl, 30s);
}

TEST_P(RegistryApiTest, GetServiceListsHealthyInstancesWithTheIndex) {
    put("x", "x1", 9001);
    auto index = put("x", "x2", 9002);
    auto res = get("/v1/services/x");
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(res.headers.get("Content-Type"), "application/json");
    EXPECT_EQ(body_index(res), index);
    EXPECT_EQ(header_index(res), index);
    EXPECT_EQ(json::value_to<std::string>(body_of(res).at("service")), "x");
    EXPECT_EQ(ids_of(res), (std::vector<std::string>{"x1", "x2"}));
    auto first = body_of(res).at("instances").as_array().at(0).as_object();
    EXPECT_EQ(first.at("port").to_number<int>(), 9001);
    EXPECT_EQ(json::value_to<std::string>(first.at("status")), "passing");
}

TEST_P(RegistryApiTest, IndexHeaderEqualsTheBodyIndexOnEveryAnswer) {
    auto put_res = request("PUT", "/v1/services/x/instances/x1", registration(9001));
    auto put2 = request("PUT", "/v1/services/y/instances/y1", registration(9002));
    auto drain = request("PUT", "/v1/services/x/instances/x1/draining");
    auto list = get("/v1/services");
    auto plain = get("/v1/services/x");
    auto all = get("/v1/services/x?all=true");
    auto unknown = get("/v1/services/never-seen");
    auto watched = get("/v1/services/x?index=1&wait=1s");
    auto del = request("DELETE", "/v1/services/y/instances/y1");
    for (const auto* res : {&put_res, &put2, &drain, &list, &plain, &all, &unknown, &watched, &del}) {
        ASSERT_EQ(res->status, 200) << res->body;
        EXPECT_EQ(header_index(*res), body_index(*res)) << res->body;
    }
    EXPECT_EQ(body_index(list), body_index(drain));     // the global index at that time
    EXPECT_EQ(body_index(unknown), body_index(drain));  // a service never seen has the global index
    EXPECT_EQ(body_index(del), catalog_->service_index("y"));
}

TEST_P(RegistryApiTest, WatchWithAnOlderIndexAnswersAtOnce) {
    auto old = put("x", "x1", 9001);
    auto current = put("x", "x2", 9002);
    auto res = get("/v1/services/x?index=" + std::to_string(old) + kLongWait);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_index(res), current);
    EXPECT_EQ(header_index(res), current);
    EXPECT_EQ(ids_of(res), (std::vector<std::string>{"x1", "x2"}));
}

TEST_P(RegistryApiTest, WatchWaitsOutWhenNothingChanges) {
    auto index = put("x", "x1", 9001);
    auto t0 = Clock::now();
    auto res = get("/v1/services/x?index=" + std::to_string(index) + "&wait=1s");
    auto took = since(t0);
    EXPECT_GE(took, 950ms);  // and it ended: the request is waited for at most kWait
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_index(res), index);
    EXPECT_EQ(header_index(res), index);
    EXPECT_EQ(ids_of(res), (std::vector<std::string>{"x1"}));
    EXPECT_EQ(watchers(), 0);
}

TEST_P(RegistryApiTest, WatchAnswersEarlyWhenAnInstanceRegisters) {
    auto index = put("x", "x1", 9001);
    auto watch = start("GET", "/v1/services/x?index=" + std::to_string(index) + kLongWait, {}, 0);
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; })) << "the watch never started waiting";
    auto next = put("x", "x2", 9002, 1);  // from another task, on the other io_context

    auto res = wait(watch);
    ASSERT_TRUE(res) << "the watch was not woken by the registration: " << res.error().message();
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(body_index(*res), next);
    EXPECT_EQ(header_index(*res), next);
    EXPECT_EQ(ids_of(*res), (std::vector<std::string>{"x1", "x2"}));
    EXPECT_EQ(watchers(), 0);
}

TEST_P(RegistryApiTest, WatchAnswersEarlyWhenAnInstanceDrainsOrLeaves) {
    put("x", "x1", 9001);
    auto index = put("x", "x2", 9002);
    auto watch = start("GET", "/v1/services/x?index=" + std::to_string(index) + kLongWait);
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; }));
    ASSERT_EQ(request("PUT", "/v1/services/x/instances/x2/draining", {}, 1).status, 200);
    auto res = wait(watch);
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_GT(body_index(*res), index);
    EXPECT_EQ(ids_of(*res), (std::vector<std::string>{"x1"}));

    index = body_index(*res);
    watch = start("GET", "/v1/services/x?index=" + std::to_string(index) + kLongWait);
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; }));
    ASSERT_EQ(request("DELETE", "/v1/services/x/instances/x1", {}, 1).status, 200);
    res = wait(watch);
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_GT(body_index(*res), index);
    EXPECT_TRUE(ids_of(*res).empty());
}

TEST_P(RegistryApiTest, WatchIgnoresChangesToOtherServices) {
    auto index = put("x", "x1", 9001);
    auto t0 = Clock::now();
    auto watch = start("GET", "/v1/services/x?index=" + std::to_string(index) + "&wait=1s");
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; }));
    put("y", "y1", 9002, 1);
    auto res = wait(watch);
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_GE(since(t0), 950ms) << "a change to another service ended the watch";
    EXPECT_EQ(body_index(*res), index);
    EXPECT_EQ(ids_of(*res), (std::vector<std::string>{"x1"}));
}

TEST_P(RegistryApiTest, EveryPendingWatchIsWoken) {
    auto index = put("x", "x1", 9001);
    std::vector<std::future<Result<net::Response>>> watches;
    for (std::size_t i = 0; i < 4; ++i) {
        watches.push_back(
            start("GET", "/v1/services/x?index=" + std::to_string(index) + kLongWait, {}, i % 2));
    }
    ASSERT_TRUE(wait_until([&] { return watchers() == 4; }));
    auto next = put("x", "x2", 9002);
    for (auto& w : watches) {
        auto res = wait(w);
        ASSERT_TRUE(res) << res.error().message();
        EXPECT_EQ(body_index(*res), next);
    }
}

TEST_P(RegistryApiTest, StopWatchesAnswersPendingAndLaterWatchesAtOnce) {
    auto index = put("x", "x1", 9001);
    auto pending = start("GET", "/v1/services/x?index=" + std::to_string(index) + kLongWait);
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; }));
    api_.stop_watches();
    auto res = wait(pending);
    ASSERT_TRUE(res) << res.error().message();
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(body_index(*res), index);

    auto later = get("/v1/services/x?index=" + std::to_string(index) + kLongWait);
    EXPECT_EQ(later.status, 200) << later.body;
}

TEST_P(RegistryApiTest, WaitZeroAnswersAtOnce) {
    auto index = put("x", "x1", 9001);
    auto res = get("/v1/services/x?index=" + std::to_string(index) + "&wait=0");  // not max_wait (60s)
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_index(res), index);
}

TEST_P(RegistryApiTest, AllIncludesDrainingInstances) {
    put("x", "x1", 9001);
    put("x", "x2", 9002);
    auto drained = request("PUT", "/v1/services/x/instances/x2/draining");
    ASSERT_EQ(drained.status, 200) << drained.body;

    auto healthy = get("/v1/services/x");
    EXPECT_EQ(ids_of(healthy), (std::vector<std::string>{"x1"}));
    auto explicit_false = get("/v1/services/x?all=false");
    EXPECT_EQ(ids_of(explicit_false), (std::vector<std::string>{"x1"}));

    auto all = get("/v1/services/x?all=true");
    ASSERT_EQ(all.status, 200) << all.body;
    ASSERT_EQ(ids_of(all), (std::vector<std::string>{"x1", "x2"}));
    auto instances = body_of(all).at("instances").as_array();
    EXPECT_FALSE(instances.at(0).as_object().at("draining").as_bool());
    EXPECT_TRUE(instances.at(1).as_object().at("draining").as_bool());
    EXPECT_EQ(body_index(all), body_index(healthy));

    // Draining twice changes nothing: the same index.
    auto again = request("PUT", "/v1/services/x/instances/x2/draining");
    EXPECT_EQ(body_index(again), body_index(drained));
}

TEST_P(RegistryApiTest, BadIndexIs400) {
    put("x", "x1", 9001);
    for (const char* index : {"abc", "", "-1", "5x", "1.5", "99999999999999999999999"}) {
        auto res = get(std::string("/v1/services/x?index=") + index + kLongWait);
        EXPECT_EQ(res.status, 400) << "index=" << index << ": " << res.body;
        EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json") << "index=" << index;
    }
}

TEST_P(RegistryApiTest, BadWaitIs400) {
    auto index = std::to_string(put("x", "x1", 9001));
    for (const char* wait : {"soon", "", "5", "-1s", "1.5s", "10%20s", "5d"}) {
        auto res = get("/v1/services/x?index=" + index + "&wait=" + wait);
        EXPECT_EQ(res.status, 400) << "wait=" << wait << ": " << res.body;
        EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json") << "wait=" << wait;
    }
}

TEST_P(RegistryApiTest, ListServicesCountsInstances) {
    auto empty = get("/v1/services");
    ASSERT_EQ(empty.status, 200) << empty.body;
    EXPECT_TRUE(body_of(empty).at("services").as_array().empty());

    put("a", "a1", 9001);
    put("a", "a2", 9002);
    put("b", "b1", 9003);
    ASSERT_EQ(request("PUT", "/v1/services/a/instances/a2/draining").status, 200);

    auto res = get("/v1/services");
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_index(res), catalog_->index());
    EXPECT_EQ(header_index(res), catalog_->index());
    auto body = body_of(res);
    const auto& services = body.at("services").as_array();
    ASSERT_EQ(services.size(), 2u) << res.body;
    const auto& a = services.at(0).as_object();
    EXPECT_EQ(json::value_to<std::string>(a.at("name")), "a");
    EXPECT_EQ(a.at("instances").to_number<int>(), 2);
    EXPECT_EQ(a.at("healthy").to_number<int>(), 1);
    EXPECT_EQ(a.at("index").to_number<std::uint64_t>(), catalog_->service_index("a"));
    const auto& b = services.at(1).as_object();
    EXPECT_EQ(json::value_to<std::string>(b.at("name")), "b");
    EXPECT_EQ(b.at("instances").to_number<int>(), 1);
    EXPECT_EQ(b.at("healthy").to_number<int>(), 1);
    EXPECT_EQ(b.at("index").to_number<std::uint64_t>(), catalog_->service_index("b"));
}

TEST_P(RegistryApiTest, InvalidRegistrationsAre400) {
    struct Case {
        const char* body;
        const char* why;
    };
    const Case cases[] = {
        {R"({"address":"127.0.0.1","port":0})", "port 0"},
        {R"({"address":"127.0.0.1","port":70000})", "port out of range"},
        {R"({"address":"127.0.0.1"})", "no port"},
        {R"({"address":"127.0.0.1","port":"80"})", "port not a number"},
        {R"({"port":8080})", "no address"},
        {R"({"address":"127.0.0.1","port":8080,"ttl_ms":10})", "ttl below the minimum"},
        {R"({"address":"127.0.0.1","port":8080,"status":"sick"})", "unknown status"},
        {R"({"address":"127.0.0.1","port":8080,"tags":[1]})", "tag not a string"},
        {R"(["not an object"])", "not an object"},
        {R"({"address":)", "not JSON"},
    };
    for (const auto& c : cases) {
        auto res = request("PUT", "/v1/services/x/instances/x1", c.body);
        EXPECT_EQ(res.status, 400) << c.why << ": " << res.body;
        EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json") << c.why;
    }
    auto bad_name = request("PUT", "/v1/services/x/instances/bad%20id", registration(9001));
    EXPECT_EQ(bad_name.status, 400) << bad_name.body;
    for (auto path :
         {"/v1/services/x/instances/..", "/v1/services/x/instances/%2E", "/v1/services/../instances/x"}) {
        auto dots = request("PUT", path, registration(9001));
        EXPECT_EQ(dots.status, 400) << path << ": " << dots.body;
    }
    auto escape = request("PUT", "/v1/services/%ZZ/instances/x", registration(9001));
    EXPECT_EQ(escape.status, 400) << escape.body;
    EXPECT_TRUE(catalog_->services().empty());
}

TEST_P(RegistryApiTest, UnknownInstancesAre404) {
    put("x", "x1", 9001);
    EXPECT_EQ(request("PUT", "/v1/services/x/instances/x9/heartbeat").status, 404);
    EXPECT_EQ(request("PUT", "/v1/services/x/instances/x9/draining").status, 404);
    EXPECT_EQ(request("DELETE", "/v1/services/x/instances/x9").status, 404);
    EXPECT_EQ(request("PUT", "/v1/services/nope/instances/x1/heartbeat").status, 404);
    EXPECT_EQ(request("PUT", "/v1/services/x/instances/x1/heartbeat").status, 204);
}

// An Api whose longest wait is short: longer waits are cut to it.
class RegistryApiMaxWaitTest : public RegistryApiTest {
  protected:
    RegistryApiMaxWaitTest() : RegistryApiTest(300ms) {}
};

TEST_P(RegistryApiMaxWaitTest, WaitIsCappedAtMaxWait) {
    auto index = put("x", "x1", 9001);
    auto t0 = Clock::now();
    auto res = get("/v1/services/x?index=" + std::to_string(index) + "&wait=1h");
    auto took = since(t0);
    EXPECT_GE(took, 250ms);  // and no more than kWait, the longest a request is waited for
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(body_index(res), index);
}

TEST_P(RegistryApiTest, RegistrationWithACheckRoundTrips) {
    auto res = request("PUT", "/v1/services/x/instances/x1",
                       R"({"address":"127.0.0.1","port":9001,"ttl_ms":30000,"check":{"http":"/health/ready",)"
                       R"("interval_ms":60000,"timeout_ms":250,"unhealthy_threshold":3}})");
    ASSERT_EQ(res.status, 200) << res.body;
    auto listed = get("/v1/services/x");
    auto instance = body_of(listed).at("instances").as_array().at(0).as_object();
    EXPECT_EQ(json::value_to<std::string>(instance.at("status")), "passing");
    EXPECT_EQ(json::serialize(instance.at("check")),
              R"({"http":"/health/ready","interval_ms":60000,"timeout_ms":250,"healthy_threshold":1,)"
              R"("unhealthy_threshold":3})");
    auto parsed = discovery::instance_from_json(json::serialize(instance));
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_TRUE(parsed->check);
    EXPECT_EQ(*parsed->check, (discovery::HealthCheck{"/health/ready", 60s, 250ms, 1, 3}));

    // A warning instance is listed; a critical one only with all=true.
    set_status("x", "x1", "warning");
    EXPECT_EQ(ids_of(get("/v1/services/x")), std::vector<std::string>{"x1"});
    set_status("x", "x1", "critical");
    EXPECT_TRUE(ids_of(get("/v1/services/x")).empty());
    EXPECT_EQ(ids_of(get("/v1/services/x?all=true")), std::vector<std::string>{"x1"});
}

TEST_P(RegistryApiTest, WatchAnswersEarlyWhenAStatusChanges) {
    auto index = put("x", "x1", 9001);
    auto watch = start("GET", "/v1/services/x?index=" + std::to_string(index) + kLongWait);
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; }));
    ASSERT_TRUE(catalog_->set_status("x", "x1", "critical"));
    auto res = wait(watch);
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_GT(body_index(*res), index);
    EXPECT_TRUE(ids_of(*res).empty());
}

TEST_P(RegistryApiTest, InvalidChecksAre400NamingTheField) {
    struct Case {
        const char* check;
        const char* field;
    };
    const Case cases[] = {
        {R"("/health/ready")", "check must be an object"},
        {R"({"interval_ms":1000})", "check.http"},
        {R"({"http":"health"})", "check.http"},
        {R"({"http":"/h","interval_ms":50})", "check.interval_ms"},
        {R"({"http":"/h","interval_ms":"1s"})", "check.interval_ms"},
        {R"({"http":"/h","interval_ms":1000,"timeout_ms":2000})", "check.timeout_ms"},
        {R"({"http":"/h","timeout_ms":0})", "check.timeout_ms"},
        {R"({"http":"/h","healthy_threshold":0})", "check.healthy_threshold"},
        {R"({"http":"/h","unhealthy_threshold":11})", "check.unhealthy_threshold"},
        {R"({"http":"/h","unhealthy_threshold":4294967297})", "check.unhealthy_threshold"},
    };
    for (const auto& c : cases) {
        auto res = request("PUT", "/v1/services/x/instances/x1",
                           R"({"address":"127.0.0.1","port":9001,"check":)" + std::string(c.check) + "}");
        EXPECT_EQ(res.status, 400) << c.check << ": " << res.body;
        EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json") << c.check;
        EXPECT_NE(res.body.find(c.field), std::string::npos) << c.check << ": " << res.body;
    }
    EXPECT_TRUE(catalog_->services().empty());
}

TEST_P(RegistryApiTest, DeltaWatchAnswersWithOnlyWhatChanged) {
    put("x", "x1", 9001);
    auto index = put("x", "x2", 9002);
    auto watch =
        start("GET", "/v1/services/x?index=" + std::to_string(index) + "&delta=true" + kLongWait, {}, 0);
    ASSERT_TRUE(wait_until([&] { return watchers() == 1; }));
    auto next = put("x", "x3", 9003, 1);
    auto res = wait(watch);
    ASSERT_TRUE(res) << res.error().message();
    ASSERT_EQ(res->status, 200) << res->body;
    auto body = body_of(*res);
    EXPECT_EQ(body.at("since").to_number<std::uint64_t>(), index);
    EXPECT_EQ(body_index(*res), next);
    EXPECT_EQ(header_index(*res), next);
    const auto& changed = body.at("changed").as_array();
    ASSERT_EQ(changed.size(), 1u) << res->body;
    EXPECT_EQ(json::value_to<std::string>(changed.at(0).at("id")), "x3");
    EXPECT_TRUE(body.at("removed").as_array().empty());

    ASSERT_EQ(request("DELETE", "/v1/services/x/instances/x1").status, 200);
    auto after = get("/v1/services/x?index=" + std::to_string(next) + "&delta=true" + kLongWait);
    auto removed = body_of(after).at("removed").as_array();
    ASSERT_EQ(removed.size(), 1u) << after.body;
    EXPECT_EQ(json::value_to<std::string>(removed.at(0)), "x1");

    // Without an index there is nothing to compare with: the full list.
    auto plain = get("/v1/services/x?delta=true");
    EXPECT_FALSE(body_of(plain).contains("since"));
    EXPECT_EQ(ids_of(plain), (std::vector<std::string>{"x2", "x3"}));
}

TEST_P(RegistryApiTest, WatchersOnEveryThreadGetTheSameAnswer) {
    for (int i = 0; i < 20; ++i) put("x", "x" + std::to_string(i), static_cast<std::uint16_t>(9000 + i));
    auto index = catalog_->service_index("x");
    std::vector<std::future<Result<net::Response>>> watches;
    for (std::size_t i = 0; i < 8; ++i) {
        auto delta = i % 2 ? "&delta=true" : "";
        watches.push_back(
            start("GET", "/v1/services/x?index=" + std::to_string(index) + delta + kLongWait, {}, i % 2));
    }
    ASSERT_TRUE(wait_until([&] { return watchers() == 8; }));
    ASSERT_EQ(request("PUT", "/v1/services/x/instances/x7/draining").status, 200);
    std::string full_body, delta_body;
    for (std::size_t i = 0; i < watches.size(); ++i) {
        auto res = wait(watches[i]);
        ASSERT_TRUE(res) << res.error().message();
        ASSERT_EQ(res->status, 200) << res->body;
        auto& expected = i % 2 ? delta_body : full_body;
        if (expected.empty()) expected = res->body;
        EXPECT_EQ(res->body, expected);
    }
    EXPECT_EQ(ids_of(get("/v1/services/x")).size(), 19u);
    EXPECT_EQ(json::value_to<std::string>(json::parse(delta_body).at("removed").at(0)), "x7");
}

INSTANTIATE_TEST_SUITE_P(Stores, RegistryApiTest, registry::testing::all_stores(),
                         registry::testing::store_name);
INSTANTIATE_TEST_SUITE_P(Stores, RegistryApiMaxWaitTest, registry::testing::all_stores(),
                         registry::testing::store_name);
