// The headers filter's edits and its settings checks.

#include "headers/headers.hpp"

#include <gtest/gtest.h>

#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"

using namespace plexus;
using gateway::filters::HeaderEdits;

namespace {

TEST(HeaderEdits, RemoveThenSetThenAdd) {
    net::Headers h;
    h.add("X-A", "1");
    h.add("X-A", "2");
    h.add("X-B", "keep");
    h.add("X-Gone", "x");
    HeaderEdits e;
    e.remove = {"x-gone"};
    e.set = {{"X-A", "one"}};
    e.add = {{"X-B", "more"}};
    e.apply(h);
    EXPECT_FALSE(h.get("X-Gone"));
    EXPECT_EQ(h.get("X-A").value_or(""), "one");
    int a = 0, b = 0;
    for (const auto& f : h) a += net::iequals(f.name(), "X-A"), b += net::iequals(f.name(), "X-B");
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 2);
}

TEST(HeadersFilter, SettingsBuiltInCodeAreCheckedToo) {
    auto config = std::make_shared<gateway::filters::HeadersConfig>();
    config->response.set = {{"Transfer-Encoding", "chunked"}};
    gateway::RouteSettings route;
    route.name = "r";
    gateway::FilterState state;
    telemetry::Registry registry;
    gateway::FilterContext ctx{route, state, registry};
    gateway::FilterSpec spec{"headers", config};
    try {
        gateway::compile_filters({&spec, 1}, ctx);
        FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()),
                  "filters[0] (headers): response.set: 'Transfer-Encoding' is set by the gateway itself");
    }
    config->response.set = {{"X-Ok", "bad\r\nvalue"}};
    EXPECT_THROW(gateway::compile_filters({&spec, 1}, ctx), std::invalid_argument);
    config->response.set = {{"X-Ok", "fine"}};
    auto chain = gateway::compile_filters({&spec, 1}, ctx);
    EXPECT_EQ(chain.phases, gateway::kResponseHead);  // no request edits: no request phase
}

TEST(HeadersFilter, NeedsSomethingToChange) {
    EXPECT_THROW(gateway::parse_routes(
                     "routes:\n  - name: r\n    match: {prefix: /}\n    upstreams: [\"127.0.0.1:1\"]\n"
                     "    filters:\n      - name: headers\n",
                     "r.yaml"),
                 core::SettingsError);
}

}  // namespace
