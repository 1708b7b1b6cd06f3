#include "plexus/telemetry/log.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <limits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "text_format.hpp"

namespace json = boost::json;
using namespace plexus::telemetry;

namespace {

// Captures log lines for one test and restores stdout and the defaults afterwards.
class LogCapture {
  public:
    LogCapture() {
        set_log_sink([this](std::string_view line) { lines_.emplace_back(line); });
    }
    ~LogCapture() {
        set_log_sink({});
        init_logging("", "", Level::info);
    }
    const std::vector<std::string>& lines() const { return lines_; }
    json::object only_line_as_object() const {
        EXPECT_EQ(lines_.size(), 1u);
        if (lines_.empty()) return {};
        return json::parse(lines_.front()).as_object();
    }

  private:
    std::vector<std::string> lines_;
};

std::vector<std::string> keys_in_order(const json::object& obj) {
    std::vector<std::string> keys;
    for (const auto& kv : obj) keys.emplace_back(kv.key());
    return keys;
}

std::string json_string(std::string_view text) {
    std::string out;
    detail::append_json_string(out, text);
    return out;
}

}  // namespace

TEST(Level, ParsesAndPrintsWireNames) {
    for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
        EXPECT_EQ(parse_level(to_string(l)), l);
    }
    EXPECT_EQ(to_string(Level::warn), "warn");
    EXPECT_FALSE(parse_level("WARN"));
    EXPECT_FALSE(parse_level("warning"));
    EXPECT_FALSE(parse_level(""));
}

TEST(Log, WritesFieldsInDocumentedOrder) {
    LogCapture capture;
    init_logging("catalog", "catalog-1a2b3c", Level::debug);
    const LogContext ctx{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "req-1"};
    info("listening", {{"port", 8080}, {"ratio", 0.25}, {"tls", false}, {"host", "::1"}}, &ctx);

    const auto obj = capture.only_line_as_object();
    EXPECT_EQ(keys_in_order(obj),
              (std::vector<std::string>{"ts", "level", "service", "instance", "trace_id", "span_id",
                                        "request_id", "msg", "port", "ratio", "tls", "host"}));
    EXPECT_EQ(obj.at("level").as_string(), "info");
    EXPECT_EQ(obj.at("service").as_string(), "catalog");
    EXPECT_EQ(obj.at("instance").as_string(), "catalog-1a2b3c");
    EXPECT_EQ(obj.at("trace_id").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(obj.at("span_id").as_string(), "00f067aa0ba902b7");
    EXPECT_EQ(obj.at("request_id").as_string(), "req-1");
    EXPECT_EQ(obj.at("msg").as_string(), "listening");
    EXPECT_EQ(obj.at("port").as_int64(), 8080);
    EXPECT_EQ(obj.at("ratio").as_double(), 0.25);
    EXPECT_EQ(obj.at("tls").as_bool(), false);
    EXPECT_EQ(obj.at("host").as_string(), "::1");
    const std::regex rfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
    EXPECT_TRUE(std::regex_match(std::string(obj.at("ts").as_string()), rfc3339)) << obj.at("ts");
    EXPECT_EQ(capture.lines().front().find('\n'), std::string::npos);
}

TEST(Log, OmitsEmptyCorrelationIds) {
    LogCapture capture;
    init_logging("gateway", "gw-1", Level::info);
    const LogContext ctx{{}, {}, "req-7"};
    warn("slow", {}, &ctx);
    error("no context");

    ASSERT_EQ(capture.lines().size(), 2u);
    auto first = json::parse(capture.lines()[0]).as_object();
    EXPECT_EQ(keys_in_order(first),
              (std::vector<std::string>{"ts", "level", "service", "instance", "request_id", "msg"}));
    auto second = json::parse(capture.lines()[1]).as_object();
    EXPECT_EQ(keys_in_order(second), (std::vector<std::string>{"ts", "level", "service", "instance", "msg"}));
    EXPECT_EQ(second.at("level").as_string(), "error");
}

TEST(Log, DropsEventsBelowMinimumLevel) {
    LogCapture capture;
    init_logging("svc", "svc-1", Level::warn);
    debug("d");
    info("i");
    warn("w");
    error("e");
    EXPECT_FALSE(log_enabled(Level::info));
    EXPECT_TRUE(log_enabled(Level::error));
    ASSERT_EQ(capture.lines().size(), 2u);
    EXPECT_EQ(json::parse(capture.lines()[0]).at("msg").as_string(), "w");
    set_log_level(Level::debug);
    EXPECT_EQ(log_level(), Level::debug);
    debug("d2");
    EXPECT_EQ(capture.lines().size(), 3u);
}

TEST(Log, EscapesEverythingIntoValidJson) {
    LogCapture capture;
    const std::string nasty = std::string("quote\" backslash\\ newline\n tab\t nul") + '\0' + "\x01\x1f end";
    const std::string bad_utf8 = "ok \xC3\xA9 bad \xFF\xC3 end";
    const std::vector<Field> fields{{nasty, nasty}, {"utf8", bad_utf8}};
    log(Level::info, nasty, fields);

    const auto obj = capture.only_line_as_object();
    EXPECT_EQ(obj.at("msg").as_string(), nasty);
    EXPECT_EQ(obj.at(nasty).as_string(), nasty);
    EXPECT_EQ(obj.at("utf8").as_string(), "ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST(Log, WritesNumbersExactly) {
    LogCapture capture;
    info("numbers", {{"max_u64", std::numeric_limits<std::uint64_t>::max()},
                     {"min_i64", std::numeric_limits<std::int64_t>::min()},
                     {"tiny", 1e-300},
                     {"nan", std::numeric_limits<double>::quiet_NaN()},
                     {"char", 'A'}});
    const auto obj = capture.only_line_as_object();
    EXPECT_EQ(obj.at("max_u64").as_uint64(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(obj.at("min_i64").as_int64(), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(obj.at("tiny").as_double(), 1e-300);
    EXPECT_TRUE(obj.at("nan").is_null());
    EXPECT_EQ(obj.at("char").as_int64(), 65);
}

TEST(Log, RawJsonFieldIsEmbedded) {
    LogCapture capture;
    info("raw", {Field::raw_json("attrs", R"({"a":[1,2]})")});
    const auto obj = capture.only_line_as_object();
    EXPECT_EQ(obj.at("attrs").at("a").as_array().size(), 2u);
}

TEST(Log, LinesFromManyThreadsNeverInterleave) {
    std::vector<std::string> lines;  // the sink runs under the logging lock
    set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
    constexpr int kThreads = 4, kPerThread = 500;
    const std::string payload(300, 'x');
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < kPerThread; ++i)
                    info("event", {{"thread", t}, {"i", i}, {"payload", payload}});
            });
        }
    }
    set_log_sink({});
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
    std::vector<int> next(kThreads, 0);
    for (const auto& line : lines) {
        const auto obj = json::parse(line).as_object();
        const auto t = obj.at("thread").as_int64();
        EXPECT_EQ(obj.at("i").as_int64(), next[static_cast<std::size_t>(t)]++);  // per-thread order kept
        EXPECT_EQ(obj.at("payload").as_string(), payload);
    }
}

TEST(Log, LoggingFromInsideTheSinkIsDroppedNotDeadlocked) {
    std::vector<std::string> lines;
    set_log_sink([&](std::string_view line) {
        lines.emplace_back(line);
        info("from inside the sink");
    });
    const auto before = dropped_log_lines();
    info("outer");
    set_log_sink({});
    EXPECT_EQ(lines.size(), 1u);
    EXPECT_EQ(dropped_log_lines(), before + 1);
}

TEST(TextFormat, EscapesJsonStrings) {
    EXPECT_EQ(json_string("plain"), R"("plain")");
    EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(json_string("\n\r\t\b\f"), R"("\n\r\t\b\f")");
    EXPECT_EQ(json_string(std::string_view("\0\x1f\x7f", 3)), "\"\\u0000\\u001f\x7f\"");
    EXPECT_EQ(json_string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
              "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
    EXPECT_EQ(json_string("\xC0\xAF"), R"("\ufffd\ufffd")");            // overlong '/'
    EXPECT_EQ(json_string("\xED\xA0\x80"), R"("\ufffd\ufffd\ufffd")");  // surrogate
    EXPECT_EQ(json_string("\xE2\x82"), R"("\ufffd\ufffd")");            // truncated
}

TEST(TextFormat, FormatsRfc3339WithMilliseconds) {
    using namespace std::chrono;
    const auto format = [](plexus::core::SystemTime t) {
        std::string out;
        plexus::core::append_rfc3339(out, t, true);
        return out;
    };
    EXPECT_EQ(format(plexus::core::SystemTime{}), "1970-01-01T00:00:00.000Z");
    const auto t =
        sys_days{year{2026} / November / 22} + hours(5) + minutes(12) + milliseconds(123) + microseconds(999);
    EXPECT_EQ(format(time_point_cast<system_clock::duration>(t)), "2026-11-22T05:12:00.123Z");
    const auto leap =
        sys_days{year{2024} / February / 29} + hours(23) + minutes(59) + seconds(59) + milliseconds(999);
    EXPECT_EQ(format(time_point_cast<system_clock::duration>(leap)), "2024-02-29T23:59:59.999Z");
    EXPECT_EQ(format(plexus::core::SystemTime{} - milliseconds(1)), "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(plexus::core::rfc3339(time_point_cast<system_clock::duration>(leap)), "2024-02-29T23:59:59Z");
}

TEST(JsonString, EscapesAtEveryPositionOfLongText) {
    // Longer than a vector block, with the byte to escape (or the UTF-8 to check) at each position.
    const std::vector<std::pair<std::string, std::string>> cases{
        {"\"", "\\\""},           {"\\", "\\\\"},      {"\n", "\\n"},
        {"\x01", "\\u0001"},      {"\x1f", "\\u001f"}, {"\xff", "\\ufffd"},
        {"\xc3\xa9", "\xc3\xa9"}, {"\x7f", "\x7f"}};
    for (std::size_t len : {15, 16, 17, 33, 47}) {
        for (const auto& [raw, escaped] : cases) {
            for (std::size_t at = 0; at + raw.size() <= len; ++at) {
                std::string text(len, 'a');
                text.replace(at, raw.size(), raw);
                std::string want = "\"" + text.substr(0, at) + escaped + text.substr(at + raw.size()) + "\"";
                EXPECT_EQ(json_string(text), want) << "case " << escaped << " at " << at << " of " << len;
            }
        }
    }
}
