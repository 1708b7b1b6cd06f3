#pragma once
/// The request scope: what every entry point does around one request it serves, in one place,
/// so the gateway, SDK services (and later message consumers and saga steps) log, count and trace
/// alike. It holds the request's ids (X-Request-Id, the server span and its trace), the caller's
/// deadline budget and the principal, and is finished once with the answer: the X-Request-Id
/// echo, the route's request counter and duration histogram, the span's status and end, and one
/// access log line.
///
///     serving::RequestScope scope(req, "products");       // on the handler's stack
///     if (scope.deadline_malformed()) { ...answer 400... }
///     ...serve...
///     scope.finish(res, meters, {.upstream = instance_id});
///
/// A scope lives on the stack of the coroutine serving the request and allocates nothing beyond
/// the span's name. Not thread-safe: it belongs to its request.
///
/// The access log line (info, `"msg":"access"`): method, path, status, duration_ms, route,
/// upstream (when given), bytes_in, bytes_out, remote, subject (when authenticated); trace_id,
/// span_id and request_id in the log context.

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/ids.hpp"
#include "plexus/net/http.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"
#include "plexus/telemetry/trace.hpp"

namespace plexus::serving {

using Clock = std::chrono::steady_clock;

/// Header names every entry point reads or writes.
inline constexpr std::string_view kRequestIdHeader = "X-Request-Id";
inline constexpr std::string_view kTraceparentHeader = "traceparent";

/// The status class index of `status`: 0 for 1xx ... 4 for 5xx; anything else counts as 5xx.
constexpr std::size_t status_class(int status) noexcept {
    int i = status / 100 - 1;
    return i >= 0 && i < 5 ? static_cast<std::size_t>(i) : 4;
}

/// The label values of the status classes, by status_class().
inline constexpr std::string_view kStatusClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

/// The metric children of one route, looked up once when the route is set up, never per request.
struct RouteMeters {
    std::array<telemetry::Counter*, 5> requests{};  ///< answers by status class, status_class()
    telemetry::Histogram* duration = nullptr;       ///< time from arrival to the end of the answer

    /// The children of a route: `requests` labelled `labels` followed by the status class, and
    /// `duration` labelled `duration_labels`.
    static RouteMeters of(telemetry::CounterFamily& requests, std::initializer_list<std::string_view> labels,
                          telemetry::HistogramFamily& duration,
                          std::initializer_list<std::string_view> duration_labels);
};

/// Keeps a sane X-Request-Id (core::is_sane_request_id; repeats collapse to the first) or sets a
/// fresh one (32 lowercase hex characters). Returns the value, valid until `headers` next change.
std::string_view ensure_request_id(net::Headers& headers);

/// Whether the space-separated `scopes` (a token's `scope`) hold `s`.
bool has_scope(std::string_view scopes, std::string_view s) noexcept;

/// Who a request is from, as authentication found it (the gateway's auth filter, a service's own
/// check). Immutable; shared by the requests that present the same credential.
struct Principal {
    std::string subject;    ///< `sub`: the user, or the client for client credentials
    std::string client_id;  ///< the OAuth client the credential was issued to
    std::string scope;      ///< space-separated scopes
    std::string roles;      ///< space-separated roles (the token's `roles` claim)
    std::string kind;       ///< how it was proven: "jwt", "opaque", "api_key"

    /// Whether `scope` holds `s` as a whole word.
    bool has_scope(std::string_view s) const noexcept { return serving::has_scope(scope, s); }
};

/// What the access log line says beyond the request and the answer.
struct AccessDetails {
    std::string_view upstream;  ///< the instance that answered, if any
    std::string_view path;      ///< the path to log when the request's own was rewritten
};

/// One served request. See the file comment.
class RequestScope {
  public:
    /// Starts serving `req` as route `route` (a name for metrics and logs; "-" when none):
    /// continues the trace of its `traceparent` with a server span "METHOD route", keeps or sets
    /// its X-Request-Id, and reads its X-Plexus-Deadline-Ms budget. `start` is when it arrived.
    RequestScope(net::Request& req, std::string_view route, Clock::time_point start = Clock::now());
    RequestScope(const RequestScope&) = delete;
    RequestScope& operator=(const RequestScope&) = delete;

    /// When the request arrived.
    Clock::time_point start() const noexcept { return start_; }
    /// The route name given at the start.
    std::string_view route() const noexcept { return route_; }
    /// The request id (as sent upstream and echoed to the client).
    std::string_view request_id() const noexcept { return {request_id_.data(), request_id_size_}; }
    /// The server span of this request.
    telemetry::Span& span() noexcept { return span_; }

    /// The caller's remaining budget from X-Plexus-Deadline-Ms, if it sent a valid one.
    std::optional<std::chrono::milliseconds> budget() const noexcept { return budget_; }
    /// Whether the caller sent an X-Plexus-Deadline-Ms that is not a budget ("abc", "-5"): the
    /// entry point answers 400 (deadline_problem()) rather than guess.
    bool deadline_malformed() const noexcept { return deadline_malformed_; }
    /// Whether the caller's budget is already spent (it sent 0): nobody waits for the answer.
    bool deadline_spent() const noexcept { return budget_ && budget_->count() == 0; }
    /// The earlier of start() + `own` and the caller's deadline.
    Clock::time_point deadline(std::chrono::milliseconds own) const noexcept;
    /// The caller's deadline alone (time_point::max() without a budget).
    Clock::time_point caller_deadline() const noexcept;
    /// Answers 400 for a malformed deadline or 504 for a spent one, in `res`.
    void deadline_problem(net::Response& res, std::string_view path) const;

    /// Who the request is from, once authenticated; null before (or without) authentication.
    const Principal* principal() const noexcept { return principal_.get(); }
    /// Records who the request is from (logged as `subject` in the access line).
    void set_principal(std::shared_ptr<const Principal> p) noexcept { principal_ = std::move(p); }

    /// The log context (trace id, span id, request id) for lines about this request.
    const telemetry::LogContext& log_context();

    /// Turns the exception being handled (call inside `catch (...)`) into the answer: an
    /// HttpError becomes its problem, anything else a 500 problem and one error log line naming
    /// the route.
    void answer_exception(net::Response& res, std::string_view path);

    /// Ends the request: sets X-Request-Id on `res`, counts the answer in `meters` (skipped when
    /// `meters.duration` is null), sets the span's status and ends it, and writes the access log
    /// line. Call once.
    void finish(const net::Request& req, net::Response& res, const RouteMeters& meters,
                const AccessDetails& details = {});

  private:
    Clock::time_point start_;
    std::string_view route_;
    telemetry::Span span_;
    std::array<char, core::kMaxRequestIdLength> request_id_{};
    std::size_t request_id_size_ = 0;
    std::optional<std::chrono::milliseconds> budget_;
    bool deadline_malformed_ = false;
    std::array<char, 32> trace_hex_{};
    std::array<char, 16> span_hex_{};
    std::optional<telemetry::LogContext> log_context_;
    std::shared_ptr<const Principal> principal_;
};

}  // namespace plexus::serving
