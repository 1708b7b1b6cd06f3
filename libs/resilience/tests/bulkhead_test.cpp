#include "plexus/resilience/bulkhead.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <utility>
#include <vector>

using namespace plexus::resilience;

TEST(Bulkhead, RefusesOverTheLimitAndCountsRejections) {
    Bulkhead b({.max_concurrent = 2});
    EXPECT_TRUE(b.try_acquire());
    EXPECT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.in_use(), 2);
    EXPECT_EQ(b.rejected(), 2u);
    b.release();
    EXPECT_EQ(b.in_use(), 1);
    EXPECT_TRUE(b.try_acquire());
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.rejected(), 3u);
}

TEST(Bulkhead, ZeroMeansUnlimitedButStillCounts) {
    Bulkhead b({.max_concurrent = 0});
    for (int i = 0; i < 10000; ++i) ASSERT_TRUE(b.try_acquire());
    EXPECT_EQ(b.in_use(), 10000);
    EXPECT_EQ(b.rejected(), 0u);
    b.release();
    EXPECT_EQ(b.in_use(), 9999);
}

TEST(Bulkhead, PermitHoldsAPlaceForItsLifetime) {
    Bulkhead b({.max_concurrent = 1});
    {
        auto p = b.acquire();
        EXPECT_TRUE(p);
        EXPECT_EQ(b.in_use(), 1);
        auto refused = b.acquire();
        EXPECT_FALSE(refused);
        EXPECT_EQ(b.rejected(), 1u);
        EXPECT_EQ(b.in_use(), 1);  // an empty permit releases nothing
    }
    EXPECT_EQ(b.in_use(), 0);
    auto p = b.acquire();
    ASSERT_TRUE(p);
    p.reset();
    EXPECT_FALSE(p);
    EXPECT_EQ(b.in_use(), 0);
    p.reset();  // twice is harmless
    EXPECT_EQ(b.in_use(), 0);
}

TEST(Bulkhead, PermitMovesOwnership) {
    Bulkhead b({.max_concurrent = 2});
    auto a = b.acquire();
    Bulkhead::Permit moved(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_TRUE(moved);
    EXPECT_EQ(b.in_use(), 1);
    auto c = b.acquire();
    EXPECT_EQ(b.in_use(), 2);
    moved = std::move(c);  // the place moved held is given back
    EXPECT_EQ(b.in_use(), 1);
    auto& self = moved;
    moved = std::move(self);
    EXPECT_EQ(b.in_use(), 1);
    moved = Bulkhead::Permit();
    EXPECT_EQ(b.in_use(), 0);
}

TEST(Bulkhead, ConcurrentCallersNeverExceedTheLimit) {
    Bulkhead b({.max_concurrent = 3});
    std::atomic<int> inside{0};
    std::atomic<int> most{0};
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 20000; ++i) {
                auto p = b.acquire();
                if (!p) continue;
                admitted.fetch_add(1);
                int now = inside.fetch_add(1) + 1;
                int seen = most.load();
                while (now > seen && !most.compare_exchange_weak(seen, now)) {
                }
                inside.fetch_sub(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_LE(most.load(), 3);
    EXPECT_EQ(b.in_use(), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(admitted.load()) + b.rejected(), 6u * 20000u);
}
