#pragma once
/// The registry daemon: the catalog behind an HTTP API.
///
///   PUT    /v1/services/{service}/instances/{id}            register (JSON body, see below)
///   PUT    /v1/services/{service}/instances/{id}/heartbeat  renew TTL (404: register again)
///   PUT    /v1/services/{service}/instances/{id}/draining   stop sending new traffic
///   DELETE /v1/services/{service}/instances/{id}            deregister
///   GET    /v1/services                                     list services
///   GET    /v1/services/{service}[?all=true][&index=N&wait=30s]
///          instances ("passing" and "warning", not draining, unless all=true); with index, a
///          blocking watch that answers as soon as the service's index exceeds N, or when `wait`
///          ends. Every answer carries the current index in its body and in `X-Plexus-Index`.
///          With delta=true (and an index), the answer lists only what changed after N:
///          {"service":S,"since":N,"changed":[instances],"removed":["id"],"index":M}; applied
///          to the list the caller had at N it gives the list at M. When those changes are no
///          longer known (see CatalogLimits::change_log, or after a restart) the answer is the
///          full list instead (no "since" field). Answers are serialised once per index and
///          shared by every watcher and reader that gets them (Catalog::answer).
///   GET    /health/live, /health/ready, /metrics
///
/// Registration body: {"address":"127.0.0.1","port":8080,"tags":[],"metadata":{},"ttl_ms":5000}
/// plus an optional active check (see HealthChecker), run by the registry in addition to the TTL:
///   "check": {"http":"/health/ready","interval_ms":1000,"timeout_ms":500,
///             "healthy_threshold":1,"unhealthy_threshold":2}
/// A registration that does not make sense answers 400 problem+json naming the field.
/// Registration, draining and deregistration answer once the change is written to the database
/// (Catalog::write_pending, on the blocking pool); heartbeats and reads never wait for the disk.

#include <chrono>
#include <memory>
#include <string>

#include "plexus/core/clock.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/registry/catalog.hpp"
#include "plexus/registry/etcd_catalog.hpp"

namespace plexus::telemetry {
class Registry;
}

namespace plexus::registry {

struct Settings {
    std::string listen = "127.0.0.1:8500";
    /// Where the catalog is kept: "sqlite" (<data_dir>/registry.db, this registry alone; no
    /// data_dir: memory only) or "etcd" (the cluster `etcd`, under `etcd_prefix`: every registry
    /// pointed at the same cluster and prefix serves the same catalog; see etcd_catalog.hpp).
    std::string store = "sqlite";
    std::string etcd;  ///< store "etcd": the members' client URLs, comma-separated
    std::string etcd_prefix = kDefaultEtcdPrefix;
    std::string data_dir;  ///< store "sqlite": empty means nothing persisted
    std::chrono::milliseconds reap_interval{250};
    std::chrono::milliseconds max_wait{60'000};
    CatalogLimits limits;
    /// I/O threads (0 = one per core). Every handler is safe on any of them.
    std::size_t threads = 0;
};

/// Reads the keys of Settings present in `r` — listen, store, etcd, etcd_prefix, data_dir,
/// reap_interval, max_wait,
/// threads, limits {min_ttl, max_ttl, max_metadata_bytes, max_tags, change_log} — the same loader
/// for a settings file and the config server. Throws core::SettingsError naming the key.
void read_settings(core::SettingsReader& r, Settings& s);

/// The HTTP API over a catalog; add its routes to a Router. The handlers are safe on any number
/// of I/O threads. `catalog` and `metrics` must outlive the runtime that serves the routes (its
/// run() waits for the writes the handlers hand to the blocking pool).
class Api {
  public:
    Api(Catalog& catalog, telemetry::Registry& metrics, std::chrono::milliseconds max_wait);
    ~Api();
    void add_routes(net::Router& router);
    /// Answers every pending and future blocking watch at once (at shutdown, so draining does
    /// not wait for long polls). Thread-safe.
    void stop_watches();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Runs the registry daemon until SIGTERM/SIGINT; returns the process exit code.
int run(const Settings& settings);

}  // namespace plexus::registry
