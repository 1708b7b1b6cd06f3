// What the chain machinery itself promises: state kept across loads, and lookup of filters.

#include "plexus/gateway/filter.hpp"

#include <gtest/gtest.h>

using namespace plexus;

namespace {

TEST(FilterState, ALoadKeepsWhatItAsksForAgainAndDropsTheRest) {
    gateway::FilterState state;
    state.begin_load();
    auto a = state.keep<int>("a", [] { return std::make_shared<int>(1); });
    auto b = state.keep<int>("b", [] { return std::make_shared<int>(2); });
    state.end_load(true);
    EXPECT_EQ(state.size(), 2u);

    state.begin_load();
    auto a2 = state.keep<int>("a", [] { return std::make_shared<int>(99); });
    state.end_load(true);
    EXPECT_EQ(a2, a);  // the same object: counters and caches survive the reload
    EXPECT_EQ(state.size(), 1u);

    state.begin_load();
    auto b2 = state.keep<int>("b", [] { return std::make_shared<int>(3); });
    EXPECT_NE(b2, b);       // "b" was dropped by the previous load
    state.end_load(false);  // a rejected load leaves the current state alone
    EXPECT_EQ(state.size(), 1u);
    state.begin_load();
    EXPECT_EQ(state.keep<int>("a", [] { return std::make_shared<int>(0); }), a);
    state.end_load(true);
}

TEST(FilterFactories, AreFoundByName) {
    ASSERT_NE(gateway::find_filter_factory("headers"), nullptr);
    ASSERT_NE(gateway::find_filter_factory("ip_access"), nullptr);
    EXPECT_EQ(gateway::find_filter_factory("nosuch"), nullptr);
    for (const auto* f : gateway::filter_factories()) EXPECT_EQ(gateway::find_filter_factory(f->name()), f);
}

}  // namespace
