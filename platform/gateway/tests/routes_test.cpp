// Routes: the YAML loader and its errors, the compiled table's precedence, and target rewriting.

#include "plexus/gateway/routes.hpp"

#include <gtest/gtest.h>

#include "plexus/core/settings.hpp"

namespace gateway = plexus::gateway;
namespace net = plexus::net;
using namespace std::chrono_literals;

namespace {

// The message of the SettingsError `text` raises, or "" if it parses.
std::string load_error(std::string_view text) {
    try {
        gateway::parse_routes(text, "routes.yaml");
    } catch (const plexus::core::SettingsError& e) {
        return e.what();
    }
    return "";
}

gateway::RouteSettings route(std::string name, std::string path, std::string prefix = {}) {
    gateway::RouteSettings r;
    r.name = std::move(name);
    r.path = std::move(path);
    r.prefix = std::move(prefix);
    r.upstreams = {"127.0.0.1:9001"};
    return r;
}

const gateway::Route* match(const gateway::RouteTable& table, std::string_view method, std::string_view path,
                            std::string_view host = {}) {
    return table.match(method, path, host);
}

std::string matched_name(const gateway::RouteTable& table, std::string_view method, std::string_view path,
                         std::string_view host = {}) {
    const auto* r = table.match(method, path, host);
    return r ? r->name() : "(none)";
}

std::string rewritten(const gateway::RouteTable& table, std::string target) {
    net::Request req;
    req.method = "GET";
    req.target = std::move(target);
    const auto* r = table.match(req);
    if (!r) return "(no match)";
    r->rewrite_target(req);
    return req.target;
}

}  // namespace

TEST(RoutesFile, ParsesEveryKey) {
    auto routes = gateway::parse_routes(R"(
routes:
  - name: products
    match:
      path: /api/products/{id}
      methods: [GET, HEAD]
      host: shop.local
    service: catalog
    rewrite: /products/{id}
    timeout: 5s
    max_body_bytes: 65536
    retry: {attempts: 1}
    policy: least_request
    circuit_breaker: {size: 10, minimum_calls: 5}
    fallback: {status: 200, body: '{"items":[]}'}
  - name: static
    match:
      prefix: /api/
    upstreams: ["127.0.0.1:9001", "http://127.0.0.1:9002"]
    strip_prefix: /api
upstreams:
  catalog:
    bulkhead: {max_concurrent: 7}
    outlier: {consecutive_errors: 2}
)",
                                        "routes.yaml");
    ASSERT_EQ(routes.size(), 2u);
    const auto& p = routes[0];
    EXPECT_EQ(p.name, "products");
    EXPECT_EQ(p.path, "/api/products/{id}");
    EXPECT_EQ(p.methods, (std::vector<std::string>{"GET", "HEAD"}));
    EXPECT_EQ(p.host, "shop.local");
    EXPECT_EQ(p.service, "catalog");
    EXPECT_EQ(p.rewrite, "/products/{id}");
    EXPECT_EQ(p.call.timeout, 5s);
    EXPECT_EQ(p.max_body_bytes, 65536);
    EXPECT_EQ(p.call.retry.attempts, 1);
    EXPECT_EQ(p.policy, plexus::discovery::Policy::least_request);
    ASSERT_TRUE(p.breaker.has_value());
    EXPECT_EQ(p.breaker->size, 10);
    EXPECT_EQ(p.breaker->minimum_calls, 5);
    EXPECT_TRUE(p.call.fallback.enabled);
    EXPECT_EQ(p.call.fallback.body, R"({"items":[]})");
    EXPECT_EQ(p.upstream.bulkhead.max_concurrent, 7);  // from upstreams.catalog
    EXPECT_EQ(p.upstream.outlier.consecutive_errors, 2);

    const auto& s = routes[1];
    EXPECT_EQ(s.prefix, "/api/");
    EXPECT_EQ(s.upstreams.size(), 2u);
    EXPECT_EQ(s.strip_prefix, "/api");
    EXPECT_EQ(s.call.timeout, 15s);  // defaults
    EXPECT_EQ(s.max_body_bytes, 1048576);
    EXPECT_EQ(s.call.retry.attempts, plexus::resilience::RetrySettings{}.attempts);
    EXPECT_FALSE(s.breaker.has_value());
    EXPECT_FALSE(s.call.fallback.enabled);
    EXPECT_EQ(s.upstream.bulkhead.max_concurrent, plexus::resilience::BulkheadSettings{}.max_concurrent);
    EXPECT_EQ(s.policy, plexus::discovery::Policy::round_robin);
}

TEST(RoutesFile, TheShippedRoutesFileLoads) {
    auto routes = gateway::load_routes(std::string(PLEXUS_SOURCE_DIR) + "/deploy/routes.yaml");
    EXPECT_GE(routes.size(), 1u);
    EXPECT_NO_THROW(gateway::RouteTable::compile(routes));
}

TEST(RoutesFile, UnknownKeyNamesFileLineAndKey) {
    EXPECT_EQ(load_error("routes:\n"
                         "  - name: a\n"
                         "    match:\n"
                         "      path: /a\n"
                         "      pathh: /b\n"
                         "    upstreams: [\"127.0.0.1:1\"]\n"),
              "routes.yaml:5: routes[0].match.pathh: unknown key");
    EXPECT_EQ(load_error("routes:\n"
                         "  - name: a\n"
                         "    match: {path: /a}\n"
                         "    upstreams: [\"127.0.0.1:1\"]\n"
                         "    timeuot: 5s\n"),
              "routes.yaml:5: routes[0].timeuot: unknown key");
    EXPECT_EQ(load_error("routez: []\n"), "routes.yaml:1: routes: is required");
}

TEST(RoutesFile, PathAndPrefixTogetherAreRejected) {
    auto error = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match:\n"
        "      path: /a\n"
        "      prefix: /b\n"
        "    upstreams: [\"127.0.0.1:1\"]\n");
    EXPECT_EQ(error, "routes.yaml:5: routes[0].match.prefix: a route matches a path or a prefix, not both");
}

TEST(RoutesFile, NeitherPathNorPrefixIsRejected) {
    auto error = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match:\n"
        "      methods: [GET]\n"
        "    upstreams: [\"127.0.0.1:1\"]\n");
    EXPECT_NE(error.find("routes.yaml:4: routes[0].match.path: a route needs a path or a prefix"),
              std::string::npos)
        << error;
}

TEST(RoutesFile, MissingOrDoubledTargetIsRejected) {
    auto none = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match: {path: /a}\n"
        "    timeout: 1s\n");
    EXPECT_NE(none.find("routes.yaml:2: routes[0].service: a route needs a target"), std::string::npos)
        << none;
    auto both = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match: {path: /a}\n"
        "    service: catalog\n"
        "    upstreams: [\"127.0.0.1:1\"]\n");
    EXPECT_NE(both.find("routes.yaml:5: routes[0].upstreams: a route has one target"), std::string::npos)
        << both;
}

TEST(RoutesFile, BadDurationIsRejected) {
    auto error = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match: {path: /a}\n"
        "    upstreams: [\"127.0.0.1:1\"]\n"
        "    timeout: 5 seconds\n");
    EXPECT_NE(error.find("routes.yaml:5: routes[0].timeout: expected a duration"), std::string::npos)
        << error;
    auto zero = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match: {path: /a}\n"
        "    upstreams: [\"127.0.0.1:1\"]\n"
        "    timeout: 0\n");
    EXPECT_NE(zero.find("routes.yaml:5: routes[0].timeout: must be positive"), std::string::npos)
        << zero;
}

TEST(RoutesFile, BadPatternIsRejected) {
    auto error = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match:\n"
        "      path: /a/{}\n"
        "    upstreams: [\"127.0.0.1:1\"]\n");
    EXPECT_NE(error.find("routes.yaml:4: routes[0].match.path: empty parameter name"), std::string::npos)
        << error;
    auto relative = load_error(
        "routes:\n"
        "  - name: a\n"
        "    match:\n"
        "      prefix: api/\n"
        "    upstreams: [\"127.0.0.1:1\"]\n");
    EXPECT_NE(relative.find("routes.yaml:4: routes[0].match.prefix: must start with '/'"), std::string::npos)
        << relative;
}

TEST(RoutesFile, OtherMistakesNameTheirKey) {
    auto route_with = [](std::string extra) {
        return load_error(
            "routes:\n"
            "  - name: a\n"
            "    match:\n"
            "      path: /a/{id}\n"
            "    upstreams: [\"127.0.0.1:1\"]\n" +
            extra);
    };
    EXPECT_NE(
        route_with("    policy: random\n").find("routes.yaml:6: routes[0].policy: expected round_robin"),
        std::string::npos);
    EXPECT_NE(
        route_with("    strip_prefix: /a\n    rewrite: /b\n").find("routes[0].rewrite: cannot be combined"),
        std::string::npos);
    EXPECT_NE(route_with("    rewrite: /b/{name}\n")
                  .find("routes.yaml:6: routes[0].rewrite: {name} is not a parameter"),
              std::string::npos);
    EXPECT_NE(route_with("    max_body_bytes: 0\n").find("routes[0].max_body_bytes: must be at least 1"),
              std::string::npos);
    EXPECT_NE(route_with("    retry: {non_idempotent: maybe}\n")
                  .find("routes[0].retry.non_idempotent: expected true or false"),
              std::string::npos);
    EXPECT_NE(route_with("    bulkhead: {max_concurrent: 3}\n")
                  .find("routes[0].bulkhead: is a policy of the upstream"),
              std::string::npos);
    EXPECT_NE(load_error("routes:\n"
                         "  - name: a\n"
                         "    match: {path: /a, methods: [get]}\n"
                         "    upstreams: [\"127.0.0.1:1\"]\n")
                  .find("routes.yaml:3: routes[0].match.methods: 'get' is not an HTTP method"),
              std::string::npos);
    EXPECT_NE(load_error("routes:\n"
                         "  - name: a\n"
                         "    match: {path: /a}\n"
                         "    upstreams: [\"localhost\"]\n")
                  .find("routes.yaml:4: routes[0].upstreams: 'localhost' is not host:port"),
              std::string::npos);
    EXPECT_NE(load_error("routes:\n"
                         "  - name: a\n"
                         "    match: {path: /a}\n"
                         "    upstreams: [\"127.0.0.1:1\"]\n"
                         "  - name: a\n"
                         "    match: {path: /b}\n"
                         "    upstreams: [\"127.0.0.1:1\"]\n")
                  .find("routes.yaml:5: routes[1].name: duplicate route name 'a' (also routes[0])"),
              std::string::npos);
    EXPECT_NE(load_error("routes:\n"
                         "  - name: a\n"
                         "    match: {path: /a}\n"
                         "    service: s\n"
                         "  - name: b\n"
                         "    match: {path: /b}\n"
                         "    service: s\n"
                         "    policy: least_request\n")
                  .find("routes.yaml:8: routes[1].policy: service 's' already uses round_robin in route 'a'"),
              std::string::npos);
}

TEST(RoutesFile, MissingFileIsAnError) {
    EXPECT_THROW(gateway::load_routes("/nonexistent/routes.yaml"), plexus::core::SettingsError);
}

TEST(RouteTable, CompileRejectsWhatTheLoaderRejects) {
    auto bad = route("a", "/a/{}");
    EXPECT_THROW(gateway::RouteTable::compile({bad}), std::invalid_argument);
    auto dup = route("a", "/a");
    EXPECT_THROW(gateway::RouteTable::compile({dup, dup}), std::invalid_argument);
    auto both = route("a", "/a", "/b");
    try {
        gateway::RouteTable::compile({both});
        FAIL() << "compiled";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(),
                     "route 'a' (routes[0]): match.prefix: a route matches a path or a prefix, not both");
    }
}

TEST(RouteTable, ExactBeatsPatternBeatsPrefix) {
    auto table = gateway::RouteTable::compile({
        route("prefix", "", "/api/products"),
        route("pattern", "/api/products/{id}"),
        route("exact", "/api/products/special"),
    });
    EXPECT_EQ(matched_name(*table, "GET", "/api/products/special"), "exact");
    EXPECT_EQ(matched_name(*table, "GET", "/api/products/42"), "pattern");
    EXPECT_EQ(matched_name(*table, "GET", "/api/products/42/reviews"), "prefix");
    EXPECT_EQ(matched_name(*table, "GET", "/api/products"), "prefix");
    EXPECT_EQ(matched_name(*table, "GET", "/api/productsX"), "(none)");  // segment-aligned prefix
    EXPECT_EQ(matched_name(*table, "GET", "/other"), "(none)");
}

TEST(RouteTable, LongerPrefixAndMoreLiteralPatternsWin) {
    auto table = gateway::RouteTable::compile({
        route("root", "", "/"),
        route("api", "", "/api/"),
        route("api-v2", "", "/api/v2"),
        route("any-item", "/{kind}/{id}"),
        route("item", "/items/{id}"),
        route("files", "/items/{rest...}"),
    });
    EXPECT_EQ(matched_name(*table, "GET", "/api/v2/x"), "api-v2");
    EXPECT_EQ(matched_name(*table, "GET", "/api/v1/x"), "api");
    EXPECT_EQ(matched_name(*table, "GET", "/elsewhere/a/b"), "root");
    EXPECT_EQ(matched_name(*table, "GET", "/items/7"), "item");
    EXPECT_EQ(matched_name(*table, "GET", "/items/7/8"), "files");
    EXPECT_EQ(matched_name(*table, "GET", "/users/7"), "any-item");
}

TEST(RouteTable, MethodsAndHostFilterAndTheSpecificOneWins) {
    auto reads = route("reads", "/orders");
    reads.methods = {"GET", "HEAD"};
    auto shop = route("shop", "/orders");
    shop.host = "Shop.Local";
    auto any = route("any", "/orders");
    auto table = gateway::RouteTable::compile({any, reads, shop});
    EXPECT_EQ(matched_name(*table, "GET", "/orders"), "reads");
    EXPECT_EQ(matched_name(*table, "POST", "/orders"), "any");
    EXPECT_EQ(matched_name(*table, "POST", "/orders", "shop.local:8080"), "shop");  // port ignored, any case
    EXPECT_EQ(matched_name(*table, "GET", "/orders", "SHOP.local"), "shop");        // host before methods

    auto only = route("only", "/x");
    only.methods = {"PUT"};
    only.host = "a.example";
    auto strict = gateway::RouteTable::compile({only});
    EXPECT_EQ(matched_name(*strict, "PUT", "/x", "a.example"), "only");
    EXPECT_EQ(matched_name(*strict, "GET", "/x", "a.example"), "(none)");
    EXPECT_EQ(matched_name(*strict, "PUT", "/x", "b.example"), "(none)");
    EXPECT_EQ(matched_name(*strict, "PUT", "/x"), "(none)");
}

TEST(RouteTable, MatchesTheRequestsPathAndHostHeader) {
    auto r = route("r", "/a");
    r.host = "shop.local";
    auto table = gateway::RouteTable::compile({r});
    net::Request req;
    req.method = "GET";
    req.target = "/a?x=1";
    EXPECT_EQ(table->match(req), nullptr);
    req.headers.add("Host", "shop.local:80");
    ASSERT_NE(table->match(req), nullptr);
    EXPECT_EQ(match(*table, "GET", "/a", "shop.local"), table->match(req));
}

TEST(RouteTable, HostWithoutPort) {
    EXPECT_EQ(gateway::host_without_port("shop.local:8080"), "shop.local");
    EXPECT_EQ(gateway::host_without_port("shop.local"), "shop.local");
    EXPECT_EQ(gateway::host_without_port("[::1]:8080"), "[::1]");
    EXPECT_EQ(gateway::host_without_port("[::1]"), "[::1]");
    EXPECT_EQ(gateway::host_without_port(""), "");
}

TEST(Rewrite, PatternTemplateUsesCapturedParamsAndKeepsTheQuery) {
    auto r = route("product", "/api/products/{id}/reviews/{review}");
    r.rewrite = "/products/{id}/r/{review}";
    auto files = route("files", "/static/{path...}");
    files.rewrite = "/assets/{path}";
    auto fixed = route("fixed", "/old");
    fixed.rewrite = "/new";
    auto table = gateway::RouteTable::compile({r, files, fixed});
    EXPECT_EQ(rewritten(*table, "/api/products/42/reviews/7?lang=en"), "/products/42/r/7?lang=en");
    // Parameters go upstream as the client encoded them.
    EXPECT_EQ(rewritten(*table, "/api/products/a%2Fb/reviews/x%20y"), "/products/a%2Fb/r/x%20y");
    EXPECT_EQ(rewritten(*table, "/static/css/site.css"), "/assets/css/site.css");
    EXPECT_EQ(rewritten(*table, "/static"), "/assets/");
    EXPECT_EQ(rewritten(*table, "/old?q"), "/new?q");
}

TEST(Rewrite, StripPrefix) {
    auto r = route("api", "", "/api/");
    r.strip_prefix = "/api/";
    auto table = gateway::RouteTable::compile({r});
    EXPECT_EQ(rewritten(*table, "/api/products/1?x=2"), "/products/1?x=2");
    EXPECT_EQ(rewritten(*table, "/api/"), "/");

    auto exact = route("exact", "/svc");
    exact.strip_prefix = "/svc";
    auto other = route("other", "/elsewhere");
    other.strip_prefix = "/api";
    auto t2 = gateway::RouteTable::compile({exact, other});
    EXPECT_EQ(rewritten(*t2, "/svc?x"), "/?x");
    EXPECT_EQ(rewritten(*t2, "/elsewhere"), "/elsewhere");  // not under the prefix: unchanged
}

TEST(Rewrite, PrefixRouteReplacesThePrefix) {
    auto v1 = route("v1", "", "/api/v1");
    v1.rewrite = "/v2";
    auto slash = route("slash", "", "/svc/");
    slash.rewrite = "/";
    auto table = gateway::RouteTable::compile({v1, slash});
    EXPECT_EQ(rewritten(*table, "/api/v1/items?x=1"), "/v2/items?x=1");
    EXPECT_EQ(rewritten(*table, "/api/v1"), "/v2");
    EXPECT_EQ(rewritten(*table, "/svc/a/b"), "/a/b");
    EXPECT_EQ(rewritten(*table, "/svc/"), "/");
}

TEST(RouteTable, JsonListsRoutesInFileOrder) {
    auto a = route("a", "", "/");
    auto b = route("b", "/b");
    b.methods = {"GET"};
    auto table = gateway::RouteTable::compile({a, b});
    auto json = table->to_json();
    EXPECT_LT(json.find(R"("name":"a")"), json.find(R"("name":"b")")) << json;
    EXPECT_NE(json.find(R"("methods":["GET"])"), std::string::npos) << json;
    EXPECT_NE(json.find(R"("timeout":"15s")"), std::string::npos) << json;
}
