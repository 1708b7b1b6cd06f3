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
///   --check-interval D [PLEXUS_CHECK_INTERVAL]  default 1s: the registry GETs /health/ready this
///                                           often (timeout half of it); 0 = no active check
///   --config FILE     [PLEXUS_CONFIG]       YAML settings: `clients: {<service>: <policy>}`
///                                           overriding the clients' policies (see
///                                           resilience/settings.hpp), and one section per
///                                           settings() the service declares
///   --config-server URL [PLEXUS_CONFIG_SERVER]  the config server, http://host:port: its
///                                           document for this service (application = the
///                                           service's name) overlays the file, and changes
///                                           are applied live (see settings())
///   --profiles P      [PLEXUS_PROFILES]     the config server profiles, e.g. prod or prod,eu
///                                           (default: default)
///   --identity URL    [PLEXUS_IDENTITY]     the identity server, http://host:port: its keys,
///                                           introspection, revocations and token endpoint
///   --issuer URL      [PLEXUS_ISSUER]       the `iss` of the tokens routes accept
///   --audience A      [PLEXUS_AUDIENCE]     the `aud` they must name (default plexus)
///   --credentials FILE [PLEXUS_CREDENTIALS] the service's own client (JSON client_id and
///                                           client_secret, as `plexus identity --provision`
///                                           writes it): introspection and service tokens
///
/// Admin endpoints (not reachable through the gateway, which reserves /-/):
///   GET /-/resilience        the clients' breakers, bulkheads, budgets and ejected instances
///   GET /-/faults, PUT /-/faults   fault injection at run time, for tests and game days:
///       {"inbound": {"delay_percent": 100, "delay_ms": 2000, "abort_percent": 0, "abort_status": 503},
///        "clients": {"inventory": {...same keys...}}}   (a PUT replaces the parts it names)
/// A request whose X-Plexus-Deadline-Ms budget is 0 is answered 504 without running the handler,
/// one whose budget is malformed ("abc", "-5") 400. Each request goes through a
/// serving::RequestScope: one access-log line ("msg":"access"), one span, its metrics.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "plexus/core/settings.hpp"
#include "plexus/core/snapshot.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/task.hpp"
#include "plexus/resilience/settings.hpp"
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
struct ClientState;

// One settings() declaration, its type erased (see Settings<T>).
struct SettingsSlot {
    std::string section;
    std::function<std::shared_ptr<const void>(core::SettingsReader&)> load;
    core::SnapshotCell<void> value;  // read by every request: no lock once a thread has it
    mutable std::mutex mutex;        // guards callbacks
    std::vector<std::function<void(const void*, const void*)>> callbacks;
};
}  // namespace detail

/// Typed settings of a service, from one section of its settings: its --config file, overlaid
/// by its document at the config server. Loaded (and checked) before the service starts; after
/// that each change the config server pushes is loaded again and, if every section and every
/// change callback accepts it, applied at once. A change that does not load (a wrong type, an
/// unknown key, a value out of range) or that a callback refuses (throws) is not applied: the
/// old values keep serving and the refusal, with its reason, is reported to the config server
/// (`plexus config instances APP`). Cheap to copy; thread-safe.
///
///     struct Paging { int page_size = 20; };
///     auto paging = svc.settings<Paging>("paging", [](core::SettingsReader& r, Paging& p) {
///         r.field("page_size", p.page_size, 1, 500);
///     });
///     paging.on_change([](const Paging& before, const Paging& after) { ... });  // throw to refuse
///     ... in a handler: paging.get()->page_size
template <class T>
class Settings {
  public:
    /// The values in force (after run() has loaded them; before that, T's defaults).
    std::shared_ptr<const T> get() const { return std::static_pointer_cast<const T>(slot_->value.load()); }
    /// Called with the old and new values when a change to this section is about to apply (a
    /// change to other sections only leaves these values and their callbacks alone), in the order added;
    /// throwing refuses the change (callbacks that already ran are called again with the values
    /// swapped, so they can undo). Add before run().
    void on_change(std::function<void(const T& before, const T& after)> fn) {
        std::lock_guard lock(slot_->mutex);
        slot_->callbacks.push_back([fn = std::move(fn)](const void* before, const void* after) {
            fn(*static_cast<const T*>(before), *static_cast<const T*>(after));
        });
    }

  private:
    friend class Service;
    explicit Settings(std::shared_ptr<detail::SettingsSlot> slot) : slot_(std::move(slot)) {}
    std::shared_ptr<detail::SettingsSlot> slot_;
};

/// Why a call failed, handed to a client's fallback.
struct CallFailure {
    std::string service;
    /// no_instance, circuit_open, bulkhead_full, timeout, connect_failure, reset, protocol,
    /// fault_abort, no_credential (no service token could be had), or status (the service
    /// answered 5xx)
    std::string reason;
    int status = 0;  ///< the upstream's 5xx, or what the failure maps to (502, 503, 504)
    std::string detail;
};

/// Calls one service by name: instances come from the registry (pushed by watches), picked by
/// the load-balancing policy, skipping ejected outliers. Cheap to copy (copies share their
/// policies); usable from any handler on any thread.
///
/// Each call takes the incoming request it serves, so the correlation id, the trace context and
/// the deadline travel downstream: a call ends by min(its timeout, the incoming deadline), and
/// tells the service how long it has left (X-Plexus-Deadline-Ms).
///
/// Every call goes through the client's policies (resilience/settings.hpp): timeout, retries with
/// backoff and a retry budget, the service's circuit breaker and bulkhead, outlier ejection,
/// fault injection. Failures throw HttpError — 503 when no instance is healthy, the breaker is
/// open or the bulkhead full; 504 on timeout; 502 when the instance fails — unless a fallback is
/// declared (set_fallback, or `fallback:` in the policy): then its answer is returned instead,
/// also in place of a 5xx answer.
class Client {
  public:
    Task<Response> get(const Request& incoming, std::string target);
    Task<Response> post(const Request& incoming, std::string target, std::string body,
                        std::string content_type = "application/json");
    Task<Response> put(const Request& incoming, std::string target, std::string body,
                       std::string content_type = "application/json");
    Task<Response> del(const Request& incoming, std::string target);
    /// A call with any method and headers; `timeout` (0: the policy's) bounds the whole exchange.
    Task<Response> call(const Request& incoming, Request outgoing,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds{0});

    const std::string& service() const noexcept;
    /// The per-call timeout (default 5 s); same as setting the policy's timeout.
    void set_timeout(std::chrono::milliseconds t);
    /// The client's policies: `call` (timeout, retry, fault injection, static fallback) and
    /// `upstream` (breaker, bulkhead, outlier detection, retry budget of calls to the service).
    /// Set before run(); an entry `clients.<service>` of the --config file overrides them.
    void set_policy(resilience::CallPolicy call, resilience::UpstreamPolicy upstream = {});
    /// A degraded answer returned instead of an error when a call fails or answers 5xx.
    void set_fallback(std::function<Response(const CallFailure&)> fallback);
    /// Calls carry the incoming request's credential (its Authorization, or X-API-Key), so the
    /// callee judges the original caller (Spring Cloud Gateway's TokenRelay).
    void relay_caller_token();
    /// Calls carry the service's own access token (client credentials grant with `scopes`, from
    /// the --credentials client), fetched when first needed and renewed before it expires; a call
    /// that cannot get one fails (reason no_credential: the fallback, else 503). Set before run().
    void use_service_token(std::vector<std::string> scopes = {});

  private:
    friend class Service;
    Client(std::shared_ptr<detail::ServiceState> state, std::shared_ptr<detail::ClientState> client)
        : state_(std::move(state)), client_(std::move(client)) {}
    std::shared_ptr<detail::ServiceState> state_;
    std::shared_ptr<detail::ClientState> client_;
};

/// A request handler: business code only.
using RouteHandler = std::function<Task<Response>(Request&)>;

/// A registered route, to add requirements to:
///
///     svc.put("/stock/{id}", handler).require({"inventory:write"}, {"jwt", "api_key"});
class RouteRef {
  public:
    /// Callers must present a credential the platform's identity server vouches for, holding
    /// every scope in `scopes` — checked by libs/auth's Verifier, the code the gateway's auth
    /// filter runs, so the service does not rely on the edge alone. `accept`: "jwt", "opaque",
    /// "api_key" (default: JWTs, and opaque tokens when the service has --credentials to
    /// introspect them); a token comes as `Authorization: Bearer`, an API key also in X-API-Key.
    /// Otherwise the answer is 401 or 403 (problem+json with the RFC 6750 challenge) and the
    /// handler does not run; when it runs, X-Plexus-Subject, -Client, -Scopes and -Roles
    /// say who called (set by the service, whatever the caller sent). Needs --identity and
    /// --issuer; run() returns 2 without them.
    RouteRef& require(std::vector<std::string> scopes, std::vector<std::string> accept = {});

  private:
    friend class Service;
    RouteRef(std::shared_ptr<detail::ServiceState> state, std::size_t index)
        : state_(std::move(state)), index_(index) {}
    std::shared_ptr<detail::ServiceState> state_;
    std::size_t index_;
};

/// A part of a service with a life of its own — a database pool, a config client, a message
/// consumer. A service starts its components in dependency order before it listens, counts each
/// in its readiness, and stops them in reverse order after it has drained (userver's component
/// system, without the config files):
///
///     struct Db final : plexus::Component {
///         std::string name() const override { return "db"; }
///         plexus::Task<void> start() override { ...open...; co_return; }
///         plexus::Task<void> stop() override { ...close...; co_return; }
///     };
///     svc.add_component(std::make_shared<Db>());
///
/// start() and stop() run on an io thread (offload blocking work with net::offload); ready()
/// runs at every readiness probe, so it must be quick and must not block.
class Component {
  public:
    virtual ~Component() = default;
    /// Unique within the service: used in dependencies, logs and the readiness checks.
    virtual std::string name() const = 0;
    /// Components that must be started before this one (and stopped after it).
    virtual std::vector<std::string> depends_on() const { return {}; }
    /// Brings the component up. An exception stops startup: run() returns 1 after stopping the
    /// components already started.
    virtual Task<void> start();
    /// Whether it can serve now; /health/ready fails (check named name()) while it cannot.
    virtual bool ready() const { return true; }
    /// Takes it down; called once, only if start() returned. An exception is logged.
    virtual Task<void> stop();
};

class Service {
  public:
    explicit Service(std::string name);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    /// Routes; patterns use `{param}` segments (see net::PathPattern). Register before run().
    RouteRef get(std::string_view pattern, RouteHandler h);
    RouteRef post(std::string_view pattern, RouteHandler h, std::size_t max_body_bytes = 0);
    RouteRef put(std::string_view pattern, RouteHandler h, std::size_t max_body_bytes = 0);
    RouteRef del(std::string_view pattern, RouteHandler h);
    RouteRef route(std::string method, std::string_view pattern, RouteHandler h,
                   std::size_t max_body_bytes = 0);

    /// Declares typed settings read from `section` of the service's settings by `loader` (see
    /// Settings). The same loader describes the settings as a JSON Schema the service publishes
    /// to the config server, so a change the service could not load is refused there, before it
    /// goes live. Sections must be distinct and not `clients`; declare before run() (run()
    /// returns 2 otherwise).
    template <class T>
    Settings<T> settings(std::string section, std::function<void(core::SettingsReader&, T&)> loader) {
        auto slot = std::make_shared<detail::SettingsSlot>();
        slot->section = std::move(section);
        slot->value.store(std::make_shared<const T>());
        slot->load = [loader = std::move(loader)](core::SettingsReader& r) -> std::shared_ptr<const void> {
            auto v = std::make_shared<T>();
            loader(r, *v);
            return v;
        };
        add_settings(slot);
        return Settings<T>(std::move(slot));
    }

    /// A client for another service (resolved through the registry once running). Clients of one
    /// service share their policies and state; one may be made at any time, also in a handler.
    Client client(std::string service);

    /// Extra readiness condition: /health/ready answers 503 while it returns false.
    void set_readiness(std::function<bool()> ready);
    /// A declared dependency of readiness, e.g. "the database answers". /health/ready answers
    /// 200 {"status":"pass","checks":{"db":"pass",...}} when every check passes, otherwise 503
    /// {"status":"fail",...} with each failing check "fail" (a check that throws fails). With the
    /// registry's active check (see --check-interval) a failing instance leaves discovery without
    /// being stopped, and comes back once its checks pass. Checks run on an io thread at every
    /// probe: keep them quick and non-blocking (read a flag, try a lock). Add before run().
    void add_readiness_check(std::string name, std::function<bool()> check);
    /// Tags and metadata published with the registration.
    void set_metadata(std::string key, std::string value);
    /// Called once after flags are parsed and before listening (open databases here). An
    /// exception stops startup with its message.
    void on_start(std::function<void()> fn);
    /// Adds a component (see Component), started after the on_start functions, before the
    /// service listens. Add before run(). run() returns 2 for two components of one name, a
    /// dependency on a component that was not added, or a dependency cycle.
    void add_component(std::shared_ptr<Component> component);

    const std::string& name() const noexcept;
    /// Valid after flags are parsed (inside on_start and handlers).
    const std::string& instance_id() const noexcept;
    const std::string& data_dir() const noexcept;
    telemetry::Registry& metrics() noexcept;

    /// Parses flags, starts, serves until SIGTERM/SIGINT, shuts down gracefully. Returns the
    /// process exit code (0 on a clean stop, 2 on bad flags, 1 on a startup failure).
    int run(int argc, char** argv);

  private:
    void add_settings(std::shared_ptr<detail::SettingsSlot> slot);
    std::shared_ptr<detail::ServiceState> state_;
};

}  // namespace plexus
