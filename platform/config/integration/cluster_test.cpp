// Two config servers (ConfigService, each with its own etcd store) sharing a real three-member etcd
// cluster on loopback.
//
// Chaos: both take writes without pause (new documents, and a ledger document each updates again
// and again) while a follower and then the leader are killed with SIGKILL; a watcher on server B
// follows B's snapshot the way watches do (woken by changed()). Afterwards every acknowledged
// write must be readable with its content on both servers and on a third started from the cluster,
// the ledgers' histories complete and strictly ordered, versions unique, the servers identical,
// and the watcher must have seen every document written through A.
//
// Conflicts: rounds in which both servers change one document based on the same version at the
// same moment: exactly one wins each round, the other is refused with 409.
//
// Every wait is bounded; nothing sleeps to wait.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <cstdio>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../tests/config_waits.hpp"
#include "plexus/config/etcd_store.hpp"
#include "plexus/config/service.hpp"
#include "plexus/etcd/testing.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/telemetry/log.hpp"

using namespace plexus;
using namespace plexus::config;
using namespace std::chrono_literals;
namespace json = boost::json;
using etcd::testing::EtcdCluster;

namespace {

using Clock = std::chrono::steady_clock;

// The bound of each wait for progress: writes to go on after a kill, servers to agree.
constexpr std::chrono::milliseconds kWait{15'000};

const Caller kAdmin{"alice", "plexus:admin"};

using plexus::config::testing::Io;

template <class Pred>
bool eventually(Io& io, ConfigService& service, Pred pred, std::chrono::milliseconds limit = kWait) {
    return plexus::config::testing::eventually(io, service, pred, limit);
}

std::unique_ptr<ConfigService> server(const etcd::Settings& cluster, const std::string& prefix) {
    return std::make_unique<ConfigService>(open_etcd_store(cluster, prefix), SecretBox(std::string(32, 's')));
}

// The members in `order`, as one server's client knows them (it tries them in that order).
etcd::Settings members(EtcdCluster& cluster, std::vector<std::size_t> order) {
    etcd::Settings s;
    for (auto i : order) s.members.push_back(cluster.endpoint(i));
    return s;
}

struct Ack {
    DocKey key;
    std::int64_t version = 0;
    json::object content;
};

// What one writer did, shared with the test thread.
struct Writes {
    std::mutex mutex;
    std::vector<Ack> acked;            // in the order acknowledged
    std::vector<Ack> failed;           // 500: the store could not say it was done
    std::size_t refused = 0;           // 409: certainly not applied
    std::vector<std::string> samples;  // a few failure messages, for the report
    std::atomic<std::size_t> acked_count{0};
};

// Writes through `service` until `stop`: new documents of `app` ("p00000", ...) and, every other
// write, the next entry of the ledger document `ledger` based on the last version it knows.
void write_continuously(ConfigService& service, std::string app, DocKey ledger, Writes& w,
                        std::atomic<bool>& stop) {
    std::int64_t ledger_version = -1;
    for (int i = 0; !stop; ++i) {
        char profile[16];
        std::snprintf(profile, sizeof profile, "p%05d", i / 2);
        bool to_ledger = i % 2 == 1;
        DocKey key = to_ledger ? ledger : DocKey{app, profile};
        Edit edit;
        edit.content = json::object{{"writer", app}, {"i", i}};
        edit.expected = to_ledger ? ledger_version : 0;
        try {
            auto r = service.write(kAdmin, key, edit);
            if (to_ledger) ledger_version = r.version;
            std::lock_guard lock(w.mutex);
            w.acked.push_back({key, r.version, *edit.content});
            ++w.acked_count;
        } catch (const net::HttpError& e) {
            if (to_ledger) ledger_version = -1;  // where the ledger stands is not known now
            std::lock_guard lock(w.mutex);
            if (e.status() == 409) {
                ++w.refused;
            } else {
                w.failed.push_back({key, 0, *edit.content});
            }
            if (w.samples.size() < 6) w.samples.push_back(std::to_string(e.status()) + " " + e.what());
        }
    }
}

// What the watcher on server B saw: each document at each version it was served at.
struct Watched {
    std::mutex mutex;
    std::set<std::pair<std::string, std::int64_t>> seen;  // (document name, version)
    std::int64_t last_revision = 0;
    bool revision_went_back = false;
    std::atomic<std::size_t> wakes{0};
    std::condition_variable sampled;  // after each look at the server
};

void watch_server(ConfigService& b, Io& io, Watched& w, std::atomic<bool>& stop) {
    while (!stop) {
        auto epoch = b.changed().epoch();
        auto revision = b.revision();
        auto docs = b.documents();
        {
            std::lock_guard lock(w.mutex);
            if (revision < w.last_revision) w.revision_went_back = true;
            w.last_revision = revision;
            for (const auto& d : docs) {
                const auto& o = d.as_object();
                if (const auto* v = o.if_contains("version"))
                    w.seen.insert({std::string(o.at("name").as_string()), v->as_int64()});
            }
        }
        w.sampled.notify_all();
        ++w.wakes;
        net::run_blocking(io.executor(), b.changed().wait(250ms, epoch), 2s);
    }
}

// What the stores reported while the cluster lost members, counted from their log lines.
struct StoreEvents {
    std::atomic<std::size_t> settled_not_applied{0};  // appends etcd left open, found not applied
    std::atomic<std::size_t> watch_resumed{0};        // a feed's stream broke and went on elsewhere
    std::atomic<std::size_t> reloads{0};              // a feed ended (compaction): a full reload
};

class ConfigOnEtcdCluster : public ::testing::Test {
  protected:
    void SetUp() override {
        telemetry::set_log_level(telemetry::Level::warn);
        telemetry::set_log_sink([this](std::string_view line) {
            if (line.find("could not tell was not applied") != std::string_view::npos) {
                ++events_.settled_not_applied;
            } else if (line.find("the watch resumes on another member") != std::string_view::npos) {
                ++events_.watch_resumed;
            } else if (line.find("the watch ended") != std::string_view::npos) {
                ++events_.reloads;
            } else {
                std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
            }
        });
    }
    void TearDown() override { telemetry::set_log_sink({}); }

    StoreEvents events_;
};

TEST_F(ConfigOnEtcdCluster, TwoServersLoseNoAcknowledgedWriteAndMissNoChangeWhileAFollowerThenTheLeaderDie) {
    EtcdCluster cluster(3);
    auto leader = cluster.leader();
    auto follower = cluster.follower();
    ASSERT_TRUE(leader && follower) << cluster.logs_tail();
    std::size_t other = 3 - *leader - *follower;
    // Both servers start on the follower and move to the leader when it dies, so their watches
    // and writes are broken by both kills.
    auto order = members(cluster, {*follower, *leader, other});
    const std::string prefix = "/plexus/config/";
    auto a = server(order, prefix);
    auto b = server(order, prefix);
    Io io;

    Writes through_a, through_b;
    Watched watched;
    std::atomic<bool> stop_writers{false}, stop_watcher{false};
    std::thread writer_a(
        [&] { write_continuously(*a, "chaos-a", {"ledger", "a"}, through_a, stop_writers); });
    std::thread writer_b(
        [&] { write_continuously(*b, "chaos-b", {"ledger", "b"}, through_b, stop_writers); });
    std::thread watcher([&] { watch_server(*b, io, watched, stop_watcher); });
    struct Joiner {  // the threads end even when an assertion returns early
        std::atomic<bool>& writers;
        std::atomic<bool>& watcher;
        std::vector<std::thread*> threads;
        ~Joiner() {
            writers = true;
            watcher = true;
            for (auto* t : threads)
                if (t->joinable()) t->join();
        }
    } joiner{stop_writers, stop_watcher, {&writer_a, &writer_b, &watcher}};

    constexpr std::size_t kPerPhase = 40;
    auto total = [&] { return through_a.acked_count + through_b.acked_count; };
    // Waits (woken by A's changes, which both writers make) until both writers went on and `more`
    // writes were acknowledged.
    auto progress = [&](std::size_t more) {
        auto target = total() + more;
        auto a0 = through_a.acked_count.load(), b0 = through_b.acked_count.load();
        return eventually(io, *a, [&] {
            return total() >= target && through_a.acked_count > a0 && through_b.acked_count > b0;
        });
    };
    ASSERT_TRUE(progress(kPerPhase)) << cluster.logs_tail();

    cluster.kill(*follower);
    ASSERT_TRUE(progress(kPerPhase)) << "writes stopped after the follower died\n" << cluster.logs_tail();
    cluster.restart(*follower);
    ASSERT_TRUE(progress(kPerPhase)) << cluster.logs_tail();

    auto leader_now = cluster.leader();
    ASSERT_TRUE(leader_now) << cluster.logs_tail();
    ASSERT_EQ(*leader_now, *leader) << "leadership moved while the follower rejoined";
    cluster.kill(*leader);
    ASSERT_TRUE(progress(kPerPhase)) << "writes stopped after the leader died\n" << cluster.logs_tail();
    auto new_leader = cluster.leader();
    ASSERT_TRUE(new_leader) << cluster.logs_tail();

    stop_writers = true;
    writer_a.join();
    writer_b.join();

    // A third server, started now, reads what the cluster holds.
    auto c = server(members(cluster, {*new_leader, *follower, *leader}), prefix);
    const auto revision = c->revision();
    ASSERT_TRUE(eventually(io, *a, [&] { return a->revision() == revision; }))
        << a->revision() << " " << revision;
    ASSERT_TRUE(eventually(io, *b, [&] { return b->revision() == revision; }))
        << b->revision() << " " << revision;
    {
        // Until the watcher has seen every document written through A (or kWait passed).
        std::unique_lock lock(watched.mutex);
        watched.sampled.wait_for(lock, kWait, [&] {
            return std::all_of(through_a.acked.begin(), through_a.acked.end(), [&](const Ack& ack) {
                return ack.key.app == "ledger" || watched.seen.contains({ack.key.name(), ack.version});
            });
        });
    }
    stop_watcher = true;
    watcher.join();

    std::lock_guard la(through_a.mutex);
    std::lock_guard lb(through_b.mutex);
    std::lock_guard lw(watched.mutex);

    // Versions are unique across servers and increase in each writer's order.
    std::set<std::int64_t> versions;
    for (auto* w : {&through_a, &through_b}) {
        std::int64_t previous = 0;
        for (const auto& ack : w->acked) {
            EXPECT_TRUE(versions.insert(ack.version).second)
                << "version " << ack.version << " acknowledged twice";
            EXPECT_GT(ack.version, previous);
            previous = ack.version;
        }
    }
    EXPECT_LE(static_cast<std::int64_t>(versions.size()), revision);

    // Every acknowledged write is there, with its content, on every server.
    for (auto* w : {&through_a, &through_b}) {
        for (const auto& ack : w->acked) {
            for (auto* s : {a.get(), b.get(), c.get()}) {
                Record r;
                try {
                    r = s->document(ack.key, ack.version);
                } catch (const net::HttpError& e) {
                    ADD_FAILURE() << "acknowledged " << ack.key.name() << " v" << ack.version
                                  << " lost: " << e.what();
                    continue;
                }
                EXPECT_EQ(r.content, ack.content) << ack.key.name() << " v" << ack.version;
            }
        }
    }
    // Each new document was written once: the servers serve it at the acknowledged version.
    auto docs = c->documents();
    std::map<std::string, std::int64_t> served;
    for (const auto& d : docs) served[std::string(d.at("name").as_string())] = d.at("version").as_int64();
    for (auto* w : {&through_a, &through_b})
        for (const auto& ack : w->acked)
            if (ack.key.app != "ledger") EXPECT_EQ(served[ack.key.name()], ack.version) << ack.key.name();
    EXPECT_EQ(a->documents(), docs);
    EXPECT_EQ(b->documents(), docs);

    // Each ledger's history: strictly ordered, every acknowledged entry in it, and nothing that was
    // not written (an entry not acknowledged must be one whose write failed without an answer).
    for (auto [w, profile] : {std::pair{&through_a, "a"}, std::pair{&through_b, "b"}}) {
        DocKey ledger{"ledger", profile};
        auto history = c->history(ledger, 0, 10'000);
        std::map<std::int64_t, json::object> entries;
        std::int64_t previous = std::numeric_limits<std::int64_t>::max();
        for (const auto& r : history) {
            EXPECT_LT(r.version, previous) << "history out of order";
            previous = r.version;
            entries[r.version] = *r.content;
        }
        std::size_t acked = 0;
        for (const auto& ack : w->acked) {
            if (!(ack.key == ledger)) continue;
            ++acked;
            auto it = entries.find(ack.version);
            ASSERT_NE(it, entries.end())
                << "acknowledged ledger entry v" << ack.version << " missing from history";
            EXPECT_EQ(it->second, ack.content);
        }
        for (const auto& [version, content] : entries) {
            bool acknowledged = std::any_of(w->acked.begin(), w->acked.end(),
                                            [&](const Ack& x) { return x.version == version; });
            bool failed = std::any_of(w->failed.begin(), w->failed.end(),
                                      [&](const Ack& x) { return x.key == ledger && x.content == content; });
            EXPECT_TRUE(acknowledged || failed)
                << "ledger " << profile << " v" << version << " was never written";
        }
        EXPECT_EQ(b->history(ledger, 0, 10'000).size(), history.size());
        EXPECT_GE(history.size(), acked);
    }

    // The watcher on B saw every document written through A at its version, and B's revision
    // never went back.
    std::size_t from_a = 0;
    for (const auto& ack : through_a.acked) {
        if (ack.key.app == "ledger") continue;
        ++from_a;
        EXPECT_TRUE(watched.seen.contains({ack.key.name(), ack.version}))
            << "the watcher on B never saw " << ack.key.name() << " v" << ack.version;
    }
    EXPECT_FALSE(watched.revision_went_back);
    // Both servers' feeds were on the follower, then on the leader: each kill broke both.
    EXPECT_GE(events_.watch_resumed.load(), 4u);

    std::printf(
        "[ report   ] through A: %zu acknowledged (%zu new documents), %zu failed, %zu refused; through B: "
        "%zu acknowledged, %zu failed, %zu refused; revision %lld; watcher on B woke %zu times; %zu appends "
        "etcd left open settled as not applied and retried; %zu watch resumptions, %zu reloads\n",
        through_a.acked.size(), from_a, through_a.failed.size(), through_a.refused, through_b.acked.size(),
        through_b.failed.size(), through_b.refused, static_cast<long long>(revision), watched.wakes.load(),
        events_.settled_not_applied.load(), events_.watch_resumed.load(), events_.reloads.load());
    for (auto* w : {&through_a, &through_b})
        for (const auto& s : w->samples) std::printf("[ report   ] write refused: %s\n", s.c_str());
}

TEST_F(ConfigOnEtcdCluster, BothServersChangingOneDocumentAtOnceHaveExactlyOneWinnerEachRound) {
    EtcdCluster cluster(3);
    const std::string prefix = "/plexus/config/";
    // The two enter the cluster through different members.
    auto a = server(members(cluster, {0, 1, 2}), prefix);
    auto b = server(members(cluster, {1, 2, 0}), prefix);
    Io io;
    DocKey key{"catalog", ""};
    auto first = a->write(kAdmin, key, Edit{json::object{{"round", 0}}, {}, "", 0});
    std::int64_t version = first.version;

    constexpr int kRounds = 50;
    int wins_a = 0, wins_b = 0;
    std::map<int, std::string> winner;  // round -> "a" or "b"
    for (int round = 1; round <= kRounds; ++round) {
        ASSERT_TRUE(eventually(io, *a, [&] { return a->version_of("catalog", {}, "") == version; }));
        ASSERT_TRUE(eventually(io, *b, [&] { return b->version_of("catalog", {}, "") == version; }));
        std::latch go(2);
        auto attempt = [&](ConfigService& s, std::string who) -> std::pair<int, std::int64_t> {
            Edit e{json::object{{"round", round}, {"by", who}}, {}, "", version};
            go.arrive_and_wait();
            try {
                return {200, s.write(kAdmin, key, e).version};
            } catch (const net::HttpError& err) {
                return {err.status(), 0};
            }
        };
        std::pair<int, std::int64_t> ra, rb;
        std::thread ta([&] { ra = attempt(*a, "a"); });
        std::thread tb([&] { rb = attempt(*b, "b"); });
        ta.join();
        tb.join();
        ASSERT_TRUE((ra.first == 200 && rb.first == 409) || (ra.first == 409 && rb.first == 200))
            << "round " << round << ": a answered " << ra.first << ", b answered " << rb.first;
        version = ra.first == 200 ? ra.second : rb.second;
        winner[round] = ra.first == 200 ? "a" : "b";
        (ra.first == 200 ? wins_a : wins_b)++;
    }
    // The history holds one change per round, the winner's.
    auto history = a->history(key, 0, 1000);
    ASSERT_EQ(history.size(), static_cast<std::size_t>(kRounds + 1));
    for (const auto& r : history) {
        auto round = static_cast<int>(r.content->at("round").as_int64());
        if (round == 0) continue;
        EXPECT_EQ(r.content->at("by").as_string(), winner[round]) << "round " << round;
    }
    std::printf(
        "[ report   ] %d rounds of two simultaneous writes: %d won through A, %d through B, %d refused\n",
        kRounds, wins_a, wins_b, kRounds);
}

}  // namespace
