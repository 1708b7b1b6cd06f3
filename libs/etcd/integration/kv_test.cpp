// The client against one real etcd member: keys, ranges and revisions, transactions as writers
// use them (create once, compare-and-swap), leases, and watches (every change, in order, once;
// history replay; compaction).

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "io.hpp"
#include "plexus/etcd/client.hpp"
#include "plexus/etcd/testing.hpp"

namespace etcd = plexus::etcd;
using namespace plexus::etcd::testing;
using Op = etcd::Compare::Op;

namespace {

class EtcdKv : public ::testing::Test {
  protected:
    EtcdCluster cluster_{1};
    Io io_;
    etcd::Client client_{cluster_.client_settings()};

    std::int64_t current_revision() {
        auto r = io_.run(client_.range(range_of("-")));
        if (!r) throw std::runtime_error(r.error().message());
        return r->header.revision;
    }
};

TEST_F(EtcdKv, PutsGetsAndRangesWithRevisions) {
    auto first = io_.run(client_.put("app/a", "1"));
    ASSERT_TRUE(first) << first.error().message();
    auto second = io_.run(client_.put(etcd::PutRequest{"app/a", "2", 0, true}));
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_EQ(second->header.revision, first->header.revision + 1);
    ASSERT_TRUE(second->prev_kv);
    EXPECT_EQ(second->prev_kv->value, "1");
    ASSERT_TRUE(io_.run(client_.put("app/b", std::string("\0\xff binary", 9))));
    ASSERT_TRUE(io_.run(client_.put("app/c", "")));
    ASSERT_TRUE(io_.run(client_.put("apq", "outside the prefix")));

    auto a = io_.run(client_.get("app/a"));
    ASSERT_TRUE(a && *a);
    EXPECT_EQ((*a)->value, "2");
    EXPECT_EQ((*a)->version, 2);
    EXPECT_EQ((*a)->create_revision, first->header.revision);
    EXPECT_EQ((*a)->mod_revision, second->header.revision);
    auto missing = io_.run(client_.get("app/none"));
    ASSERT_TRUE(missing);
    EXPECT_FALSE(*missing);

    auto all = io_.run(client_.range(etcd::RangeRequest::with_prefix("app/")));
    ASSERT_TRUE(all) << all.error().message();
    ASSERT_EQ(all->kvs.size(), 3u);
    EXPECT_EQ(all->kvs[1].value, std::string("\0\xff binary", 9));
    EXPECT_EQ(all->kvs[2].value, "");
    EXPECT_EQ(all->count, 3);

    auto page = etcd::RangeRequest::with_prefix("app/");
    page.limit = 2;
    page.keys_only = true;
    auto limited = io_.run(client_.range(page));
    ASSERT_TRUE(limited);
    ASSERT_EQ(limited->kvs.size(), 2u);
    EXPECT_TRUE(limited->more);
    EXPECT_EQ(limited->count, 3);
    EXPECT_EQ(limited->kvs[0].value, "");

    auto counting = etcd::RangeRequest::with_prefix("app/");
    counting.count_only = true;
    auto counted = io_.run(client_.range(counting));
    ASSERT_TRUE(counted);
    EXPECT_TRUE(counted->kvs.empty());
    EXPECT_EQ(counted->count, 3);

    auto old = range_of("app/a");
    old.revision = first->header.revision;
    auto then = io_.run(client_.range(old));
    ASSERT_TRUE(then);
    ASSERT_EQ(then->kvs.size(), 1u);
    EXPECT_EQ(then->kvs[0].value, "1");

    auto future = range_of("app/a");
    future.revision = current_revision() + 100;
    auto ahead = io_.run(client_.range(future));
    ASSERT_FALSE(ahead);
    EXPECT_EQ(ahead.error(), etcd::errc::future_revision);
    EXPECT_NE(ahead.error().message().find("member " + cluster_.endpoint(0).to_string()), std::string::npos)
        << ahead.error().message();
    EXPECT_NE(ahead.error().message().find("required revision is a future revision"), std::string::npos);

    auto del = etcd::DeleteRequest::with_prefix("app/");
    del.prev_kv = true;
    auto deleted = io_.run(client_.delete_range(del));
    ASSERT_TRUE(deleted) << deleted.error().message();
    EXPECT_EQ(deleted->deleted, 3);
    EXPECT_EQ(deleted->prev_kvs.size(), 3u);
    auto outside = io_.run(client_.get("apq"));
    ASSERT_TRUE(outside && *outside);
}

TEST_F(EtcdKv, TransactionsCreateOnceAndCompareAndSwap) {
    // Create only if absent: the second writer finds the first one's value in its failure branch.
    auto create = [&](std::string value) {
        etcd::TxnRequest t;
        t.compare = {etcd::Compare::create_revision("lock", Op::equal, 0)};
        t.success = {etcd::PutRequest{"lock", std::move(value), 0, false}};
        t.failure = {range_of("lock")};
        return io_.run(client_.txn(std::move(t)));
    };
    auto won = create("first");
    ASSERT_TRUE(won) << won.error().message();
    EXPECT_TRUE(won->succeeded);
    ASSERT_EQ(won->responses.size(), 1u);
    auto created_at = std::get<etcd::PutResponse>(won->responses[0]).header.revision;
    auto lost = create("second");
    ASSERT_TRUE(lost) << lost.error().message();
    EXPECT_FALSE(lost->succeeded);
    const auto& found = std::get<etcd::RangeResponse>(lost->responses.at(0));
    ASSERT_EQ(found.kvs.size(), 1u);
    EXPECT_EQ(found.kvs[0].value, "first");

    // Compare-and-swap on mod_revision: of two writers that read the same revision, one wins.
    auto swap = [&](std::int64_t seen, std::string value) {
        etcd::TxnRequest t;
        t.compare = {etcd::Compare::mod_revision("lock", Op::equal, seen)};
        t.success = {etcd::PutRequest{"lock", std::move(value), 0, false}};
        return io_.run(client_.txn(std::move(t)));
    };
    auto a = swap(created_at, "a");
    auto b = swap(created_at, "b");
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(a->succeeded);
    EXPECT_FALSE(b->succeeded);
    EXPECT_TRUE(b->responses.empty());

    // Value and version comparisons, several ops at one revision.
    etcd::TxnRequest t;
    t.compare = {etcd::Compare::with_value("lock", Op::equal, "a"),
                 etcd::Compare::version("lock", Op::greater, 1)};
    t.success = {etcd::PutRequest{"x", "1", 0, false}, etcd::DeleteRequest{"lock", {}, true}, range_of("x")};
    auto multi = io_.run(client_.txn(t));
    ASSERT_TRUE(multi) << multi.error().message();
    EXPECT_TRUE(multi->succeeded);
    ASSERT_EQ(multi->responses.size(), 3u);
    const auto& removed = std::get<etcd::DeleteResponse>(multi->responses[1]);
    EXPECT_EQ(removed.deleted, 1);
    EXPECT_EQ(removed.prev_kvs.at(0).value, "a");
    EXPECT_EQ(std::get<etcd::RangeResponse>(multi->responses[2]).kvs.at(0).value, "1");

    // A key written twice in one branch: etcd refuses the transaction.
    etcd::TxnRequest twice;
    twice.success = {etcd::PutRequest{"k", "1", 0, false}, etcd::PutRequest{"k", "2", 0, false}};
    auto refused = io_.run(client_.txn(twice));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), etcd::errc::rejected);
    EXPECT_NE(refused.error().message().find("duplicate key"), std::string::npos)
        << refused.error().message();
}

TEST_F(EtcdKv, LeaseExpiryRemovesKeysAndKeepaliveHoldsThem) {
    auto kept = io_.run(client_.lease_grant(std::chrono::seconds(2)));
    ASSERT_TRUE(kept) << kept.error().message();
    EXPECT_GE(kept->ttl, std::chrono::seconds(2));
    auto dropped = io_.run(client_.lease_grant(std::chrono::seconds(2)));
    ASSERT_TRUE(dropped);
    auto put_kept = io_.run(client_.put("inst/kept", "1", kept->id));
    ASSERT_TRUE(put_kept) << put_kept.error().message();
    ASSERT_TRUE(io_.run(client_.put("inst/dropped", "1", dropped->id)));
    auto attached = io_.run(client_.get("inst/kept"));
    ASSERT_TRUE(attached && *attached);
    EXPECT_EQ((*attached)->lease, kept->id);

    // Keep one lease alive past its TTL; the other expires and takes its key with it.
    auto t0 = std::chrono::steady_clock::now();
    bool dropped_gone = false;
    while (!dropped_gone) {
        ASSERT_LT(std::chrono::steady_clock::now() - t0, 10s) << "the expired lease's key is still there";
        auto refreshed = io_.run(client_.lease_keep_alive_once(kept->id));
        ASSERT_TRUE(refreshed) << refreshed.error().message();
        EXPECT_EQ(refreshed->ttl, kept->ttl);
        EXPECT_EQ(refreshed->id, kept->id);
        auto d = io_.run(client_.get("inst/dropped"));
        ASSERT_TRUE(d);
        dropped_gone = !*d;
        if (!dropped_gone) io_.run(plexus::net::sleep_for(200ms));  // the keepalive pace
    }
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1s);
    auto still = io_.run(client_.get("inst/kept"));
    ASSERT_TRUE(still);
    EXPECT_TRUE(*still) << "the key of the lease kept alive is gone";

    auto late = io_.run(client_.lease_keep_alive_once(dropped->id));
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error(), etcd::errc::lease_not_found);

    // Revoking deletes at once; an unknown lease is lease_not_found for revoke and put.
    EXPECT_FALSE(io_.run(client_.lease_revoke(kept->id)));
    auto revoked = io_.run(client_.get("inst/kept"));
    ASSERT_TRUE(revoked);
    EXPECT_FALSE(*revoked);
    EXPECT_EQ(io_.run(client_.lease_revoke(kept->id)), etcd::errc::lease_not_found);
    auto orphan = io_.run(client_.put("inst/orphan", "1", kept->id));
    ASSERT_FALSE(orphan);
    EXPECT_EQ(orphan.error(), etcd::errc::lease_not_found);
}

// What a watch delivered, collected on its io thread.
struct Collected {
    std::mutex mutex;
    std::vector<etcd::Event> events;
    std::vector<std::int64_t> batch_revisions;
    std::vector<std::size_t> batch_sizes;

    std::size_t size() {
        std::lock_guard lock(mutex);
        return events.size();
    }
};

// Collects until an event for `last_key` arrives.
etcd::WatchHandler collect_until(std::shared_ptr<Collected> out, std::string last_key) {
    return [out, last_key](const etcd::WatchBatch& b) {
        std::lock_guard lock(out->mutex);
        out->batch_revisions.push_back(b.revision);
        out->batch_sizes.push_back(b.events.size());
        bool done = false;
        for (const auto& e : b.events) {
            out->events.push_back(e);
            done = done || e.kv.key == last_key;
        }
        return !done;
    };
}

struct Expected {
    etcd::Event::Type type;
    std::string key;
    std::string value;
    std::int64_t revision;
};

TEST_F(EtcdKv, AWatchSeesEveryChangeInOrderOnceAndReplaysHistory) {
    auto start = current_revision() + 1;
    auto live = std::make_shared<Collected>();
    auto live_end = io_.start(client_.watch(watch_prefix("w/", start), collect_until(live, "w/end")));

    std::vector<Expected> expected;
    std::set<std::string> present;
    constexpr int kChanges = 300;
    for (int i = 0; i < kChanges; ++i) {
        auto key = "w/k" + std::to_string(i % 40);
        auto value = "v" + std::to_string(i);
        if (i % 10 == 7 && !present.empty()) {
            auto victim = *present.begin();
            auto d = io_.run(client_.delete_range(etcd::DeleteRequest{victim, {}, false}));
            ASSERT_TRUE(d) << d.error().message();
            ASSERT_EQ(d->deleted, 1);
            expected.push_back({etcd::Event::Type::del, victim, "", d->header.revision});
            present.erase(victim);
        } else if (i % 10 == 3) {
            // Two keys at one revision: they arrive in one batch.
            etcd::TxnRequest t;
            auto other = "w/t" + std::to_string(i);
            t.success = {etcd::PutRequest{key, value, 0, false}, etcd::PutRequest{other, value, 0, false}};
            auto r = io_.run(client_.txn(t));
            ASSERT_TRUE(r && r->succeeded);
            expected.push_back({etcd::Event::Type::put, key, value, r->header.revision});
            expected.push_back({etcd::Event::Type::put, other, value, r->header.revision});
            present.insert(key);
            present.insert(other);
        } else {
            auto r = io_.run(client_.put(key, value));
            ASSERT_TRUE(r) << r.error().message();
            expected.push_back({etcd::Event::Type::put, key, value, r->header.revision});
            present.insert(key);
        }
    }
    auto end = io_.run(client_.put("w/end", "x"));
    ASSERT_TRUE(end);
    expected.push_back({etcd::Event::Type::put, "w/end", "x", end->header.revision});
    ASSERT_TRUE(io_.run(client_.put("x/outside", "not watched")));

    ASSERT_EQ(live_end.wait_for(kCallWait), std::future_status::ready)
        << "the watch saw " << live->size() << " of " << expected.size() << " events";
    auto live_result = live_end.get();
    EXPECT_FALSE(live_result.error) << live_result.error.message();
    EXPECT_EQ(live_result.next_revision, end->header.revision + 1);

    // A watch started afterwards from the same revision replays the same history.
    auto replay = std::make_shared<Collected>();
    auto replay_result = io_.run(client_.watch(watch_prefix("w/", start), collect_until(replay, "w/end")));
    EXPECT_FALSE(replay_result.error) << replay_result.error.message();

    for (auto* seen : {live.get(), replay.get()}) {
        std::lock_guard lock(seen->mutex);
        ASSERT_EQ(seen->events.size(), expected.size());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            const auto& e = seen->events[i];
            SCOPED_TRACE("event " + std::to_string(i));
            EXPECT_EQ(e.type, expected[i].type);
            EXPECT_EQ(e.kv.key, expected[i].key);
            EXPECT_EQ(e.kv.value, expected[i].value);
            EXPECT_EQ(e.kv.mod_revision, expected[i].revision);
        }
        for (std::size_t i = 1; i < seen->batch_revisions.size(); ++i) {
            EXPECT_LE(seen->batch_revisions[i - 1], seen->batch_revisions[i]);
        }
    }
    // No revision is split across batches: each transaction's two events came together.
    std::lock_guard lock(live->mutex);
    std::map<std::int64_t, std::size_t> batch_of;
    std::size_t at = 0;
    for (std::size_t b = 0; b < live->batch_sizes.size(); ++b) {
        for (std::size_t k = 0; k < live->batch_sizes[b]; ++k) {
            auto rev = live->events[at + k].kv.mod_revision;
            auto [it, inserted] = batch_of.emplace(rev, b);
            EXPECT_EQ(it->second, b) << "revision " << rev << " split across batches";
        }
        at += live->batch_sizes[b];
    }
}

TEST_F(EtcdKv, AWatchFromACompactedRevisionReportsItAndTheCallerRewatches) {
    std::int64_t early = 0;
    for (int i = 0; i < 10; ++i) {
        auto r = io_.run(client_.put("c/k", std::to_string(i)));
        ASSERT_TRUE(r);
        if (i == 2) early = r->header.revision;
    }
    auto now = current_revision();
    cluster_.compact(now - 1);

    auto old = range_of("c/k");
    old.revision = early;
    auto gone = io_.run(client_.range(old));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error(), etcd::errc::compacted);

    auto seen = std::make_shared<Collected>();
    auto ended = io_.run(client_.watch(watch_prefix("c/", early), collect_until(seen, "never")));
    EXPECT_EQ(ended.error, etcd::errc::compacted) << ended.error.message();
    EXPECT_EQ(ended.compact_revision, now - 1);
    EXPECT_EQ(ended.next_revision, early);
    EXPECT_EQ(seen->size(), 0u);

    // Reload, then watch from one past the reload's revision: the next change arrives, nothing older.
    auto reload = io_.run(client_.range(etcd::RangeRequest::with_prefix("c/")));
    ASSERT_TRUE(reload);
    EXPECT_EQ(reload->kvs.at(0).value, "9");
    auto rewatch =
        io_.start(client_.watch(watch_prefix("c/", reload->header.revision + 1), collect_until(seen, "c/k")));
    auto next = io_.run(client_.put("c/k", "10"));
    ASSERT_TRUE(next);
    ASSERT_EQ(rewatch.wait_for(kCallWait), std::future_status::ready);
    EXPECT_FALSE(rewatch.get().error);
    std::lock_guard lock(seen->mutex);
    ASSERT_EQ(seen->events.size(), 1u);
    EXPECT_EQ(seen->events[0].kv.value, "10");
    EXPECT_EQ(seen->events[0].kv.mod_revision, next->header.revision);
}

TEST_F(EtcdKv, StatusNamesTheMemberAndItsLeader) {
    auto s = io_.run(client_.status(0));
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_TRUE(s->version.starts_with("3.")) << s->version;
    EXPECT_NE(s->header.member_id, 0u);
    EXPECT_EQ(s->leader, s->header.member_id);  // one member: it leads
    EXPECT_GT(s->raft_index, 0u);
}

}  // namespace
