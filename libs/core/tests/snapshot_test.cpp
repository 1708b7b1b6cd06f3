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
    std::atomic<int> newest_seen{-1};  // the highest value any reader has read
    std::atomic<int> started{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            int last = 0;
            bool counted = false;
            while (!stop.load()) {
                int v = *cell.load();
                if (v < last) ++backwards;  // a thread never sees an older value after a newer one
                last = v;
                for (int seen = newest_seen.load();
                     v > seen && !newest_seen.compare_exchange_weak(seen, v);) {
                }
                if (!counted) counted = true, ++started;
            }
        });
    }
    // Every reader is reading before the first store, so reads overlap the writes rather than
    // starting after the writer is done; at the end some reader must see the last store. Both
    // waits are bounded: a reader that never reads fails the test.
    auto until = [deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10)](auto done) {
        while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        return done();
    };
    EXPECT_TRUE(until([&] { return started.load() == 4; }));
    for (int i = 1; i <= kStores; ++i) cell.store(std::make_shared<const int>(i));
    EXPECT_TRUE(until([&] { return newest_seen.load() == kStores; }));
    stop = true;
    for (auto& r : readers) r.join();
    EXPECT_EQ(backwards.load(), 0);
    EXPECT_EQ(*cell.load(), kStores);
}
