// The request scope on its own: ids, deadline budgets, exceptions turned into answers, and what
// finish() counts, ends and logs.

#include "plexus/serving/request_scope.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace std::chrono_literals;

namespace {

class RequestScopeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        telemetry::set_log_sink([this](std::string_view line) {
            std::lock_guard lock(mutex_);
            lines_.emplace_back(line);
        });
    }
    void TearDown() override { telemetry::set_log_sink({}); }

    std::vector<std::string> lines(std::string_view needle) {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& l : lines_)
            if (l.find(needle) != std::string::npos) out.push_back(l);
        return out;
    }

    static net::Request request(
        std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {}) {
        auto req = net::make_request("GET", "/products/7?x=1");
        for (const auto& [n, v] : headers) req.headers.add(n, v);
        req.remote_address = "127.0.0.1";
        return req;
    }

    serving::RouteMeters meters(std::string_view route) {
        return serving::RouteMeters::of(requests_, {route}, duration_, {route});
    }

    std::string sample(std::string_view series) {
        auto text = registry_.render();
        auto at = text.find(series);
        if (at == std::string::npos) return "(absent)";
        return text.substr(at, text.find('\n', at) - at);
    }

    telemetry::Registry registry_;
    telemetry::CounterFamily& requests_ =
        registry_.counter("t_requests_total", "Requests.", {"route", "code_class"});
    telemetry::HistogramFamily& duration_ = registry_.histogram("t_duration_seconds", "Durations.", {"route"},
                                                                telemetry::default_latency_buckets());
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

TEST_F(RequestScopeTest, KeepsASaneRequestIdAndReplacesOthers) {
    auto kept = request({{"X-Request-Id", "abc-123"}});
    serving::RequestScope a(kept, "r");
    EXPECT_EQ(a.request_id(), "abc-123");

    auto spaced = request({{"X-Request-Id", "two words"}});
    serving::RequestScope b(spaced, "r");
    EXPECT_EQ(b.request_id().size(), 32u);
    EXPECT_EQ(spaced.headers.get("X-Request-Id").value_or(""), b.request_id());

    auto repeated = request({{"X-Request-Id", "first"}, {"X-Request-Id", "second"}});
    serving::RequestScope c(repeated, "r");
    EXPECT_EQ(c.request_id(), "first");
    int fields = 0;
    for (const auto& h : repeated.headers) fields += net::iequals(h.name(), "X-Request-Id");
    EXPECT_EQ(fields, 1);
}

TEST_F(RequestScopeTest, ContinuesTheCallersTrace) {
    auto req = request({{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
    serving::RequestScope scope(req, "r");
    EXPECT_EQ(scope.span().context().trace_id.hex(), "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(scope.span().name(), "GET r");
    EXPECT_EQ(std::string(scope.log_context().trace_id), "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(scope.log_context().request_id, scope.request_id());
}

TEST_F(RequestScopeTest, ReadsTheDeadlineBudget) {
    auto start = serving::Clock::now();
    auto none = request();
    serving::RequestScope a(none, "r", start);
    EXPECT_FALSE(a.budget());
    EXPECT_FALSE(a.deadline_malformed());
    EXPECT_EQ(a.deadline(5s), start + 5s);
    EXPECT_EQ(a.caller_deadline(), serving::Clock::time_point::max());

    auto some = request({{"X-Plexus-Deadline-Ms", "1500"}});
    serving::RequestScope b(some, "r", start);
    EXPECT_EQ(b.budget(), 1500ms);
    EXPECT_EQ(b.deadline(5s), start + 1500ms);
    EXPECT_EQ(b.deadline(1s), start + 1s);
    EXPECT_FALSE(b.deadline_spent());

    auto spent = request({{"X-Plexus-Deadline-Ms", "0"}});
    serving::RequestScope c(spent, "r", start);
    EXPECT_TRUE(c.deadline_spent());
    net::Response res;
    c.deadline_problem(res, "/p");
    EXPECT_EQ(res.status, 504);

    for (auto bad : {"abc", "-5", "", "12ms", "99999999999"}) {
        auto req = request({{"X-Plexus-Deadline-Ms", bad}});
        serving::RequestScope d(req, "r", start);
        EXPECT_TRUE(d.deadline_malformed()) << bad;
        EXPECT_FALSE(d.deadline_spent()) << bad;
        net::Response r;
        d.deadline_problem(r, "/p");
        EXPECT_EQ(r.status, 400) << bad;
        EXPECT_NE(r.body.find("X-Plexus-Deadline-Ms"), std::string::npos);
    }
}

TEST_F(RequestScopeTest, FinishCountsEndsAndLogsOnce) {
    auto req = request({{"X-Request-Id", "req-1"}});
    req.body = "abc";
    auto m = meters("products");
    serving::RequestScope scope(req, "products");
    net::Response res;
    res.text(201, "made");
    scope.finish(req, res, m, {.upstream = "catalog-1", .path = {}});
    EXPECT_EQ(res.headers.get("X-Request-Id").value_or(""), "req-1");
    EXPECT_TRUE(scope.span().ended());
    EXPECT_EQ(sample("t_requests_total{route=\"products\",code_class=\"2xx\"}"),
              "t_requests_total{route=\"products\",code_class=\"2xx\"} 1");
    EXPECT_EQ(sample("t_duration_seconds_count{route=\"products\"}"),
              "t_duration_seconds_count{route=\"products\"} 1");
    auto access = lines(R"("msg":"access")");
    ASSERT_EQ(access.size(), 1u);
    for (auto part : {R"("method":"GET")", R"("path":"/products/7")", R"("status":201)",
                      R"("route":"products")", R"("upstream":"catalog-1")", R"("bytes_in":3)",
                      R"("bytes_out":4)", R"("remote":"127.0.0.1")", R"("request_id":"req-1")"}) {
        EXPECT_NE(access[0].find(part), std::string::npos) << part << " in " << access[0];
    }
}

TEST_F(RequestScopeTest, AnExceptionBecomesItsProblemOrA500ThatIsLogged) {
    auto req = request();
    serving::RequestScope scope(req, "r");
    net::Response res;
    res.text(200, "partial");
    try {
        throw net::HttpError(409, "Conflict", "already there");
    } catch (...) {
        scope.answer_exception(res, req.path());
    }
    EXPECT_EQ(res.status, 409);
    EXPECT_NE(res.body.find("already there"), std::string::npos);
    EXPECT_TRUE(lines("handler failed").empty());

    try {
        throw std::runtime_error("disk on fire");
    } catch (...) {
        scope.answer_exception(res, req.path());
    }
    EXPECT_EQ(res.status, 500);
    EXPECT_EQ(res.body.find("disk on fire"), std::string::npos);  // not told to the client
    auto failed = lines("handler failed");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_NE(failed[0].find("disk on fire"), std::string::npos);

    try {
        throw 42;
    } catch (...) {
        scope.answer_exception(res, req.path());
    }
    EXPECT_EQ(res.status, 500);
    EXPECT_EQ(lines("handler failed").size(), 2u);
}

TEST(StatusClass, CountsOddStatusesAs5xx) {
    EXPECT_EQ(serving::status_class(101), 0u);
    EXPECT_EQ(serving::status_class(204), 1u);
    EXPECT_EQ(serving::status_class(404), 3u);
    EXPECT_EQ(serving::status_class(503), 4u);
    EXPECT_EQ(serving::status_class(0), 4u);
    EXPECT_EQ(serving::status_class(700), 4u);
}

}  // namespace
