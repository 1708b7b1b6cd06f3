// A real three-member cluster: the harness itself (leader, kill, restart, cleanup, a missing
// binary), and the client across member failures: a writer writing without pause and a watcher
// following every write while a follower and then the leader are killed with SIGKILL. Every
// acknowledged write must be readable afterwards and delivered to the watcher exactly once; every
// write the client reported as not applied must indeed be absent.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "io.hpp"
#include "plexus/etcd/client.hpp"
#include "plexus/etcd/testing.hpp"

namespace etcd = plexus::etcd;
namespace net = plexus::net;
using namespace plexus::etcd::testing;

namespace {

using Clock = std::chrono::steady_clock;

bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

TEST(EtcdHarness, StartsThreeMembersKillsRestartsAndRemovesEverything) {
    std::vector<pid_t> pids;
    std::string dir;
    {
        EtcdCluster cluster(3);
        dir = cluster.directory();
        ASSERT_TRUE(std::filesystem::exists(dir));
        std::set<std::uint16_t> ports;
        for (std::size_t i = 0; i < 3; ++i) {
            ports.insert(cluster.endpoint(i).port);
            pids.push_back(cluster.pid(i));
            EXPECT_GE(cluster.endpoint(i).port, 10000);
            EXPECT_LT(cluster.endpoint(i).port, 32768);
        }
        EXPECT_EQ(ports.size(), 3u);
        EXPECT_EQ(etcd::parse_members(cluster.endpoint_list()).value(), cluster.endpoints());

        auto leader = cluster.leader();
        ASSERT_TRUE(leader) << cluster.logs_tail();
        auto follower = cluster.follower();
        ASSERT_TRUE(follower);
        EXPECT_NE(*leader, *follower);

        cluster.kill(*follower);
        EXPECT_FALSE(cluster.running(*follower));
        EXPECT_TRUE(process_gone(pids[*follower]));
        EXPECT_EQ(cluster.post(*follower, "/v3/maintenance/status", "{}").status, 0);
        EXPECT_EQ(cluster.leader(), leader) << "two of three members keep their leader";

        cluster.restart(*follower);
        EXPECT_TRUE(cluster.running(*follower));
        EXPECT_TRUE(cluster.healthy()) << cluster.logs_tail();
        pids.push_back(cluster.pid(*follower));
    }
    for (auto pid : pids) EXPECT_TRUE(process_gone(pid)) << "etcd " << pid << " outlived its cluster";
    EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

TEST(EtcdHarness, FailsWithAClearMessageWhenEtcdIsMissing) {
    ::setenv("PLEXUS_ETCD_BIN", "/nonexistent/etcd", 1);
    std::string message;
    try {
        EtcdCluster cluster(1);
    } catch (const std::runtime_error& e) {
        message = e.what();
    }
    ::unsetenv("PLEXUS_ETCD_BIN");
    EXPECT_NE(message.find("no etcd at /nonexistent/etcd"), std::string::npos) << message;
    EXPECT_NE(message.find("etcd-server"), std::string::npos) << message;
}

// What the writer did, shared with the test thread.
struct Writes {
    std::mutex mutex;
    std::map<std::string, std::int64_t> acked;  // key -> revision of the acknowledged put
    std::set<std::string> unknown;              // errc::outcome_unknown: may or may not be there
    std::set<std::string> not_applied;          // any other error: must not be there
    std::vector<std::string> samples;           // a few error messages, for the report
    std::atomic<std::size_t> acked_count{0};
    std::atomic<bool> stop{false};
};

net::Task<void> write_continuously(etcd::Client client, std::shared_ptr<Writes> w) {
    for (int i = 0; !w->stop; ++i) {
        char key[32];
        std::snprintf(key, sizeof key, "chaos/%06d", i);
        auto r = co_await client.put(key, "v" + std::to_string(i));
        std::lock_guard lock(w->mutex);
        if (r) {
            w->acked[key] = r->header.revision;
            ++w->acked_count;
            continue;
        }
        if (r.error() == etcd::errc::outcome_unknown) {
            w->unknown.insert(key);
        } else {
            w->not_applied.insert(key);
        }
        if (w->samples.size() < 8) w->samples.push_back(r.error().message());
    }
}

// What the watcher saw, shared with the test thread.
struct Watched {
    std::mutex mutex;
    std::vector<etcd::Event> events;
    std::vector<std::size_t> members;  // per batch
    std::vector<std::string> interruptions;
    std::atomic<std::size_t> count{0};
    std::atomic<std::size_t> last_member{0};
};

// Waits for `pred` (polled) at most `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (!pred()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

TEST(EtcdCluster3, AWatchAndAWriterRideOutTheLossOfAFollowerAndThenTheLeader) {
    EtcdCluster cluster(3);
    auto leader = cluster.leader();
    auto follower = cluster.follower();
    ASSERT_TRUE(leader && follower) << cluster.logs_tail();
    std::size_t other = 3 - *leader - *follower;
    // Both clients start on the follower and move on to the leader when it dies, so the watch
    // stream is broken by both kills.
    std::vector<std::size_t> order{*follower, *leader, other};
    etcd::Settings settings;
    for (auto i : order) settings.members.push_back(cluster.endpoint(i));
    etcd::Client writer(settings);
    etcd::Client watcher(settings);

    Io io(2);
    auto first = io.run(writer.range(range_of("chaos/")));
    ASSERT_TRUE(first) << first.error().message();
    auto start = first->header.revision + 1;

    auto watched = std::make_shared<Watched>();
    auto watch_done = io.start(watcher.watch(
                                   watch_prefix("chaos/", start),
                                   [watched](const etcd::WatchBatch& b) {
                                       std::lock_guard lock(watched->mutex);
                                       bool end = false;
                                       for (const auto& e : b.events) {
                                           watched->events.push_back(e);
                                           end = end || e.kv.key == "chaos/end";
                                       }
                                       watched->members.push_back(b.member);
                                       watched->count = watched->events.size();
                                       watched->last_member = b.member;
                                       return !end;
                                   },
                                   [watched](const plexus::ErrorCode& why, std::size_t) {
                                       std::lock_guard lock(watched->mutex);
                                       watched->interruptions.push_back(why.message());
                                   }),
                               1);
    auto writes = std::make_shared<Writes>();
    auto writer_done = io.start(write_continuously(writer, writes), 0);

    constexpr std::size_t kPerPhase = 150;
    auto acked_reaches = [&](std::size_t n) {
        return eventually([&] { return writes->acked_count >= n; }, 15s);
    };
    ASSERT_TRUE(acked_reaches(kPerPhase)) << cluster.logs_tail();
    ASSERT_TRUE(eventually([&] { return watched->count >= kPerPhase / 2; }, 10s));
    EXPECT_EQ(watched->last_member, 0u) << "the watch should start on the follower";

    // 1. The follower the watch and the writer use dies.
    cluster.kill(*follower);
    auto at_follower_kill = writes->acked_count.load();
    ASSERT_TRUE(acked_reaches(at_follower_kill + kPerPhase)) << cluster.logs_tail();
    ASSERT_TRUE(eventually([&] { return watched->last_member == 1; }, 10s))
        << "the watch did not resume on the leader";
    cluster.restart(*follower);
    auto at_restart = writes->acked_count.load();
    ASSERT_TRUE(acked_reaches(at_restart + kPerPhase)) << cluster.logs_tail();

    // 2. The leader, which both now use, dies; the other two elect a new one.
    auto leader_now = cluster.leader();
    ASSERT_TRUE(leader_now) << cluster.logs_tail();
    ASSERT_EQ(*leader_now, *leader) << "leadership moved while the follower rejoined";
    cluster.kill(*leader);
    auto at_leader_kill = writes->acked_count.load();
    ASSERT_TRUE(acked_reaches(at_leader_kill + kPerPhase)) << cluster.logs_tail();
    auto new_leader = cluster.leader();
    ASSERT_TRUE(new_leader) << cluster.logs_tail();
    EXPECT_NE(*new_leader, *leader);

    writes->stop = true;
    ASSERT_EQ(writer_done.wait_for(kCallWait), std::future_status::ready);
    writer_done.get();

    // The end mark, written once even if a try's outcome is unknown: create-if-absent.
    etcd::TxnRequest end_mark;
    end_mark.compare = {etcd::Compare::create_revision("chaos/end", etcd::Compare::Op::equal, 0)};
    end_mark.success = {etcd::PutRequest{"chaos/end", "end", 0, false}};
    ASSERT_TRUE(eventually([&] { return static_cast<bool>(io.run(writer.txn(end_mark))); }, 10s));
    ASSERT_EQ(watch_done.wait_for(kCallWait), std::future_status::ready)
        << "the watch saw " << watched->count << " events";
    auto end = watch_done.get();
    EXPECT_FALSE(end.error) << end.error.message();

    auto final = io.run(writer.range(etcd::RangeRequest::with_prefix("chaos/")));
    ASSERT_TRUE(final) << final.error().message();
    std::map<std::string, const etcd::KeyValue*> stored;
    for (const auto& kv : final->kvs) stored[kv.key] = &kv;

    std::lock_guard wlock(writes->mutex);
    std::lock_guard vlock(watched->mutex);
    // Every acknowledged write is there, at the revision it was acknowledged with.
    for (const auto& [key, revision] : writes->acked) {
        auto it = stored.find(key);
        ASSERT_NE(it, stored.end()) << "acknowledged write " << key << " is missing";
        EXPECT_EQ(it->second->mod_revision, revision) << key;
    }
    // A write reported as not applied is not there.
    for (const auto& key : writes->not_applied) EXPECT_FALSE(stored.contains(key)) << key << " was applied";
    // The watch delivered every stored key exactly once, in revision order, and nothing else.
    ASSERT_EQ(watched->events.size(), stored.size());
    std::set<std::string> delivered;
    std::int64_t previous = start - 1;
    for (const auto& e : watched->events) {
        EXPECT_EQ(e.type, etcd::Event::Type::put);
        EXPECT_GT(e.kv.mod_revision, previous) << "out of order or repeated: " << e.kv.key;
        previous = e.kv.mod_revision;
        EXPECT_TRUE(delivered.insert(e.kv.key).second) << e.kv.key << " delivered twice";
        auto it = stored.find(e.kv.key);
        ASSERT_NE(it, stored.end()) << e.kv.key << " delivered but not stored";
        EXPECT_EQ(it->second->mod_revision, e.kv.mod_revision);
        EXPECT_EQ(it->second->value, e.kv.value);
    }
    std::set<std::size_t> serving(watched->members.begin(), watched->members.end());
    EXPECT_GE(watched->interruptions.size(), 2u);
    EXPECT_GE(serving.size(), 3u) << "the watch was served by the follower, the leader and the third member";

    std::size_t unknown_stored = 0;
    for (const auto& key : writes->unknown) unknown_stored += stored.contains(key);
    std::printf(
        "[ report   ] %zu writes acknowledged, %zu with unknown outcome (%zu of them applied), %zu not "
        "applied; %zu events watched in %zu batches from %zu members; %zu stream interruptions\n",
        writes->acked.size(), writes->unknown.size(), unknown_stored, writes->not_applied.size(),
        watched->events.size(), watched->members.size(), serving.size(), watched->interruptions.size());
    for (const auto& s : writes->samples) std::printf("[ report   ] write error: %s\n", s.c_str());
    for (const auto& s : watched->interruptions)
        std::printf("[ report   ] watch interrupted: %s\n", s.c_str());
}

TEST(EtcdCluster3, AWatchLeavesAMemberThatLostQuorumAndCatchesUpOnceItIsBack) {
    EtcdCluster cluster(3);
    etcd::Client client(cluster.client_settings());
    Io io(1);
    auto first = io.run(client.range(range_of("q/")));
    ASSERT_TRUE(first) << first.error().message();

    auto watched = std::make_shared<Watched>();
    auto watch_done = io.start(client.watch(
        watch_prefix("q/", first->header.revision + 1),
        [watched](const etcd::WatchBatch& b) {
            std::lock_guard lock(watched->mutex);
            for (const auto& e : b.events) watched->events.push_back(e);
            watched->members.push_back(b.member);
            watched->count = watched->events.size();
            return watched->events.size() < 2;
        },
        [watched](const plexus::ErrorCode& why, std::size_t) {
            std::lock_guard lock(watched->mutex);
            watched->interruptions.push_back(why.message());
        }));
    // Written once even when a try's outcome is unknown: create-if-absent.
    auto create = [&](std::string key) {
        etcd::TxnRequest t;
        t.compare = {etcd::Compare::create_revision(key, etcd::Compare::Op::equal, 0)};
        t.success = {etcd::PutRequest{key, "x", 0, false}};
        return eventually([&] { return static_cast<bool>(io.run(client.txn(t))); }, 10s);
    };
    ASSERT_TRUE(create("q/before"));
    ASSERT_TRUE(eventually([&] { return watched->count == 1; }, 10s));
    auto serving = watched->members.at(0);

    // The member the watch is on loses both peers: it has no leader, so it cancels the watch.
    for (std::size_t i = 0; i < 3; ++i) {
        if (i != serving) cluster.kill(i);
    }
    auto no_leader = [&] {
        std::lock_guard lock(watched->mutex);
        for (const auto& why : watched->interruptions) {
            if (why.find("no leader") != std::string::npos) return true;
        }
        return false;
    };
    ASSERT_TRUE(eventually(no_leader, 15s)) << cluster.logs_tail();

    // One peer back: quorum again. The next write reaches the watch, once.
    cluster.restart((serving + 1) % 3);
    ASSERT_TRUE(create("q/after")) << cluster.logs_tail();
    ASSERT_EQ(watch_done.wait_for(kCallWait), std::future_status::ready) << cluster.logs_tail();
    auto end = watch_done.get();
    EXPECT_FALSE(end.error) << end.error.message();
    std::lock_guard lock(watched->mutex);
    // The first interruption is the member canceling the watch it served, not a broken connection.
    EXPECT_NE(watched->interruptions.at(0).find("etcdserver: no leader"), std::string::npos)
        << watched->interruptions.at(0);
    ASSERT_EQ(watched->events.size(), 2u);
    EXPECT_EQ(watched->events[0].kv.key, "q/before");
    EXPECT_EQ(watched->events[1].kv.key, "q/after");
    std::printf("[ report   ] %zu watch interruptions while the member had no quorum\n",
                watched->interruptions.size());
    for (const auto& s : watched->interruptions)
        std::printf("[ report   ] watch interrupted: %s\n", s.c_str());
}

}  // namespace
