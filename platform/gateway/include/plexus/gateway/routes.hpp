#pragma once
/// The gateway's routes: plain settings, their YAML loader, and the compiled, immutable table the
/// request path matches against.
///
///     routes:
///       - name: products
///         match:
///           path: /api/products/{id}   # exact path or {param} pattern, or
///           # prefix: /api/             # a prefix (segment-aligned); exactly one of the two
///           methods: [GET, HEAD]        # optional; default any method
///           host: shop.local            # optional; Host header without its port, any case
///         service: catalog              # discovered through the registry, or
///         # upstreams: ["127.0.0.1:9001"]  # a static list; exactly one of the two
///         strip_prefix: /api            # optional
///         rewrite: /products/{id}       # optional; exclusive with strip_prefix
///         max_body_bytes: 1048576       # default 1 MiB
///         policy: round_robin           # or least_request
///         timeout: 5s                   # default 15s: the whole upstream exchange, retries included
///         retry: {attempts: 3}          # and the other call policies of resilience/settings.hpp:
///         fault: {...}                  #   retry, fault, fallback
///         fallback: {...}
///         circuit_breaker: {...}        # optional: a breaker of this route's own
///         filters:                      # optional: per-request behaviour (gateway/filter.hpp)
///           - name: ip_access
///             allow: [10.0.0.0/8]
///
///     default_filters: [...]            # optional: filters every route runs before its own
///
///     upstreams:                        # optional: policies shared by every call to an upstream
///       catalog:                        # a service name, or a route name for static upstreams
///         circuit_breaker: {...}
///         bulkhead: {max_concurrent: 500}
///         outlier: {...}
///         retry_budget: {...}
///
/// Every upstream gets a circuit breaker, a bulkhead, a retry budget and outlier detection with
/// the defaults of resilience/settings.hpp unless its entry says otherwise.
///
/// Precedence (RouteTable::match): exact paths, then patterns (more literal segments first, a
/// trailing catch-all last), then prefixes (longer first); among routes with the same path
/// specificity, those with a host, then those with methods, come first; then file order. The first
/// route whose path, methods and host all match wins.

#include <boost/json/object.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/discovery/discovery.hpp"
#include "plexus/gateway/filter.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/router.hpp"
#include "plexus/resilience/settings.hpp"

namespace plexus::gateway {

/// One route as written in the routes file. Plain data; `RouteTable::compile` checks it.
struct RouteSettings {
    std::string name;                    ///< unique; used in metrics, logs and spans
    std::string path;                    ///< exact path or `{param}` pattern; empty if `prefix` is used
    std::string prefix;                  ///< path prefix, matched on segment boundaries
    std::vector<std::string> methods;    ///< empty: any method
    std::string host;                    ///< empty: any host
    std::string service;                 ///< target discovered through the registry, or...
    std::vector<std::string> upstreams;  ///< ...static "host:port" targets
    std::string strip_prefix;            ///< removed from the front of the path before forwarding
    /// Replacement path. With `path`, a template using its `{param}`s ("/products/{id}"); with
    /// `prefix`, it replaces the matched prefix ("/v2" turns /api/v1/x into /v2/x).
    std::string rewrite;
    std::int64_t max_body_bytes = 1024 * 1024;
    discovery::Policy policy = discovery::Policy::round_robin;
    resilience::CallPolicy call;  ///< timeout, retry, fault injection, fallback
    /// The policy of the route's upstream, from the file's `upstreams:` entry (defaults if none);
    /// every route of one service must carry the same.
    resilience::UpstreamPolicy upstream;
    std::optional<resilience::BreakerSettings> breaker;  ///< the route's own breaker, if any
    /// The route's filters in order, the file's `default_filters` first.
    std::vector<FilterSpec> filters;

    /// What the upstream policy is keyed by: the service, or the route's name for static upstreams.
    const std::string& upstream_name() const noexcept { return service.empty() ? name : service; }
};

/// Parses a routes document; `name` stands for the file in messages. Throws core::SettingsError
/// whose message reads `name:line: key.path: reason` for an unknown key, a wrong type, a bad
/// duration or pattern, a missing or doubled target, and the other checks of
/// `RouteTable::compile`.
std::vector<RouteSettings> parse_routes(std::string_view text, std::string name);

/// Reads and parses a routes file; throws core::SettingsError (also when it cannot be read).
/// Blocking file I/O: call at startup or from a blocking pool.
std::vector<RouteSettings> load_routes(const std::string& path);

/// Routes from a config server: `overlay` (a routes document as JSON, named `source` in
/// messages) laid over the routes file `path` (none when empty) — maps merge key by key, the
/// `routes` list is replaced as a whole. Throws core::SettingsError naming `source` and the key.
/// Blocking file I/O.
std::vector<RouteSettings> load_routes(const std::string& path, const boost::json::object& overlay,
                                       const std::string& source);

/// What is wrong with a route: the key concerned ("match.path", "rewrite"...) and why.
struct RouteProblem {
    std::string key;     ///< relative to the route, e.g. "match.path"
    std::string reason;  ///< for a person, e.g. "must start with '/'"
};

/// Checks one route on its own (not against the others); the first problem, or nullopt. The
/// loader runs the same checks to name the file's line; `RouteTable::compile` runs this.
std::optional<RouteProblem> check_route(const RouteSettings& route);

/// A compiled route. Immutable; owned by its RouteTable.
class Route {
  public:
    /// How the path is matched: `path` without parameters, `path` with them, or `prefix`.
    enum class Kind { exact, pattern, prefix };

    /// The settings the route was compiled from.
    const RouteSettings& settings() const noexcept { return settings_; }
    /// The route's unique name.
    const std::string& name() const noexcept { return settings_.name; }
    /// How its path is matched.
    Kind kind() const noexcept { return kind_; }
    /// Position in the settings (file order), 0-based; stable for the table's life.
    std::size_t index() const noexcept { return index_; }

    /// Whether the route matches this method, path and Host header value. No allocation.
    bool matches(std::string_view method, std::string_view path, std::string_view host) const noexcept;

    /// Whether the route has a strip_prefix or a rewrite.
    bool changes_target() const noexcept { return !strip_.empty() || !settings_.rewrite.empty(); }

    /// Rewrites `req.target` in place for the upstream (strip_prefix or rewrite; the query is
    /// kept). Parameters are substituted as the client sent them (still percent-encoded), so the
    /// upstream sees the same bytes. Returns false if the target is left unchanged (no rewriting
    /// configured, or the path does not start with strip_prefix). Call only on a request this
    /// route matched. No allocation once the per-thread buffer has grown.
    bool rewrite_target(net::Request& req) const;

    /// Static targets (empty when the route uses a service); their ids are "host:port".
    const discovery::InstanceList& static_targets() const noexcept { return static_targets_; }
    /// The endpoint of `static_targets().targets[i]`.
    const net::Endpoint& static_endpoint(std::size_t i) const noexcept { return endpoints_[i]; }
    /// The balancer over the static targets (thread-safe, atomics only).
    discovery::Balancer& balancer() const noexcept { return *balancer_; }
    /// The endpoints of the static targets, by position.
    const std::vector<net::Endpoint>& static_endpoints() const noexcept { return endpoints_; }

  private:
    friend class RouteTable;
    struct Segment {  // a segment of `path`
        bool is_param = false;
        bool is_rest = false;  // a trailing {name...}
    };
    struct Part {  // a piece of the `rewrite` template
        std::string literal;
        int param = -1;  // index among the path's parameters, or -1 for literal text
    };
    RouteSettings settings_;
    Kind kind_ = Kind::exact;
    std::size_t index_ = 0;
    std::optional<net::PathPattern> pattern_;
    std::string host_lower_;
    std::string strip_;              // strip_prefix without a trailing '/'
    std::vector<Segment> segments_;  // of `path` (exact and pattern routes)
    std::vector<Part> rewrite_;      // compiled `rewrite` (exact and pattern routes)
    discovery::InstanceList static_targets_;
    std::vector<net::Endpoint> endpoints_;
    std::unique_ptr<discovery::Balancer> balancer_;
};

/// The routes of one load, compiled for matching. Immutable after `compile`, so one table is
/// shared read-only by every thread (`std::shared_ptr<const RouteTable>`); a reload builds a new
/// one and swaps the pointer.
class RouteTable {
  public:
    /// Compiles `routes`; throws std::invalid_argument naming the route for a route that fails
    /// `check_route`, a duplicate name, or two routes of one service with different policies.
    static std::shared_ptr<const RouteTable> compile(std::vector<RouteSettings> routes);

    /// The first route in precedence order whose path, methods and host match; nullptr if none.
    /// `host` is the Host header value (its port is ignored). No allocation; thread-safe.
    const Route* match(std::string_view method, std::string_view path, std::string_view host) const noexcept;
    /// `match` for a request (method, path of the target, Host header).
    const Route* match(const net::Request& req) const noexcept;

    /// The routes in precedence order.
    std::span<const Route> routes() const noexcept { return routes_; }
    /// The number of routes.
    std::size_t size() const noexcept { return routes_.size(); }
    /// The routes as a JSON document `{"routes":[{...settings...}, ...]}` in file order.
    std::string to_json() const;

  private:
    RouteTable() = default;
    std::vector<Route> routes_;
};

/// The host part of a Host header value, without its port ("shop.local:8080" → "shop.local",
/// "[::1]:80" → "[::1]").
std::string_view host_without_port(std::string_view host) noexcept;

}  // namespace plexus::gateway
