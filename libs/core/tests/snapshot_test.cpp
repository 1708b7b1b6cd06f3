#include "plexus/core/snapshot.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using plexus::core::SnapshotCell;

TEST(SnapshotCell, ReadersSeeEachStoreAndKeepWhatTheyHold) {
    SnapshotCell<int> cell(std::make_shared<const int>(1));
    auto held = cell.load();
    EXPECT_EQ(*held, 1);
    cell.store(std::make_shared<const int>(2));
    EXPECT_EQ(*cell.load(), 2);
    EXPECT_EQ(*held, 1);  // an earlier reader's snapshot stays valid
}

TEST(SnapshotCell, ManyThreadsReadWhileOneWrites) {
    constexpr int kStores = 2000;
    SnapshotCell<int> cell(std::make_shared<const int>(0));
    std::atomic<bool> stop{false};
    std::atomic<int> backwards{0};
    std::atomic<int> newest_seen{0};  // the highest value any reader has read
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            int last = 0;
            while (!stop.load()) {
                int v = *cell.load();
                if (v < last) ++backwards;  // a thread never sees an older value after a newer one
                last = v;
                for (int seen = newest_seen.load();
                     v > seen && !newest_seen.compare_exchange_weak(seen, v);) {
                }
            }
        });
    }
    // Each store waits until a reader has read it, so the reads overlap the writes rather than
    // starting after the writer is done. Bounded: a reader that never reads fails the test.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int stored = 0;
    for (int i = 1; i <= kStores && std::chrono::steady_clock::now() < deadline; ++i) {
        cell.store(std::make_shared<const int>(i));
        stored = i;
        while (newest_seen.load() < i && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
    }
    stop = true;
    for (auto& r : readers) r.join();
    EXPECT_EQ(stored, kStores);
    EXPECT_EQ(newest_seen.load(), kStores);
    EXPECT_EQ(backwards.load(), 0);
    EXPECT_EQ(*cell.load(), kStores);
}
