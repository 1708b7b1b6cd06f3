#include "plexus/telemetry/trace.hpp"

#include <atomic>
#include <memory>

#include "plexus/core/snapshot.hpp"
#include "plexus/telemetry/log.hpp"
#include "text_format.hpp"

namespace plexus::telemetry {
namespace {

constexpr std::size_t kTraceparentSize = 55;  // "00-" + 32 + "-" + 16 + "-" + 2

int lower_hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Two lowercase hex digits, or -1.
int parse_hex_byte(std::string_view two) noexcept {
    const int hi = lower_hex_value(two[0]);
    const int lo = lower_hex_value(two[1]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The span sink (null: log_span). Read by every ending span, so a per-thread snapshot rather
// than a lock the io threads would contend on. Never destroyed, so spans ending in static
// destructors still find it.
core::SnapshotCell<SpanSink>& sink_slot() {
    static auto& slot = *new core::SnapshotCell<SpanSink>;
    return slot;
}

// Whether a sink is set: lets a span that nobody would see skip the slot's load.
std::atomic<bool> sink_set{false};

bool anyone_listens() noexcept {
    return sink_set.load(std::memory_order_relaxed) || log_enabled(Level::info);
}

}  // namespace

std::optional<TraceContext> TraceContext::parse_traceparent(std::string_view header) noexcept {
    const std::string_view s = trim_ows(header);
    if (s.size() < kTraceparentSize) return std::nullopt;
    const int version = parse_hex_byte(s.substr(0, 2));
    if (version < 0 || version == 0xff) return std::nullopt;
    if (version == 0 && s.size() != kTraceparentSize) return std::nullopt;
    if (version > 0 && s.size() > kTraceparentSize && s[kTraceparentSize] != '-') return std::nullopt;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
    auto trace_id = core::TraceId::from_hex(s.substr(3, 32));
    auto span_id = core::SpanId::from_hex(s.substr(36, 16));
    const int flags = parse_hex_byte(s.substr(53, 2));
    if (!trace_id || !span_id || flags < 0) return std::nullopt;
    return TraceContext{*trace_id, *span_id, (flags & 0x01) != 0};
}

std::string_view TraceContext::write_traceparent(std::array<char, kTraceparentSize>& out) const noexcept {
    char* p = out.data();
    p[0] = '0', p[1] = '0', p[2] = '-';
    core::write_hex16(p + 3, trace_id.hi);
    core::write_hex16(p + 19, trace_id.lo);
    p[35] = '-';
    core::write_hex16(p + 36, span_id.value);
    p[52] = '-', p[53] = '0', p[54] = sampled ? '1' : '0';
    return {out.data(), out.size()};
}

std::string TraceContext::traceparent() const {
    std::array<char, kTraceparentSize> out;
    return std::string(write_traceparent(out));
}

TraceContext TraceContext::child() const noexcept {
    return TraceContext{trace_id, core::SpanId::random(), sampled};
}

TraceContext TraceContext::root(bool sampled) noexcept {
    return TraceContext{core::TraceId::random(), core::SpanId::random(), sampled};
}

std::string_view to_string(SpanKind kind) noexcept {
    switch (kind) {
        case SpanKind::internal:
            return "internal";
        case SpanKind::server:
            return "server";
        case SpanKind::client:
            return "client";
        case SpanKind::producer:
            return "producer";
        case SpanKind::consumer:
            return "consumer";
    }
    return "internal";
}

std::string_view to_string(SpanStatus status) noexcept {
    switch (status) {
        case SpanStatus::unset:
            return "unset";
        case SpanStatus::ok:
            return "ok";
        case SpanStatus::error:
            return "error";
    }
    return "unset";
}

void set_span_sink(SpanSink sink) {
    // Spans ending concurrently keep their own reference to the previous sink.
    const bool set = static_cast<bool>(sink);
    sink_slot().store(set ? std::make_shared<const SpanSink>(std::move(sink)) : nullptr);
    sink_set.store(set, std::memory_order_relaxed);
}

void log_span(const SpanRecord& record) {
    if (!log_enabled(Level::info)) return;
    const std::string trace_id = record.trace_id.hex();
    const std::string span_id = record.span_id.hex();
    const std::string parent_id = record.parent_id.valid() ? record.parent_id.hex() : std::string();
    std::string attributes = "{";
    for (const auto& [key, value] : record.attributes) {
        if (attributes.size() > 1) attributes.push_back(',');
        detail::append_json_string(attributes, key);
        attributes.push_back(':');
        detail::append_json_string(attributes, value);
    }
    attributes.push_back('}');
    const auto start_us =
        std::chrono::duration_cast<std::chrono::microseconds>(record.start.time_since_epoch()).count();

    std::vector<Field> fields;
    fields.reserve(7);
    fields.emplace_back("name", record.name);
    fields.emplace_back("kind", to_string(record.kind));
    if (!parent_id.empty()) fields.emplace_back("parent_id", parent_id);
    fields.emplace_back("start_us", static_cast<std::int64_t>(start_us));
    fields.emplace_back("duration_us", static_cast<std::int64_t>(record.duration.count()));
    if (record.status != SpanStatus::unset) fields.emplace_back("status", to_string(record.status));
    fields.push_back(Field::raw_json("attributes", attributes));
    const LogContext ctx{trace_id, span_id, {}};
    log(Level::info, "span", fields, &ctx);
}

Span::Span(std::string name, SpanKind kind, std::optional<TraceContext> parent, const core::Clock& clock)
    : context_(parent ? parent->child() : TraceContext::root()), clock_(&clock) {
    record_.name = std::move(name);
    record_.kind = kind;
    record_.trace_id = context_.trace_id;
    record_.span_id = context_.span_id;
    if (parent) record_.parent_id = parent->span_id;
    recording_ = context_.sampled && anyone_listens();
    if (recording_) start_steady_ = clock.now();  // a span nobody records reads no clock
}

Span::~Span() { end(); }

Span::Span(Span&& other) noexcept
    : record_(std::move(other.record_)),
      context_(other.context_),
      clock_(other.clock_),
      start_steady_(other.start_steady_),
      recording_(other.recording_),
      ended_(other.ended_) {
    other.ended_ = true;
}

void Span::set_attribute(std::string key, std::string value) {
    if (ended_ || !recording_) return;
    record_.attributes.emplace_back(std::move(key), std::move(value));
}

void Span::set_status(SpanStatus status) noexcept {
    if (!ended_) record_.status = status;
}

void Span::end() noexcept {
    if (ended_) return;
    ended_ = true;
    if (!recording_) return;  // nobody would have seen it
    auto sink = sink_slot().load();
    auto elapsed = clock_->now() - start_steady_;
    record_.duration = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
    // The wall-clock start, from the end: one clock read less on every span's way in.
    record_.start = clock_->wall() - std::chrono::duration_cast<core::SystemTime::duration>(elapsed);
    try {
        if (sink) {
            (*sink)(record_);
        } else {
            log_span(record_);
        }
    } catch (const std::exception& e) {
        error("span sink failed", {{"span", record_.name}, {"error", e.what()}});
    } catch (...) {
        error("span sink failed", {{"span", record_.name}});
    }
}

}  // namespace plexus::telemetry
