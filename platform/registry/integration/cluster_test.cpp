// Registries sharing a catalog on a real three-member etcd cluster on loopback: each a Catalog on
// the etcd store behind the registry's HTTP API on a port of its own.
//
// Chaos: registries A and B take registrations and deregistrations without pause while a
// follower and then the leader are killed with SIGKILL; a client on B follows the service with
// delta watches over HTTP, as discovery does. Afterwards every acknowledged registration is
// listed and every acknowledged deregistration is gone, on A, on B and on a third registry
// started from the cluster; the three agree on the list and on its index; and the watcher's list,
// built only from what B's watches answered, is that same list.
//
// Every wait is bounded; nothing sleeps to wait.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "plexus/discovery/registry_client.hpp"
#include "plexus/etcd/testing.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/registry/etcd_catalog.hpp"
#include "plexus/registry/registry.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace std::chrono_literals;
using etcd::testing::EtcdCluster;

namespace {

using Clock = std::chrono::steady_clock;

// The bound of each wait for progress: writes to go on after a kill, registries to agree.
constexpr std::chrono::milliseconds kWait{15'000};
const std::string kPrefix = "/plexus/registry/";
const std::string kService = "chaos";

// A registry: a catalog shared through etcd, served over HTTP on a loopback port.
struct Node {
    Node(etcd::Settings cluster)
        : catalog(core::Clock::real(), registry::CatalogLimits{},
                  registry::open_etcd_catalog(std::move(cluster), kPrefix)),
          api(catalog, metrics, 60s) {
        api.add_routes(router);
        server = std::make_unique<net::Server>(runtime, net::ServerSettings{}, router.handler(),
                                               router.body_limit_fn());
        server->start();
        endpoint = net::Endpoint{"127.0.0.1", server->port()};
        runner = std::thread([this] { runtime.run(); });
    }
    ~Node() {
        catalog.stop_following();
        api.stop_watches();
        runtime.stop();
        runner.join();
    }
    std::set<std::string> ids() const {
        std::set<std::string> out;
        for (const auto& in : catalog.snapshot(kService, true).instances) out.insert(in.id);
        return out;
    }

    registry::Catalog catalog;
    telemetry::Registry metrics;
    registry::Api api;
    net::Router router;
    net::Runtime runtime{1};
    std::unique_ptr<net::Server> server;
    net::Endpoint endpoint;
    std::thread runner;
};

// The members in `order`, as one registry's client knows them (it tries them in that order).
etcd::Settings members(EtcdCluster& cluster, std::vector<std::size_t> order) {
    etcd::Settings s;
    for (auto i : order) s.members.push_back(cluster.endpoint(i));
    return s;
}

discovery::InstanceInfo instance(std::string id) {
    discovery::InstanceInfo in;
    in.service = kService;
    in.id = std::move(id);
    in.address = "127.0.0.1";
    in.port = 9000;
    in.ttl = 120s;  // outlives the test: only writes remove instances
    return in;
}

// What one writer did.
struct Writes {
    std::mutex mutex;
    std::set<std::string> registered;    // acknowledged, and no removal tried since
    std::set<std::string> deregistered;  // acknowledged removals
    std::size_t failed = 0;              // answered with an error: may or may not have happened
    std::vector<std::string> samples;    // a few failure messages, for the report
    std::atomic<std::size_t> acked{0};
};

// Registers "<name>-00000", "<name>-00001"... through `node` until `stop`; every third write
// deregisters the oldest instance it registered.
void write_continuously(Node& node, std::string name, Writes& w, std::atomic<bool>& stop) {
    std::vector<std::string> mine;
    for (int i = 0; !stop; ++i) {
        std::string problem;
        Result<std::uint64_t> r;
        std::string id;
        bool removal = i % 3 == 2 && !mine.empty();
        if (removal) {
            id = mine.front();
            mine.erase(mine.begin());
            r = node.catalog.deregister(kService, id);
            if (!r && r.error() == core::errc::not_found) problem = "not found";
        } else {
            char text[32];
            std::snprintf(text, sizeof text, "%s-%05d", name.c_str(), i);
            id = text;
            r = node.catalog.register_instance(instance(id), &problem);
        }
        std::lock_guard lock(w.mutex);
        if (r) {
            if (removal) {
                w.registered.erase(id);
                w.deregistered.insert(id);
            } else {
                w.registered.insert(id);
                mine.push_back(id);
            }
            ++w.acked;
        } else {
            // A removal etcd could not confirm may have happened: the instance is in neither set.
            if (removal) w.registered.erase(id);
            ++w.failed;
            if (w.samples.size() < 6) w.samples.push_back(id + ": " + r.error().message() + " " + problem);
        }
    }
}

// What a client following B with delta watches holds.
struct Watched {
    std::mutex mutex;
    std::set<std::string> ids;
    std::uint64_t index = 0;
    std::size_t answers = 0, errors = 0;
    std::atomic<bool> stop{false};
};

net::Task<void> follow(net::Endpoint registry, std::shared_ptr<Watched> w) {
    discovery::RegistryClient client(registry, 5s);
    std::uint64_t since = 0;
    while (!w->stop) {
        auto r = co_await client.watch_changes(kService, since, 1s, true);
        std::lock_guard lock(w->mutex);
        if (!r) {
            ++w->errors;
            continue;
        }
        if (r->full) w->ids.clear();
        for (const auto& id : r->removed) w->ids.erase(id);
        for (const auto& in : r->instances) w->ids.insert(in.id);
        since = w->index = r->index;
        ++w->answers;
    }
}

bool eventually(auto pred) {
    auto deadline = Clock::now() + kWait;
    while (!pred()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

TEST(RegistryOnEtcdCluster, NoAcknowledgedChangeIsLostAndWatchesMissNothingWhileAFollowerThenTheLeaderDie) {
    telemetry::set_log_level(telemetry::Level::error);
    EtcdCluster cluster(3);
    auto leader = cluster.leader();
    auto follower = cluster.follower();
    ASSERT_TRUE(leader && follower) << cluster.logs_tail();
    std::size_t other = 3 - *leader - *follower;
    // Both registries start on the follower and move to the leader when it dies, so their watches
    // and writes are broken by both kills.
    auto order = members(cluster, {*follower, *leader, other});
    Node a(order), b(order);

    net::Runtime client_io(1);
    std::thread client_thread([&] { client_io.run(); });
    auto watched = std::make_shared<Watched>();
    net::spawn(client_io.executor(0), follow(b.endpoint, watched), "delta watcher");

    Writes through_a, through_b;
    std::atomic<bool> stop_writers{false};
    std::thread writer_a([&] { write_continuously(a, "a", through_a, stop_writers); });
    std::thread writer_b([&] { write_continuously(b, "b", through_b, stop_writers); });
    struct Joiner {  // the threads end even when an assertion returns early
        std::atomic<bool>& writers;
        std::shared_ptr<Watched> watched;
        net::Runtime& io;
        std::vector<std::thread*> threads;
        ~Joiner() {
            writers = true;
            watched->stop = true;
            io.stop();
            for (auto* t : threads)
                if (t->joinable()) t->join();
        }
    } joiner{stop_writers, watched, client_io, {&writer_a, &writer_b, &client_thread}};

    constexpr std::size_t kPerPhase = 40;
    auto progress = [&](std::size_t more) {
        auto a0 = through_a.acked.load(), b0 = through_b.acked.load();
        return eventually([&] {
            return through_a.acked + through_b.acked >= a0 + b0 + more && through_a.acked > a0 &&
                   through_b.acked > b0;
        });
    };
    ASSERT_TRUE(progress(kPerPhase)) << cluster.logs_tail();
    cluster.kill(*follower);
    ASSERT_TRUE(progress(kPerPhase)) << "writes stopped after the follower died\n" << cluster.logs_tail();
    cluster.restart(*follower);
    ASSERT_TRUE(progress(kPerPhase)) << cluster.logs_tail();
    auto leader_now = cluster.leader();
    ASSERT_TRUE(leader_now) << cluster.logs_tail();
    cluster.kill(*leader_now);
    ASSERT_TRUE(progress(kPerPhase)) << "writes stopped after the leader died\n" << cluster.logs_tail();
    stop_writers = true;
    writer_a.join();
    writer_b.join();

    // A third registry, started now, reads what the cluster holds.
    auto survivors = std::vector<std::size_t>{};
    for (std::size_t i = 0; i < 3; ++i)
        if (cluster.running(i)) survivors.push_back(i);
    Node c(members(cluster, survivors));
    auto expected = c.ids();
    auto index = c.catalog.service_index(kService);
    EXPECT_TRUE(eventually([&] { return a.catalog.service_index(kService) == index && a.ids() == expected; }))
        << "A: index " << a.catalog.service_index(kService) << ", the cluster " << index;
    EXPECT_TRUE(eventually([&] { return b.catalog.service_index(kService) == index && b.ids() == expected; }))
        << "B: index " << b.catalog.service_index(kService) << ", the cluster " << index;
    EXPECT_TRUE(eventually([&] {
        std::lock_guard lock(watched->mutex);
        return watched->index == index && watched->ids == expected;
    })) << "the watcher on B stopped at index "
        << watched->index << " with " << watched->ids.size() << " instances; the cluster has "
        << expected.size() << " at " << index;

    for (auto* w : {&through_a, &through_b}) {
        std::lock_guard lock(w->mutex);
        for (const auto& id : w->registered)
            EXPECT_TRUE(expected.contains(id)) << "acknowledged " << id << " lost";
        for (const auto& id : w->deregistered)
            EXPECT_FALSE(expected.contains(id)) << "acknowledged removal of " << id << " undone";
        std::string samples;
        for (const auto& s : w->samples) samples += "\n  " + s;
        std::printf("writer: %zu acknowledged, %zu failed%s\n", w->acked.load(), w->failed, samples.c_str());
    }
    std::lock_guard lock(watched->mutex);
    std::printf("watcher: %zu answers, %zu errors, %zu instances at index %llu\n", watched->answers,
                watched->errors, watched->ids.size(), static_cast<unsigned long long>(watched->index));
}

// Leases: an instance registered through one registry and heartbeating only to another stays;
// once it stops, its lease runs out and both registries drop it.
TEST(RegistryOnEtcdCluster, HeartbeatsToAnyRegistryKeepAnInstanceAndItsLeaseRemovesItEverywhere) {
    telemetry::set_log_level(telemetry::Level::error);
    EtcdCluster cluster(1);
    Node a(cluster.client_settings()), b(cluster.client_settings());
    auto in = instance("beating");
    in.ttl = 1s;
    ASSERT_TRUE(a.catalog.register_instance(in));
    ASSERT_TRUE(eventually([&] { return b.ids().contains("beating"); }));

    // Heartbeats to B only, for several TTLs: the instance stays on both.
    auto until = Clock::now() + 4s;
    while (Clock::now() < until) {
        ASSERT_TRUE(b.catalog.heartbeat(kService, "beating"))
            << "the instance was dropped while it heartbeat";
        std::this_thread::sleep_for(200ms);  // the instance's heartbeat interval
    }
    EXPECT_TRUE(a.ids().contains("beating"));
    EXPECT_TRUE(b.ids().contains("beating"));

    // No more heartbeats: gone from both, by the lease.
    EXPECT_TRUE(eventually([&] { return !a.ids().contains("beating") && !b.ids().contains("beating"); }))
        << "the instance outlived its lease";
    EXPECT_EQ(a.catalog.service_index(kService), b.catalog.service_index(kService));
}

}  // namespace
