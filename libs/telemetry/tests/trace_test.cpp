#include "plexus/telemetry/trace.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/telemetry/log.hpp"

namespace json = boost::json;
using namespace plexus::telemetry;
using namespace std::chrono_literals;
using plexus::core::ManualClock;
using plexus::core::SpanId;
using plexus::core::TraceId;

namespace {

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpan = "00f067aa0ba902b7";

std::string header(std::string_view version, std::string_view trace, std::string_view span,
                   std::string_view flags) {
    return std::string(version) + "-" + std::string(trace) + "-" + std::string(span) + "-" +
           std::string(flags);
}

// Collects finished spans for one test and restores the default sink afterwards.
class SpanCapture {
  public:
    SpanCapture() {
        set_span_sink([this](const SpanRecord& r) { records.push_back(r); });
    }
    ~SpanCapture() { set_span_sink({}); }
    std::vector<SpanRecord> records;
};

}  // namespace

TEST(TraceContext, ParsesTheSpecExample) {
    const auto ctx =
        TraceContext::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ASSERT_TRUE(ctx);
    EXPECT_EQ(ctx->trace_id.hex(), kTrace);
    EXPECT_EQ(ctx->span_id.hex(), kSpan);
    EXPECT_TRUE(ctx->sampled);

    const auto unsampled = TraceContext::parse_traceparent(header("00", kTrace, kSpan, "00"));
    ASSERT_TRUE(unsampled);
    EXPECT_FALSE(unsampled->sampled);
    // Only bit 0 means sampled; other flags are ignored.
    const auto other_flags = TraceContext::parse_traceparent(header("00", kTrace, kSpan, "fe"));
    ASSERT_TRUE(other_flags);
    EXPECT_FALSE(other_flags->sampled);
}

TEST(TraceContext, RoundTripsThroughTraceparent) {
    const auto root = TraceContext::root();
    const auto parsed = TraceContext::parse_traceparent(root.traceparent());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, root);
    EXPECT_EQ(root.traceparent().size(), 55u);
    const auto unsampled = TraceContext::root(false);
    EXPECT_TRUE(unsampled.traceparent().ends_with("-00"));
    EXPECT_EQ(TraceContext::parse_traceparent(unsampled.traceparent()), unsampled);
}

TEST(TraceContext, TrimsOptionalWhiteSpace) {
    EXPECT_TRUE(TraceContext::parse_traceparent(" \t" + header("00", kTrace, kSpan, "01") + "\t "));
}

TEST(TraceContext, AcceptsFutureVersions) {
    EXPECT_TRUE(TraceContext::parse_traceparent(header("cc", kTrace, kSpan, "01")));
    const auto longer =
        TraceContext::parse_traceparent(header("cc", kTrace, kSpan, "01") + "-what-the-future-will-be-like");
    ASSERT_TRUE(longer);
    EXPECT_TRUE(longer->sampled);
    EXPECT_EQ(longer->trace_id.hex(), kTrace);
    EXPECT_TRUE(TraceContext::parse_traceparent(header("01", kTrace, kSpan, "01") + "-"));
}

TEST(TraceContext, RejectsInvalidHeaders) {
    const std::vector<std::string> invalid = {
        "",
        "00",
        header("ff", kTrace, kSpan, "01"),                              // forbidden version
        header("00", kTrace, kSpan, "01") + "-extra",                   // version 00 is exactly 55
        header("00", kTrace, kSpan, "01") + "0",                        // version 00 is exactly 55
        header("cc", kTrace, kSpan, "01") + "x-future",                 // future: '-' must follow
        header("00", "00000000000000000000000000000000", kSpan, "01"),  // all-zero trace id
        header("00", kTrace, "0000000000000000", "01"),                 // all-zero parent id
        header("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSpan, "01"),  // upper-case trace id
        header("00", kTrace, "00F067AA0BA902B7", "01"),                 // upper-case parent id
        header("00", kTrace, kSpan, "0A"),                              // upper-case flags
        header("0A", kTrace, kSpan, "01"),                              // upper-case version
        header("0g", kTrace, kSpan, "01"),                              // non-hex version
        header("00", kTrace, kSpan, "0g"),                              // non-hex flags
        header("00", kTrace, kSpan, ".1"),                              // non-hex flags
        header("00", "4bf92f3577b34da6a3ce929d0e0e473", kSpan, "011"),  // short trace id
        header("00", kTrace, "00f067aa0ba902b", "011"),                 // short parent id
        header("00", kTrace, kSpan, "1"),                               // short flags
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",      // wrong delimiters
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",     // version 00 with a tail
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7 01",      // space for a dash
        "00 -4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // space inside
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",      // non-hex parent id
    };
    for (const auto& h : invalid) EXPECT_FALSE(TraceContext::parse_traceparent(h)) << '"' << h << '"';
}

TEST(TraceContext, ChildKeepsTraceAndFlagsWithANewSpan) {
    const auto parent = *TraceContext::parse_traceparent(header("00", kTrace, kSpan, "00"));
    const auto child = parent.child();
    EXPECT_EQ(child.trace_id, parent.trace_id);
    EXPECT_NE(child.span_id, parent.span_id);
    EXPECT_TRUE(child.span_id.valid());
    EXPECT_FALSE(child.sampled);
    const auto a = TraceContext::root();
    const auto b = TraceContext::root();
    EXPECT_NE(a.trace_id, b.trace_id);
    EXPECT_TRUE(a.sampled);
}

TEST(Span, RecordsDurationParentAttributesAndStatus) {
    SpanCapture capture;
    ManualClock clock;
    const auto parent = *TraceContext::parse_traceparent(header("00", kTrace, kSpan, "01"));
    {
        Span span("GET /items/{id}", SpanKind::server, parent, clock);
        EXPECT_EQ(span.context().trace_id, parent.trace_id);
        EXPECT_NE(span.context().span_id, parent.span_id);
        EXPECT_EQ(span.parent_id(), parent.span_id);
        span.set_attribute("http.method", "GET");
        span.set_attribute("http.status_code", "200");
        span.set_status(SpanStatus::ok);
        clock.advance(1500us);
        span.end();
        span.end();  // only the first end counts
        span.set_attribute("late", "ignored");
        EXPECT_TRUE(span.ended());
    }
    ASSERT_EQ(capture.records.size(), 1u);
    const auto& r = capture.records.front();
    EXPECT_EQ(r.name, "GET /items/{id}");
    EXPECT_EQ(r.kind, SpanKind::server);
    EXPECT_EQ(r.trace_id.hex(), kTrace);
    EXPECT_EQ(r.parent_id.hex(), kSpan);
    EXPECT_EQ(r.duration, 1500us);
    EXPECT_EQ(r.start, clock.wall() - 1500us);
    EXPECT_EQ(r.status, SpanStatus::ok);
    EXPECT_EQ(r.attributes, (SpanAttributes{{"http.method", "GET"}, {"http.status_code", "200"}}));
}

TEST(Span, RootSpanStartsATraceAndEndsOnDestruction) {
    SpanCapture capture;
    ManualClock clock;
    TraceContext ctx;
    {
        Span span("startup", SpanKind::internal, std::nullopt, clock);
        ctx = span.context();
        clock.advance(2ms);
    }
    ASSERT_EQ(capture.records.size(), 1u);
    EXPECT_FALSE(capture.records[0].parent_id.valid());
    EXPECT_EQ(capture.records[0].trace_id, ctx.trace_id);
    EXPECT_EQ(capture.records[0].span_id, ctx.span_id);
    EXPECT_EQ(capture.records[0].duration, 2000us);
}

TEST(Span, ClientSpanIsAChildOfTheServerSpan) {
    SpanCapture capture;
    ManualClock clock;
    Span server("handle", SpanKind::server, std::nullopt, clock);
    Span client("call inventory", SpanKind::client, server.context(), clock);
    const auto sent = TraceContext::parse_traceparent(client.context().traceparent());
    ASSERT_TRUE(sent);
    EXPECT_EQ(sent->trace_id, server.context().trace_id);
    EXPECT_EQ(client.parent_id(), server.context().span_id);
    client.end();
    server.end();
    ASSERT_EQ(capture.records.size(), 2u);
    EXPECT_EQ(capture.records[0].kind, SpanKind::client);
    EXPECT_EQ(capture.records[1].kind, SpanKind::server);
}

TEST(Span, UnsampledSpansAreNotExported) {
    SpanCapture capture;
    Span span("quiet", SpanKind::server, TraceContext::root(false));
    span.end();
    EXPECT_TRUE(capture.records.empty());
}

TEST(Span, MovedSpanIsRecordedOnce) {
    SpanCapture capture;
    {
        Span a("moved", SpanKind::internal);
        Span b(std::move(a));
        EXPECT_EQ(b.name(), "moved");
    }
    EXPECT_EQ(capture.records.size(), 1u);
}

TEST(Span, ThrowingSinkDoesNotEscapeEnd) {
    set_span_sink([](const SpanRecord&) { throw std::runtime_error("exporter down"); });
    std::vector<std::string> lines;
    set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
    {
        Span span("doomed", SpanKind::client);
        EXPECT_NO_THROW(span.end());
    }
    set_log_sink({});
    set_span_sink({});
    ASSERT_EQ(lines.size(), 1u);
    const auto obj = json::parse(lines[0]).as_object();
    EXPECT_EQ(obj.at("level").as_string(), "error");
    EXPECT_EQ(obj.at("error").as_string(), "exporter down");
}

TEST(Span, DefaultSinkLogsOneJsonLine) {
    std::vector<std::string> lines;
    set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
    init_logging("orders", "orders-1", Level::info);
    ManualClock clock;
    const auto parent = *TraceContext::parse_traceparent(header("00", kTrace, kSpan, "01"));
    std::string span_id;
    {
        Span span("POST /orders", SpanKind::server, parent, clock);
        span_id = span.context().span_id.hex();
        span.set_attribute("http.route", "/orders \"quoted\"");
        span.set_status(SpanStatus::error);
        clock.advance(42us);
    }
    set_log_sink({});
    init_logging("", "", Level::info);

    ASSERT_EQ(lines.size(), 1u);
    const auto obj = json::parse(lines[0]).as_object();
    std::vector<std::string> keys;
    for (const auto& kv : obj) keys.emplace_back(kv.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"ts", "level", "service", "instance", "trace_id", "span_id",
                                              "msg", "name", "kind", "parent_id", "start_us", "duration_us",
                                              "status", "attributes"}));
    EXPECT_EQ(obj.at("msg").as_string(), "span");
    EXPECT_EQ(obj.at("service").as_string(), "orders");
    EXPECT_EQ(obj.at("trace_id").as_string(), kTrace);
    EXPECT_EQ(obj.at("span_id").as_string(), span_id);
    EXPECT_EQ(obj.at("parent_id").as_string(), kSpan);
    EXPECT_EQ(obj.at("name").as_string(), "POST /orders");
    EXPECT_EQ(obj.at("kind").as_string(), "server");
    EXPECT_EQ(obj.at("duration_us").as_int64(), 42);
    EXPECT_EQ(obj.at("start_us").as_int64(),
              std::chrono::duration_cast<std::chrono::microseconds>((clock.wall() - 42us).time_since_epoch())
                  .count());
    EXPECT_EQ(obj.at("status").as_string(), "error");
    EXPECT_EQ(obj.at("attributes").at("http.route").as_string(), "/orders \"quoted\"");
}

TEST(Span, DefaultSinkOmitsParentOfRootSpan) {
    std::vector<std::string> lines;
    set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
    { Span span("root", SpanKind::internal); }
    set_log_sink({});
    ASSERT_EQ(lines.size(), 1u);
    const auto obj = json::parse(lines[0]).as_object();
    EXPECT_FALSE(obj.contains("parent_id"));
    EXPECT_FALSE(obj.contains("status"));
    EXPECT_TRUE(obj.at("attributes").as_object().empty());
}
