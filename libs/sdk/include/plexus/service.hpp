#pragma once
/// The Plexus service SDK: what a service author includes. A service declares its routes and
/// its dependencies; `run` does the rest — flags and environment, listening, registration with
/// the registry and heartbeats, graceful deregistration on SIGTERM, `/health/live`,
/// `/health/ready`, `/metrics`, one access-log line and one trace span per request, and
/// propagation of X-Request-Id and W3C traceparent to every downstream call.
///
///     plexus::Service svc{"catalog"};
///     auto inventory = svc.client("inventory");
///     svc.get("/products/{id}", [&](plexus::Request& req) -> plexus::Task<plexus::Response> {
///         auto stock = co_await inventory.get(req, "/stock/" + std::string(req.param("id")));
///         co_return plexus::json_response(200, ...);
///     });
///     return svc.run(argc, argv);
///
/// Flags (each also read from the environment variable in brackets):
///   --registry URL    [PLEXUS_REGISTRY]     registry to register with; none = standalone
///   --listen H:P      [PLEXUS_LISTEN]       default 127.0.0.1:0 (port 0 = pick a free one)
///   --instance-id ID  [PLEXUS_INSTANCE_ID]  default <name>-<random>
///   --data-dir DIR    [PLEXUS_DATA_DIR]     where the service keeps its own database
///   --threads N       [PLEXUS_THREADS]      io threads, default one per core
///   --log-level L     [PLEXUS_LOG_LEVEL]    debug, info, warn, error
///   --heartbeat D / --ttl D                 default 1s / 5s

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "plexus/net/http.hpp"
#include "plexus/net/task.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus {

using net::HttpError;
using net::Request;
using net::Response;
using net::Task;

/// Builds a JSON response.
inline Response json_response(int status, std::string body) {
    Response r;
    r.json(status, std::move(body));
    return r;
}

namespace detail {
struct ServiceState;
}

/// Calls one service by name: instances come from the registry (pushed by watches), picked by
/// the load-balancing policy. Cheap to copy; usable from any handler on any thread.
///
/// Each call takes the incoming request it serves, so the correlation id and trace context
/// travel downstream. Failures throw HttpError: 503 when no instance is healthy, 504 on
/// timeout, 502 when the instance fails. An idempotent call whose connection is refused, or reset
/// before an answer arrived, is retried once on another instance.
class Client {
  public:
    Task<Response> get(const Request& incoming, std::string target);
    Task<Response> post(const Request& incoming, std::string target, std::string body,
                        std::string content_type = "application/json");
    Task<Response> put(const Request& incoming, std::string target, std::string body,
                       std::string content_type = "application/json");
    Task<Response> del(const Request& incoming, std::string target);
    /// A call with any method and headers; `timeout` bounds the whole exchange.
    Task<Response> call(const Request& incoming, Request outgoing, std::chrono::milliseconds timeout);

    const std::string& service() const noexcept { return service_; }
    /// Default per-call timeout (5 s).
    void set_timeout(std::chrono::milliseconds t) noexcept { timeout_ = t; }

  private:
    friend class Service;
    Client(std::shared_ptr<detail::ServiceState> state, std::string service)
        : state_(std::move(state)), service_(std::move(service)) {}
    std::shared_ptr<detail::ServiceState> state_;
    std::string service_;
    std::chrono::milliseconds timeout_{5000};
};

/// A request handler: business code only.
using RouteHandler = std::function<Task<Response>(Request&)>;

class Service {
  public:
    explicit Service(std::string name);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    /// Routes; patterns use `{param}` segments (see net::PathPattern). Register before run().
    void get(std::string_view pattern, RouteHandler h);
    void post(std::string_view pattern, RouteHandler h, std::size_t max_body_bytes = 0);
    void put(std::string_view pattern, RouteHandler h, std::size_t max_body_bytes = 0);
    void del(std::string_view pattern, RouteHandler h);
    void route(std::string method, std::string_view pattern, RouteHandler h, std::size_t max_body_bytes = 0);

    /// A client for another service (resolved through the registry once running).
    Client client(std::string service);

    /// Extra readiness condition: /health/ready answers 503 while it returns false.
    void set_readiness(std::function<bool()> ready);
    /// Tags and metadata published with the registration.
    void set_metadata(std::string key, std::string value);
    /// Called once after flags are parsed and before listening (open databases here). An
    /// exception stops startup with its message.
    void on_start(std::function<void()> fn);

    const std::string& name() const noexcept;
    /// Valid after flags are parsed (inside on_start and handlers).
    const std::string& instance_id() const noexcept;
    const std::string& data_dir() const noexcept;
    telemetry::Registry& metrics() noexcept;

    /// Parses flags, starts, serves until SIGTERM/SIGINT, shuts down gracefully. Returns the
    /// process exit code (0 on a clean stop, 2 on bad flags, 1 on a startup failure).
    int run(int argc, char** argv);

  private:
    std::shared_ptr<detail::ServiceState> state_;
};

}  // namespace plexus
