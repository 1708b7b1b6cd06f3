#pragma once
/// `plexus up / status / down`: the supervisor as a command. `up` starts a manifest's daemons
/// and services on loopback, waits until every instance is healthy, prints the gateway URL and
/// example commands, and keeps everything running (restarts with backoff) until Ctrl-C, SIGTERM
/// or `plexus down`. It serves a small control API on loopback and records where in
/// `<data_dir>/supervisor.json`, which `status` and `down` read.
///
/// With `tls`, the daemons whose manifest entry has `tls_args` (the gateway in the default
/// manifest) serve HTTPS with a certificate of a development CA kept in `<data_dir>/tls` (see
/// net/dev_ca.hpp: made on first use, reused, the server certificate renewed near its expiry).
/// Their health probes speak TLS and trust that CA; the ready message prints the https URL and how
/// to trust the CA (`curl --cacert <data_dir>/tls/ca.pem ...`).
///
/// Control API (loopback only):
///   GET  /v1/status                          every instance, as JSON
///   POST /v1/shutdown                        graceful stop of everything
///   PUT  /v1/services/{name}/replicas        body {"replicas": N}

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace plexus::supervisor {

struct UpOptions {
    std::string manifest_path = "deploy/plexus.yaml";
    std::string data_dir;   ///< overrides the manifest's data_dir when set
    int gateway_port = -1;  ///< overrides the port of the daemon named "gateway" when ≥ 0
    /// Overrides the admin port of the daemon named "gateway" when ≥ 0 (it must declare one).
    int gateway_admin_port = -1;
    bool detach = false;  ///< return once healthy, leaving the supervisor in the background
    bool tls = false;     ///< serve the daemons with `tls_args` over HTTPS (see the file comment)
    std::string plexus_binary;
    std::string bin_dir;
    std::chrono::milliseconds ready_timeout{60'000};
};

/// Runs `plexus up`; returns the process exit code (0 ok, 1 failed to start, 2 bad manifest).
int up(const UpOptions& options);

/// Prints the status table of the deployment whose data lives in `data_dir`; exit code.
int status(const std::string& data_dir, std::ostream& out);

/// Stops the deployment whose data lives in `data_dir` and waits until no process of it is left.
int down(const std::string& data_dir, std::chrono::milliseconds timeout);

/// Sets the replica count of `service` in the running deployment (the control loop starts or
/// stops instances on its next tick); exit code.
int scale(const std::string& data_dir, const std::string& service, int replicas);

/// The port of the running deployment's `daemon` ("gateway", "registry", "config"), as its
/// supervisor recorded it; nullopt when nothing runs from `data_dir` or it has no such daemon.
std::optional<int> deployed_port(const std::string& data_dir, std::string_view daemon);

/// The data directory `status`/`down` use when none is given: the default manifest's.
std::string default_data_dir(const std::string& manifest_path);

}  // namespace plexus::supervisor
