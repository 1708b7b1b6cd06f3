#pragma once
/// The config server daemon (`plexus config-server`): central configuration for every
/// application, per profile, versioned, pushed to instances, with canaries and encrypted secrets.
/// See service.hpp for the rules and document.hpp for how layers combine. Documents are kept in
/// SQLite under the data directory, or in etcd (Settings::store), where any number of servers
/// share them and each serves every change, watches included (etcd_store.hpp).
///
/// Reading (a token with config:read[:APP], or admin):
///   GET /{app}/{profiles}[/{label}]        Spring Cloud Config Server's JSON (name, profiles,
///                                          label, version, propertySources[] of flattened
///                                          sources, highest first): Spring clients read it as is
///   GET /v1/config/{app}/{profiles}[?instance=ID][&format=yaml]
///                                          the merged document, as that instance gets it (its
///                                          canaries included); with &version=N&wait=30s a
///                                          blocking watch answered as soon as the instance's
///                                          version differs from N (or when `wait` ends)
///   GET /v1/documents                      every document and its version; canaries pending
///   GET /v1/documents/{app}[/profiles/{profile}][?version=N]   one document as stored
///   GET .../history[?limit=50&before=N]    its versions, newest first (author, time, message)
///   GET .../diff[?from=N&to=M]             what changed, property by property
///   GET /v1/labels, GET /v1/schemas/{app}, GET /v1/instances/{app}
/// Writing (config:write[:APP], or admin; `application` and labels: config:write or admin):
///   PUT    .../documents/...   {"content": {...} | "yaml": "...", "message": "...", "expected": N}
///   PATCH  .../documents/...   {"set": {"a.b": value, "c": null}, "message": "...", "expected": N}
///   DELETE .../documents/...[?expected=N]
///   POST   .../rollback        {"version": N, "message": "..."}
///   POST   .../canary          like PUT or PATCH, plus "instances": [...] and/or "percent": P
///   POST   .../promote, DELETE .../canary
///   PUT    /v1/labels/{name}   {"revision": N, "message": "..."}; DELETE /v1/labels/{name}
///   POST   /v1/encrypt/{app}   text → "{cipher}a1:..." for that application's documents
/// Instances (config:read:APP): PUT /v1/schemas/{app} (JSON Schema), PUT /v1/instances/{app}/{id}
/// {"profiles", "offered", "running", "applied", "error"}.
///   GET /health/live, /health/ready, /metrics
/// Refusals are problem+json; a write the schema refuses names each key and why.

#include <chrono>
#include <memory>
#include <string>

#include "plexus/config/etcd_store.hpp"
#include "plexus/config/service.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/net/router.hpp"

namespace plexus::auth {
class Verifier;
}
namespace plexus::telemetry {
class Registry;
}

namespace plexus::config {

struct Settings {
    std::string listen = "127.0.0.1:8888";
    /// Where documents are kept: "sqlite" (<data_dir>/config.db, this server alone) or "etcd"
    /// (the cluster `etcd`, under `etcd_prefix`: every config server pointed at the same cluster
    /// and prefix serves every change any of them takes).
    std::string store = "sqlite";
    std::string etcd;  ///< store "etcd": the members' client URLs, comma-separated
    std::string etcd_prefix = kDefaultEtcdPrefix;
    std::string data_dir;       ///< required with store "sqlite": <data_dir>/config.db
    std::string registry;       ///< http://host:port to register with as "config"; empty: none
    std::string key_file;       ///< the secrets key; empty: $PLEXUS_CONFIG_KEY, else no secrets
    bool generate_key = false;  ///< make `key_file` with a new key when it does not exist
    std::string seed_dir;       ///< on an empty store: <dir>/<app>.yaml and <dir>/<app>/<profile>.yaml
    /// The identity provider whose tokens callers present (see auth::ProviderSettings).
    std::string issuer, jwks_uri, audience = "plexus", revocations_uri, introspection_uri, credentials_file;
    /// Without an identity provider: every caller may do everything. Only on a loopback address.
    bool anonymous = false;
    std::chrono::milliseconds max_wait{60'000};
    std::size_t threads = 1;
};

/// Reads the keys of Settings present in `r` — listen, store (sqlite or etcd), etcd, etcd_prefix,
/// data_dir, registry, key_file, generate_key, seed (seed_dir), issuer, jwks_uri, audience,
/// revocations_uri, introspection_uri, client_credentials (credentials_file), anonymous, max_wait,
/// threads (1 to 64) — for a settings file (the config server cannot read its own from a config
/// server). Throws core::SettingsError naming the key.
void read_settings(core::SettingsReader& r, Settings& s);

/// The HTTP API over a ConfigService; add its routes to a Router.
class Api {
  public:
    /// `verifier` null: every caller is treated as an admin (Settings::anonymous).
    Api(ConfigService& service, std::shared_ptr<auth::Verifier> verifier, telemetry::Registry& metrics,
        std::chrono::milliseconds max_wait);
    ~Api();
    void add_routes(net::Router& router);
    /// Answers every pending and future watch at once (at shutdown). Thread-safe.
    void stop_watches();

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// Loads `dir`'s documents into an empty store (see Settings::seed_dir); how many. A document
/// another server created meanwhile (servers sharing an etcd store may seed at once) is left as
/// it is and not counted. Throws
/// core::SettingsError naming the file for a file that is not a YAML map, std::runtime_error when
/// the service refuses one.
std::size_t seed(ConfigService& service, const std::string& dir);

/// Runs the daemon until SIGTERM/SIGINT; the process exit code.
int run(const Settings& settings);

}  // namespace plexus::config
