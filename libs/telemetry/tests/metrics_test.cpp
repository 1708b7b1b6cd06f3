#include "plexus/telemetry/metrics.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "text_format.hpp"

using namespace plexus::telemetry;

namespace {

std::string prom(double v) {
    std::string out;
    detail::append_prometheus_double(out, v);
    return out;
}

// The first executable `name` on PATH, or empty.
std::string find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    if (path == nullptr) return {};
    std::string_view rest(path);
    while (!rest.empty()) {
        const auto colon = rest.find(':');
        const std::string dir(rest.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
        if (dir.empty()) continue;
        const std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr
};

CommandResult run_with_stdin_file(const std::string& command, const std::string& input_path) {
    CommandResult result;
    const std::string full = command + " < '" + input_path + "' 2>&1";
    FILE* pipe = ::popen(full.c_str(), "r");
    if (pipe == nullptr) return result;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

// A registry with every kind of metric and label values that need escaping.
void fill_sample_registry(Registry& registry) {
    auto& requests = registry.counter("http_server_requests_total",
                                      "HTTP requests handled, by method and class.", {"method", "code"});
    requests.labels({"GET", "2xx"}).inc(3);
    requests.labels({"POST", "5xx"}).inc();
    requests.labels({"GET", "quote\" back\\slash\nnewline"}).inc(2);
    registry.counter("process_restarts_total", "Restarts.\nSecond line with a \\ backslash.").labels().inc();
    auto& depth = registry.gauge("queue_depth", "Messages waiting, by queue.", {"queue"});
    depth.labels({"orders"}).set(12.5);
    depth.labels({"caf\xC3\xA9"}).dec(2);
    registry.gauge("temperature_celsius", "Temperature.").labels().set(-3e-7);
    auto& latency = registry.histogram("http_server_request_duration_seconds", "Request latency.", {"route"},
                                       default_latency_buckets());
    latency.labels({"/items/{id}"}).observe(0.003);
    latency.labels({"/items/{id}"}).observe(std::chrono::milliseconds(250));
    latency.labels({"/items/{id}"}).observe(42.0);
    latency.labels({"/\"odd\"\\route"}).observe(0.0005);
    registry.histogram("payload_size_bytes", "Body sizes.", {}, exponential_buckets(64, 4, 6))
        .labels()
        .observe(1e6);
}

}  // namespace

TEST(Metrics, RendersExactExpositionText) {
    Registry registry;
    auto& requests = registry.counter("requests_total", "Requests.", {"method"});
    requests.labels({"POST"}).inc(2);
    requests.labels({"GET"}).inc();
    registry.gauge("in_flight", "In-flight requests.").labels().set(1.5);
    auto& latency = registry.histogram("latency_seconds", "Latency.", {"route"}, {0.1, 1});
    latency.labels({"/a"}).observe(0.1);  // on the bound: counts in that bucket
    latency.labels({"/a"}).observe(0.5);
    latency.labels({"/a"}).observe(3);

    EXPECT_EQ(registry.render(),
              "# HELP in_flight In-flight requests.\n"
              "# TYPE in_flight gauge\n"
              "in_flight 1.5\n"
              "# HELP latency_seconds Latency.\n"
              "# TYPE latency_seconds histogram\n"
              "latency_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"
              "latency_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
              "latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
              "latency_seconds_sum{route=\"/a\"} 3.6\n"
              "latency_seconds_count{route=\"/a\"} 3\n"
              "# HELP requests_total Requests.\n"
              "# TYPE requests_total counter\n"
              "requests_total{method=\"GET\"} 1\n"
              "requests_total{method=\"POST\"} 2\n");
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
    Registry registry;
    registry.counter("odd_total", "Help with \\ and\nnewline \"quotes\" kept.", {"v"})
        .labels({"a\\b\"c\nd"})
        .inc();
    EXPECT_EQ(registry.render(),
              "# HELP odd_total Help with \\\\ and\\nnewline \"quotes\" kept.\n"
              "# TYPE odd_total counter\n"
              "odd_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(Metrics, RepairsIllFormedUtf8LabelValuesIntoOneSeries) {
    Registry registry;
    auto& family = registry.counter("paths_total", "Paths.", {"path"});
    family.labels({"/\xFF"}).inc();
    family.labels({"/\xFE"}).inc();  // repairs to the same text: the same child
    EXPECT_EQ(&family.labels({"/\xFF"}), &family.labels({"/\xEF\xBF\xBD"}));
    EXPECT_NE(registry.render().find("paths_total{path=\"/\xEF\xBF\xBD\"} 2\n"), std::string::npos);
}

TEST(Metrics, UnlabelledFamiliesRenderZeroAndLabelledOnesWaitForAChild) {
    Registry registry;
    registry.counter("started_total", "Started.");
    registry.gauge("labelled", "Labelled.", {"x"});
    registry.histogram("empty_seconds", "Empty.", {}, {1});
    EXPECT_EQ(registry.render(),
              "# HELP empty_seconds Empty.\n"
              "# TYPE empty_seconds histogram\n"
              "empty_seconds_bucket{le=\"1\"} 0\n"
              "empty_seconds_bucket{le=\"+Inf\"} 0\n"
              "empty_seconds_sum 0\n"
              "empty_seconds_count 0\n"
              "# HELP started_total Started.\n"
              "# TYPE started_total counter\n"
              "started_total 0\n");
}

TEST(Metrics, SameDefinitionReturnsTheSameFamily) {
    Registry registry;
    auto& a = registry.counter("jobs_total", "Jobs.", {"queue"});
    auto& b = registry.counter("jobs_total", "Jobs.", {"queue"});
    EXPECT_EQ(&a, &b);
    EXPECT_EQ(&a.labels({"q"}), &b.labels({"q"}));
    auto& h1 =
        registry.histogram("wait_seconds", "Wait.", {}, {0.1, 1, std::numeric_limits<double>::infinity()});
    auto& h2 = registry.histogram("wait_seconds", "Wait.", {}, {0.1, 1});
    EXPECT_EQ(&h1, &h2);
}

TEST(Metrics, RejectsConflictingDefinitions) {
    Registry registry;
    registry.counter("jobs_total", "Jobs.", {"queue"});
    EXPECT_THROW(registry.counter("jobs_total", "Jobs.", {"queue", "kind"}), std::invalid_argument);
    EXPECT_THROW(registry.counter("jobs_total", "Other help.", {"queue"}), std::invalid_argument);
    registry.gauge("depth", "Depth.");
    EXPECT_THROW(registry.histogram("depth", "Depth.", {}, {1}), std::invalid_argument);
    registry.histogram("wait_seconds", "Wait.", {}, {1, 2});
    EXPECT_THROW(registry.histogram("wait_seconds", "Wait.", {}, {1, 3}), std::invalid_argument);
    // The samples of histogram `wait_seconds` include `wait_seconds_sum`.
    EXPECT_THROW(registry.histogram("wait_seconds_sum", "Sum.", {}, {1}), std::invalid_argument);
}

TEST(Metrics, RejectsInvalidNames) {
    Registry registry;
    EXPECT_THROW(registry.gauge("", "Help."), std::invalid_argument);
    EXPECT_THROW(registry.gauge("1abc", "Help."), std::invalid_argument);
    EXPECT_THROW(registry.gauge("with-dash", "Help."), std::invalid_argument);
    EXPECT_THROW(registry.gauge("ok_name", ""), std::invalid_argument);
    EXPECT_THROW(registry.counter("requests", "No _total."), std::invalid_argument);
    EXPECT_THROW(registry.gauge("things_total", "Not a counter."), std::invalid_argument);
    EXPECT_THROW(registry.gauge("things_count", "Looks like a histogram."), std::invalid_argument);
    EXPECT_THROW(registry.gauge("g", "Help.", {"__reserved"}), std::invalid_argument);
    EXPECT_THROW(registry.gauge("g", "Help.", {"bad:label"}), std::invalid_argument);
    EXPECT_THROW(registry.gauge("g", "Help.", {"9x"}), std::invalid_argument);
    EXPECT_THROW(registry.gauge("g", "Help.", {"a", "a"}), std::invalid_argument);
    EXPECT_THROW(registry.histogram("h", "Help.", {"le"}, {1}), std::invalid_argument);
    EXPECT_NO_THROW(registry.gauge("ns:sub_ok", "Colons are valid.", {"_private", "le"}));
}

TEST(Metrics, RejectsBadBuckets) {
    Registry registry;
    EXPECT_THROW(registry.histogram("h1", "Help.", {}, {1, 1}), std::invalid_argument);
    EXPECT_THROW(registry.histogram("h2", "Help.", {}, {2, 1}), std::invalid_argument);
    EXPECT_THROW(registry.histogram("h3", "Help.", {}, {std::numeric_limits<double>::quiet_NaN()}),
                 std::invalid_argument);
    EXPECT_THROW(registry.histogram("h4", "Help.", {}, {-std::numeric_limits<double>::infinity(), 1}),
                 std::invalid_argument);
    EXPECT_THROW(exponential_buckets(0, 2, 3), std::invalid_argument);
    EXPECT_THROW(linear_buckets(0, 0, 3), std::invalid_argument);
    EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
    EXPECT_EQ(linear_buckets(0.5, 1, 3), (std::vector<double>{0.5, 1.5, 2.5}));
}

TEST(Metrics, RejectsWrongNumberOfLabelValues) {
    Registry registry;
    auto& family = registry.counter("calls_total", "Calls.", {"a", "b"});
    EXPECT_THROW(family.labels({"only-one"}), std::invalid_argument);
    EXPECT_THROW(family.labels(), std::invalid_argument);
    auto& plain = registry.gauge("plain", "Plain.");
    EXPECT_THROW(plain.labels({"extra"}), std::invalid_argument);
}

TEST(Metrics, HistogramCountsBucketsCumulatively) {
    Registry registry;
    auto& h = registry.histogram("h_seconds", "Help.", {}, {1, 2, 3}).labels();
    for (double v : {0.5, 1.0, 1.5, 2.5, 10.0, std::numeric_limits<double>::quiet_NaN()}) h.observe(v);
    EXPECT_EQ(h.cumulative_count(0), 2u);
    EXPECT_EQ(h.cumulative_count(1), 3u);
    EXPECT_EQ(h.cumulative_count(2), 4u);
    EXPECT_EQ(h.cumulative_count(3), 6u);
    EXPECT_EQ(h.count(), 6u);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
    Registry registry;
    auto& counters = registry.counter("hits_total", "Hits.", {"shard"});
    auto& gauge = registry.gauge("level", "Level.").labels();
    auto& histogram = registry.histogram("work_seconds", "Work.", {}, {0.5}).labels();
    constexpr int kThreads = 4, kPerThread = 50'000;
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                // Every thread also creates its own child concurrently with the others.
                auto& own = counters.labels({std::to_string(t)});
                auto& shared = counters.labels({"shared"});
                for (int i = 0; i < kPerThread; ++i) {
                    shared.inc();
                    own.inc(2);
                    gauge.inc(1.0);
                    histogram.observe(i % 2 == 0 ? 0.25 : 1.0);
                }
            });
        }
    }
    EXPECT_EQ(counters.labels({"shared"}).value(), static_cast<std::uint64_t>(kThreads * kPerThread));
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(counters.labels({std::to_string(t)}).value(), static_cast<std::uint64_t>(2 * kPerThread));
    }
    EXPECT_EQ(gauge.value(), kThreads * kPerThread);
    EXPECT_EQ(histogram.count(), static_cast<std::uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(histogram.cumulative_count(0), static_cast<std::uint64_t>(kThreads * kPerThread / 2));
    EXPECT_EQ(histogram.sum(), kThreads * kPerThread / 2 * 1.25);
}

TEST(Metrics, DefaultRegistryIsProcessWide) {
    EXPECT_EQ(&default_registry(), &default_registry());
    auto& c = default_registry().counter("telemetry_test_default_total", "Test.");
    c.labels().inc();
    EXPECT_NE(default_registry().render().find("telemetry_test_default_total 1\n"), std::string::npos);
}

TEST(Metrics, DefaultLatencyBucketsSpanHalfAMillisecondToTenSeconds) {
    const auto b = default_latency_buckets();
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(b.front(), 0.0005);
    EXPECT_EQ(b.back(), 10.0);
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(TextFormat, FormatsFloatsLikeGo) {
    EXPECT_EQ(prom(0), "0");
    EXPECT_EQ(prom(1), "1");
    EXPECT_EQ(prom(2.5), "2.5");
    EXPECT_EQ(prom(0.0005), "0.0005");
    EXPECT_EQ(prom(0.00001), "1e-05");
    EXPECT_EQ(prom(123456), "123456");
    EXPECT_EQ(prom(1e6), "1e+06");
    EXPECT_EQ(prom(1234567), "1.234567e+06");
    EXPECT_EQ(prom(-3e-7), "-3e-07");
    EXPECT_EQ(prom(1e300), "1e+300");
    EXPECT_EQ(prom(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(prom(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(prom(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Metrics, OutputPassesPromtool) {
    const std::string promtool = find_on_path("promtool");
    if (promtool.empty()) GTEST_SKIP() << "promtool is not on PATH";
    Registry registry;
    fill_sample_registry(registry);
    const std::string text = registry.render();

    const auto path = std::filesystem::path(::testing::TempDir()) /
                      ("plexus_metrics_" + std::to_string(::getpid()) + ".prom");
    {
        std::ofstream file(path, std::ios::binary);
        file << text;
    }
    const auto result = run_with_stdin_file("'" + promtool + "' check metrics", path.string());
    std::filesystem::remove(path);
    EXPECT_EQ(result.exit_code, 0) << result.output << "\n--- input ---\n" << text;
    EXPECT_EQ(result.output, "") << "--- input ---\n" << text;
}
