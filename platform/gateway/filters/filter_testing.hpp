#pragma once
// For the filters' unit tests: one route whose only filter is given as YAML, compiled as the
// gateway compiles it, and requests run through its phases without a network.
//
//     FilterHarness h("      - name: ip_access\n        deny: [10.0.0.0/8]\n");
//     auto res = h.request("GET", "/x", "10.1.2.3");   // 403: the filter answered

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "plexus/gateway/filter.hpp"
#include "plexus/gateway/routes.hpp"
#include "plexus/serving/request_scope.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::gateway::testing {

class FilterHarness {
  public:
    /// `filter_yaml`: the route's `filters:` entries, indented for a route of the test file.
    /// `factory`, when given, builds the filters instead of the registered one of that name.
    explicit FilterHarness(const std::string& filter_yaml, const FilterFactory* factory = nullptr) {
        load(filter_yaml, factory);
    }

    /// Compiles another version of the route, as a reload does (FilterState carries over).
    void load(const std::string& filter_yaml, const FilterFactory* factory = nullptr) {
        auto routes = parse_routes(
            "routes:\n  - name: r\n    match: {prefix: /}\n    upstreams: [\"127.0.0.1:1\"]\n    filters:\n" +
                filter_yaml,
            "r.yaml");
        route_ = routes[0];
        if (factory) {
            for (auto& f : route_.filters) f.factory = factory;
        }
        table_ = RouteTable::compile({route_});
        FilterContext ctx{route_, state_, registry_};
        state_.begin_load();
        try {
            chain_ = compile_filters(route_.filters, ctx);
        } catch (...) {
            state_.end_load(false);
            throw;
        }
        state_.end_load(true);
    }

    /// Runs a request through the chain: the request head phases; unless a filter answered, the
    /// upstream's answer is `upstream_status` with body "ok"; then the response phases.
    net::Response request(std::string method, std::string target, std::string peer = "127.0.0.1",
                          std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {},
                          int upstream_status = 200) {
        auto req = net::make_request(std::move(method), std::move(target));
        for (const auto& [n, v] : headers) req.headers.add(n, v);
        req.remote_address = std::move(peer);
        net::Response res;
        serving::RequestScope scope(req, "r");
        Exchange x{req, res, scope, table_->routes()[0]};
        std::size_t entered = chain_.filters.size();
        bool answered = false;
        for (std::size_t i = 0; i < chain_.filters.size() && !answered; ++i) {
            if (chain_.filters[i]->on_request_head(x) == FilterResult::answered)
                answered = true, entered = i + 1;
        }
        if (!answered) res.text(upstream_status, "ok");
        for (std::size_t i = entered; i-- > 0;) chain_.filters[i]->on_response_head(x);
        return res;
    }

    const FilterChain& chain() const noexcept { return chain_; }
    telemetry::Registry& registry() noexcept { return registry_; }

  private:
    FilterState state_;
    telemetry::Registry registry_;
    RouteSettings route_;
    std::shared_ptr<const RouteTable> table_;
    FilterChain chain_;
};

}  // namespace plexus::gateway::testing
