#include "plexus/resilience/outlier.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "plexus/core/clock.hpp"

using namespace plexus;
using namespace plexus::resilience;
using namespace std::chrono_literals;

namespace {

OutlierSettings settings(int percent = 50) {
    OutlierSettings s;
    s.consecutive_errors = 3;
    s.base_ejection = 30s;
    s.max_ejection = 100s;
    s.max_ejection_percent = percent;
    return s;
}

// Four instances of one service.
struct Service {
    std::array<HostHealth, 4> hosts;
    std::vector<HostHealth*> peers{&hosts[0], &hosts[1], &hosts[2], &hosts[3]};
};

// Reports failures until one ejects the host (or `limit` is reached); the failures it took.
int fail_until_ejected(OutlierDetector& d, HostHealth& h, std::span<HostHealth* const> peers,
                       int limit = 10) {
    for (int i = 1; i <= limit; ++i) {
        if (d.on_failure(h, peers)) return i;
    }
    return 0;
}

}  // namespace

TEST(Outlier, EjectsAfterConsecutiveErrors) {
    core::ManualClock clock;
    OutlierDetector d(settings(), clock);
    Service svc;
    auto& h = svc.hosts[0];
    EXPECT_FALSE(d.on_failure(h, svc.peers));
    EXPECT_FALSE(d.on_failure(h, svc.peers));
    EXPECT_FALSE(d.ejected(h));
    EXPECT_TRUE(d.on_failure(h, svc.peers));
    EXPECT_TRUE(d.ejected(h));
    EXPECT_EQ(d.ejected_until(h), clock.now() + 30s);
    EXPECT_EQ(h.ejections.load(), 1);
    EXPECT_EQ(h.consecutive_errors.load(), 0);
    EXPECT_EQ(d.total_ejections(), 1u);
    // Already ejected: more failures do not eject again.
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(d.on_failure(h, svc.peers));
    EXPECT_EQ(d.total_ejections(), 1u);
    EXPECT_EQ(d.ejected_until(h), clock.now() + 30s);
}

TEST(Outlier, ASuccessBreaksTheStreak) {
    core::ManualClock clock;
    OutlierDetector d(settings(), clock);
    Service svc;
    auto& h = svc.hosts[1];
    d.on_failure(h, svc.peers);
    d.on_failure(h, svc.peers);
    d.on_success(h);
    EXPECT_EQ(h.consecutive_errors.load(), 0);
    EXPECT_FALSE(d.on_failure(h, svc.peers));
    EXPECT_FALSE(d.on_failure(h, svc.peers));
    EXPECT_FALSE(d.ejected(h));
    EXPECT_TRUE(d.on_failure(h, svc.peers));
}

TEST(Outlier, EjectionEndsAfterItsDuration) {
    core::ManualClock clock;
    OutlierDetector d(settings(), clock);
    Service svc;
    auto& h = svc.hosts[0];
    ASSERT_EQ(fail_until_ejected(d, h, svc.peers), 3);
    clock.advance(30s - 1ms);
    EXPECT_TRUE(d.ejected(h));
    clock.advance(1ms);
    EXPECT_FALSE(d.ejected(h));
    EXPECT_LE(d.ejected_until(h), clock.now());
}

TEST(Outlier, EjectionGrowsWithTheCountUpToTheCap) {
    core::ManualClock clock;
    OutlierDetector d(settings(), clock);
    Service svc;
    auto& h = svc.hosts[0];
    for (auto expected : {30s, 60s, 90s, 100s, 100s}) {
        ASSERT_EQ(fail_until_ejected(d, h, svc.peers), 3);
        EXPECT_EQ(d.ejected_until(h) - clock.now(), expected);
        clock.advance(expected);
    }
    EXPECT_EQ(h.ejections.load(), 5);
    EXPECT_EQ(d.total_ejections(), 5u);
}

TEST(Outlier, NeverEjectsMoreThanMaxEjectionPercent) {
    core::ManualClock clock;
    OutlierDetector d(settings(50), clock);
    Service svc;
    EXPECT_EQ(fail_until_ejected(d, svc.hosts[0], svc.peers), 3);
    EXPECT_EQ(fail_until_ejected(d, svc.hosts[1], svc.peers), 3);
    // A third of four would be 75%.
    EXPECT_EQ(fail_until_ejected(d, svc.hosts[2], svc.peers), 0);
    EXPECT_FALSE(d.ejected(svc.hosts[2]));
    EXPECT_EQ(svc.hosts[2].consecutive_errors.load(), 10);  // still counting
    clock.advance(30s);                                     // the other two come back
    EXPECT_TRUE(d.on_failure(svc.hosts[2], svc.peers));
    EXPECT_EQ(d.total_ejections(), 3u);
}

TEST(Outlier, MaxEjectionPercentAppliesToASingleInstance) {
    core::ManualClock clock;
    HostHealth h;
    std::array<HostHealth*, 1> alone{&h};
    OutlierDetector half(settings(50), clock);
    EXPECT_EQ(fail_until_ejected(half, h, alone), 0);
    EXPECT_FALSE(half.ejected(h));

    HostHealth h2;
    std::array<HostHealth*, 1> alone2{&h2};
    OutlierDetector all(settings(100), clock);
    EXPECT_EQ(fail_until_ejected(all, h2, alone2), 3);

    HostHealth h3;
    OutlierDetector none(settings(0), clock);
    std::array<HostHealth*, 1> alone3{&h3};
    EXPECT_EQ(fail_until_ejected(none, h3, alone3), 0);
}

TEST(Outlier, EjectionCountDecaysOncePerHealthyBaseEjection) {
    core::ManualClock clock;
    OutlierDetector d(settings(), clock);
    Service svc;
    auto& h = svc.hosts[0];
    for (auto length : {30s, 60s, 90s}) {
        ASSERT_EQ(fail_until_ejected(d, h, svc.peers), 3);
        clock.advance(length);
    }
    ASSERT_EQ(h.ejections.load(), 3);
    d.on_success(h);  // the ejection just ended: not yet
    EXPECT_EQ(h.ejections.load(), 3);
    clock.advance(30s - 1ms);
    d.on_success(h);
    EXPECT_EQ(h.ejections.load(), 3);
    clock.advance(1ms);
    d.on_success(h);
    EXPECT_EQ(h.ejections.load(), 2);
    d.on_success(h);  // at most once per base_ejection
    clock.advance(29s);
    d.on_success(h);
    EXPECT_EQ(h.ejections.load(), 2);
    clock.advance(1s);
    d.on_success(h);
    EXPECT_EQ(h.ejections.load(), 1);
    clock.advance(30s);
    d.on_success(h);
    EXPECT_EQ(h.ejections.load(), 0);
    clock.advance(30s);
    d.on_success(h);
    EXPECT_EQ(h.ejections.load(), 0);
    // Fully decayed: the next ejection is a first one again.
    ASSERT_EQ(fail_until_ejected(d, h, svc.peers), 3);
    EXPECT_EQ(d.ejected_until(h) - clock.now(), 30s);
}

TEST(Outlier, NoDecayWhileEjected) {
    core::ManualClock clock;
    auto s = settings();
    s.max_ejection = 300s;
    OutlierDetector d(s, clock);
    Service svc;
    auto& h = svc.hosts[0];
    ASSERT_EQ(fail_until_ejected(d, h, svc.peers), 3);
    clock.advance(30s);
    ASSERT_EQ(fail_until_ejected(d, h, svc.peers), 3);  // 60 s now
    clock.advance(45s);
    d.on_success(h);  // still ejected for 15 s
    EXPECT_EQ(h.ejections.load(), 2);
}

TEST(Outlier, DisabledNeverEjects) {
    core::ManualClock clock;
    auto s = settings();
    s.enabled = false;
    OutlierDetector d(s, clock);
    Service svc;
    EXPECT_EQ(fail_until_ejected(d, svc.hosts[0], svc.peers), 0);
    EXPECT_EQ(d.total_ejections(), 0u);
}

TEST(Outlier, NeverEjectedHostReportsAPastTime) {
    core::ManualClock clock;
    OutlierDetector d(settings(), clock);
    HostHealth h;
    EXPECT_FALSE(d.ejected(h));
    EXPECT_LT(d.ejected_until(h), clock.now());
}
