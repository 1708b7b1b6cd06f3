#include "plexus/resilience/retry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include "plexus/core/clock.hpp"

using namespace plexus;
using namespace plexus::resilience;
using namespace std::chrono_literals;

TEST(Retry, DefaultsRetryConnectFailuresResetsAnd502To504) {
    RetrySettings r;
    EXPECT_TRUE(retryable(r, true, Failure::connect_failure, 0));
    EXPECT_TRUE(retryable(r, true, Failure::reset, 0));
    EXPECT_FALSE(retryable(r, true, Failure::timeout, 0));
    EXPECT_FALSE(retryable(r, true, Failure::protocol, 0));
    EXPECT_TRUE(retryable(r, true, Failure::none, 502));
    EXPECT_TRUE(retryable(r, true, Failure::none, 503));
    EXPECT_TRUE(retryable(r, true, Failure::none, 504));
    EXPECT_FALSE(retryable(r, true, Failure::none, 500));
    EXPECT_FALSE(retryable(r, true, Failure::none, 505));
    EXPECT_FALSE(retryable(r, true, Failure::none, 200));
    EXPECT_FALSE(retryable(r, true, Failure::none, 404));
}

TEST(Retry, NonIdempotentOnlyWhenAllowed) {
    RetrySettings r;
    EXPECT_FALSE(retryable(r, false, Failure::connect_failure, 0));
    EXPECT_FALSE(retryable(r, false, Failure::reset, 0));
    EXPECT_FALSE(retryable(r, false, Failure::none, 503));
    r.non_idempotent = true;
    EXPECT_TRUE(retryable(r, false, Failure::connect_failure, 0));
    EXPECT_TRUE(retryable(r, false, Failure::reset, 0));
    EXPECT_TRUE(retryable(r, false, Failure::none, 503));
    EXPECT_FALSE(retryable(r, false, Failure::none, 500));
    EXPECT_FALSE(retryable(r, false, Failure::protocol, 0));
}

TEST(Retry, ConditionsFollowTheFlags) {
    RetrySettings r;
    r.on.connect_failure = false;
    r.on.reset = false;
    r.on.timeout = true;
    r.on.statuses.reset();
    r.on.statuses.set(0);   // 500
    r.on.statuses.set(99);  // 599
    EXPECT_FALSE(retryable(r, true, Failure::connect_failure, 0));
    EXPECT_FALSE(retryable(r, true, Failure::reset, 0));
    EXPECT_TRUE(retryable(r, true, Failure::timeout, 0));
    EXPECT_FALSE(retryable(r, true, Failure::protocol, 0));
    EXPECT_TRUE(retryable(r, true, Failure::none, 500));
    EXPECT_TRUE(retryable(r, true, Failure::none, 599));
    EXPECT_FALSE(retryable(r, true, Failure::none, 503));
    EXPECT_FALSE(retryable(r, true, Failure::none, 600));
    EXPECT_FALSE(retryable(r, true, Failure::none, 499));
    EXPECT_FALSE(retryable(r, true, Failure::none, -1));
}

TEST(Retry, BackoffIsFullJitterUpToTheExponentialCap) {
    RetrySettings r;
    r.backoff = 25ms;
    r.max_backoff = 250ms;
    // random % (cap + 1)
    EXPECT_EQ(backoff_delay(r, 1, 0), 0ms);
    EXPECT_EQ(backoff_delay(r, 1, 25), 25ms);
    EXPECT_EQ(backoff_delay(r, 1, 26), 0ms);
    EXPECT_EQ(backoff_delay(r, 1, 37), 11ms);
    EXPECT_EQ(backoff_delay(r, 2, 50), 50ms);
    EXPECT_EQ(backoff_delay(r, 2, 51), 0ms);
    EXPECT_EQ(backoff_delay(r, 3, 100), 100ms);
    EXPECT_EQ(backoff_delay(r, 4, 200), 200ms);
    EXPECT_EQ(backoff_delay(r, 5, 250), 250ms);  // 400 capped at 250
    EXPECT_EQ(backoff_delay(r, 5, 251), 0ms);
}

TEST(Retry, BackoffSurvivesHugeRetryNumbersAndOddSettings) {
    RetrySettings r;
    r.backoff = 25ms;
    r.max_backoff = 250ms;
    const auto max = std::numeric_limits<std::uint64_t>::max();
    for (int n : {30, 62, 63, 64, 1000, std::numeric_limits<int>::max()}) {
        EXPECT_EQ(backoff_delay(r, n, 250), 250ms) << n;
        EXPECT_EQ(backoff_delay(r, n, max), std::chrono::milliseconds(max % 251)) << n;
    }
    EXPECT_EQ(backoff_delay(r, 0, 25), 25ms);  // treated as the first retry
    EXPECT_EQ(backoff_delay(r, -5, 26), 0ms);
    r.max_backoff = 10ms;  // below the base: the cap wins
    EXPECT_EQ(backoff_delay(r, 1, 10), 10ms);
    EXPECT_EQ(backoff_delay(r, 1, 11), 0ms);
    r.backoff = 0ms;
    EXPECT_EQ(backoff_delay(r, 3, 12345), 0ms);
    r.backoff = std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max() / 2);
    r.max_backoff = std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max() / 2);
    EXPECT_LE(backoff_delay(r, 40, max), r.max_backoff);
}

TEST(Retry, BackoffWithRealRandomnessCoversTheRange) {
    RetrySettings r;
    r.backoff = 20ms;
    r.max_backoff = 250ms;
    std::set<std::int64_t> seen;
    for (int i = 0; i < 20000; ++i) {
        auto d = backoff_delay(r, 2, fast_random());
        ASSERT_GE(d, 0ms);
        ASSERT_LE(d, 40ms);
        seen.insert(d.count());
    }
    EXPECT_EQ(seen.size(), 41u);  // every value 0..40 appears
}

TEST(Retry, FastRandomDiffersBetweenCallsAndThreads) {
    std::set<std::uint64_t> mine;
    for (int i = 0; i < 1000; ++i) mine.insert(fast_random());
    EXPECT_EQ(mine.size(), 1000u);
    std::uint64_t other = 0;
    std::thread([&] { other = fast_random(); }).join();
    EXPECT_FALSE(mine.contains(other));
}

TEST(RetryBudget, AllowsARatioOfRequests) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 0.2, .min_per_second = 0, .window = 10s}, clock);
    EXPECT_FALSE(budget.try_retry());
    for (int i = 0; i < 100; ++i) budget.on_request();
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(budget.try_retry()) << i;
    EXPECT_FALSE(budget.try_retry());
    EXPECT_EQ(budget.requests(), 100u);
    EXPECT_EQ(budget.retries(), 20u);
    for (int i = 0; i < 5; ++i) budget.on_request();
    EXPECT_TRUE(budget.try_retry());
    EXPECT_FALSE(budget.try_retry());
}

TEST(RetryBudget, MinPerSecondIsAFloorForLowTraffic) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 0.1, .min_per_second = 1, .window = 10s}, clock);
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(budget.try_retry()) << i;  // 1/s × 10 s
    EXPECT_FALSE(budget.try_retry());
    for (int i = 0; i < 20; ++i) budget.on_request();  // + 0.1 × 20
    EXPECT_TRUE(budget.try_retry());
    EXPECT_TRUE(budget.try_retry());
    EXPECT_FALSE(budget.try_retry());
}

TEST(RetryBudget, OldSecondsLeaveTheWindow) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 0.5, .min_per_second = 0, .window = 10s}, clock);
    for (int i = 0; i < 10; ++i) budget.on_request();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(budget.try_retry());
    EXPECT_FALSE(budget.try_retry());
    clock.advance(5s);
    for (int i = 0; i < 4; ++i) budget.on_request();
    EXPECT_EQ(budget.requests(), 14u);
    EXPECT_TRUE(budget.try_retry());  // 6 of 7 allowed
    EXPECT_TRUE(budget.try_retry());
    EXPECT_FALSE(budget.try_retry());
    clock.advance(5s);  // the first second has left the window
    EXPECT_EQ(budget.requests(), 4u);
    EXPECT_EQ(budget.retries(), 2u);
    EXPECT_FALSE(budget.try_retry());  // 2 + 1 > 0.5 × 4
    clock.advance(5s);
    EXPECT_EQ(budget.requests(), 0u);
    EXPECT_EQ(budget.retries(), 0u);
    budget.on_request();
    budget.on_request();
    EXPECT_TRUE(budget.try_retry());
    EXPECT_FALSE(budget.try_retry());
}

TEST(RetryBudget, ReusedBucketsStartFromZero) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 1, .min_per_second = 0, .window = 2s}, clock);
    for (int i = 0; i < 7; ++i) budget.on_request();
    clock.advance(2s);  // the same bucket, two seconds later
    budget.on_request();
    EXPECT_EQ(budget.requests(), 1u);
    EXPECT_TRUE(budget.try_retry());
    EXPECT_FALSE(budget.try_retry());
}

TEST(RetryBudget, WindowIsRoundedUpToWholeSeconds) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 1, .min_per_second = 0, .window = 1500ms}, clock);
    budget.on_request();
    clock.advance(1s);
    EXPECT_EQ(budget.requests(), 1u);  // two seconds of window
    clock.advance(1s);
    EXPECT_EQ(budget.requests(), 0u);

    RetryBudget tiny({.ratio = 1, .min_per_second = 3, .window = 0ms}, clock);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(tiny.try_retry());  // at least one second
    EXPECT_FALSE(tiny.try_retry());
    clock.advance(1s);
    EXPECT_TRUE(tiny.try_retry());
}

TEST(RetryBudget, ConcurrentRequestsAreAllCounted) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 0.2, .min_per_second = 0, .window = 10s}, clock);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) budget.on_request();
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(budget.requests(), 40000u);
    int granted = 0;
    while (budget.try_retry()) ++granted;
    EXPECT_EQ(granted, 8000);
}

TEST(RetryBudget, ConcurrentRequestsIntoAReusedBucketAreAllCounted) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 0.2, .min_per_second = 0, .window = 1s}, clock);
    for (int i = 0; i < 500; ++i) budget.on_request();
    for (int round = 0; round < 20; ++round) {
        clock.advance(1s);  // every thread races to reuse the one bucket
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < 1000; ++i) budget.on_request();
            });
        }
        for (auto& t : threads) t.join();
        ASSERT_EQ(budget.requests(), 4000u) << "round " << round;
    }
}

TEST(RetryBudget, ConcurrentRetriesNeverOverdrawTheBudget) {
    core::ManualClock clock;
    RetryBudget budget({.ratio = 0.2, .min_per_second = 1, .window = 10s}, clock);
    for (int i = 0; i < 100; ++i) budget.on_request();  // 10 + 0.2 × 100 = 30 retries
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                if (budget.try_retry()) granted.fetch_add(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(granted.load(), 30);
    EXPECT_EQ(budget.retries(), 30u);
}
