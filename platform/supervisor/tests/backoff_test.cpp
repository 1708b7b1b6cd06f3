#include "plexus/supervisor/backoff.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plexus/core/clock.hpp"

using namespace plexus;
using namespace plexus::supervisor;
using namespace std::chrono_literals;

TEST(Backoff, DoublesFromInitialUpToMax) {
    RestartPolicy p{200ms, 10s, 30s};
    EXPECT_EQ(backoff_delay(p, 0), 0ms);
    EXPECT_EQ(backoff_delay(p, 1), 200ms);
    EXPECT_EQ(backoff_delay(p, 2), 400ms);
    EXPECT_EQ(backoff_delay(p, 3), 800ms);
    EXPECT_EQ(backoff_delay(p, 6), 6400ms);
    EXPECT_EQ(backoff_delay(p, 7), 10s);
    EXPECT_EQ(backoff_delay(p, 8), 10s);
    EXPECT_EQ(backoff_delay(RestartPolicy{1ms, 24h, 1s}, 1000000), 24h);  // no overflow
}

TEST(Backoff, CountsConsecutiveFailuresOnTheInjectedClock) {
    core::ManualClock clock;
    RestartBackoff backoff(RestartPolicy{200ms, 1s, 30s});
    EXPECT_EQ(backoff.consecutive_failures(), 0);

    backoff.started(clock.now());
    clock.advance(50ms);
    EXPECT_EQ(backoff.exited(clock.now()), 200ms);
    backoff.started(clock.now());
    clock.advance(29s);  // not long enough to count as a good run
    EXPECT_EQ(backoff.exited(clock.now()), 400ms);
    backoff.started(clock.now());
    EXPECT_EQ(backoff.exited(clock.now()), 800ms);
    backoff.started(clock.now());
    EXPECT_EQ(backoff.exited(clock.now()), 1s);
    backoff.started(clock.now());
    EXPECT_EQ(backoff.exited(clock.now()), 1s);
    EXPECT_EQ(backoff.consecutive_failures(), 5);
}

TEST(Backoff, ResetsAfterAProcessStayedUpLongEnough) {
    core::ManualClock clock;
    RestartBackoff backoff(RestartPolicy{200ms, 10s, 30s});
    for (int i = 0; i < 4; ++i) {
        backoff.started(clock.now());
        backoff.exited(clock.now());
    }
    EXPECT_EQ(backoff.consecutive_failures(), 4);
    backoff.started(clock.now());
    clock.advance(30s);
    EXPECT_EQ(backoff.exited(clock.now()), 200ms);
    EXPECT_EQ(backoff.consecutive_failures(), 1);
}
