// Signal's epoch: a notify that lands between checking a condition and starting to wait is not
// lost. Every wait is bounded by kWait.

#include "plexus/net/signal.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "plexus/net/runtime.hpp"
#include "plexus/net/testing.hpp"

namespace net = plexus::net;
using namespace std::chrono_literals;
using namespace plexus::net::testing;

namespace {

class SignalEpochTest : public ::testing::Test {
  protected:
    void SetUp() override {
        runner_ = std::thread([this] { runtime_.run(); });
    }
    void TearDown() override {
        runtime_.stop();
        runner_.join();
    }

    std::future<bool> start(net::Task<bool> task) {
        return net::start(runtime_.executor(0), std::move(task));
    }

    net::Runtime runtime_{1};
    std::thread runner_;
};

}  // namespace

TEST_F(SignalEpochTest, EpochCountsNotifies) {
    net::Signal signal;
    EXPECT_EQ(signal.epoch(), 0u);
    signal.notify_all();
    signal.notify_all();
    EXPECT_EQ(signal.epoch(), 2u);
}

TEST_F(SignalEpochTest, NotifySinceTheEpochWasReadEndsTheWaitAtOnce) {
    net::Signal signal;
    auto seen = signal.epoch();
    signal.notify_all();  // after the epoch was read, before the wait began: must still count
    auto woken = start(signal.wait(kWait, seen));
    EXPECT_TRUE(wait(woken));  // true: woken by the earlier notify, not timed out
    EXPECT_EQ(signal.waiters(), 0u);
}

TEST_F(SignalEpochTest, CurrentEpochWaitsForTheNextNotify) {
    net::Signal signal;
    signal.notify_all();
    auto timed_out = start(signal.wait(50ms, signal.epoch()));
    EXPECT_FALSE(wait(timed_out));

    auto woken = start(signal.wait(kWait, signal.epoch()));
    ASSERT_TRUE(wait_until([&] { return signal.waiters() == 1; }));
    signal.notify_all();
    EXPECT_TRUE(wait(woken));
}
