#include "plexus/resilience/upstream.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>
#include <string>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace plexus::resilience;
using namespace std::chrono_literals;

namespace {

UpstreamPolicy small_policy() {
    UpstreamPolicy p;
    p.breaker.size = 4;
    p.breaker.minimum_calls = 2;
    p.breaker.open_for = 5s;
    p.breaker.half_open_calls = 1;
    p.bulkhead.max_concurrent = 2;
    return p;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

void fail_twice(CircuitBreaker& b) {
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(b.try_acquire());
        b.on_error(1ms);
    }
}

}  // namespace

TEST(Metrics, RegistersTheFamiliesAndCountsDeadlines) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    metrics.count_deadline_expired(true);
    metrics.count_deadline_expired(false);
    metrics.count_deadline_expired(false);
    auto text = registry.render();
    EXPECT_TRUE(has_line(text, "plexus_deadline_expired_total{where=\"inbound\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "plexus_deadline_expired_total{where=\"outbound\"} 2")) << text;
    EXPECT_EQ(&metrics.registry(), &registry);
    // A second Metrics on the same registry shares the families.
    Metrics again(registry);
    EXPECT_EQ(again.breaker_state, metrics.breaker_state);
    again.count_deadline_expired(true);
    EXPECT_TRUE(has_line(registry.render(), "plexus_deadline_expired_total{where=\"inbound\"} 2"));
}

TEST(MeteredBreaker, GaugeAndTransitionCountersFollowTheBreaker) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    core::ManualClock clock;
    MeteredBreaker mb("inventory", small_policy().breaker, metrics, clock);
    auto text = registry.render();
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_state{breaker=\"inventory\"} 0")) << text;
    EXPECT_EQ(text.find("plexus_circuit_breaker_transitions_total{"), std::string::npos);

    fail_twice(mb.get());
    text = registry.render();
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_state{breaker=\"inventory\"} 1")) << text;
    EXPECT_TRUE(has_line(
        text,
        "plexus_circuit_breaker_transitions_total{breaker=\"inventory\",from=\"closed\",to=\"open\"} 1"))
        << text;

    EXPECT_FALSE(mb.get().try_acquire());
    mb.count_not_permitted();
    clock.advance(5s);
    ASSERT_TRUE(mb.get().try_acquire());
    text = registry.render();
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_state{breaker=\"inventory\"} 2")) << text;
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_not_permitted_total{breaker=\"inventory\"} 1"))
        << text;
    mb.get().on_error(1ms);  // half-open → open
    clock.advance(5s);
    ASSERT_TRUE(mb.get().try_acquire());
    mb.get().on_success(1ms);  // half-open → closed
    text = registry.render();
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_state{breaker=\"inventory\"} 0")) << text;
    EXPECT_TRUE(has_line(
        text,
        "plexus_circuit_breaker_transitions_total{breaker=\"inventory\",from=\"open\",to=\"half_open\"} 2"))
        << text;
    EXPECT_TRUE(has_line(
        text,
        "plexus_circuit_breaker_transitions_total{breaker=\"inventory\",from=\"half_open\",to=\"open\"} 1"))
        << text;
    EXPECT_TRUE(has_line(
        text,
        "plexus_circuit_breaker_transitions_total{breaker=\"inventory\",from=\"half_open\",to=\"closed\"} 1"))
        << text;
}

TEST(MeteredBreaker, DisabledBreakerReportsStateThree) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    BreakerSettings s;
    s.enabled = false;
    MeteredBreaker mb("legacy", s, metrics, core::Clock::real());
    EXPECT_TRUE(has_line(registry.render(), "plexus_circuit_breaker_state{breaker=\"legacy\"} 3"));
    EXPECT_EQ(mb.to_json().at("state").as_string(), "disabled");
}

TEST(Upstream, CountersUseTheUpstreamLabel) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    core::ManualClock clock;
    Upstream u("payments", small_policy(), metrics, clock);
    EXPECT_EQ(u.name(), "payments");
    EXPECT_EQ(u.breaker().name(), "payments");
    EXPECT_EQ(u.bulkhead().settings().max_concurrent, 2);
    u.count_retry();
    u.count_retry();
    u.count_budget_exhausted();
    u.count_bulkhead_rejected();
    u.count_ejection();
    u.count_not_permitted();
    auto text = registry.render();
    EXPECT_TRUE(has_line(text, "plexus_retries_total{upstream=\"payments\"} 2")) << text;
    EXPECT_TRUE(has_line(text, "plexus_retry_budget_exhausted_total{upstream=\"payments\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "plexus_bulkhead_rejected_total{upstream=\"payments\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "plexus_outlier_ejections_total{upstream=\"payments\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_not_permitted_total{breaker=\"payments\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "plexus_circuit_breaker_state{breaker=\"payments\"} 0")) << text;
}

TEST(Upstream, ToJsonShowsEveryPart) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    core::ManualClock clock;
    Upstream u("payments", small_policy(), metrics, clock);
    fail_twice(u.breaker());
    EXPECT_FALSE(u.breaker().try_acquire());
    ASSERT_TRUE(u.bulkhead().try_acquire());
    for (int i = 0; i < 10; ++i) u.budget().on_request();
    ASSERT_TRUE(u.budget().try_retry());

    auto j = u.to_json();
    EXPECT_EQ(j.at("name").as_string(), "payments");
    const auto& b = j.at("breaker").as_object();
    EXPECT_EQ(b.at("state").as_string(), "open");
    EXPECT_EQ(b.at("failure_rate").as_double(), 100.0);
    EXPECT_EQ(b.at("slow_call_rate").as_double(), 0.0);
    EXPECT_EQ(b.at("buffered_calls").as_int64(), 2);
    EXPECT_EQ(b.at("failed_calls").as_int64(), 2);
    EXPECT_EQ(b.at("slow_calls").as_int64(), 0);
    EXPECT_EQ(b.at("not_permitted").as_uint64(), 1u);
    const auto& s = b.at("settings").as_object();
    EXPECT_EQ(s.at("window").as_string(), "count");
    EXPECT_EQ(s.at("size").as_int64(), 4);
    EXPECT_EQ(s.at("open_for").as_string(), "5s");
    EXPECT_EQ(j.at("bulkhead").at("max_concurrent").as_int64(), 2);
    EXPECT_EQ(j.at("bulkhead").at("in_use").as_int64(), 1);
    EXPECT_EQ(j.at("bulkhead").at("rejected").as_uint64(), 0u);
    EXPECT_EQ(j.at("retry_budget").at("ratio").as_double(), 0.2);
    EXPECT_EQ(j.at("retry_budget").at("requests").as_uint64(), 10u);
    EXPECT_EQ(j.at("retry_budget").at("retries").as_uint64(), 1u);
    EXPECT_EQ(j.at("outlier").at("total_ejections").as_uint64(), 0u);
}

TEST(UpstreamSet, SamePolicySameObjectChangedPolicyFreshObject) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    core::ManualClock clock;
    UpstreamSet set(metrics, clock);
    auto policy = small_policy();
    auto a = set.get("inventory", policy);
    fail_twice(a->breaker());
    ASSERT_EQ(a->breaker().state(), BreakerState::open);

    auto same = set.get("inventory", small_policy());
    EXPECT_EQ(same, a);
    EXPECT_EQ(set.find("inventory"), a);
    EXPECT_EQ(set.find("nothing"), nullptr);

    policy.bulkhead.max_concurrent = 3;
    auto changed = set.get("inventory", policy);
    EXPECT_NE(changed, a);
    EXPECT_EQ(changed->breaker().state(), BreakerState::closed);  // starts afresh
    EXPECT_EQ(set.find("inventory"), changed);
    EXPECT_EQ(a->breaker().state(), BreakerState::open);  // holders keep the old one
    EXPECT_TRUE(has_line(registry.render(), "plexus_circuit_breaker_state{breaker=\"inventory\"} 0"));

    auto other = set.get("billing", policy);
    EXPECT_NE(other, changed);
}

TEST(UpstreamSet, StandaloneBreakers) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    core::ManualClock clock;
    UpstreamSet set(metrics, clock);
    BreakerSettings s;
    auto a = set.breaker("route:/checkout", s);
    EXPECT_EQ(set.breaker("route:/checkout", s), a);
    s.half_open_calls = 9;
    auto b = set.breaker("route:/checkout", s);
    EXPECT_NE(b, a);
    EXPECT_EQ(b->get().settings().half_open_calls, 9);
    EXPECT_EQ(set.find("route:/checkout"), nullptr);  // breakers are not upstreams
}

TEST(UpstreamSet, ToJsonIsSortedByName) {
    telemetry::Registry registry;
    Metrics metrics(registry);
    core::ManualClock clock;
    UpstreamSet set(metrics, clock);
    set.get("zeta", {});
    set.get("alpha", {});
    set.get("mid", {});
    set.breaker("route-b", {});
    set.breaker("route-a", {});
    auto j = set.to_json();
    std::vector<std::string> names;
    for (const auto& u : j.at("upstreams").as_array()) names.emplace_back(u.at("name").as_string());
    EXPECT_EQ(names, (std::vector<std::string>{"alpha", "mid", "zeta"}));
    names.clear();
    for (const auto& b : j.at("breakers").as_array()) names.emplace_back(b.at("name").as_string());
    EXPECT_EQ(names, (std::vector<std::string>{"route-a", "route-b"}));
}

TEST(UpstreamPolicy, EqualityComparesEveryField) {
    const std::vector<std::function<void(UpstreamPolicy&)>> changes = {
        [](UpstreamPolicy& p) { p.breaker.enabled = false; },
        [](UpstreamPolicy& p) { p.breaker.window = WindowType::time; },
        [](UpstreamPolicy& p) { p.breaker.size = 51; },
        [](UpstreamPolicy& p) { p.breaker.minimum_calls = 21; },
        [](UpstreamPolicy& p) { p.breaker.failure_rate = 50.5; },
        [](UpstreamPolicy& p) { p.breaker.slow_call_rate = 99; },
        [](UpstreamPolicy& p) { p.breaker.slow_call_duration = 4s; },
        [](UpstreamPolicy& p) { p.breaker.open_for = 6s; },
        [](UpstreamPolicy& p) { p.breaker.half_open_calls = 6; },
        [](UpstreamPolicy& p) { p.bulkhead.max_concurrent = 0; },
        [](UpstreamPolicy& p) { p.outlier.enabled = false; },
        [](UpstreamPolicy& p) { p.outlier.consecutive_errors = 6; },
        [](UpstreamPolicy& p) { p.outlier.base_ejection = 31s; },
        [](UpstreamPolicy& p) { p.outlier.max_ejection = 301s; },
        [](UpstreamPolicy& p) { p.outlier.max_ejection_percent = 51; },
        [](UpstreamPolicy& p) { p.retry_budget.ratio = 0.3; },
        [](UpstreamPolicy& p) { p.retry_budget.min_per_second = 11; },
        [](UpstreamPolicy& p) { p.retry_budget.window = 11s; },
    };
    EXPECT_TRUE(UpstreamPolicy{} == UpstreamPolicy{});
    for (std::size_t i = 0; i < changes.size(); ++i) {
        UpstreamPolicy p;
        changes[i](p);
        EXPECT_FALSE(p == UpstreamPolicy{}) << "change " << i;
        EXPECT_FALSE(UpstreamPolicy{} == p) << "change " << i;
        UpstreamPolicy q;
        changes[i](q);
        EXPECT_TRUE(p == q) << "change " << i;
    }
}
