// Load-balancing policies over a fixed list, and the in-flight guard least_request counts with.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "plexus/discovery/discovery.hpp"

using namespace plexus::discovery;

namespace {

InstanceList list_of(std::initializer_list<const char*> ids) {
    InstanceList list;
    list.loaded = true;
    std::uint16_t port = 9000;
    for (const char* id : ids) {
        Target t;
        t.info.service = "svc";
        t.info.id = id;
        t.info.address = "127.0.0.1";
        t.info.port = port++;
        t.state = std::make_shared<InstanceState>();
        list.targets.push_back(std::move(t));
    }
    return list;
}

std::string picked_id(Balancer& b, const InstanceList& list, const std::vector<std::string>& exclude = {}) {
    const Target* t = b.pick(list, exclude);
    return t ? t->info.id : "<none>";
}

}  // namespace

TEST(Balancer, RoundRobinCyclesThroughEveryTargetEvenly) {
    auto list = list_of({"a", "b", "c"});
    Balancer b(Policy::round_robin);
    std::map<std::string, int> seen;
    std::string previous;
    for (int i = 0; i < 300; ++i) {
        auto id = picked_id(b, list);
        EXPECT_NE(id, previous) << "pick " << i << " repeated the previous target";
        previous = id;
        ++seen[id];
    }
    EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 100}, {"b", 100}, {"c", 100}}));
}

TEST(Balancer, RoundRobinVisitsEachTargetOncePerCycle) {
    auto list = list_of({"a", "b", "c", "d"});
    Balancer b;
    EXPECT_EQ(b.policy(), Policy::round_robin);
    for (int cycle = 0; cycle < 5; ++cycle) {
        std::set<std::string> ids;
        for (int i = 0; i < 4; ++i) ids.insert(picked_id(b, list));
        EXPECT_EQ(ids.size(), 4u) << "cycle " << cycle;
    }
}

TEST(Balancer, EmptyListPicksNothing) {
    InstanceList empty;
    Balancer rr(Policy::round_robin);
    Balancer lr(Policy::least_request);
    EXPECT_EQ(rr.pick(empty), nullptr);
    EXPECT_EQ(lr.pick(empty), nullptr);
    EXPECT_EQ(rr.pick(empty, {"a"}), nullptr);
}

TEST(Balancer, ExcludeSkipsTheGivenIds) {
    auto list = list_of({"a", "b", "c"});
    for (auto policy : {Policy::round_robin, Policy::least_request}) {
        Balancer b(policy);
        std::map<std::string, int> seen;
        for (int i = 0; i < 200; ++i) ++seen[picked_id(b, list, {"b"})];
        EXPECT_EQ(seen.count("b"), 0u);
        EXPECT_GT(seen["a"], 0);
        EXPECT_GT(seen["c"], 0);
        EXPECT_EQ(seen["a"] + seen["c"], 200);
        for (int i = 0; i < 20; ++i) EXPECT_EQ(picked_id(b, list, {"a", "c"}), "b");
    }
}

TEST(Balancer, ExcludingEveryTargetPicksNothing) {
    auto list = list_of({"a", "b"});
    for (auto policy : {Policy::round_robin, Policy::least_request}) {
        Balancer b(policy);
        EXPECT_EQ(b.pick(list, {"a", "b"}), nullptr);
        EXPECT_EQ(b.pick(list, {"b", "x", "a"}), nullptr);
    }
}

TEST(Balancer, ExcludingUnknownIdsChangesNothing) {
    auto list = list_of({"a", "b"});
    Balancer b;
    std::map<std::string, int> seen;
    for (int i = 0; i < 10; ++i) ++seen[picked_id(b, list, {"x", "y"})];
    EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 5}, {"b", 5}}));
}

TEST(Balancer, LeastRequestAlwaysPicksTheLessLoadedOfTwo) {
    auto list = list_of({"a", "b"});
    Balancer b(Policy::least_request);
    list.targets[0].state->in_flight = 3;
    list.targets[1].state->in_flight = 2;
    for (int i = 0; i < 200; ++i) ASSERT_EQ(picked_id(b, list), "b") << "pick " << i;
    list.targets[1].state->in_flight = 7;
    for (int i = 0; i < 200; ++i) ASSERT_EQ(picked_id(b, list), "a") << "pick " << i;
}

TEST(Balancer, LeastRequestNeverPicksTheBusiest) {
    // Any two distinct choices include one with fewer in-flight requests than the busiest.
    auto list = list_of({"a", "b", "c", "d"});
    list.targets[2].state->in_flight = 10;
    Balancer b(Policy::least_request);
    std::map<std::string, int> seen;
    for (int i = 0; i < 400; ++i) ++seen[picked_id(b, list)];
    EXPECT_EQ(seen.count("c"), 0u);
    EXPECT_GT(seen["a"], 0);
    EXPECT_GT(seen["b"], 0);
    EXPECT_GT(seen["d"], 0);
}

TEST(Balancer, LeastRequestWithExcludeChoosesAmongTheRest) {
    auto list = list_of({"a", "b", "c"});
    list.targets[0].state->in_flight = 0;  // the least loaded, but excluded
    list.targets[1].state->in_flight = 5;
    list.targets[2].state->in_flight = 1;
    Balancer b(Policy::least_request);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(picked_id(b, list, {"a"}), "c");
}

TEST(Balancer, PolicyCanChangeAtRunTime) {
    auto list = list_of({"a", "b"});
    list.targets[0].state->in_flight = 4;
    Balancer b(Policy::round_robin);
    std::set<std::string> ids{picked_id(b, list), picked_id(b, list)};
    EXPECT_EQ(ids.size(), 2u);
    b.set_policy(Policy::least_request);
    EXPECT_EQ(b.policy(), Policy::least_request);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(picked_id(b, list), "b");
}

TEST(InFlight, CountsWhileAlive) {
    auto state = std::make_shared<InstanceState>();
    {
        InFlight first(state);
        EXPECT_EQ(state->in_flight.load(), 1);
        {
            InFlight second(state);
            EXPECT_EQ(state->in_flight.load(), 2);
        }
        EXPECT_EQ(state->in_flight.load(), 1);
    }
    EXPECT_EQ(state->in_flight.load(), 0);
}

TEST(InFlight, EmptyGuardCountsNothing) {
    InFlight none;
    InFlight null_state(nullptr);
    InFlight moved(std::move(none));
    SUCCEED();  // nothing to decrement: must not crash
}

TEST(InFlight, MoveTransfersTheCount) {
    auto state = std::make_shared<InstanceState>();
    InFlight a(state);
    InFlight b(std::move(a));
    EXPECT_EQ(state->in_flight.load(), 1);
    {
        InFlight c(std::move(b));
        EXPECT_EQ(state->in_flight.load(), 1);
    }
    EXPECT_EQ(state->in_flight.load(), 0);  // only the last owner decremented
}

TEST(InFlight, MoveAssignmentReleasesTheOldCount) {
    auto s1 = std::make_shared<InstanceState>();
    auto s2 = std::make_shared<InstanceState>();
    InFlight a(s1);
    {
        InFlight b(s2);
        a = std::move(b);
        EXPECT_EQ(s1->in_flight.load(), 0);
        EXPECT_EQ(s2->in_flight.load(), 1);
    }
    EXPECT_EQ(s2->in_flight.load(), 1);  // b was emptied by the move
    InFlight empty;
    a = std::move(empty);
    EXPECT_EQ(s2->in_flight.load(), 0);
}

TEST(InFlight, SteersLeastRequestAwayFromABusyTarget) {
    auto list = list_of({"a", "b"});
    Balancer b(Policy::least_request);
    InFlight busy(list.targets[0].state);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(picked_id(b, list), "b");
    InFlight also_busy(list.targets[1].state);
    InFlight busier(list.targets[1].state);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(picked_id(b, list), "a");
}

TEST(ParsePolicy, KnowsBothPolicies) {
    EXPECT_EQ(parse_policy("round_robin"), Policy::round_robin);
    EXPECT_EQ(parse_policy("least_request"), Policy::least_request);
    EXPECT_EQ(parse_policy(""), std::nullopt);
    EXPECT_EQ(parse_policy("Round_Robin"), std::nullopt);
    EXPECT_EQ(parse_policy("random"), std::nullopt);
    EXPECT_EQ(parse_policy("round_robin "), std::nullopt);
}
