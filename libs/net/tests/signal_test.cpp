// Signal's epoch: a notify that lands between checking a condition and starting to wait is not
// lost. Every wait is bounded by kWait.

#include "plexus/net/signal.hpp"

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "plexus/net/runtime.hpp"

namespace net = plexus::net;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds kWait = 10s;  // the bound of every wait in this file

net::Task<void> deliver(net::Task<bool> task, std::shared_ptr<std::promise<bool>> promise) {
    try {
        promise->set_value(co_await std::move(task));
    } catch (...) {
        promise->set_exception(std::current_exception());
    }
}

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
        auto promise = std::make_shared<std::promise<bool>>();
        auto future = promise->get_future();
        net::spawn(runtime_.executor(0), deliver(std::move(task), promise), "signal test");
        return future;
    }
    static bool wait(std::future<bool>& future) {
        if (future.wait_for(kWait) != std::future_status::ready) throw std::runtime_error("wait timed out");
        return future.get();
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
    auto t0 = Clock::now();
    auto woken = start(signal.wait(kWait, seen));
    EXPECT_TRUE(wait(woken));
    EXPECT_LT(Clock::now() - t0, 5s);
    EXPECT_EQ(signal.waiters(), 0u);
}

TEST_F(SignalEpochTest, CurrentEpochWaitsForTheNextNotify) {
    net::Signal signal;
    signal.notify_all();
    auto timed_out = start(signal.wait(50ms, signal.epoch()));
    EXPECT_FALSE(wait(timed_out));

    auto woken = start(signal.wait(kWait, signal.epoch()));
    auto deadline = Clock::now() + kWait;
    while (signal.waiters() != 1 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(signal.waiters(), 1u);
    signal.notify_all();
    EXPECT_TRUE(wait(woken));
}
