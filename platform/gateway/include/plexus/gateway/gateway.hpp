#pragma once
/// The API gateway (edge server): matches each request against the route table, forwards it to
/// an upstream instance (discovered through the registry or listed statically) and relays the
/// answer, with correlation ids, tracing, forwarding headers, an access log line and metrics.
///
/// Wiring, as a daemon entry point does it:
///
///     net::Runtime runtime;
///     discovery::Discovery disco(discovery::RegistryClient(registry_ep), runtime.executor(0));
///     gateway::Gateway gw({.routes_file = "routes.yaml"}, &disco);   // throws on a bad file
///     server_settings.defer_body = true;   // filters see the head before the body is read
///     net::Server server(runtime, server_settings, gw.handler());
///     net::Server admin(runtime, {.address = "127.0.0.1", .port = 9901}, gw.admin_handler());
///     gw.start_watching_file(runtime.executor(0));
///     runtime.on_signals({SIGHUP, SIGTERM}, [&](int sig) {
///         if (sig == SIGHUP) net::spawn(runtime.executor(0), gw.reload_async(), "routes reload");
///         else server.shutdown([&] { runtime.stop(); });
///     });
///     server.start();
///     runtime.run();
///
/// Answers of the gateway itself, all `application/problem+json`: 400 for a target that is not
/// an origin-form path or has dot segments, 404 when no route matches, 503 when the route's
/// service has no healthy instance, 504 when the upstream does not answer within the route's
/// timeout, 502 when the upstream connection fails (refused, closed, invalid HTTP). Each call
/// runs under the route's resilience policies (discovery::call): retries, the upstream's circuit
/// breaker (503 naming it when open), bulkhead, outlier ejection, fault injection, a fallback.
///
/// Admin endpoints, served by admin_handler() on a listener of their own (loopback by default),
/// never on the port clients reach (GET or HEAD; other methods get 405; other paths 404):
///   /health/live, /health/ready   liveness; readiness = a route table is loaded
///   /metrics                      Prometheus text of the metrics registry
///   /-/routes                     the loaded routes as JSON
///   /-/resilience                 upstreams' breakers, bulkheads, retry budgets, ejected instances
/// The same are also served under `/-/` (`/-/health/live`, `/-/metrics`...). The public handler()
/// answers only the two health endpoints itself (for load balancers' probes), before any user
/// route; every other `/-/` path is reserved there and answers 404, and `/metrics` is an
/// ordinary path for the routes.
///
/// Metrics (in the registry given to the constructor):
///   plexus_gateway_requests_total{route,code_class}         code_class "1xx".."5xx"
///   plexus_gateway_request_duration_seconds{route}          histogram
///   plexus_gateway_upstream_errors_total{route,kind}        connect_failure, reset, timeout,
///                                                           protocol (per failed attempt),
///                                                           no_instance, circuit_open,
///                                                           bulkhead_full, fault_abort
/// Requests that match no route count under route="-". Admin requests are not counted or logged.
///
/// Access log: one info line `"msg":"access"` per proxied request with method, path (as the
/// client sent it), status, duration_ms, route, upstream (instance id, "host:port" for static
/// upstreams), bytes_in, bytes_out, remote; trace_id, span_id and request_id in the log context.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plexus/discovery/discovery.hpp"
#include "plexus/gateway/routes.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/task.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::gateway {

/// How the gateway runs. Plain data: the wiring layer fills it from flags or a settings file.
struct GatewaySettings {
    /// The routes file, read at construction and by reload(); empty: `routes` is used.
    std::string routes_file;
    /// The routes when there is no file.
    std::vector<RouteSettings> routes;
    /// See ForwardingPolicy: keep client-sent X-Forwarded-* (only behind a trusted proxy).
    bool trust_forwarded_for = false;
    /// How often start_watching_file() checks the file's modification time and size.
    std::chrono::milliseconds watch_interval{1000};
    /// Longest wait for the registry's first answer about a service (also bounded by the route's
    /// timeout); matters only for the first requests after a start or a new service.
    std::chrono::milliseconds discovery_wait{2000};
    /// The identity provider whose tokens `auth` filters check.
    AuthProvider auth;
    /// The limit service (http://host:port) of `rate_limit` filters with `scope: global`.
    std::string limits_uri;
    /// An executor of the server's runtime for the filters' background work (the auth filter's
    /// revocation watch). Without one, such work does not run.
    std::optional<net::Executor> background;
};

/// The outcome of a reload.
struct ReloadStatus {
    bool ok = false;
    /// Why the new routes were rejected, e.g. "routes.yaml:7: routes[1].match.path: ...".
    std::string error;
    /// Routes serving now (the new ones, or the old ones when rejected).
    std::size_t routes = 0;
};

/// The gateway. Construct it at startup, then hand handler() to a net::Server that defers bodies
/// (ServerSettings::defer_body): the gateway reads each body itself, within its route's
/// max_body_bytes, after the request-head filters let it through (a server that reads bodies
/// itself works too, with its own limit first).
/// Thread-safety: handler(), reload*(), set_routes() and routes() may be used from
/// any thread at once. The request path takes no lock: it loads the current route snapshot
/// (an atomic shared_ptr) once per request and keeps it until the request ends, so a reload never
/// disturbs requests in flight.
class Gateway {
  public:
    /// Loads the initial routes (from `settings.routes_file`, else `settings.routes`). Throws
    /// core::SettingsError for a bad file and std::invalid_argument for bad `routes` or service
    /// routes without a `discovery`. `discovery` may be null when every route is static; it and
    /// `metrics` must outlive every server using handler().
    explicit Gateway(GatewaySettings settings, discovery::Discovery* discovery = nullptr,
                     telemetry::Registry& metrics = telemetry::default_registry());
    /// Stops the file watch. Servers may keep using handler() afterwards (it owns its state).
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    /// The request handler: admin endpoints, then the routes. Never throws for upstream failures;
    /// they become problem responses.
    net::Handler handler() const;
    /// The admin endpoints (see the file comment), for a second server that only operators reach.
    net::Handler admin_handler() const;

    /// Re-reads the routes file and swaps in the new table. A bad file is rejected: the error
    /// (file:line: key: reason) is logged and returned, and the old routes keep serving.
    /// Blocking file I/O (a small file): prefer reload_async() on an io thread.
    ReloadStatus reload();
    /// reload() on the blocking pool; resumes on the caller's executor.
    net::Task<ReloadStatus> reload_async();
    /// Routes from a config server: `doc` (a routes document) laid over the routes file from now
    /// on, at this call and at every reload (see load_routes). A document whose routes do not
    /// load is refused: the previous routes and overlay stay. `source` names it in messages.
    ReloadStatus set_overlay(boost::json::object doc, std::string source);
    /// Installs routes given in code (replacing those from the file until the next reload).
    /// Rejected routes leave the old ones serving, as with reload().
    ReloadStatus set_routes(std::vector<RouteSettings> routes);

    /// Checks the routes file every `watch_interval` on `ex` and reloads it when its
    /// modification time or size changed. Ends when the Gateway is destroyed or the executor
    /// stops. Does nothing without a routes file; call once.
    void start_watching_file(net::Executor ex);

    /// The route table serving now (never null after construction).
    std::shared_ptr<const RouteTable> routes() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace plexus::gateway
