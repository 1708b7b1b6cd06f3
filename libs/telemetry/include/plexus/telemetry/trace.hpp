#pragma once
/// Distributed tracing: W3C Trace Context (`traceparent`) propagation and spans.
///
///     // server side: continue the caller's trace, or start one
///     auto parent = telemetry::TraceContext::parse_traceparent(request["traceparent"]);
///     telemetry::Span span("GET /items/{id}", telemetry::SpanKind::server, parent);
///     span.set_attribute("http.method", "GET");
///     …
///     // client side: a child span whose context goes out in the request
///     telemetry::Span call("GET inventory", telemetry::SpanKind::client, span.context());
///     upstream_request.set("traceparent", call.context().traceparent());
///     …
///     call.end();   // hands the finished span to the process-wide span sink
///
/// Finished spans go to one process-wide sink: by default each becomes one JSON log line
/// (`"msg":"span"`, see `log_span`); an exporter (Zipkin, the telemetry daemon) replaces it with
/// `set_span_sink`.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/core/ids.hpp"

namespace plexus::telemetry {

/// The trace a unit of work belongs to and the span that stands for it, as carried in the W3C
/// `traceparent` header. A plain value; safe to copy between threads.
struct TraceContext {
    core::TraceId trace_id;  ///< the whole trace's id (valid: not all zero)
    core::SpanId span_id;    ///< this span's id, the parent of spans started from it
    bool sampled = true;     ///< the `sampled` trace flag: record and export spans of this trace

    /// Parses a `traceparent` header value per W3C Trace Context level 1, after trimming spaces
    /// and tabs (the header's optional white space): `00-<32 hex>-<16 hex>-<2 hex>`, exactly 55
    /// characters for version 00; lowercase hex only; all-zero trace or span ids, version `ff` and
    /// anything malformed give nullopt. A higher version is accepted if it has at least 55
    /// characters and, when longer, a `-` after the flags; its extra fields are ignored.
    static std::optional<TraceContext> parse_traceparent(std::string_view header) noexcept;

    /// The version-00 `traceparent` value: `00-<trace_id>-<span_id>-<01|00>`.
    std::string traceparent() const;
    /// The same value written into `out` without allocating; the view is into `out`.
    std::string_view write_traceparent(std::array<char, 55>& out) const noexcept;

    /// A context for a new span in the same trace: same trace id and flags, a new random span id.
    /// Lock-free.
    TraceContext child() const noexcept;

    /// A context that starts a new trace: random trace and span ids. Lock-free.
    static TraceContext root(bool sampled = true) noexcept;

    friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

/// The role of a span, as Zipkin v2 and OpenTelemetry name it.
enum class SpanKind : std::uint8_t {
    internal,  ///< work inside the process
    server,    ///< handling an incoming request
    client,    ///< an outgoing request
    producer,  ///< publishing a message
    consumer,  ///< handling a message
};

/// "internal", "server", "client", "producer" or "consumer".
std::string_view to_string(SpanKind kind) noexcept;

/// The outcome of a span, as OpenTelemetry's status code: not set, explicitly ok, or failed.
enum class SpanStatus : std::uint8_t { unset, ok, error };

/// "unset", "ok" or "error".
std::string_view to_string(SpanStatus status) noexcept;

/// Key/value annotations of a span (`http.method` → `GET`), in the order they were set.
using SpanAttributes = std::vector<std::pair<std::string, std::string>>;

/// A finished span, as handed to the span sink.
struct SpanRecord {
    std::string name;                       ///< what the span did, e.g. "GET /items/{id}"
    SpanKind kind = SpanKind::internal;     ///< the span's role
    core::TraceId trace_id;                 ///< the trace it belongs to
    core::SpanId span_id;                   ///< its own id
    core::SpanId parent_id;                 ///< its parent's id; invalid (zero) for a root span
    core::SystemTime start;                 ///< wall-clock start time
    std::chrono::microseconds duration{0};  ///< measured on the monotonic clock
    SpanAttributes attributes;              ///< annotations, in the order set
    SpanStatus status = SpanStatus::unset;  ///< outcome
};

/// Receives each finished, sampled span. Called on the thread that ends the span, possibly from
/// many threads at once, so it must be thread-safe; it should be quick (queue for export) and
/// must not throw.
using SpanSink = std::function<void(const SpanRecord&)>;

/// Replaces the process-wide span sink; an empty function restores the default (`log_span`).
/// Thread-safe. A span ending concurrently may still go to the previous sink.
void set_span_sink(SpanSink sink);

/// The default sink: writes `record` as one info-level log line with `"msg":"span"`, the
/// `trace_id` and `span_id` in their usual places, then `name`, `kind`, `parent_id` (omitted for
/// a root span), `start_us` (microseconds since the epoch), `duration_us`, `status` (omitted when
/// unset) and `attributes` (a JSON object). Thread-safe.
void log_span(const SpanRecord& record);

/// One timed operation of a trace. Starts when constructed; `end()` (or the destructor) measures
/// the duration and, if the span is recording, hands the record to the span sink. Whether it
/// records is decided when it starts (see `recording()`): a span that nobody would see costs
/// only its ids.
/// Not thread-safe: a span belongs to one request and is used by one thread or coroutine at a
/// time; its `context()` can be copied anywhere.
class Span {
  public:
    /// Starts a span named `name`. With a `parent` (from an incoming `traceparent`, or the span
    /// that makes an outgoing call) it joins the parent's trace with a new span id and the
    /// parent's sampled flag; without one it starts a new, sampled trace. Times come from `clock`,
    /// which must outlive the span.
    Span(std::string name, SpanKind kind, std::optional<TraceContext> parent = std::nullopt,
         const core::Clock& clock = core::Clock::real());

    /// Ends the span if `end()` was not called (so a span left by an exception is still recorded).
    ~Span();
    /// Moves the span; the moved-from span is ended and records nothing.
    Span(Span&& other) noexcept;
    Span(const Span&) = delete;
    Span& operator=(const Span&) = delete;
    Span& operator=(Span&&) = delete;

    /// This span's own context: its trace id, span id and sampled flag. Send
    /// `context().traceparent()` on requests this span makes, and use it as the parent of
    /// child spans.
    const TraceContext& context() const noexcept { return context_; }
    /// The parent span's id; invalid (zero) for a root span.
    core::SpanId parent_id() const noexcept { return record_.parent_id; }
    /// The span's name.
    const std::string& name() const noexcept { return record_.name; }

    /// Whether the finished span will go anywhere: the trace is sampled and a span sink is set
    /// or info-level logging is on, as of the span's start. Callers skip building attributes
    /// when it is false.
    bool recording() const noexcept { return recording_; }
    /// Adds an annotation. Ignored after `end()` and when the span is not recording.
    void set_attribute(std::string key, std::string value);
    /// Sets the outcome. Ignored after `end()`.
    void set_status(SpanStatus status) noexcept;

    /// True once `end()` has run.
    bool ended() const noexcept { return ended_; }
    /// Records the duration and hands the finished span to the sink if recording. Only the first
    /// call has an effect. Never throws: an exception from the sink is caught and logged.
    void end() noexcept;

  private:
    SpanRecord record_;
    TraceContext context_;
    const core::Clock* clock_;
    core::SteadyTime start_steady_;
    bool recording_ = false;
    bool ended_ = false;
};

}  // namespace plexus::telemetry
