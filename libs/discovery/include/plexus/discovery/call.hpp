#pragma once
/// One resilient call to an upstream, shared by the gateway and the SDK client:
///
///   fault injection (delay, abort) → the circuit breakers' permission (once per call) → for
///   each attempt: pick an instance (skipping ejected and already tried ones) → bulkhead → send
///   with min(per-try timeout, what is left of the deadline), the remaining budget sent as
///   X-Plexus-Deadline-Ms → record the attempt in the instance's outlier state → retry when the
///   policy, the retry budget and the deadline allow, after a jittered backoff, on another
///   instance when one exists → record the call's outcome (after its retries) in the breakers.
///
/// The breakers judge whole calls: one bad instance whose calls are saved by retries is the
/// outlier detector's to eject, and must not open the breaker of a service that still answers.
/// Open breakers and full bulkheads fail fast (no retry: they guard the whole upstream); a
/// deadline is never overrun, backoff included.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/discovery/discovery.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/http.hpp"
#include "plexus/resilience/settings.hpp"
#include "plexus/resilience/upstream.hpp"

namespace plexus::discovery {

/// Where a call's instances come from: a snapshot (held for the call) and its balancer.
struct Instances {
    std::shared_ptr<const InstanceList> list;
    Balancer* balancer = nullptr;
    /// For static lists: the endpoint of each target, by position; null: each target's address.
    const std::vector<net::Endpoint>* endpoints = nullptr;
};

enum class CallOutcome : std::uint8_t {
    answered,         ///< an HTTP answer is in the response (any status)
    no_instance,      ///< no healthy instance (or none left to retry on)
    circuit_open,     ///< a circuit breaker refused the call
    bulkhead_full,    ///< too many calls to the upstream already
    timeout,          ///< the deadline passed, before or during an attempt
    connect_failure,  ///< no instance accepted the connection
    reset,            ///< the connection broke before the answer was complete
    protocol,         ///< the upstream did not speak HTTP
    fault_abort,      ///< fault injection answered instead (its status is in the response)
};
std::string_view to_string(CallOutcome o) noexcept;
/// The outcome an attempt's network error stands for (answered for no error).
CallOutcome outcome_of(const ErrorCode& error) noexcept;

struct CallReport {
    CallOutcome outcome = CallOutcome::answered;
    int attempts = 0;                ///< requests actually sent
    ErrorCode error;                 ///< the last network error, if any
    const Target* target = nullptr;  ///< the last instance tried (valid while the list is held)
    bool failed() const noexcept { return outcome != CallOutcome::answered; }
};

/// Hooks around each attempt, for spans and logs. Both are optional.
class CallObserver {
  public:
    virtual ~CallObserver() = default;
    /// Before `req` is sent to `target` (headers may still be changed).
    virtual void before_attempt(net::Request& req, const Target& target, int attempt) {}
    /// After the attempt, with its network error (or the answer in `res`).
    virtual void after_attempt(const Target& target, ErrorCode error, const net::Response& res) {}
};

struct CallContext {
    const resilience::CallPolicy* policy = nullptr;
    resilience::Upstream* upstream = nullptr;
    resilience::MeteredBreaker* extra_breaker = nullptr;  ///< e.g. a route's own, besides the upstream's
    std::chrono::steady_clock::time_point deadline;
    CallObserver* observer = nullptr;
};

/// Makes the call. `req` gets X-Plexus-Deadline-Ms set per attempt. On `answered`, `res` holds
/// the last attempt's answer (a 5xx left after the retries stays as it is); on `fault_abort`
/// the injected problem response; otherwise `res` is cleared.
net::Task<CallReport> call(const CallContext& ctx, Instances instances, net::Request& req,
                           net::Response& res);

/// How a failed call is answered: 503 (no instance, open breaker — naming it — or full
/// bulkhead), 504 (timeout, saying after how long) or 502, about `upstream`.
struct FailureAnswer {
    int status = 502;
    std::string_view title;
    std::string detail;
};
FailureAnswer describe_failure(const CallReport& report, std::string_view upstream,
                               std::chrono::milliseconds timeout);

/// describe_failure() as a problem response in `res` (with X-Plexus-Circuit for an open breaker).
void failure_response(const CallReport& report, std::string_view upstream, std::chrono::milliseconds timeout,
                      std::string_view path, net::Response& res);

/// Replaces `res` with a static fallback, marked `X-Plexus-Fallback: <why>`.
void fallback_response(const resilience::FallbackSettings& fallback, std::string_view why,
                       net::Response& res);

/// Whether a call's result calls for the fallback: a failure, or a 5xx answer.
inline bool wants_fallback(const CallReport& report, const net::Response& res) noexcept {
    return report.failed() || res.status >= 500;
}

}  // namespace plexus::discovery
