#include "plexus/resilience/settings.hpp"

#include <charconv>
#include <cstdio>
#include <utility>
#include <vector>

#include "plexus/core/duration.hpp"
#include "plexus/core/settings.hpp"

namespace plexus::resilience {
namespace {

using namespace std::chrono_literals;

// The breaker allocates its window up front, so its size is bounded.
constexpr int kMaxWindowSize = 100'000;

// The first bad value of a settings struct: its key (relative to the struct's YAML section) and
// why. The same rules serve the YAML reader (which turns a problem into SettingsReader::fail, so
// the message names file and line) and check() (for values set in code).
struct Problem {
    std::string key;
    std::string reason;
};
using Verdict = std::optional<Problem>;

std::string number(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
}

std::string got(double x) { return ", got " + number(x); }
std::string got(int x) { return ", got " + std::to_string(x); }
std::string got(std::chrono::milliseconds d) { return ", got " + core::format_duration(d); }

// Comparisons are written so that NaN fails them.
Verdict rate_percent(std::string key, double x) {
    if (x > 0 && x <= 100) return std::nullopt;
    return Problem{std::move(key), "must be above 0 and at most 100" + got(x)};
}

Verdict percent(std::string key, double x) {
    if (x >= 0 && x <= 100) return std::nullopt;
    return Problem{std::move(key), "must be between 0 and 100" + got(x)};
}

Verdict positive(std::string key, std::chrono::milliseconds d) {
    if (d > 0ms) return std::nullopt;
    return Problem{std::move(key), "must be positive" + got(d)};
}

Verdict not_negative(std::string key, std::chrono::milliseconds d) {
    if (d >= 0ms) return std::nullopt;
    return Problem{std::move(key), "must not be negative" + got(d)};
}

Verdict int_between(std::string key, int x, int lo, int hi) {
    if (x >= lo && x <= hi) return std::nullopt;
    return Problem{std::move(key),
                   "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + got(x)};
}

Verdict at_least(std::string key, int x, int lo) {
    if (x >= lo) return std::nullopt;
    return Problem{std::move(key), "must be at least " + std::to_string(lo) + got(x)};
}

template <class... Checks>
Verdict first(Checks&&... checks) {
    Verdict v;
    ((v ? void() : void(v = std::forward<Checks>(checks))), ...);
    return v;
}

Verdict check_timeout(std::chrono::milliseconds timeout) { return positive("timeout", timeout); }

Verdict check_retry(const RetrySettings& r) {
    auto v = first(at_least("attempts", r.attempts, 1), not_negative("backoff", r.backoff),
                   not_negative("max_backoff", r.max_backoff));
    if (v) return v;
    if (r.max_backoff < r.backoff) {
        return Problem{"max_backoff", "must not be less than backoff (" + core::format_duration(r.backoff) +
                                          ")" + got(r.max_backoff)};
    }
    if (r.per_try_timeout) return positive("per_try_timeout", *r.per_try_timeout);
    return std::nullopt;
}

Verdict check_budget(const BudgetSettings& b) {
    if (!(b.ratio >= 0 && b.ratio <= 1)) return Problem{"ratio", "must be between 0 and 1" + got(b.ratio)};
    if (!(b.min_per_second >= 0))
        return Problem{"min_per_second", "must not be negative" + got(b.min_per_second)};
    if (auto v = positive("window", b.window)) return v;
    if (b.window > std::chrono::hours(1)) return Problem{"window", "must be at most 1h" + got(b.window)};
    return std::nullopt;
}

Verdict check_breaker(const BreakerSettings& b) {
    return first(int_between("size", b.size, 1, kMaxWindowSize),
                 at_least("minimum_calls", b.minimum_calls, 1), rate_percent("failure_rate", b.failure_rate),
                 rate_percent("slow_call_rate", b.slow_call_rate),
                 positive("slow_call_duration", b.slow_call_duration), positive("open_for", b.open_for),
                 at_least("half_open_calls", b.half_open_calls, 1));
}

Verdict check_bulkhead(const BulkheadSettings& b) { return at_least("max_concurrent", b.max_concurrent, 0); }

Verdict check_outlier(const OutlierSettings& o) {
    auto v = first(at_least("consecutive_errors", o.consecutive_errors, 1),
                   positive("base_ejection", o.base_ejection), positive("max_ejection", o.max_ejection));
    if (v) return v;
    if (o.max_ejection < o.base_ejection) {
        return Problem{"max_ejection", "must not be less than base_ejection (" +
                                           core::format_duration(o.base_ejection) + ")" +
                                           got(o.max_ejection)};
    }
    return int_between("max_ejection_percent", o.max_ejection_percent, 0, 100);
}

Verdict check_fault_delay(const FaultSettings& f) {
    return first(percent("percent", f.delay_percent), not_negative("duration", f.delay));
}

Verdict check_fault_abort(const FaultSettings& f) {
    return first(percent("percent", f.abort_percent), int_between("status", f.abort_status, 200, 599));
}

Verdict check_fallback(const FallbackSettings& f) { return int_between("status", f.status, 200, 599); }

// Reads a nested section and validates what it read with `rules`.
template <class Read, class Rules>
void read_section(core::SettingsReader& r, std::string_view key, Read read, Rules rules) {
    r.section(key, [&](core::SettingsReader& s) {
        read(s);
        if (auto p = rules()) s.fail(p->key, p->reason);
    });
}

void read_retry(core::SettingsReader& r, RetrySettings& retry) {
    read_section(
        r, "retry",
        [&](core::SettingsReader& s) {
            s.field("attempts", retry.attempts);
            s.field("backoff", retry.backoff);
            s.field("max_backoff", retry.max_backoff);
            std::chrono::milliseconds per_try{0};
            if (s.field("per_try_timeout", per_try)) retry.per_try_timeout = per_try;
            std::vector<std::string> on;
            if (s.field("on", on)) {
                RetryOn parsed;
                parsed.connect_failure = false;
                parsed.reset = false;
                parsed.timeout = false;
                parsed.statuses.reset();
                for (const auto& entry : on) {
                    if (!parse_retry_condition(entry, parsed)) {
                        s.fail("on", "unknown retry condition '" + entry +
                                         "'; expected connect-failure, reset, timeout, 5xx or a status "
                                         "from 500 to 599");
                    }
                }
                retry.on = parsed;
            }
            s.field("non_idempotent", retry.non_idempotent);
        },
        [&] { return check_retry(retry); });
}

void read_fault(core::SettingsReader& r, FaultSettings& fault) {
    r.section("fault", [&](core::SettingsReader& f) {
        read_section(
            f, "delay",
            [&](core::SettingsReader& s) {
                s.field("percent", fault.delay_percent);
                s.field("duration", fault.delay);
            },
            [&] { return check_fault_delay(fault); });
        read_section(
            f, "abort",
            [&](core::SettingsReader& s) {
                s.field("percent", fault.abort_percent);
                s.field("status", fault.abort_status);
            },
            [&] { return check_fault_abort(fault); });
    });
}

void read_fallback(core::SettingsReader& r, FallbackSettings& fallback) {
    read_section(
        r, "fallback",
        [&](core::SettingsReader& s) {
            fallback.enabled = true;
            s.field("status", fallback.status);
            s.field("content_type", fallback.content_type);
            s.field("body", fallback.body);
        },
        [&] { return check_fallback(fallback); });
}

void read_breaker(core::SettingsReader& r, BreakerSettings& b) {
    read_section(
        r, "circuit_breaker",
        [&](core::SettingsReader& s) {
            s.field("enabled", b.enabled);
            std::string window;
            if (s.field("window", window)) {
                if (window == "count") {
                    b.window = WindowType::count;
                } else if (window == "time") {
                    b.window = WindowType::time;
                } else {
                    s.fail("window", "expected count or time, got '" + window + "'");
                }
            }
            s.field("size", b.size);
            s.field("minimum_calls", b.minimum_calls);
            s.field("failure_rate", b.failure_rate);
            s.field("slow_call_rate", b.slow_call_rate);
            s.field("slow_call_duration", b.slow_call_duration);
            s.field("open_for", b.open_for);
            s.field("half_open_calls", b.half_open_calls);
        },
        [&] { return check_breaker(b); });
}

void read_budget(core::SettingsReader& r, BudgetSettings& b) {
    read_section(
        r, "retry_budget",
        [&](core::SettingsReader& s) {
            s.field("ratio", b.ratio);
            s.field("min_per_second", b.min_per_second);
            s.field("window", b.window);
        },
        [&] { return check_budget(b); });
}

void read_bulkhead(core::SettingsReader& r, BulkheadSettings& b) {
    read_section(
        r, "bulkhead", [&](core::SettingsReader& s) { s.field("max_concurrent", b.max_concurrent); },
        [&] { return check_bulkhead(b); });
}

void read_outlier(core::SettingsReader& r, OutlierSettings& o) {
    read_section(
        r, "outlier",
        [&](core::SettingsReader& s) {
            s.field("enabled", o.enabled);
            s.field("consecutive_errors", o.consecutive_errors);
            s.field("base_ejection", o.base_ejection);
            s.field("max_ejection", o.max_ejection);
            s.field("max_ejection_percent", o.max_ejection_percent);
        },
        [&] { return check_outlier(o); });
}

std::optional<std::string> report(std::string_view section, Verdict v) {
    if (!v) return std::nullopt;
    std::string out(section);
    if (!out.empty()) out += '.';
    return out + v->key + ": " + v->reason;
}

}  // namespace

bool parse_retry_condition(std::string_view text, RetryOn& on) noexcept {
    if (text == "connect-failure") {
        on.connect_failure = true;
    } else if (text == "reset") {
        on.reset = true;
    } else if (text == "timeout") {
        on.timeout = true;
    } else if (text == "5xx") {
        on.statuses.set();
    } else {
        int status = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
        if (ec != std::errc{} || end != text.data() + text.size() || text.size() != 3 || status < 500 ||
            status > 599) {
            return false;
        }
        on.statuses.set(static_cast<std::size_t>(status - 500));
    }
    return true;
}

void read_policy(core::SettingsReader& r, CallPolicy& call, UpstreamPolicy& upstream) {
    if (r.field("timeout", call.timeout)) {
        if (auto p = check_timeout(call.timeout)) r.fail(p->key, p->reason);
    }
    read_retry(r, call.retry);
    read_fault(r, call.fault);
    read_fallback(r, call.fallback);
    read_upstream_policy(r, upstream);
}

void read_upstream_policy(core::SettingsReader& r, UpstreamPolicy& upstream) {
    read_breaker(r, upstream.breaker);
    read_bulkhead(r, upstream.bulkhead);
    read_outlier(r, upstream.outlier);
    read_budget(r, upstream.retry_budget);
}

std::optional<std::string> check(const CallPolicy& call) {
    if (auto p = report("", check_timeout(call.timeout))) return p;
    if (auto p = report("retry", check_retry(call.retry))) return p;
    if (auto p = report("fault.delay", check_fault_delay(call.fault))) return p;
    if (auto p = report("fault.abort", check_fault_abort(call.fault))) return p;
    if (call.fallback.enabled) return report("fallback", check_fallback(call.fallback));
    return std::nullopt;
}

std::optional<std::string> check(const UpstreamPolicy& upstream) {
    if (auto p = report("circuit_breaker", check_breaker(upstream.breaker))) return p;
    if (auto p = report("bulkhead", check_bulkhead(upstream.bulkhead))) return p;
    if (auto p = report("outlier", check_outlier(upstream.outlier))) return p;
    return report("retry_budget", check_budget(upstream.retry_budget));
}

}  // namespace plexus::resilience
