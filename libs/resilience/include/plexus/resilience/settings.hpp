#pragma once
/// The resilience vocabulary: plain settings for every policy, and their YAML form, shared by
/// gateway routes and SDK clients so both are configured the same way:
///
///     timeout: 5s                   # the whole call, retries included
///     retry:
///       attempts: 3                 # first try included; 1 = no retry
///       backoff: 25ms               # base of the exponential backoff (full jitter)
///       max_backoff: 250ms
///       per_try_timeout: 1s         # optional; default: what is left of the timeout
///       on: [connect-failure, reset, 502, 503, 504]   # also: timeout, 5xx, any status 500-599
///       non_idempotent: false       # retry POST/PATCH too (only when the upstream dedupes)
///     retry_budget: {ratio: 0.2, min_per_second: 10, window: 10s}   # per upstream
///     circuit_breaker:
///       enabled: true
///       window: count               # or time (size then counts seconds)
///       size: 50
///       minimum_calls: 20
///       failure_rate: 50            # percent; at or above it the breaker opens
///       slow_call_rate: 100         # percent
///       slow_call_duration: 2s
///       open_for: 5s                # then half-open
///       half_open_calls: 5
///     bulkhead: {max_concurrent: 1000}          # 0 = unlimited; excess fails fast
///     outlier:
///       enabled: true
///       consecutive_errors: 5       # 5xx answers or connect failures in a row
///       base_ejection: 30s          # × the instance's ejection count
///       max_ejection: 300s
///       max_ejection_percent: 50
///     fault:                        # off by default; for tests and game days
///       delay: {percent: 10, duration: 2s}
///       abort: {percent: 5, status: 503}
///     fallback:                     # answer this instead of an error
///       status: 200
///       content_type: application/json
///       body: '{"availability":"unknown"}'
///
/// Defaults are meant for production: retries only for idempotent requests whose connection
/// failed or that got 502/503/504, at most 20% extra load from retries, a breaker per upstream,
/// outlier ejection on, fault injection off.

#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace plexus::core {
class SettingsReader;
}

namespace plexus::resilience {

using std::chrono::milliseconds;

/// Why an attempt failed, as far as retries and breakers care.
enum class Failure : std::uint8_t {
    none,            ///< an answer arrived (its status is judged separately)
    connect_failure, ///< nothing accepted the connection; nothing was sent
    reset,           ///< the connection closed or reset before the answer was complete
    timeout,         ///< the attempt's time ran out
    protocol,        ///< the upstream answered something that is not HTTP
};

/// What a failed attempt may be retried on.
struct RetryOn {
    bool connect_failure = true;
    bool reset = true;
    bool timeout = false;
    std::bitset<100> statuses;  ///< status - 500 for 500..599
    RetryOn() { statuses.set(2).set(3).set(4); }
    bool status(int s) const noexcept { return s >= 500 && s < 600 && statuses.test(static_cast<std::size_t>(s - 500)); }
};

struct BudgetSettings {
    double ratio = 0.2;            ///< retries may add at most this share of the requests
    double min_per_second = 10;    ///< retries always allowed at this rate (low traffic)
    milliseconds window{10'000};   ///< how far back requests and retries are counted
};

struct RetrySettings {
    int attempts = 2;  ///< including the first; 1 disables retries
    milliseconds backoff{25};
    milliseconds max_backoff{250};
    std::optional<milliseconds> per_try_timeout;
    RetryOn on;
    bool non_idempotent = false;
};

enum class WindowType : std::uint8_t { count, time };

struct BreakerSettings {
    bool enabled = true;
    WindowType window = WindowType::count;
    int size = 50;           ///< calls (count) or seconds (time)
    int minimum_calls = 20;  ///< no verdict before this many calls in the window
    double failure_rate = 50;
    double slow_call_rate = 100;
    milliseconds slow_call_duration{5'000};
    milliseconds open_for{5'000};
    int half_open_calls = 5;
};

struct BulkheadSettings {
    int max_concurrent = 1000;  ///< 0 = unlimited
};

struct OutlierSettings {
    bool enabled = true;
    int consecutive_errors = 5;
    milliseconds base_ejection{30'000};
    milliseconds max_ejection{300'000};
    int max_ejection_percent = 50;
};

struct FaultSettings {
    double delay_percent = 0;
    milliseconds delay{0};
    double abort_percent = 0;
    int abort_status = 503;
    bool active() const noexcept { return delay_percent > 0 || abort_percent > 0; }
};

struct FallbackSettings {
    bool enabled = false;
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

/// Everything that governs one kind of call: a gateway route, or an SDK client.
struct CallPolicy {
    milliseconds timeout{15'000};
    RetrySettings retry;
    FaultSettings fault;
    FallbackSettings fallback;
};

/// What is shared by every call to one upstream service (or static upstream group).
struct UpstreamPolicy {
    BreakerSettings breaker;
    BulkheadSettings bulkhead;
    OutlierSettings outlier;
    BudgetSettings retry_budget;
};

/// The YAML keys of a CallPolicy and of an UpstreamPolicy.
inline constexpr std::string_view kCallKeys[] = {"timeout", "retry", "fault", "fallback"};
inline constexpr std::string_view kUpstreamKeys[] = {"circuit_breaker", "bulkhead", "outlier", "retry_budget"};

/// Reads the keys above that are present in `r` into `call` and `upstream` (absent keys keep
/// their values, so defaults can be layered). Does not call `r.done()`: the caller owns the map
/// and may read other keys from it. Throws core::SettingsError naming file, line and key for a
/// bad value (a rate outside 0..100, attempts < 1, an unknown retry condition...).
void read_policy(core::SettingsReader& r, CallPolicy& call, UpstreamPolicy& upstream);
/// Like read_policy, for a map that may hold only the upstream part (circuit_breaker, bulkhead,
/// outlier, retry_budget); the call keys are then left for the caller's done() to reject.
void read_upstream_policy(core::SettingsReader& r, UpstreamPolicy& upstream);
/// Checks values set in code; the first problem as "key: reason", or nullopt.
std::optional<std::string> check(const CallPolicy& call);
std::optional<std::string> check(const UpstreamPolicy& upstream);

/// Whether two upstream policies are the same, field by field (a reload keeps the upstream's
/// state then). Implemented in upstream.cpp.
bool operator==(const UpstreamPolicy& a, const UpstreamPolicy& b) noexcept;

/// Parses one `retry.on` entry ("connect-failure", "reset", "timeout", "5xx", "503").
bool parse_retry_condition(std::string_view text, RetryOn& on) noexcept;

}  // namespace plexus::resilience
