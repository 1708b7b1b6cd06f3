// The gateway's routes file: gateway::parse_routes on arbitrary YAML (routes, match rules,
// rewrites, call and upstream policies, `filters:` and `default_filters:` read by the filter
// factories), then what the gateway does with a file that loaded: RouteTable::compile,
// compile_filters for every route through the filter registry, to_json, and each route matched and
// rewritten on a request made for it.
//
// A broken file must fail with core::SettingsError naming the file; any other exception escapes
// and is a finding. A file that loaded must compile: the loader runs compile's checks.

#include "plexus/gateway/routes.hpp"

#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "plexus/core/settings.hpp"
#include "plexus/gateway/filter.hpp"
#include "plexus/net/http.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace {

namespace gateway = plexus::gateway;

[[noreturn]] void broken(const char* what, int line) {
    std::fprintf(stderr, "fuzz_routes:%d: invariant broken: %s\n", line, what);
    std::abort();
}
#define CHECK(cond)                           \
    do {                                      \
        if (!(cond)) broken(#cond, __LINE__); \
    } while (0)

// A path the route's own match rule accepts: the exact path, the prefix and one more segment, or
// the pattern with "v" for each {param} and "a/b" for a trailing {rest...}.
std::string path_for(const gateway::Route& r) {
    const auto& s = r.settings();
    if (r.kind() == gateway::Route::Kind::prefix) return s.prefix + (s.prefix.back() == '/' ? "x" : "/x");
    if (r.kind() == gateway::Route::Kind::exact) return s.path;
    std::string out;
    std::string_view rest = std::string_view(s.path).substr(1);
    while (true) {
        auto slash = rest.find('/');
        auto seg = rest.substr(0, slash);
        out += '/';
        if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}')
            out += seg.ends_with("...}") ? "a/b" : "v";
        else
            out += seg;
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return out;
}

void exercise(const gateway::RouteTable& table) {
    for (const auto& r : table.routes()) {
        const auto& s = r.settings();
        const std::string method = s.methods.empty() ? "GET" : s.methods.front();
        const std::string host = s.host.empty() ? "any.test" : s.host + ":8080";
        const auto path = path_for(r);
        CHECK(r.matches(method, path, host));
        const auto* first = table.match(method, path, host);
        CHECK(first != nullptr);

        auto req = plexus::net::make_request(method, path + "?q=1");
        req.headers.add("Host", host);
        CHECK(table.match(req) == first);
        if (first->rewrite_target(req)) {
            CHECK(!req.target.empty() && req.target.front() == '/');
            CHECK(req.target.ends_with("?q=1"));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    std::vector<gateway::RouteSettings> routes;
    try {
        routes = gateway::parse_routes(text, "routes.yaml");
    } catch (const plexus::core::SettingsError& e) {
        CHECK(std::string_view(e.what()).starts_with("routes.yaml:"));
        return 0;
    }
    for (const auto& r : routes) CHECK(!gateway::check_route(r));

    auto table = gateway::RouteTable::compile(routes);
    CHECK(table->size() == routes.size());

    gateway::FilterState state;
    plexus::telemetry::Registry metrics;
    gateway::AuthProvider auth;
    auth.issuer = "https://id.test";
    auth.jwks_uri = "http://127.0.0.1:1/jwks";
    state.begin_load();
    for (const auto& r : table->routes()) {
        gateway::FilterContext ctx{r.settings(), state, metrics, &auth};
        try {
            auto chain = gateway::compile_filters(r.settings().filters, ctx);
            CHECK(chain.filters.size() == r.settings().filters.size());
        } catch (const std::invalid_argument&) {
            // Settings that parse but cannot work: the gateway rejects the load the same way.
        }
    }
    state.end_load(true);

    auto doc = boost::json::parse(table->to_json());
    CHECK(doc.at("routes").as_array().size() == routes.size());
    exercise(*table);
    return 0;
}
