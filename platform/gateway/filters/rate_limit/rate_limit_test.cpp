// Token buckets with a driven clock, and the rate_limit filter's answers and headers.

#include "rate_limit/rate_limit.hpp"

#include <gtest/gtest.h>

#include "filter_testing.hpp"
#include "plexus/core/settings.hpp"

using namespace plexus;
using namespace std::chrono_literals;
using resilience::BucketSettings;
using resilience::TokenBuckets;

namespace {

TEST(TokenBuckets, ABurstThenTheRate) {
    core::ManualClock clock;
    TokenBuckets b({.requests = 10, .per = 1s, .burst = 3, .max_keys = 100}, clock);
    for (int i = 0; i < 3; ++i) {
        auto d = b.take("a");
        EXPECT_TRUE(d.allowed) << i;
        EXPECT_EQ(d.remaining, 2 - i);
    }
    auto refused = b.take("a");
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after, 100ms);  // 10 per second: one token every 100 ms
    EXPECT_EQ(refused.full_in, 300ms);
    EXPECT_TRUE(b.take("b").allowed);  // keys have their own buckets
    clock.advance(100ms);
    EXPECT_TRUE(b.take("a").allowed);
    EXPECT_FALSE(b.take("a").allowed);
    clock.advance(10s);  // never more than the burst
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.take("a").allowed);
    EXPECT_FALSE(b.take("a").allowed);
}

TEST(TokenBuckets, MemoryIsBoundedByForgettingTheLongestIdle) {
    core::ManualClock clock;
    TokenBuckets b({.requests = 1, .per = 1h, .burst = 1, .max_keys = 16}, clock);  // one key per shard
    for (int i = 0; i < 200; ++i) {
        clock.advance(1ms);
        b.take("key-" + std::to_string(i));
    }
    EXPECT_LE(b.size(), 16u);
}

class RateLimitFilterTest : public ::testing::Test {
  protected:
    // The route with one rate_limit filter of `settings`, timed by the manual clock.
    std::unique_ptr<gateway::testing::FilterHarness> harness(const std::string& settings) {
        return std::make_unique<gateway::testing::FilterHarness>("      - name: rate_limit\n" + settings,
                                                                 factory_.get());
    }
    net::Response request(gateway::testing::FilterHarness& h, std::string ip,
                          std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {}) {
        return h.request("GET", "/x", std::move(ip), headers);
    }

    core::ManualClock clock_;
    std::unique_ptr<gateway::FilterFactory> factory_ = gateway::filters::make_rate_limit_factory(clock_);
};

TEST_F(RateLimitFilterTest, RefusesWith429RetryAfterAndRateLimitHeaders) {
    auto h = harness("        requests: 2\n        per: 10s\n");
    auto& c = *h;
    auto first = request(c, "10.0.0.1");
    EXPECT_EQ(first.status, 200);
    EXPECT_EQ(first.headers.get("RateLimit-Limit").value_or(""), "2");
    EXPECT_EQ(first.headers.get("RateLimit-Remaining").value_or(""), "1");
    EXPECT_EQ(first.headers.get("RateLimit-Reset").value_or(""), "5");
    EXPECT_EQ(request(c, "10.0.0.1").status, 200);
    auto refused = request(c, "10.0.0.1");
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.headers.get("Content-Type").value_or(""), "application/problem+json");
    EXPECT_EQ(refused.headers.get("Retry-After").value_or(""), "5");
    EXPECT_EQ(refused.headers.get("RateLimit-Remaining").value_or(""), "0");
    EXPECT_EQ(request(c, "10.0.0.2").status, 200);  // another client
    clock_.advance(5s);
    EXPECT_EQ(request(c, "10.0.0.1").status, 200);
    EXPECT_NE(c.registry().render().find("plexus_gateway_rate_limited_total{route=\"r\"} 1"),
              std::string::npos);
}

TEST_F(RateLimitFilterTest, KeysByHeaderOrRoute) {
    auto h = harness("        requests: 1\n        per: 1h\n        key: header:X-Api-Key\n");
    auto& by_key = *h;
    EXPECT_EQ(request(by_key, "10.0.0.1", {{"X-Api-Key", "a"}}).status, 200);
    EXPECT_EQ(request(by_key, "10.0.0.2", {{"X-Api-Key", "a"}}).status, 429);  // same key, other address
    EXPECT_EQ(request(by_key, "10.0.0.1", {{"X-Api-Key", "b"}}).status, 200);
    EXPECT_EQ(request(by_key, "10.0.0.1").status, 200);  // no key: one shared bucket
    EXPECT_EQ(request(by_key, "10.0.0.3").status, 429);

    auto h2 = harness("        requests: 1\n        per: 1h\n        key: route\n");
    auto& whole_route = *h2;
    EXPECT_EQ(request(whole_route, "10.0.0.1").status, 200);
    EXPECT_EQ(request(whole_route, "10.0.0.2").status, 429);
}

TEST_F(RateLimitFilterTest, BucketsSurviveAReloadWithTheSameSettingsOnly) {
    auto h = harness("        requests: 1\n        per: 1h\n");
    EXPECT_EQ(request(*h, "10.0.0.1").status, 200);
    h->load("      - name: rate_limit\n        requests: 1\n        per: 1h\n", factory_.get());
    EXPECT_EQ(request(*h, "10.0.0.1").status, 429);  // the reload did not hand out new tokens
    h->load("      - name: rate_limit\n        requests: 2\n        per: 1h\n", factory_.get());
    EXPECT_EQ(request(*h, "10.0.0.1").status, 200);  // new settings, new buckets
}

TEST_F(RateLimitFilterTest, BadSettingsNameTheKey) {
    auto error_of = [&](const std::string& s) -> std::string {
        try {
            harness(s);
        } catch (const core::SettingsError& e) {
            return e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(error_of("        requests: 0\n"),
              "r.yaml:7: routes[0].filters[0].requests: must be at least 1");
    EXPECT_EQ(error_of("        requests: 5\n        key: cookie\n"),
              "r.yaml:8: routes[0].filters[0].key: expected ip, route or header:<Name>, got 'cookie'");
    EXPECT_EQ(error_of("        per: 1s\n"), "r.yaml:6: routes[0].filters[0].requests: is required");
}

}  // namespace
