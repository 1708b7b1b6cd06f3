#pragma once
/// `plexus gateway`: the edge server as a daemon — runtime, discovery, gateway and server wired
/// together, SIGHUP reloading the routes (and the TLS certificate) and SIGTERM/SIGINT draining and
/// stopping; routes from a routes file and, when one is configured, the config server.
///
/// HTTPS: with `tls_cert` and `tls_key` the public listener terminates TLS (net/tls.hpp for the
/// policy); the admin listener stays plain HTTP on loopback. Both files are checked every
/// `tls_watch_interval` (modification time and size) and on SIGHUP: a changed pair serves new
/// handshakes, connections keep theirs, and a pair that does not load is logged and the old one
/// kept.

#include <chrono>
#include <string>

#include "plexus/auth/verifier.hpp"
#include "plexus/core/settings.hpp"

namespace plexus::gateway {

/// Flags of `plexus gateway`.
struct DaemonSettings {
    std::string listen = "127.0.0.1:8080";
    /// The admin endpoints' listener (/metrics, /-/routes, /-/resilience); port 0 picks one,
    /// logged in the "gateway listening" line.
    std::string admin_listen = "127.0.0.1:9901";
    std::string registry;  ///< http://host:port; empty when every route has static upstreams
    std::string routes_file;
    /// The identity provider for `auth` filters (see auth::ProviderSettings).
    auth::ProviderSettings auth;
    /// The limit service, http://host:port (rate_limit filters with `scope: global`).
    std::string limits_uri;
    bool trust_forwarded_for = false;
    std::size_t threads = 0;
    /// PEM certificate chain (leaf first) and private key of the public listener; both or neither.
    std::string tls_cert;
    std::string tls_key;
    std::chrono::milliseconds tls_watch_interval{1000};
    /// The config server, http://host:port: the document of application `gateway` (a routes
    /// document: `routes:` and the rest of a routes file) is laid over the routes file and
    /// followed live; a change whose routes do not load is refused there (the old routes keep
    /// serving) and reported. Empty: the routes file alone.
    std::string config_server;
    std::string profiles = "default";
    /// The identity provider's token endpoint, http://host:port/path: with the client of
    /// `auth.credentials_file`, a token for the config server. Empty: calls carry none.
    std::string token_uri;
};

/// Reads the keys of DaemonSettings present in `r` — listen, admin_listen, registry, routes (the
/// routes file), auth {issuer, jwks_uri, audience, revocations_uri, introspection_uri,
/// credentials_file, max_introspections}, limits_uri, trust_forwarded_for, threads, tls {cert,
/// key}, config_server, profiles, token_uri — the same loader for a settings file and the
/// config server. Throws core::SettingsError naming the key.
void read_settings(core::SettingsReader& r, DaemonSettings& s);

/// Runs until SIGTERM/SIGINT (SIGHUP reloads the routes and the certificate); returns the process
/// exit code (2 for bad flags, routes or TLS files, 1 when it cannot listen).
int run(const DaemonSettings& settings);

}  // namespace plexus::gateway
