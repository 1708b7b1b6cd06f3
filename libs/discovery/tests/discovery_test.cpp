// The local view fed by blocking watches on a real in-process registry. A change must reach the
// view well within kPushed, far less than the 10 s the view's watch waits: it is pushed by the
// registry answering the pending watch, not found by polling. Every wait is bounded.

#include "plexus/discovery/discovery.hpp"

#include <gtest/gtest.h>

#include <map>

#include "in_process_registry.hpp"

using namespace plexus;
using namespace plexus::discovery;
using namespace plexus::discovery::test;

namespace {

constexpr std::chrono::milliseconds kPushed = 2s;  // how soon a pushed change must be in the view

std::vector<std::string> ids_of(const InstanceList& list) {
    std::vector<std::string> ids;
    for (const auto& t : list.targets) ids.push_back(t.info.id);
    return ids;
}

class DiscoveryTest : public ::testing::Test {
  protected:
    ErrorCode register_instance(InstanceInfo in) { return registry_.register_instance(std::move(in)); }
    ErrorCode deregister(std::string service, std::string id) { return registry_.deregister(service, id); }
    ErrorCode set_draining(std::string service, std::string id) {
        return registry_.set_draining(service, id);
    }
    std::shared_ptr<const InstanceList> ready(std::string service, std::chrono::milliseconds timeout = 5s) {
        return registry_.run(
            owned([d = &discovery_, service, timeout] { return d->ready(service, timeout); }));
    }
    // Waits until the registry holds `n` blocking watches: a change made now must be pushed.
    void expect_watches_pending(double n) {
        ASSERT_TRUE(wait_until([&] { return registry_.watchers() == n; }))
            << "the registry holds " << registry_.watchers() << " watches, expected " << n;
    }
    // Waits up to kPushed for the view of `service` to list exactly `ids`.
    ::testing::AssertionResult view_becomes(const std::string& service, std::vector<std::string> ids) {
        auto started = std::chrono::steady_clock::now();
        if (wait_until([&] { return ids_of(*discovery_.instances(service)) == ids; }, kPushed)) {
            return ::testing::AssertionSuccess() << "after "
                                                 << std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        std::chrono::steady_clock::now() - started)
                                                        .count()
                                                 << " ms";
        }
        auto result = ::testing::AssertionFailure()
                      << "view of " << service << " after " << kPushed.count() << " ms:";
        for (const auto& id : ids_of(*discovery_.instances(service))) result << " " << id;
        return result;
    }

    InProcessRegistry registry_;
    Discovery discovery_{registry_.client(), registry_.executor(1)};
};

}  // namespace

TEST_F(DiscoveryTest, ReadyReturnsTheRegisteredInstances) {
    auto a = instance("catalog", "catalog-a", 7001);
    a.metadata = {{"version", "2"}};
    ASSERT_FALSE(register_instance(a));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_FALSE(register_instance(instance("other", "other-a", 7003)));

    auto list = ready("catalog");
    ASSERT_TRUE(list);
    EXPECT_TRUE(list->loaded);
    EXPECT_EQ(list->index, registry_.catalog().service_index("catalog"));
    ASSERT_EQ(ids_of(*list), (std::vector<std::string>{"catalog-a", "catalog-b"}));
    EXPECT_EQ(list->targets[0].info.endpoint(), (net::Endpoint{"127.0.0.1", 7001}));
    EXPECT_EQ(list->targets[0].info.metadata, a.metadata);
    for (const auto& t : list->targets) {
        ASSERT_TRUE(t.state);
        EXPECT_EQ(t.state->in_flight.load(), 0);
    }
    EXPECT_EQ(discovery_.instances("catalog"), list);  // the same snapshot until something changes
}

TEST_F(DiscoveryTest, ReadyForAnEmptyServiceIsLoadedAndEmpty) {
    auto list = ready("nobody");
    ASSERT_TRUE(list);
    EXPECT_TRUE(list->loaded);
    EXPECT_TRUE(list->targets.empty());
    EXPECT_FALSE(discovery_.pick("nobody").has_value());
}

TEST_F(DiscoveryTest, RegistrationIsPushedIntoTheView) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_EQ(ids_of(*ready("catalog")), (std::vector<std::string>{"catalog-a", "catalog-b"}));
    expect_watches_pending(1);

    auto changed = registry_.start(owned([d = &discovery_] { return d->changed().wait(kWait); }), 0);
    ASSERT_TRUE(wait_until([&] { return discovery_.changed().waiters() == 1; }));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-c", 7003)));
    EXPECT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b", "catalog-c"}));
    EXPECT_TRUE(wait(changed)) << "changed() was not signalled";
    EXPECT_EQ(discovery_.instances("catalog")->index, registry_.catalog().service_index("catalog"));
}

TEST_F(DiscoveryTest, ChangesToOtherServicesLeaveTheViewAlone) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    auto before = ready("catalog");
    expect_watches_pending(1);
    ASSERT_FALSE(register_instance(instance("other", "other-a", 7002)));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7003)));
    EXPECT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b"}));
    EXPECT_GT(discovery_.instances("catalog")->index, before->index);
}

TEST_F(DiscoveryTest, DeregisteredInstanceLeavesTheView) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_EQ(ready("catalog")->targets.size(), 2u);
    expect_watches_pending(1);
    ASSERT_FALSE(deregister("catalog", "catalog-a"));
    EXPECT_TRUE(view_becomes("catalog", {"catalog-b"}));
    expect_watches_pending(1);
    ASSERT_FALSE(deregister("catalog", "catalog-b"));
    EXPECT_TRUE(view_becomes("catalog", {}));
    EXPECT_TRUE(discovery_.instances("catalog")->loaded);
}

TEST_F(DiscoveryTest, DrainingInstanceLeavesTheHealthyView) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_EQ(ready("catalog")->targets.size(), 2u);
    expect_watches_pending(1);
    ASSERT_FALSE(set_draining("catalog", "catalog-b"));
    EXPECT_TRUE(view_becomes("catalog", {"catalog-a"}));
    for (int i = 0; i < 10; ++i) EXPECT_EQ(discovery_.pick("catalog")->info.id, "catalog-a");
}

TEST_F(DiscoveryTest, CriticalInstancesAreNotInTheView) {
    auto sick = instance("catalog", "catalog-b", 7002);
    sick.status = "critical";
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(sick));
    EXPECT_EQ(ids_of(*ready("catalog")), (std::vector<std::string>{"catalog-a"}));
}

TEST_F(DiscoveryTest, PickRoundRobinsAcrossLiveInstances) {
    for (int i = 0; i < 3; ++i) {
        std::string id = "catalog-" + std::to_string(i);
        ASSERT_FALSE(register_instance(instance("catalog", id, static_cast<std::uint16_t>(7000 + i))));
    }
    ASSERT_EQ(ready("catalog")->targets.size(), 3u);
    std::map<std::string, int> seen;
    std::string previous;
    for (int i = 0; i < 30; ++i) {
        auto t = discovery_.pick("catalog");
        ASSERT_TRUE(t);
        EXPECT_NE(t->info.id, previous);
        previous = t->info.id;
        ++seen[t->info.id];
    }
    EXPECT_EQ(seen, (std::map<std::string, int>{{"catalog-0", 10}, {"catalog-1", 10}, {"catalog-2", 10}}));

    for (int i = 0; i < 10; ++i) {
        auto t = discovery_.pick("catalog", {"catalog-0", "catalog-2"});
        ASSERT_TRUE(t);
        EXPECT_EQ(t->info.id, "catalog-1");
    }
    EXPECT_FALSE(discovery_.pick("catalog", {"catalog-0", "catalog-1", "catalog-2"}).has_value());
}

TEST_F(DiscoveryTest, PickFollowsTheViewAfterAChange) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_EQ(ready("catalog")->targets.size(), 2u);
    expect_watches_pending(1);
    ASSERT_FALSE(deregister("catalog", "catalog-a"));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-b"}));
    for (int i = 0; i < 10; ++i) EXPECT_EQ(discovery_.pick("catalog")->info.id, "catalog-b");
}

TEST_F(DiscoveryTest, InFlightCountsSurviveASnapshotSwap) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_EQ(ready("catalog")->targets.size(), 1u);
    auto picked = discovery_.pick("catalog");
    ASSERT_TRUE(picked);
    InFlight guard(picked->state);
    expect_watches_pending(1);
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b"}));

    auto list = discovery_.instances("catalog");
    EXPECT_EQ(list->targets[0].state, picked->state);
    EXPECT_EQ(list->targets[0].state->in_flight.load(), 1);
    EXPECT_EQ(list->targets[1].state->in_flight.load(), 0);
}

TEST_F(DiscoveryTest, AnInstanceRestartedOnAnotherPortStartsWithAFreshState) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_EQ(ready("catalog")->targets.size(), 1u);
    auto before = discovery_.instances("catalog")->targets[0].state;
    before->health.ejections = 3;  // as outlier detection leaves a dead instance
    expect_watches_pending(1);
    // The supervisor restarts it under the same id; the new process listens elsewhere.
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7101)));
    ASSERT_TRUE(wait_until([&] { return discovery_.instances("catalog")->targets.at(0).info.port == 7101; }));
    auto after = discovery_.instances("catalog")->targets[0].state;
    EXPECT_NE(after, before);
    EXPECT_EQ(after->health.ejections.load(), 0);
}

TEST_F(DiscoveryTest, LeastRequestPolicyAvoidsTheBusyInstance) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-b", 7002)));
    ASSERT_EQ(ready("catalog")->targets.size(), 2u);
    discovery_.set_policy("catalog", Policy::least_request);
    auto list = discovery_.instances("catalog");
    InFlight busy(list->targets[0].state);  // catalog-a
    for (int i = 0; i < 20; ++i) EXPECT_EQ(discovery_.pick("catalog")->info.id, "catalog-b");
}

TEST_F(DiscoveryTest, WatchesOfSeveralServicesAreIndependent) {
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_FALSE(register_instance(instance("orders", "orders-a", 7002)));
    ASSERT_EQ(ready("catalog")->targets.size(), 1u);
    ASSERT_EQ(ready("orders")->targets.size(), 1u);
    expect_watches_pending(2);
    ASSERT_FALSE(register_instance(instance("orders", "orders-b", 7003)));
    EXPECT_TRUE(view_becomes("orders", {"orders-a", "orders-b"}));
    EXPECT_EQ(ids_of(*discovery_.instances("catalog")), (std::vector<std::string>{"catalog-a"}));
}

TEST(DiscoveryUnavailable, ReadyGivesUpAfterItsTimeoutAndStaysUnloaded) {
    InProcessRegistry runtime_only;  // used for its runtime; the view watches a closed port
    ClosedPort closed;
    Discovery discovery(RegistryClient(closed.endpoint(), 1s), runtime_only.executor(1));
    EXPECT_FALSE(discovery.instances("catalog")->loaded);

    auto started = std::chrono::steady_clock::now();
    auto list = runtime_only.run(
        owned([d = &discovery, service = std::string("catalog")] { return d->ready(service, 300ms); }));
    auto took = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(list);
    EXPECT_FALSE(list->loaded);
    EXPECT_TRUE(list->targets.empty());
    EXPECT_GE(took, 290ms);  // ready() rounds what is left down to whole milliseconds
    EXPECT_FALSE(discovery.pick("catalog").has_value());
    discovery.stop();
    discovery.stop();  // idempotent
}

TEST_F(DiscoveryTest, ChangesAppliedOneAfterAnotherKeepTheViewInOrder) {
    for (auto id : {"catalog-b", "catalog-d"})
        ASSERT_FALSE(register_instance(instance("catalog", id, id[8] == 'b' ? 7002 : 7004)));
    ASSERT_EQ(ready("catalog")->targets.size(), 2u);
    auto b_state = discovery_.instances("catalog")->targets[0].state;
    expect_watches_pending(1);
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-a", 7001)));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b", "catalog-d"}));
    expect_watches_pending(1);
    ASSERT_FALSE(register_instance(instance("catalog", "catalog-c", 7003)));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b", "catalog-c", "catalog-d"}));
    expect_watches_pending(1);
    ASSERT_FALSE(set_draining("catalog", "catalog-d"));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b", "catalog-c"}));
    expect_watches_pending(1);
    ASSERT_TRUE(registry_.catalog().set_status("catalog", "catalog-a", "critical"));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-b", "catalog-c"}));
    expect_watches_pending(1);
    ASSERT_TRUE(registry_.catalog().set_status("catalog", "catalog-a", "passing"));
    ASSERT_TRUE(view_becomes("catalog", {"catalog-a", "catalog-b", "catalog-c"}));
    // An instance no change named kept its state through every one of them.
    EXPECT_EQ(discovery_.instances("catalog")->targets[1].state, b_state);
    EXPECT_EQ(discovery_.instances("catalog")->index, registry_.catalog().service_index("catalog"));
}
