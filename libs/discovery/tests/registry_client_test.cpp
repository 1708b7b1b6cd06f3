// The instance JSON format, and RegistryClient against a real in-process registry (and against
// none at all). Every wait is bounded by kWait.

#include "plexus/discovery/registry_client.hpp"

#include <gtest/gtest.h>

#include "in_process_registry.hpp"

using namespace plexus;
using namespace plexus::discovery;
using namespace plexus::discovery::test;

namespace {

InstanceInfo full_instance() {
    InstanceInfo in;
    in.service = "inventory";
    in.id = "inventory-1";
    in.address = "10.0.0.7";
    in.port = 65535;
    in.tags = {"blue", "zone-a"};
    in.metadata = {{"version", "1.4.2"}, {"quote", "say \"hi\"\n"}};
    in.ttl = 12'345ms;
    in.draining = true;
    in.status = "critical";
    in.check = HealthCheck{"/health/ready?deep=1", 250ms, 100ms, 3, 4};
    return in;
}

void expect_same(const InstanceInfo& a, const InstanceInfo& b) {
    EXPECT_EQ(a.service, b.service);
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.address, b.address);
    EXPECT_EQ(a.port, b.port);
    EXPECT_EQ(a.tags, b.tags);
    EXPECT_EQ(a.metadata, b.metadata);
    EXPECT_EQ(a.ttl, b.ttl);
    EXPECT_EQ(a.draining, b.draining);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.check.has_value(), b.check.has_value());
    if (a.check && b.check) {
        EXPECT_EQ(a.check->http, b.check->http);
        EXPECT_EQ(a.check->interval, b.check->interval);
        EXPECT_EQ(a.check->timeout, b.check->timeout);
        EXPECT_EQ(a.check->healthy_threshold, b.check->healthy_threshold);
        EXPECT_EQ(a.check->unhealthy_threshold, b.check->unhealthy_threshold);
    }
}

std::vector<std::string> ids_of(const ServiceSnapshot& snap) {
    std::vector<std::string> ids;
    for (const auto& in : snap.instances) ids.push_back(in.id);
    return ids;
}

}  // namespace

TEST(InstanceJson, RoundTripsEveryField) {
    auto in = full_instance();
    auto back = instance_from_json(instance_to_json(in));
    ASSERT_TRUE(back) << back.error().message();
    expect_same(*back, in);

    InstanceInfo plain;  // defaults: no tags, no metadata, passing, not draining
    plain.service = "s";
    plain.id = "i";
    plain.address = "::1";
    plain.port = 1;
    auto plain_back = instance_from_json(instance_to_json(plain));
    ASSERT_TRUE(plain_back) << plain_back.error().message();
    expect_same(*plain_back, plain);
}

TEST(InstanceJson, OptionalFieldsTakeTheirDefaults) {
    auto in = instance_from_json(R"({"service":"s","id":"i","address":"127.0.0.1","port":8080})");
    ASSERT_TRUE(in) << in.error().message();
    EXPECT_TRUE(in->tags.empty());
    EXPECT_TRUE(in->metadata.empty());
    EXPECT_EQ(in->ttl, 5000ms);
    EXPECT_FALSE(in->draining);
    EXPECT_EQ(in->status, "passing");
    EXPECT_FALSE(in->check);
    EXPECT_EQ(in->endpoint(), (net::Endpoint{"127.0.0.1", 8080}));
}

TEST(InstanceJson, CheckIsAnObjectWithDefaults) {
    auto in = instance_from_json(
        R"({"service":"s","id":"i","address":"a","port":1,"check":{"http":"/health/ready"}})");
    ASSERT_TRUE(in) << in.error().message();
    ASSERT_TRUE(in->check);
    EXPECT_EQ(*in->check, (HealthCheck{"/health/ready", 1000ms, 500ms, 1, 2}));

    auto text = instance_to_json(*in);
    EXPECT_NE(text.find(R"("check":{"http":"/health/ready","interval_ms":1000,"timeout_ms":500,)"
                        R"("healthy_threshold":1,"unhealthy_threshold":2})"),
              std::string::npos)
        << text;
    auto none = instance_from_json(R"({"service":"s","id":"i","address":"a","port":1,"check":null})");
    ASSERT_TRUE(none) << none.error().message();
    EXPECT_FALSE(none->check);
    EXPECT_EQ(instance_to_json(*none).find("check"), std::string::npos);

    auto check = health_check_from_json(health_check_to_json(HealthCheck{"/ready", 200ms, 50ms, 2, 5}));
    ASSERT_TRUE(check) << check.error().message();
    EXPECT_EQ(*check, (HealthCheck{"/ready", 200ms, 50ms, 2, 5}));
}

TEST(InstanceJson, MalformedChecksNameTheField) {
    struct Case {
        const char* check;
        const char* field;
    };
    const Case cases[] = {
        {R"("/health")", "check must be an object"},
        {R"({})", "check.http"},
        {R"({"http":7})", "check.http"},
        {R"({"http":"/h","interval_ms":"1s"})", "check.interval_ms"},
        {R"({"http":"/h","timeout_ms":0.5})", "check.timeout_ms"},
        {R"({"http":"/h","healthy_threshold":true})", "check.healthy_threshold"},
        {R"({"http":"/h","unhealthy_threshold":[2]})", "check.unhealthy_threshold"},
        {R"({"http":"/h","interval_ms":18446744073709551615})", "check.interval_ms"},
    };
    for (const auto& c : cases) {
        std::string body = R"({"address":"a","port":1,"check":)" + std::string(c.check) + "}";
        std::string problem;
        auto in = registration_from_json(body, "s", "i", &problem);
        ASSERT_FALSE(in) << "accepted: " << body;
        EXPECT_EQ(in.error(), make_error_code(errc::rejected)) << body;
        EXPECT_NE(problem.find(c.field), std::string::npos) << body << " → " << problem;
        EXPECT_FALSE(instance_from_json(R"({"service":"s","id":"i",)" + body.substr(1))) << body;
    }
}

TEST(InstanceJson, MalformedInputIsABadResponse) {
    const char* cases[] = {
        "",
        "not json",
        "[]",
        "42",
        R"({"service":"s","id":"i","address":"a","port":1)",              // truncated
        R"({"id":"i","address":"a","port":1})",                           // no service
        R"({"service":"s","address":"a","port":1})",                      // no id
        R"({"service":"s","id":"i","port":1})",                           // no address
        R"({"service":"s","id":"i","address":"a"})",                      // no port
        R"({"service":"s","id":"i","address":"a","port":"80"})",          // port not a number
        R"({"service":"s","id":"i","address":"a","port":80.5})",          // port not an integer
        R"({"service":"s","id":"i","address":"a","port":70000})",         // port out of range
        R"({"service":"s","id":"i","address":"a","port":-1})",            // port out of range
        R"({"service":7,"id":"i","address":"a","port":1})",               // service not a string
        R"({"service":"s","id":"i","address":"a","port":1,"tags":[1]})",  // tag not a string
        R"({"service":"s","id":"i","address":"a","port":1,"tags":"x"})",  // tags not a list
        R"({"service":"s","id":"i","address":"a","port":1,"metadata":{"k":1}})",
        R"({"service":"s","id":"i","address":"a","port":1,"ttl_ms":"5s"})",
        R"({"service":"s","id":"i","address":"a","port":1,"draining":"yes"})",
        R"({"service":"s","id":"i","address":"a","port":1,"status":true})",
    };
    for (const char* text : cases) {
        auto in = instance_from_json(text);
        ASSERT_FALSE(in) << "accepted: " << text;
        EXPECT_EQ(in.error(), make_error_code(errc::bad_response)) << text;
    }
}

TEST(DiscoveryErrors, HaveTheirOwnCategoryAndMessages) {
    ErrorCode ec = errc::unknown_instance;
    EXPECT_EQ(&ec.category(), &discovery_category());
    EXPECT_STREQ(discovery_category().name(), "plexus.discovery");
    for (auto e : {errc::rejected, errc::unknown_instance, errc::unavailable, errc::bad_response}) {
        EXPECT_FALSE(make_error_code(e).message().empty());
        EXPECT_NE(make_error_code(e).message(), "unknown discovery error");
    }
}

class RegistryClientTest : public ::testing::Test {
  protected:
    ErrorCode register_instance(InstanceInfo in) { return registry_.register_instance(std::move(in)); }
    ErrorCode heartbeat(std::string service, std::string id) { return registry_.heartbeat(service, id); }
    ErrorCode deregister(std::string service, std::string id) { return registry_.deregister(service, id); }
    ErrorCode set_draining(std::string service, std::string id) {
        return registry_.set_draining(service, id);
    }
    Result<ServiceSnapshot> watch(std::string service, std::uint64_t index, std::chrono::milliseconds wait,
                                  bool all = false) {
        return registry_.run(owned([c = registry_.client(), service, index, wait, all] {
            return c.watch(service, index, wait, all);
        }));
    }

    InProcessRegistry registry_;
};

TEST_F(RegistryClientTest, RegisterThenWatchReturnsTheInstance) {
    auto in = instance("orders", "orders-1", 8001);
    in.tags = {"v2"};
    in.metadata = {{"zone", "a"}};
    ASSERT_FALSE(register_instance(in));

    auto snap = watch("orders", 0, 1s);
    ASSERT_TRUE(snap) << snap.error().message();
    EXPECT_EQ(snap->index, registry_.catalog().service_index("orders"));
    ASSERT_EQ(snap->instances.size(), 1u);
    expect_same(snap->instances[0], in);
}

TEST_F(RegistryClientTest, ReRegisteringReplacesTheInstance) {
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8002)));
    auto snap = watch("orders", 0, 1s);
    ASSERT_TRUE(snap) << snap.error().message();
    ASSERT_EQ(snap->instances.size(), 1u);
    EXPECT_EQ(snap->instances[0].port, 8002);
}

TEST_F(RegistryClientTest, HeartbeatOfAKnownInstanceSucceeds) {
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    EXPECT_FALSE(heartbeat("orders", "orders-1"));
}

TEST_F(RegistryClientTest, HeartbeatOfAnUnknownInstanceSaysRegisterAgain) {
    EXPECT_EQ(heartbeat("orders", "nobody"), make_error_code(errc::unknown_instance));
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    EXPECT_EQ(heartbeat("orders", "orders-2"), make_error_code(errc::unknown_instance));
    ASSERT_FALSE(deregister("orders", "orders-1"));
    EXPECT_EQ(heartbeat("orders", "orders-1"), make_error_code(errc::unknown_instance));
}

TEST_F(RegistryClientTest, InvalidRegistrationsAreRejected) {
    EXPECT_EQ(register_instance(instance("orders", "orders-1", 0)), make_error_code(errc::rejected));
    auto short_ttl = instance("orders", "orders-1", 8001);
    short_ttl.ttl = 10ms;
    EXPECT_EQ(register_instance(short_ttl), make_error_code(errc::rejected));
    auto bad_status = instance("orders", "orders-1", 8001);
    bad_status.status = "sick";
    EXPECT_EQ(register_instance(bad_status), make_error_code(errc::rejected));
    auto no_address = instance("orders", "orders-1", 8001);
    no_address.address.clear();
    EXPECT_EQ(register_instance(no_address), make_error_code(errc::rejected));
    EXPECT_TRUE(registry_.catalog().services().empty());
}

TEST_F(RegistryClientTest, DeregisterRemovesAndIsIdempotent) {
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    ASSERT_FALSE(register_instance(instance("orders", "orders-2", 8002)));
    EXPECT_FALSE(deregister("orders", "orders-1"));
    EXPECT_FALSE(deregister("orders", "orders-1"));  // already gone: not an error
    auto snap = watch("orders", 0, 1s);
    ASSERT_TRUE(snap) << snap.error().message();
    EXPECT_EQ(ids_of(*snap), (std::vector<std::string>{"orders-2"}));
}

TEST_F(RegistryClientTest, DrainingLeavesTheHealthyViewButStaysRegistered) {
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    ASSERT_FALSE(register_instance(instance("orders", "orders-2", 8002)));
    EXPECT_FALSE(set_draining("orders", "orders-1"));
    EXPECT_EQ(set_draining("orders", "nobody"), make_error_code(errc::unknown_instance));

    auto healthy = watch("orders", 0, 1s);
    ASSERT_TRUE(healthy) << healthy.error().message();
    EXPECT_EQ(ids_of(*healthy), (std::vector<std::string>{"orders-2"}));

    auto all = watch("orders", 0, 1s, true);
    ASSERT_TRUE(all) << all.error().message();
    ASSERT_EQ(ids_of(*all), (std::vector<std::string>{"orders-1", "orders-2"}));
    EXPECT_TRUE(all->instances[0].draining);
    EXPECT_FALSE(all->instances[1].draining);
}

TEST_F(RegistryClientTest, BlockingWatchAnswersOnChange) {
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    auto first = watch("orders", 0, 1s);
    ASSERT_TRUE(first) << first.error().message();

    // The watch would hold for a minute, longer than wait() waits: only a pushed change answers in time.
    auto pending = registry_.start(owned([c = registry_.client(), service = std::string("orders"),
                                          index = first->index] { return c.watch(service, index, 60s); }),
                                   0);
    ASSERT_TRUE(wait_until([&] { return registry_.watchers() == 1; }));
    ASSERT_FALSE(register_instance(instance("orders", "orders-2", 8002)));
    auto next = wait(pending);
    ASSERT_TRUE(next) << next.error().message();
    EXPECT_GT(next->index, first->index);
    EXPECT_EQ(ids_of(*next), (std::vector<std::string>{"orders-1", "orders-2"}));
}

TEST(RegistryClientUnavailable, EveryCallReportsUnavailable) {
    InProcessRegistry runtime_only;  // used for its runtime; the client talks to a closed port
    ClosedPort closed;
    RegistryClient c(closed.endpoint(), 1s);
    auto info = instance("orders", "orders-1", 8001);
    std::string service = info.service, id = info.id;
    auto unavailable = make_error_code(errc::unavailable);
    EXPECT_EQ(runtime_only.run(owned([c, info] { return c.register_instance(info); })), unavailable);
    EXPECT_EQ(runtime_only.run(owned([c, service, id] { return c.heartbeat(service, id); })), unavailable);
    EXPECT_EQ(runtime_only.run(owned([c, service, id] { return c.deregister(service, id); })), unavailable);
    EXPECT_EQ(runtime_only.run(owned([c, service, id] { return c.set_draining(service, id); })), unavailable);
    auto snap = runtime_only.run(owned([c, service] { return c.watch(service, 0, 1s); }));
    ASSERT_FALSE(snap);
    EXPECT_EQ(snap.error(), unavailable);
    auto blocking = runtime_only.run(owned([c, service] { return c.watch(service, 5, 1s); }));
    ASSERT_FALSE(blocking);
    EXPECT_EQ(blocking.error(), unavailable);
}

TEST_F(RegistryClientTest, WatchChangesBringsOnlyWhatChanged) {
    ASSERT_FALSE(register_instance(instance("orders", "orders-1", 8001)));
    ASSERT_FALSE(register_instance(instance("orders", "orders-2", 8002)));
    auto changes = [&](std::uint64_t since, std::chrono::milliseconds wait) {
        return registry_.run(
            owned([c = registry_.client(), since, wait] { return c.watch_changes("orders", since, wait); }));
    };
    auto first = changes(0, 1s);
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_TRUE(first->full);
    ASSERT_EQ(first->instances.size(), 2u);

    ASSERT_FALSE(register_instance(instance("orders", "orders-3", 8003)));
    ASSERT_FALSE(set_draining("orders", "orders-1"));
    auto next = changes(first->index, 0ms);
    ASSERT_TRUE(next) << next.error().message();
    EXPECT_FALSE(next->full);
    EXPECT_GT(next->index, first->index);
    ASSERT_EQ(next->instances.size(), 1u);
    EXPECT_EQ(next->instances[0].id, "orders-3");
    EXPECT_EQ(next->instances[0].port, 8003);
    EXPECT_EQ(next->removed, std::vector<std::string>{"orders-1"});

    // An index the registry never handed out for this service: it sends the whole list.
    auto unknown = changes(next->index + 1000, 0ms);
    ASSERT_TRUE(unknown) << unknown.error().message();
    EXPECT_TRUE(unknown->full);
    EXPECT_EQ(unknown->instances.size(), 2u);
}
