#include "plexus/resilience/fault.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "plexus/resilience/deadline.hpp"

using namespace plexus::resilience;
using namespace std::chrono_literals;

TEST(Fault, OffByDefault) {
    FaultSettings f;
    EXPECT_FALSE(f.active());
    for (std::uint64_t r : {0ull, 1ull, 9999ull, ~0ull}) {
        auto d = decide_fault(f, r, r);
        EXPECT_EQ(d.delay, 0ms);
        EXPECT_EQ(d.abort_status, 0);
    }
}

TEST(Fault, HundredPercentAlwaysFires) {
    FaultSettings f{.delay_percent = 100, .delay = 2s, .abort_percent = 100, .abort_status = 503};
    EXPECT_TRUE(f.active());
    for (std::uint64_t r : {0ull, 1ull, 9999ull, 10000ull, ~0ull}) {
        auto d = decide_fault(f, r, r);
        EXPECT_EQ(d.delay, 2s);
        EXPECT_EQ(d.abort_status, 503);
    }
}

TEST(Fault, PercentBoundaries) {
    FaultSettings f{.delay_percent = 10, .delay = 250ms, .abort_percent = 5, .abort_status = 502};
    EXPECT_EQ(decide_fault(f, 999, 0).delay, 250ms);
    EXPECT_EQ(decide_fault(f, 1000, 0).delay, 0ms);
    EXPECT_EQ(decide_fault(f, 10999, 0).delay, 250ms);  // modulo 10000
    EXPECT_EQ(decide_fault(f, 0, 499).abort_status, 502);
    EXPECT_EQ(decide_fault(f, 0, 500).abort_status, 0);
    // The two decisions are independent.
    auto d = decide_fault(f, 5000, 100);
    EXPECT_EQ(d.delay, 0ms);
    EXPECT_EQ(d.abort_status, 502);
}

TEST(Fault, FractionalPercent) {
    FaultSettings f{.delay_percent = 0.01, .delay = 1s};
    EXPECT_EQ(decide_fault(f, 0, 0).delay, 1s);
    EXPECT_EQ(decide_fault(f, 1, 0).delay, 0ms);
    EXPECT_EQ(decide_fault(f, 20000, 0).delay, 1s);
}

TEST(Deadline, ParsesPlainMilliseconds) {
    EXPECT_EQ(parse_budget("0"), 0ms);
    EXPECT_EQ(parse_budget("250"), 250ms);
    EXPECT_EQ(parse_budget("007"), 7ms);
    EXPECT_EQ(parse_budget("2147483648"), std::chrono::milliseconds(2147483648LL));
}

TEST(Deadline, RejectsEverythingElse) {
    for (auto v :
         {"", "-1", "+5", " 5", "5 ", "1.5", "5ms", "0x10", "2147483649", "99999999999999999999999999"}) {
        EXPECT_FALSE(parse_budget(v)) << v;
    }
}

TEST(Deadline, TakesTheEarlierOfOwnTimeoutAndBudget) {
    auto start = std::chrono::steady_clock::time_point{} + 1h;
    EXPECT_EQ(deadline_for(start, 5s, std::nullopt), start + 5s);
    EXPECT_EQ(deadline_for(start, 5s, 2s), start + 2s);
    EXPECT_EQ(deadline_for(start, 5s, 9s), start + 5s);
    EXPECT_EQ(deadline_for(start, 5s, 0ms), start);
}
