#include "plexus/core/settings.hpp"

#include <gtest/gtest.h>

#include <string>

#include "plexus/resilience/settings.hpp"

using namespace plexus;
using namespace plexus::resilience;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kFull = R"(timeout: 5s
retry:
  attempts: 3
  backoff: 25ms
  max_backoff: 250ms
  per_try_timeout: 1s
  on: [connect-failure, reset, 502, "503", 5xx, timeout]
  non_idempotent: true
retry_budget: {ratio: 0.25, min_per_second: 5, window: 20s}
circuit_breaker:
  enabled: true
  window: time
  size: 30
  minimum_calls: 10
  failure_rate: 40.5
  slow_call_rate: 80
  slow_call_duration: 2s
  open_for: 7s
  half_open_calls: 4
bulkhead: {max_concurrent: 64}
outlier:
  enabled: false
  consecutive_errors: 7
  base_ejection: 10s
  max_ejection: 2m
  max_ejection_percent: 30
fault:
  delay: {percent: 10, duration: 2s}
  abort: {percent: 5, status: 502}
fallback:
  status: 200
  content_type: text/plain
  body: 'unknown'
)";

struct Read {
    CallPolicy call;
    UpstreamPolicy upstream;
};

Read read(std::string_view yaml) {
    Read out;
    auto r = core::SettingsReader::from_text(yaml, "routes.yaml");
    read_policy(r, out.call, out.upstream);
    r.done();
    return out;
}

// The error message that reading `yaml` gives, or "" if it reads.
std::string error_of(std::string_view yaml) {
    try {
        read(yaml);
    } catch (const core::SettingsError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(PolicySettings, ReadsAFullDocument) {
    auto [call, up] = read(kFull);
    EXPECT_EQ(call.timeout, 5s);
    EXPECT_EQ(call.retry.attempts, 3);
    EXPECT_EQ(call.retry.backoff, 25ms);
    EXPECT_EQ(call.retry.max_backoff, 250ms);
    EXPECT_EQ(call.retry.per_try_timeout, 1s);
    EXPECT_TRUE(call.retry.on.connect_failure);
    EXPECT_TRUE(call.retry.on.reset);
    EXPECT_TRUE(call.retry.on.timeout);
    EXPECT_TRUE(call.retry.on.statuses.all());
    EXPECT_TRUE(call.retry.non_idempotent);

    EXPECT_EQ(up.retry_budget.ratio, 0.25);
    EXPECT_EQ(up.retry_budget.min_per_second, 5);
    EXPECT_EQ(up.retry_budget.window, 20s);

    EXPECT_TRUE(up.breaker.enabled);
    EXPECT_EQ(up.breaker.window, WindowType::time);
    EXPECT_EQ(up.breaker.size, 30);
    EXPECT_EQ(up.breaker.minimum_calls, 10);
    EXPECT_EQ(up.breaker.failure_rate, 40.5);
    EXPECT_EQ(up.breaker.slow_call_rate, 80);
    EXPECT_EQ(up.breaker.slow_call_duration, 2s);
    EXPECT_EQ(up.breaker.open_for, 7s);
    EXPECT_EQ(up.breaker.half_open_calls, 4);

    EXPECT_EQ(up.bulkhead.max_concurrent, 64);

    EXPECT_FALSE(up.outlier.enabled);
    EXPECT_EQ(up.outlier.consecutive_errors, 7);
    EXPECT_EQ(up.outlier.base_ejection, 10s);
    EXPECT_EQ(up.outlier.max_ejection, 120s);
    EXPECT_EQ(up.outlier.max_ejection_percent, 30);

    EXPECT_EQ(call.fault.delay_percent, 10);
    EXPECT_EQ(call.fault.delay, 2s);
    EXPECT_EQ(call.fault.abort_percent, 5);
    EXPECT_EQ(call.fault.abort_status, 502);
    EXPECT_TRUE(call.fault.active());

    EXPECT_TRUE(call.fallback.enabled);
    EXPECT_EQ(call.fallback.status, 200);
    EXPECT_EQ(call.fallback.content_type, "text/plain");
    EXPECT_EQ(call.fallback.body, "unknown");

    EXPECT_EQ(check(call), std::nullopt);
    EXPECT_EQ(check(up), std::nullopt);
}

TEST(PolicySettings, AbsentKeysKeepTheirValues) {
    Read out;
    out.call.timeout = 3s;
    out.upstream.breaker.size = 7;
    auto r =
        core::SettingsReader::from_text("retry: {attempts: 4}\ncircuit_breaker: {open_for: 9s}\n", "a.yaml");
    read_policy(r, out.call, out.upstream);
    r.done();
    EXPECT_EQ(out.call.timeout, 3s);
    EXPECT_EQ(out.call.retry.attempts, 4);
    EXPECT_EQ(out.call.retry.backoff, 25ms);
    EXPECT_FALSE(out.call.retry.per_try_timeout);
    EXPECT_TRUE(out.call.retry.on.status(503));
    EXPECT_FALSE(out.call.retry.on.status(500));
    EXPECT_EQ(out.upstream.breaker.size, 7);
    EXPECT_EQ(out.upstream.breaker.open_for, 9s);
    EXPECT_FALSE(out.call.fallback.enabled);
    EXPECT_FALSE(out.call.fault.active());
}

TEST(PolicySettings, RetryOnReplacesTheDefaults) {
    auto [call, up] = read("retry:\n  on: [timeout, 500]\n");
    EXPECT_FALSE(call.retry.on.connect_failure);
    EXPECT_FALSE(call.retry.on.reset);
    EXPECT_TRUE(call.retry.on.timeout);
    EXPECT_TRUE(call.retry.on.status(500));
    EXPECT_FALSE(call.retry.on.status(502));
    EXPECT_FALSE(call.retry.on.status(503));
    EXPECT_EQ(call.retry.on.statuses.count(), 1u);

    auto none = read("retry:\n  on: []\n");
    EXPECT_FALSE(none.call.retry.on.connect_failure);
    EXPECT_FALSE(none.call.retry.on.reset);
    EXPECT_TRUE(none.call.retry.on.statuses.none());
}

TEST(PolicySettings, ParsesRetryConditions) {
    RetryOn on;
    on.connect_failure = on.reset = false;
    on.statuses.reset();
    EXPECT_TRUE(parse_retry_condition("connect-failure", on));
    EXPECT_TRUE(on.connect_failure);
    EXPECT_TRUE(parse_retry_condition("reset", on));
    EXPECT_TRUE(on.reset);
    EXPECT_TRUE(parse_retry_condition("599", on));
    EXPECT_TRUE(on.status(599));
    EXPECT_TRUE(parse_retry_condition("500", on));
    EXPECT_EQ(on.statuses.count(), 2u);
    EXPECT_TRUE(parse_retry_condition("5xx", on));
    EXPECT_EQ(on.statuses.count(), 100u);
    EXPECT_FALSE(on.timeout);
    EXPECT_TRUE(parse_retry_condition("timeout", on));
    EXPECT_TRUE(on.timeout);
    for (auto bad :
         {"", "499", "600", "5000", "+503", "0503", "503 ", "connect_failure", "Reset", "4xx", "50"}) {
        RetryOn untouched;
        EXPECT_FALSE(parse_retry_condition(bad, untouched)) << bad;
    }
}

TEST(PolicySettings, BadValuesNameFileLineAndKey) {
    struct Case {
        const char* yaml;
        const char* error;
    };
    const Case cases[] = {
        {"timeout: 0\n", "routes.yaml:1: timeout: must be positive, got 0ms"},
        {"timeout: fast\n",
         "routes.yaml:1: timeout: expected a duration such as 250ms, 5s, 2m or 1h, got 'fast'"},
        {"retry:\n  attempts: 0\n", "routes.yaml:2: retry.attempts: must be at least 1, got 0"},
        {"retry:\n  backoff: 1s\n  max_backoff: 100ms\n",
         "routes.yaml:3: retry.max_backoff: must not be less than backoff (1s), got 100ms"},
        {"retry:\n  per_try_timeout: 0\n", "routes.yaml:2: retry.per_try_timeout: must be positive, got 0ms"},
        {"retry:\n  attempts: 2\n  on: [reset, 404]\n",
         "routes.yaml:3: retry.on: unknown retry condition '404'; expected connect-failure, reset, timeout, "
         "5xx or a status from 500 to 599"},
        {"retry:\n  non_idempotent: sometimes\n",
         "routes.yaml:2: retry.non_idempotent: expected true or false, got 'sometimes'"},
        {"retry_budget:\n  ratio: 1.5\n",
         "routes.yaml:2: retry_budget.ratio: must be between 0 and 1, got 1.5"},
        {"retry_budget:\n  min_per_second: -1\n",
         "routes.yaml:2: retry_budget.min_per_second: must not be negative, got -1"},
        {"retry_budget:\n  window: 0\n", "routes.yaml:2: retry_budget.window: must be positive, got 0ms"},
        {"retry_budget:\n  window: 61m\n", "routes.yaml:2: retry_budget.window: must be at most 1h, got 61m"},
        {"circuit_breaker:\n  window: sliding\n",
         "routes.yaml:2: circuit_breaker.window: expected count or time, got 'sliding'"},
        {"circuit_breaker:\n  size: 0\n",
         "routes.yaml:2: circuit_breaker.size: must be between 1 and 100000, got 0"},
        {"circuit_breaker:\n  minimum_calls: 0\n",
         "routes.yaml:2: circuit_breaker.minimum_calls: must be at least 1, got 0"},
        {"circuit_breaker:\n  enabled: true\n  failure_rate: 0\n",
         "routes.yaml:3: circuit_breaker.failure_rate: must be above 0 and at most 100, got 0"},
        {"circuit_breaker:\n  failure_rate: 100.5\n",
         "routes.yaml:2: circuit_breaker.failure_rate: must be above 0 and at most 100, got 100.5"},
        {"circuit_breaker:\n  failure_rate: nan\n",
         "routes.yaml:2: circuit_breaker.failure_rate: must be above 0 and at most 100, got nan"},
        {"circuit_breaker:\n  slow_call_rate: -5\n",
         "routes.yaml:2: circuit_breaker.slow_call_rate: must be above 0 and at most 100, got -5"},
        {"circuit_breaker:\n  slow_call_duration: 0\n",
         "routes.yaml:2: circuit_breaker.slow_call_duration: must be positive, got 0ms"},
        {"circuit_breaker:\n  open_for: 0\n",
         "routes.yaml:2: circuit_breaker.open_for: must be positive, got 0ms"},
        {"circuit_breaker:\n  half_open_calls: 0\n",
         "routes.yaml:2: circuit_breaker.half_open_calls: must be at least 1, got 0"},
        {"bulkhead: {max_concurrent: -1}\n",
         "routes.yaml:1: bulkhead.max_concurrent: must be at least 0, got -1"},
        {"outlier:\n  consecutive_errors: 0\n",
         "routes.yaml:2: outlier.consecutive_errors: must be at least 1, got 0"},
        {"outlier:\n  base_ejection: 0\n", "routes.yaml:2: outlier.base_ejection: must be positive, got 0ms"},
        {"outlier:\n  max_ejection: 1s\n",
         "routes.yaml:2: outlier.max_ejection: must not be less than base_ejection (30s), got 1s"},
        {"outlier:\n  max_ejection_percent: 101\n",
         "routes.yaml:2: outlier.max_ejection_percent: must be between 0 and 100, got 101"},
        {"fault:\n  delay:\n    percent: 120\n    duration: 1s\n",
         "routes.yaml:3: fault.delay.percent: must be between 0 and 100, got 120"},
        {"fault:\n  abort: {percent: 5, status: 150}\n",
         "routes.yaml:2: fault.abort.status: must be between 200 and 599, got 150"},
        {"fallback:\n  status: 600\n",
         "routes.yaml:2: fallback.status: must be between 200 and 599, got 600"},
        {"circuit_breaker: 5\n", "routes.yaml:1: circuit_breaker: expected a map"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_of(c.yaml), c.error) << c.yaml;
}

TEST(PolicySettings, UnknownNestedKeysAreRejected) {
    EXPECT_EQ(error_of("circuit_breaker:\n  size: 5\n  failure_rat: 50\n"),
              "routes.yaml:3: circuit_breaker.failure_rat: unknown key");
    EXPECT_EQ(error_of("retry:\n  attempt: 2\n"), "routes.yaml:2: retry.attempt: unknown key");
    EXPECT_EQ(error_of("retry_budget: {ratio: 0.1, burst: 3}\n"),
              "routes.yaml:1: retry_budget.burst: unknown key");
    EXPECT_EQ(error_of("bulkhead:\n  max: 3\n"), "routes.yaml:2: bulkhead.max: unknown key");
    EXPECT_EQ(error_of("outlier:\n  interval: 10s\n"), "routes.yaml:2: outlier.interval: unknown key");
    EXPECT_EQ(error_of("fault:\n  delay:\n    percnt: 5\n"),
              "routes.yaml:3: fault.delay.percnt: unknown key");
    EXPECT_EQ(error_of("fault:\n  reset: {}\n"), "routes.yaml:2: fault.reset: unknown key");
    EXPECT_EQ(error_of("fallback:\n  headers: {}\n"), "routes.yaml:2: fallback.headers: unknown key");
}

TEST(PolicySettings, ReadPolicyLeavesOtherKeysToTheCaller) {
    auto r = core::SettingsReader::from_text("path: /inventory\ntimeout: 2s\n", "routes.yaml");
    CallPolicy call;
    UpstreamPolicy up;
    read_policy(r, call, up);  // no done(): `path` is the caller's
    std::string path;
    r.field("path", path);
    r.done();
    EXPECT_EQ(path, "/inventory");
    EXPECT_EQ(call.timeout, 2s);
}

TEST(PolicySettings, ReadUpstreamPolicyLeavesCallKeysForDone) {
    auto r =
        core::SettingsReader::from_text("bulkhead: {max_concurrent: 5}\ntimeout: 2s\n", "upstreams.yaml");
    UpstreamPolicy up;
    read_upstream_policy(r, up);
    EXPECT_EQ(up.bulkhead.max_concurrent, 5);
    try {
        r.done();
        FAIL() << "timeout should be unknown here";
    } catch (const core::SettingsError& e) {
        EXPECT_STREQ(e.what(), "upstreams.yaml:2: timeout: unknown key");
    }
}

TEST(PolicySettings, CheckFindsBadValuesSetInCode) {
    EXPECT_EQ(check(CallPolicy{}), std::nullopt);
    EXPECT_EQ(check(UpstreamPolicy{}), std::nullopt);

    CallPolicy call;
    call.timeout = 0ms;
    EXPECT_EQ(check(call), "timeout: must be positive, got 0ms");
    call = {};
    call.retry.attempts = 0;
    EXPECT_EQ(check(call), "retry.attempts: must be at least 1, got 0");
    call = {};
    call.fault.abort_percent = 101;
    EXPECT_EQ(check(call), "fault.abort.percent: must be between 0 and 100, got 101");
    call = {};
    call.fault.delay = -1ms;
    EXPECT_EQ(check(call), "fault.delay.duration: must not be negative, got -1ms");
    call = {};
    call.fallback.status = 99;  // ignored while the fallback is off
    EXPECT_EQ(check(call), std::nullopt);
    call.fallback.enabled = true;
    EXPECT_EQ(check(call), "fallback.status: must be between 200 and 599, got 99");

    UpstreamPolicy up;
    up.breaker.failure_rate = 0;
    EXPECT_EQ(check(up), "circuit_breaker.failure_rate: must be above 0 and at most 100, got 0");
    up = {};
    up.breaker.size = 1'000'000;
    EXPECT_EQ(check(up), "circuit_breaker.size: must be between 1 and 100000, got 1000000");
    up = {};
    up.bulkhead.max_concurrent = -2;
    EXPECT_EQ(check(up), "bulkhead.max_concurrent: must be at least 0, got -2");
    up = {};
    up.outlier.max_ejection_percent = -1;
    EXPECT_EQ(check(up), "outlier.max_ejection_percent: must be between 0 and 100, got -1");
    up = {};
    up.retry_budget.ratio = -0.1;
    EXPECT_EQ(check(up), "retry_budget.ratio: must be between 0 and 1, got -0.1");
}
