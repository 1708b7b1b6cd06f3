// How a failed call is answered (describe_failure, failure_response) and how a static fallback
// replaces an answer (fallback_response), for every outcome, without a network.

#include "plexus/discovery/call.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "plexus/net/client.hpp"

using namespace plexus;
using namespace std::chrono_literals;
using discovery::CallOutcome;
using discovery::CallReport;
namespace json = boost::json;

namespace {

CallReport report_of(CallOutcome outcome, ErrorCode error = {}) {
    CallReport r;
    r.outcome = outcome;
    r.error = error;
    return r;
}

}  // namespace

TEST(DescribeFailure, RefusalsOnOurSideAre503NamingTheUpstream) {
    struct Case {
        CallOutcome outcome;
        const char* detail;
    };
    for (const auto& c :
         {Case{CallOutcome::no_instance, "no healthy instance of catalog"},
          Case{CallOutcome::circuit_open, "the circuit breaker of catalog is open"},
          Case{CallOutcome::bulkhead_full, "too many concurrent calls to catalog"},
          Case{CallOutcome::fault_abort, "fault injected: the call to catalog was aborted"}}) {
        auto a = discovery::describe_failure(report_of(c.outcome), "catalog", 5s);
        EXPECT_EQ(a.status, 503) << discovery::to_string(c.outcome);
        EXPECT_EQ(a.title, "Service Unavailable");
        EXPECT_EQ(a.detail, c.detail);
    }
}

TEST(DescribeFailure, TimeoutIs504SayingAfterHowLong) {
    auto a = discovery::describe_failure(report_of(CallOutcome::timeout), "inventory", 600ms);
    EXPECT_EQ(a.status, 504);
    EXPECT_EQ(a.title, "Gateway Timeout");
    EXPECT_EQ(a.detail, "inventory did not answer within 600ms");
    EXPECT_EQ(discovery::describe_failure(report_of(CallOutcome::timeout), "inventory", 2s).detail,
              "inventory did not answer within 2s");
}

TEST(DescribeFailure, NetworkFailuresAre502WithTheErrorOrTheOutcome) {
    auto refused = discovery::describe_failure(
        report_of(CallOutcome::connect_failure, make_error_code(net::errc::connect_failed)), "catalog", 5s);
    EXPECT_EQ(refused.status, 502);
    EXPECT_EQ(refused.title, "Bad Gateway");
    EXPECT_EQ(refused.detail, "catalog failed: " + make_error_code(net::errc::connect_failed).message());

    // Without an error (a reset counted, say, after a retry lost it), the outcome is named.
    for (auto o : {CallOutcome::reset, CallOutcome::protocol, CallOutcome::connect_failure}) {
        auto a = discovery::describe_failure(report_of(o), "catalog", 5s);
        EXPECT_EQ(a.status, 502) << discovery::to_string(o);
        EXPECT_EQ(a.detail, "catalog failed: " + std::string(discovery::to_string(o)));
    }
}

TEST(FailureResponse, IsAProblemWithTheCircuitHeaderOnlyForAnOpenBreaker) {
    net::Response res;
    res.status = 200;
    res.headers.set("X-Left-Over", "from the upstream");
    res.body = "partial";
    discovery::failure_response(report_of(CallOutcome::circuit_open), "catalog", 5s, "/api/products", res);
    EXPECT_EQ(res.status, 503);
    EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json");
    EXPECT_EQ(res.headers.get("X-Plexus-Circuit"), "catalog");
    EXPECT_FALSE(res.headers.get("X-Left-Over"));
    auto problem = json::parse(res.body).as_object();
    EXPECT_EQ(problem.at("status").as_int64(), 503);
    EXPECT_EQ(problem.at("title").as_string(), "Service Unavailable");
    EXPECT_EQ(problem.at("detail").as_string(), "the circuit breaker of catalog is open");
    EXPECT_EQ(problem.at("instance").as_string(), "/api/products");

    discovery::failure_response(report_of(CallOutcome::timeout), "catalog", 250ms, "/x", res);
    EXPECT_EQ(res.status, 504);
    EXPECT_FALSE(res.headers.get("X-Plexus-Circuit"));
    EXPECT_EQ(json::parse(res.body).at("detail").as_string(), "catalog did not answer within 250ms");
}

TEST(FallbackResponse, ReplacesTheAnswerAndSaysWhy) {
    resilience::FallbackSettings fb;
    fb.enabled = true;
    fb.status = 200;
    fb.content_type = "application/json";
    fb.body = R"({"items":[]})";
    net::Response res;
    res.problem(502, "Bad Gateway", "catalog failed");
    res.headers.set("X-Plexus-Circuit", "catalog");
    discovery::fallback_response(fb, "circuit_open", res);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, R"({"items":[]})");
    EXPECT_EQ(res.headers.get("Content-Type"), "application/json");
    EXPECT_EQ(res.headers.get("X-Plexus-Fallback"), "circuit_open");
    EXPECT_FALSE(res.headers.get("X-Plexus-Circuit"));

    // No content type configured: none is sent, and the status is the configured one.
    fb.content_type.clear();
    fb.status = 203;
    fb.body.clear();
    discovery::fallback_response(fb, "timeout", res);
    EXPECT_EQ(res.status, 203);
    EXPECT_TRUE(res.body.empty());
    EXPECT_FALSE(res.headers.get("Content-Type"));
    EXPECT_EQ(res.headers.get("X-Plexus-Fallback"), "timeout");
}

TEST(WantsFallback, OnFailuresAnd5xxAnswersOnly) {
    net::Response res;
    res.status = 503;
    EXPECT_TRUE(discovery::wants_fallback(report_of(CallOutcome::answered), res));
    res.status = 404;
    EXPECT_FALSE(discovery::wants_fallback(report_of(CallOutcome::answered), res));
    EXPECT_TRUE(discovery::wants_fallback(report_of(CallOutcome::timeout), res));
}
