// Global rate limits: two "gateways" (each its own GlobalLimit and LeaseBatcher, as two processes
// would have) share one bucket of a real limit service over HTTP on loopback.

#include "rate_limit/global_limit.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "plexus/limits/limits.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/telemetry/log.hpp"

using namespace plexus;
using namespace std::chrono_literals;
using gateway::filters::GlobalLimit;
using gateway::filters::LeaseBatcher;

namespace {

class GlobalLimitTest : public ::testing::Test {
  protected:
    void SetUp() override {
        service_.add_routes(router_);
        http_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                              router_.body_limit_fn());
        http_->start();
        runner_ = std::thread([this] { runtime_.run(); });
    }
    void TearDown() override {
        runtime_.stop();
        runner_.join();
        http_.reset();
    }

    // A gateway's view of a limit: its own batcher (its own connection and batches).
    std::shared_ptr<GlobalLimit> gateway(std::uint16_t port, resilience::BucketSettings s,
                                         std::int64_t batch) {
        auto batcher = std::make_shared<LeaseBatcher>("http://127.0.0.1:" + std::to_string(port));
        batcher->start(runtime_.executor(0));
        batchers_.push_back(batcher);
        return std::make_shared<GlobalLimit>("products", s, batch, batcher, core::Clock::real());
    }

    // One request's verdict: the hot path, else the leasing path.
    bool admitted(GlobalLimit& limit, const std::string& key) {
        auto d = limit.take(key);
        if (d.verdict == GlobalLimit::Verdict::wait) {
            auto waited = net::run_blocking(runtime_.executor(0), limit.take_async(key), net::testing::kWait);
            if (!waited) throw std::runtime_error("no decision");
            d = *waited;
        }
        EXPECT_NE(d.verdict, GlobalLimit::Verdict::wait);
        return d.verdict == GlobalLimit::Verdict::allowed;
    }

    telemetry::Registry metrics_;
    limits::Server service_{metrics_};
    net::Router router_;
    net::Runtime runtime_{1};
    std::unique_ptr<net::Server> http_;
    std::thread runner_;
    std::vector<std::shared_ptr<LeaseBatcher>> batchers_;
};

TEST_F(GlobalLimitTest, TwoGatewaysShareOneBucketAndTogetherAdmitNoMoreThanIt) {
    // 20 at once, then one per hour: nothing refills during the test.
    resilience::BucketSettings s{.requests = 1, .per = 1h, .burst = 20, .max_keys = 1000};
    auto a = gateway(http_->port(), s, 5);
    auto b = gateway(http_->port(), s, 5);
    int allowed = 0;
    for (int i = 0; i < 30; ++i) {
        allowed += admitted(*a, "10.0.0.1");
        allowed += admitted(*b, "10.0.0.1");
    }
    EXPECT_EQ(allowed, 20);  // leases come only out of the shared bucket
    // Another key has a bucket of its own.
    EXPECT_TRUE(admitted(*a, "10.0.0.2"));
    // A refused key is refused locally until its retry time, without a lease request.
    auto leases = metrics_.render();
    auto refused = a->take("10.0.0.1");
    EXPECT_EQ(refused.verdict, GlobalLimit::Verdict::refused);
    EXPECT_GT(refused.retry_after, 0ms);
    EXPECT_EQ(metrics_.render(), leases);
}

TEST_F(GlobalLimitTest, SpendingIsLocalUntilTheLeaseRunsLow) {
    resilience::BucketSettings s{.requests = 1, .per = 1h, .burst = 100, .max_keys = 1000};
    auto a = gateway(http_->port(), s, 10);
    ASSERT_TRUE(admitted(*a, "k"));  // the first request of a key waits for its lease
    // The lease (10 tokens, one spent) serves the next requests on the hot path.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(a->take("k").verdict, GlobalLimit::Verdict::allowed) << i;
}

TEST_F(GlobalLimitTest, WithoutTheServiceEachGatewayFallsBackToALocalBucket) {
    std::string log;
    std::mutex log_mutex;
    telemetry::set_log_sink([&](std::string_view line) {
        std::lock_guard lock(log_mutex);
        log += line;
    });
    net::testing::ClosedPort closed;
    resilience::BucketSettings s{.requests = 1, .per = 1h, .burst = 3, .max_keys = 1000};
    auto a = gateway(closed.port(), s, 2);
    int allowed = 0;
    for (int i = 0; i < 5; ++i) allowed += admitted(*a, "k");
    EXPECT_EQ(allowed, 3);  // the local bucket's burst
    telemetry::set_log_sink({});
    EXPECT_NE(log.find("limit service failing"), std::string::npos);
    EXPECT_THROW(LeaseBatcher("ftp://x"), std::invalid_argument);
}

}  // namespace

TEST(LimitService, LeasesTakeWholeTokensAndBadRequestsTakeNothing) {
    telemetry::Registry metrics;
    limits::Server service(metrics);
    resilience::BucketSettings s{.requests = 10, .per = 1h, .burst = 10};
    auto first = service.lease("r/k", s, 4);
    EXPECT_TRUE(first.allowed);
    EXPECT_EQ(first.remaining, 4);
    EXPECT_EQ(service.lease("r/k", s, 100).remaining, 6);  // what is left
    auto none = service.lease("r/k", s, 1);
    EXPECT_FALSE(none.allowed);
    EXPECT_GT(none.retry_after, 0ms);
    // Other settings, another bucket.
    EXPECT_EQ(service.lease("r/k", {.requests = 5, .per = 1h, .burst = 5}, 100).remaining, 5);

    net::Router router;
    service.add_routes(router);
    net::Runtime runtime(1);
    net::Server http(runtime, net::ServerSettings{}, router.handler(), router.body_limit_fn());
    http.start();
    std::thread runner([&] { runtime.run(); });
    auto post = [&](std::string body) {
        auto req = net::make_request("POST", "/v1/leases", std::move(body), "application/json");
        auto r = net::run_blocking(runtime.executor(0),
                                   net::testing::send_owned({"127.0.0.1", http.port()}, std::move(req), 5s),
                                   net::testing::kWait);
        return r && *r ? **r : net::Response{};
    };
    auto ok = post(R"({"leases":[{"bucket":"a/1","requests":10,"per_ms":1000,"burst":10,"want":3},)"
                   R"({"bucket":"a/2","requests":10,"per_ms":1000,"burst":2,"want":3}]})");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, R"({"granted":[{"tokens":3,"retry_after_ms":0},{"tokens":2,"retry_after_ms":0}]})");
    auto bad = post(R"({"leases":[{"bucket":"a/3","requests":10,"per_ms":1000,"burst":10,"want":3},)"
                    R"({"bucket":"a/4","requests":10,"per_ms":0,"burst":10,"want":3}]})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("leases[1].per_ms must be an integer from 1 to 86400000"), std::string::npos)
        << bad.body;
    EXPECT_EQ(post("[]").status, 400);
    // The bad request took nothing: a/3 still has its whole burst.
    EXPECT_EQ(service.lease("a/3", {.requests = 10, .per = std::chrono::milliseconds(1000), .burst = 10}, 100)
                  .remaining,
              10);
    runtime.stop();
    runner.join();
}
