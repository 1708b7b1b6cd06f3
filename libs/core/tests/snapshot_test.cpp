#include "plexus/core/snapshot.hpp"

#include <gtest/gtest.h>

#include <atomic>
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
    SnapshotCell<int> cell(std::make_shared<const int>(0));
    std::atomic<bool> stop{false};
    std::atomic<int> backwards{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            int last = 0;
            while (!stop.load()) {
                int v = *cell.load();
                if (v < last) ++backwards;  // a thread never sees an older value after a newer one
                last = v;
            }
        });
    }
    for (int i = 1; i <= 2000; ++i) cell.store(std::make_shared<const int>(i));
    stop = true;
    for (auto& r : readers) r.join();
    EXPECT_EQ(backwards.load(), 0);
    EXPECT_EQ(*cell.load(), 2000);
}
