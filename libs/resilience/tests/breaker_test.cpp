#include "plexus/resilience/breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "plexus/core/clock.hpp"

using namespace plexus;
using namespace plexus::resilience;
using namespace std::chrono_literals;

namespace {

constexpr auto kFast = 10ms;
constexpr auto kSlow = 2s;

BreakerSettings count_window(int size, int minimum_calls) {
    BreakerSettings s;
    s.window = WindowType::count;
    s.size = size;
    s.minimum_calls = minimum_calls;
    s.failure_rate = 50;
    s.slow_call_rate = 100;
    s.slow_call_duration = 1s;
    s.open_for = 5s;
    s.half_open_calls = 3;
    return s;
}

BreakerSettings time_window(int seconds, int minimum_calls) {
    auto s = count_window(seconds, minimum_calls);
    s.window = WindowType::time;
    return s;
}

void succeed(CircuitBreaker& b, int n, std::chrono::nanoseconds d = kFast) {
    for (int i = 0; i < n; ++i) {
        ASSERT_TRUE(b.try_acquire());
        b.on_success(d);
    }
}

void fail(CircuitBreaker& b, int n, std::chrono::nanoseconds d = kFast) {
    for (int i = 0; i < n; ++i) {
        ASSERT_TRUE(b.try_acquire());
        b.on_error(d);
    }
}

// Opens a breaker made with count_window(10, 5): five failures.
void trip(CircuitBreaker& b) {
    fail(b, 5);
    ASSERT_EQ(b.state(), BreakerState::open);
}

using Transitions = std::vector<std::pair<BreakerState, BreakerState>>;

}  // namespace

TEST(CircuitBreaker, StateNames) {
    EXPECT_EQ(to_string(BreakerState::closed), "closed");
    EXPECT_EQ(to_string(BreakerState::open), "open");
    EXPECT_EQ(to_string(BreakerState::half_open), "half_open");
    EXPECT_EQ(to_string(BreakerState::disabled), "disabled");
}

TEST(CircuitBreaker, NoVerdictBeforeMinimumCalls) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    fail(b, 4);
    EXPECT_EQ(b.state(), BreakerState::closed);
    auto s = b.stats();
    EXPECT_EQ(s.buffered_calls, 4);
    EXPECT_EQ(s.failed_calls, 4);
    EXPECT_EQ(s.failure_rate, -1);
    EXPECT_EQ(s.slow_call_rate, -1);
    fail(b, 1);
    EXPECT_EQ(b.state(), BreakerState::open);
    EXPECT_EQ(b.stats().failure_rate, 100);
}

TEST(CircuitBreaker, OpensWhenFailureRateReachesThreshold) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    succeed(b, 5);
    fail(b, 4);  // 4 of 9: 44%
    EXPECT_EQ(b.state(), BreakerState::closed);
    EXPECT_NEAR(b.stats().failure_rate, 400.0 / 9, 1e-9);
    fail(b, 1);  // 5 of 10: exactly the threshold
    EXPECT_EQ(b.state(), BreakerState::open);
    auto s = b.stats();
    EXPECT_EQ(s.failure_rate, 50);
    EXPECT_EQ(s.transitions, 1u);
    EXPECT_EQ(s.opened_at, clock.now());
}

TEST(CircuitBreaker, SuccessCanCompleteMinimumCallsAndOpen) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    fail(b, 4);
    succeed(b, 1);  // 4 of 5 failed once the fifth call arrives
    EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, CountWindowForgetsTheOldestCalls) {
    core::ManualClock clock;
    auto settings = count_window(4, 4);
    settings.failure_rate = 75;
    CircuitBreaker b("inv", settings, clock);
    fail(b, 2);
    succeed(b, 2);  // 50%
    EXPECT_EQ(b.state(), BreakerState::closed);
    succeed(b, 2);  // both failures slid out
    auto s = b.stats();
    EXPECT_EQ(s.buffered_calls, 4);
    EXPECT_EQ(s.failed_calls, 0);
    EXPECT_EQ(s.failure_rate, 0);
    fail(b, 2);  // 2 of the last 4
    EXPECT_EQ(b.state(), BreakerState::closed);
    fail(b, 1);  // 3 of the last 4: 75%
    EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, MinimumCallsAboveCountWindowSizeIsCappedAtSize) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(3, 20), clock);
    fail(b, 2);
    EXPECT_EQ(b.state(), BreakerState::closed);
    fail(b, 1);
    EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, OpensOnSlowCallRate) {
    core::ManualClock clock;
    auto settings = count_window(10, 4);
    settings.slow_call_rate = 50;
    CircuitBreaker b("inv", settings, clock);
    succeed(b, 2, 999ms);
    succeed(b, 1, 1s);  // exactly slow_call_duration counts as slow
    EXPECT_EQ(b.state(), BreakerState::closed);
    EXPECT_EQ(b.stats().slow_calls, 1);
    succeed(b, 1, kSlow);  // 2 of 4 slow
    EXPECT_EQ(b.state(), BreakerState::open);
    auto s = b.stats();
    EXPECT_EQ(s.slow_call_rate, 50);
    EXPECT_EQ(s.failure_rate, 0);
}

TEST(CircuitBreaker, FailedCallsCanAlsoBeSlow) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 10), clock);
    fail(b, 2, kSlow);
    succeed(b, 1, kSlow);
    succeed(b, 1, kFast);
    auto s = b.stats();
    EXPECT_EQ(s.buffered_calls, 4);
    EXPECT_EQ(s.failed_calls, 2);
    EXPECT_EQ(s.slow_calls, 3);
}

TEST(CircuitBreaker, TimeWindowCountsTheLastSizeSeconds) {
    core::ManualClock clock;
    CircuitBreaker b("inv", time_window(10, 4), clock);
    fail(b, 3);
    clock.advance(9s);
    EXPECT_EQ(b.stats().buffered_calls, 3);  // second 0 is still inside (0, 9]
    clock.advance(1s);
    auto s = b.stats();
    EXPECT_EQ(s.buffered_calls, 0);
    EXPECT_EQ(s.failed_calls, 0);

    // The expired failures do not count towards minimum_calls or the rate.
    succeed(b, 2);
    fail(b, 1);
    EXPECT_EQ(b.state(), BreakerState::closed);
    EXPECT_EQ(b.stats().buffered_calls, 3);
    fail(b, 1);  // 2 of 4
    EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, TimeWindowDropsSecondsOneByOne) {
    core::ManualClock clock;
    CircuitBreaker b("inv", time_window(3, 100), clock);
    fail(b, 1);  // second 0
    clock.advance(1s);
    succeed(b, 2);  // second 1
    clock.advance(1s);
    succeed(b, 4);  // second 2
    EXPECT_EQ(b.stats().buffered_calls, 7);
    clock.advance(1s);
    auto s = b.stats();
    EXPECT_EQ(s.buffered_calls, 6);
    EXPECT_EQ(s.failed_calls, 0);
    clock.advance(1s);
    EXPECT_EQ(b.stats().buffered_calls, 4);
    clock.advance(10s);  // a long idle gap clears everything
    EXPECT_EQ(b.stats().buffered_calls, 0);
    succeed(b, 1);
    EXPECT_EQ(b.stats().buffered_calls, 1);
}

TEST(CircuitBreaker, TimeWindowMinimumCallsSpansSeconds) {
    core::ManualClock clock;
    CircuitBreaker b("inv", time_window(10, 4), clock);
    for (int i = 0; i < 3; ++i) {
        fail(b, 1);
        clock.advance(2s);
    }
    EXPECT_EQ(b.state(), BreakerState::closed);
    fail(b, 1);  // the fourth call within 10 s
    EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, OpenRefusesUntilOpenForThenHalfOpens) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    EXPECT_FALSE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.stats().not_permitted, 2u);
    clock.advance(5s - 1ms);
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.state(), BreakerState::open);
    clock.advance(1ms);
    EXPECT_EQ(b.state(), BreakerState::half_open);
    EXPECT_TRUE(b.try_acquire());
    EXPECT_EQ(b.stats().not_permitted, 3u);
}

TEST(CircuitBreaker, TryAcquireMovesOpenToHalfOpen) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    clock.advance(5s);
    EXPECT_TRUE(b.try_acquire());  // no state() call in between
    auto s = b.stats();
    EXPECT_EQ(s.state, BreakerState::half_open);
    EXPECT_EQ(s.transitions, 2u);
}

TEST(CircuitBreaker, HalfOpenPermitsExactlyHalfOpenCalls) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    clock.advance(5s);
    EXPECT_TRUE(b.try_acquire());
    EXPECT_TRUE(b.try_acquire());
    EXPECT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.stats().not_permitted, 2u);
    // Two outcomes of three: still half-open, still no permits.
    b.on_success(kFast);
    b.on_success(kFast);
    EXPECT_EQ(b.state(), BreakerState::half_open);
    EXPECT_FALSE(b.try_acquire());
}

TEST(CircuitBreaker, HalfOpenClosesWhenTrialsPassWithAClearedWindow) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    clock.advance(5s);
    succeed(b, 2);
    fail(b, 1);  // 33%: below the 50% threshold; minimum_calls (5) does not apply
    EXPECT_EQ(b.state(), BreakerState::closed);
    auto s = b.stats();
    EXPECT_EQ(s.buffered_calls, 0);
    EXPECT_EQ(s.failed_calls, 0);
    EXPECT_EQ(s.transitions, 3u);
    // The old failures are gone: four new failures do not reopen it.
    fail(b, 4);
    EXPECT_EQ(b.state(), BreakerState::closed);
}

TEST(CircuitBreaker, HalfOpenReopensWhenTrialsFail) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    clock.advance(5s);
    succeed(b, 1);
    fail(b, 2);  // 66%
    EXPECT_EQ(b.state(), BreakerState::open);
    auto s = b.stats();
    EXPECT_EQ(s.opened_at, clock.now());
    EXPECT_EQ(s.buffered_calls, 3);
    EXPECT_EQ(s.failed_calls, 2);
    EXPECT_FALSE(b.try_acquire());
    clock.advance(5s - 1ms);
    EXPECT_FALSE(b.try_acquire());
    clock.advance(1ms);
    EXPECT_TRUE(b.try_acquire());
}

TEST(CircuitBreaker, HalfOpenReopensOnSlowTrials) {
    core::ManualClock clock;
    auto settings = count_window(10, 5);
    settings.slow_call_rate = 60;
    CircuitBreaker b("inv", settings, clock);
    trip(b);
    clock.advance(5s);
    succeed(b, 2, kSlow);
    succeed(b, 1, kFast);  // 66% slow
    EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, ReleaseGivesBackAHalfOpenPermit) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    clock.advance(5s);
    ASSERT_TRUE(b.try_acquire());
    ASSERT_TRUE(b.try_acquire());
    ASSERT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    b.release();
    EXPECT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    // Released calls are not outcomes: the trial still needs three.
    b.on_success(kFast);
    b.on_success(kFast);
    EXPECT_EQ(b.state(), BreakerState::half_open);
    b.on_success(kFast);
    EXPECT_EQ(b.state(), BreakerState::closed);
}

TEST(CircuitBreaker, ReleaseNeverExceedsHalfOpenCalls) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    trip(b);
    clock.advance(5s);
    ASSERT_TRUE(b.try_acquire());
    b.release();
    b.release();  // one too many
    EXPECT_TRUE(b.try_acquire());
    EXPECT_TRUE(b.try_acquire());
    EXPECT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
}

TEST(CircuitBreaker, ReleaseInClosedChangesNothing) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    fail(b, 4);
    ASSERT_TRUE(b.try_acquire());
    b.release();
    auto s = b.stats();
    EXPECT_EQ(s.state, BreakerState::closed);
    EXPECT_EQ(s.buffered_calls, 4);
    EXPECT_EQ(s.transitions, 0u);
}

TEST(CircuitBreaker, OutcomesWhileOpenAreIgnored) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    ASSERT_TRUE(b.try_acquire());  // permitted before the breaker opens
    trip(b);
    b.on_success(kFast);
    auto s = b.stats();
    EXPECT_EQ(s.state, BreakerState::open);
    EXPECT_EQ(s.buffered_calls, 5);
    EXPECT_EQ(s.failed_calls, 5);
}

TEST(CircuitBreaker, DisabledPermitsEverythingAndRecordsNothing) {
    core::ManualClock clock;
    auto settings = count_window(10, 5);
    settings.enabled = false;
    CircuitBreaker b("inv", settings, clock);
    EXPECT_EQ(b.state(), BreakerState::disabled);
    fail(b, 100);
    EXPECT_EQ(b.state(), BreakerState::disabled);
    EXPECT_TRUE(b.try_acquire());
    b.reset();
    auto s = b.stats();
    EXPECT_EQ(s.state, BreakerState::disabled);
    EXPECT_EQ(s.buffered_calls, 0);
    EXPECT_EQ(s.transitions, 0u);
    EXPECT_EQ(s.not_permitted, 0u);
}

TEST(CircuitBreaker, ListenerSeesEveryTransitionInOrderOutsideTheLock) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    Transitions seen;
    std::vector<BreakerState> reported;
    b.on_transition([&](BreakerState from, BreakerState to) {
        seen.emplace_back(from, to);
        reported.push_back(b.stats().state);  // would deadlock if called under the lock
    });
    trip(b);
    clock.advance(5s);
    fail(b, 3);  // half-open → open
    clock.advance(5s);
    succeed(b, 3);  // half-open → closed
    trip(b);
    b.reset();
    const Transitions expected = {
        {BreakerState::closed, BreakerState::open},      {BreakerState::open, BreakerState::half_open},
        {BreakerState::half_open, BreakerState::open},   {BreakerState::open, BreakerState::half_open},
        {BreakerState::half_open, BreakerState::closed}, {BreakerState::closed, BreakerState::open},
        {BreakerState::open, BreakerState::closed},
    };
    EXPECT_EQ(seen, expected);
    const std::vector<BreakerState> states = {
        BreakerState::open,   BreakerState::half_open, BreakerState::open,  BreakerState::half_open,
        BreakerState::closed, BreakerState::open,      BreakerState::closed};
    EXPECT_EQ(reported, states);
    EXPECT_EQ(b.stats().transitions, 7u);
}

TEST(CircuitBreaker, ResetClosesWithAnEmptyWindow) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(10, 5), clock);
    fail(b, 4);
    b.reset();  // already closed: only the window is cleared
    EXPECT_EQ(b.stats().buffered_calls, 0);
    EXPECT_EQ(b.stats().transitions, 0u);
    trip(b);
    b.reset();
    EXPECT_EQ(b.state(), BreakerState::closed);
    EXPECT_TRUE(b.try_acquire());
    EXPECT_EQ(b.stats().buffered_calls, 0);
}

TEST(CircuitBreaker, ConcurrentCallsAreAllCounted) {
    constexpr int kThreads = 4;
    constexpr int kCalls = 5000;
    core::ManualClock clock;
    // The verdict comes with the last call (50% < 100%), so the breaker stays closed throughout.
    auto settings = time_window(60, kThreads * kCalls);
    settings.failure_rate = 100;
    CircuitBreaker b("inv", settings, clock);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&b, t] {
            for (int i = 0; i < kCalls; ++i) {
                if (!b.try_acquire()) continue;
                if (t % 2 == 0) {
                    b.on_success(kFast);
                } else {
                    b.on_error(kSlow);
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    auto s = b.stats();
    EXPECT_EQ(s.state, BreakerState::closed);
    EXPECT_EQ(s.buffered_calls, kThreads * kCalls);
    EXPECT_EQ(s.failed_calls, kThreads * kCalls / 2);
    EXPECT_EQ(s.slow_calls, kThreads * kCalls / 2);
    EXPECT_EQ(s.failure_rate, 50);
}

TEST(CircuitBreaker, ConcurrentSuccessesKeepACountWindowFull) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(100, 50), clock);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&b] {
            for (int i = 0; i < 5000; ++i) {
                if (b.try_acquire()) b.on_success(kFast);
            }
        });
    }
    for (auto& t : threads) t.join();
    auto s = b.stats();
    EXPECT_EQ(s.state, BreakerState::closed);
    EXPECT_EQ(s.buffered_calls, 100);
    EXPECT_EQ(s.failed_calls, 0);
    EXPECT_EQ(s.not_permitted, 0u);
}

TEST(CircuitBreaker, ConcurrentFailuresOpenItAndTheListenerEndsOnOpen) {
    core::ManualClock clock;
    CircuitBreaker b("inv", count_window(20, 10), clock);
    std::atomic<int> to_open{0};
    std::atomic<int> last{-1};
    b.on_transition([&](BreakerState, BreakerState to) {
        if (to == BreakerState::open) to_open.fetch_add(1);
        last.store(static_cast<int>(to));
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&b] {
            for (int i = 0; i < 2000; ++i) {
                if (b.try_acquire()) b.on_error(kFast);
            }
        });
    }
    for (auto& t : threads) t.join();
    auto s = b.stats();  // folds in what was left while the lock was taken
    EXPECT_EQ(s.state, BreakerState::open);
    EXPECT_EQ(to_open.load(), 1);  // open_for is 5 s on a manual clock: it never half-opens
    EXPECT_EQ(last.load(), static_cast<int>(BreakerState::open));
    EXPECT_GT(s.not_permitted, 0u);
}

TEST(CircuitBreaker, ConcurrentHalfOpenHandsOutExactlyThePermits) {
    core::ManualClock clock;
    auto settings = count_window(10, 5);
    settings.half_open_calls = 7;
    CircuitBreaker b("inv", settings, clock);
    trip(b);
    clock.advance(5s);
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i) {
                if (b.try_acquire()) granted.fetch_add(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(granted.load(), 7);
    EXPECT_EQ(b.stats().not_permitted, 393u);
}
