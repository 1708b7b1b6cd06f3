#include "plexus/discovery/call.hpp"

#include <charconv>
#include <optional>

#include "plexus/core/duration.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/resilience/deadline.hpp"
#include "plexus/resilience/fault.hpp"
#include "plexus/resilience/retry.hpp"

namespace plexus::discovery {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds left_until(Clock::time_point deadline) noexcept {
    return std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
}

resilience::Failure failure_of(const ErrorCode& ec) noexcept {
    if (!ec) return resilience::Failure::none;
    if (ec == net::errc::connect_failed || ec == net::errc::bad_address)
        return resilience::Failure::connect_failure;
    if (ec == net::errc::timeout || ec == net::errc::pool_exhausted) return resilience::Failure::timeout;
    if (ec == net::errc::connection_closed) return resilience::Failure::reset;
    return resilience::Failure::protocol;
}

CallOutcome outcome_of(resilience::Failure f) noexcept {
    switch (f) {
        case resilience::Failure::none:
            return CallOutcome::answered;
        case resilience::Failure::connect_failure:
            return CallOutcome::connect_failure;
        case resilience::Failure::reset:
            return CallOutcome::reset;
        case resilience::Failure::timeout:
            return CallOutcome::timeout;
        case resilience::Failure::protocol:
            return CallOutcome::protocol;
    }
    return CallOutcome::protocol;
}

// Reports an attempt's result to the instance's outlier state; rare paths allocate.
void record_outlier(resilience::Upstream& up, const InstanceList& list, const Target& t, bool failed) {
    auto& detector = up.outlier();
    if (!detector.settings().enabled) return;
    if (!failed) {
        detector.on_success(t.state->health);
        return;
    }
    std::vector<resilience::HostHealth*> peers;
    peers.reserve(list.targets.size());
    for (const auto& p : list.targets) peers.push_back(&p.state->health);
    if (detector.on_failure(t.state->health, peers)) up.count_ejection();
}

}  // namespace

CallOutcome outcome_of(const ErrorCode& error) noexcept { return outcome_of(failure_of(error)); }

std::string_view to_string(CallOutcome o) noexcept {
    switch (o) {
        case CallOutcome::answered:
            return "answered";
        case CallOutcome::no_instance:
            return "no_instance";
        case CallOutcome::circuit_open:
            return "circuit_open";
        case CallOutcome::bulkhead_full:
            return "bulkhead_full";
        case CallOutcome::timeout:
            return "timeout";
        case CallOutcome::connect_failure:
            return "connect_failure";
        case CallOutcome::reset:
            return "reset";
        case CallOutcome::protocol:
            return "protocol";
        case CallOutcome::fault_abort:
            return "fault_abort";
    }
    return "unknown";
}

net::Task<CallReport> call(const CallContext& ctx, Instances instances, net::Request& req,
                           net::Response& res) {
    const auto& policy = *ctx.policy;
    auto& up = *ctx.upstream;
    CallReport report;

    // ---- fault injection
    if (policy.fault.active()) {
        auto fault =
            resilience::decide_fault(policy.fault, resilience::fast_random(), resilience::fast_random());
        if (fault.delay.count() > 0) {
            auto left = left_until(ctx.deadline);
            co_await net::sleep_for(std::min(fault.delay, std::max(left, milliseconds(0))));
            if (fault.delay >= left) {
                res.clear();
                report.outcome = CallOutcome::timeout;
                co_return report;
            }
        }
        if (fault.abort_status) {
            res.clear();
            res.problem(fault.abort_status, net::reason_phrase(fault.abort_status),
                        "fault injected: the call to " + up.name() + " was aborted");
            report.outcome = CallOutcome::fault_abort;
            co_return report;
        }
    }

    up.budget().on_request();
    const auto& list = *instances.list;
    std::vector<std::string> tried;  // allocates only when a retry happens
    const int attempts = std::max(1, policy.retry.attempts);

    // The breakers judge the call as a whole: an instance that fails while a retry on another
    // succeeds is the outlier detector's business, not a sign that the service is down.
    auto& breaker = up.breaker();
    std::optional<Clock::time_point> call_start;

    for (int attempt = 1;; ++attempt) {
        auto left = left_until(ctx.deadline);
        if (left.count() <= 0) {
            report.outcome = CallOutcome::timeout;
            break;
        }
        const Target* t = instances.balancer->pick(list, tried, &up.outlier());
        // A retry goes to another instance when there is one, else to the same again.
        if (!t && !tried.empty()) t = instances.balancer->pick(list, {}, &up.outlier());
        if (!t) {
            // On a retry, the first failure stands when no other instance is left.
            if (attempt == 1) report.outcome = CallOutcome::no_instance;
            break;
        }
        report.target = t;

        // ---- breakers (once per call) and bulkhead (per attempt): refusals fail fast
        if (!call_start) {
            if (!breaker.try_acquire()) {
                up.count_not_permitted();
                report.outcome = CallOutcome::circuit_open;
                break;
            }
            if (ctx.extra_breaker && !ctx.extra_breaker->get().try_acquire()) {
                breaker.release();
                ctx.extra_breaker->count_not_permitted();
                report.outcome = CallOutcome::circuit_open;
                break;
            }
            call_start = Clock::now();
        }
        if (!up.bulkhead().try_acquire()) {
            up.count_bulkhead_rejected();
            report.outcome = CallOutcome::bulkhead_full;
            break;
        }

        // ---- the attempt
        auto timeout = left;
        if (policy.retry.per_try_timeout) timeout = std::min(timeout, *policy.retry.per_try_timeout);
        char budget[24];
        auto [end, ec] = std::to_chars(budget, budget + sizeof budget, timeout.count());
        req.headers.set(resilience::kDeadlineHeader,
                        std::string_view(budget, static_cast<std::size_t>(end - budget)));
        if (ctx.observer) ctx.observer->before_attempt(req, *t, attempt);
        const net::Endpoint* endpoint = nullptr;
        net::Endpoint own;
        if (instances.endpoints) {
            endpoint = &(*instances.endpoints)[static_cast<std::size_t>(t - list.targets.data())];
        } else {
            own = t->info.endpoint();
            endpoint = &own;
        }
        ErrorCode error;
        {
            InFlight in_flight(t->state);
            error = co_await net::send(*endpoint, req, res, timeout);
        }
        up.bulkhead().release();
        ++report.attempts;
        report.error = error;
        if (ctx.observer) ctx.observer->after_attempt(*t, error, res);

        auto failure = failure_of(error);
        bool failed = failure != resilience::Failure::none || res.status >= 500;
        record_outlier(up, list, *t, failed);
        report.outcome = outcome_of(failure);

        // ---- retry?
        if (!failed) break;
        if (attempt >= attempts) break;
        if (!resilience::retryable(policy.retry, net::is_idempotent(req.method), failure, res.status)) break;
        if (!up.budget().try_retry()) {
            up.count_budget_exhausted();
            break;
        }
        auto pause = resilience::backoff_delay(policy.retry, attempt, resilience::fast_random());
        if (pause >= left_until(ctx.deadline)) break;
        if (pause.count() > 0) co_await net::sleep_for(pause);
        up.count_retry();
        tried.push_back(t->info.id);
    }
    if (call_start) {
        auto took = Clock::now() - *call_start;
        if (report.outcome == CallOutcome::bulkhead_full && report.attempts == 0) {
            // Refused on our side before anything was sent: says nothing about the upstream.
            breaker.release();
            if (ctx.extra_breaker) ctx.extra_breaker->get().release();
        } else if (report.outcome != CallOutcome::answered || res.status >= 500) {
            breaker.on_error(took);
            if (ctx.extra_breaker) ctx.extra_breaker->get().on_error(took);
        } else {
            breaker.on_success(took);
            if (ctx.extra_breaker) ctx.extra_breaker->get().on_success(took);
        }
    }
    if (report.outcome != CallOutcome::answered) res.clear();
    co_return report;
}

FailureAnswer describe_failure(const CallReport& report, std::string_view upstream, milliseconds timeout) {
    std::string who(upstream);
    switch (report.outcome) {
        case CallOutcome::no_instance:
            return {503, "Service Unavailable", "no healthy instance of " + who};
        case CallOutcome::circuit_open:
            return {503, "Service Unavailable", "the circuit breaker of " + who + " is open"};
        case CallOutcome::bulkhead_full:
            return {503, "Service Unavailable", "too many concurrent calls to " + who};
        case CallOutcome::timeout:
            return {504, "Gateway Timeout", who + " did not answer within " + core::format_duration(timeout)};
        case CallOutcome::fault_abort:
            return {503, "Service Unavailable", "fault injected: the call to " + who + " was aborted"};
        default:
            return {502, "Bad Gateway",
                    who + " failed: " +
                        (report.error ? report.error.message() : std::string(to_string(report.outcome)))};
    }
}

void failure_response(const CallReport& report, std::string_view upstream, milliseconds timeout,
                      std::string_view path, net::Response& res) {
    res.clear();
    auto answer = describe_failure(report, upstream, timeout);
    res.problem(answer.status, answer.title, answer.detail, path);
    if (report.outcome == CallOutcome::circuit_open) res.headers.set("X-Plexus-Circuit", upstream);
}

void fallback_response(const resilience::FallbackSettings& fallback, std::string_view why,
                       net::Response& res) {
    res.clear();
    res.status = fallback.status;
    if (!fallback.content_type.empty()) res.headers.set("Content-Type", fallback.content_type);
    res.headers.set("X-Plexus-Fallback", why);
    res.body = fallback.body;
}

}  // namespace plexus::discovery
