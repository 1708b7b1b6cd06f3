#pragma once
/// The manifest of `plexus up`: which daemons and services to run, how many replicas, how to
/// restart and stop them. Loaded from YAML at startup; every problem (unknown key, wrong type,
/// unknown placeholder, replicas out of range, ...) throws `core::SettingsError` whose message
/// reads `file:line: key.path: reason`.
///
///     name: shop
///     data_dir: .plexus            # optional; relative to the manifest's directory
///     daemons:                     # started first, in this order, each one process
///       registry:
///         command: ["{plexus}", "registry", "--listen", "127.0.0.1:{port}"]
///         port: 0                  # 0 = the supervisor picks a free loopback port
///         health: /health/ready    # HTTP path the caller's health probe polls
///         tls_args: ["--tls-cert", "{tls_cert}", "--tls-key", "{tls_key}"]   # see below
///     services:
///       catalog:
///         command: ["{bin_dir}/shop-catalog"]
///         replicas: 2              # 0..64
///         env: {CATALOG_DB: "{data_dir}/catalog/catalog.db"}
///     restart: {initial_backoff: 200ms, max_backoff: 10s, reset_after: 30s}
///     liveness: {interval: 1s, failures: 3, grace: 10s}   # optional; these are the defaults
///     stop_timeout: 10s
///
/// Placeholders, expanded in `command` items and `env` values when a process is started:
///
/// | placeholder    | value                                                                  |
/// |----------------|------------------------------------------------------------------------|
/// | `{plexus}`     | path of the plexus binary (given by the caller)                        |
/// | `{bin_dir}`    | directory of the application binaries (given by the caller)            |
/// | `{data_dir}`   | the data directory (absolute)                                          |
/// | `{manifest_dir}` | directory of the manifest file (absolute)                            |
/// | `{port}`       | this daemon's port (daemons only: services listen on port 0)           |
/// | `{port:NAME}`  | the port of daemon NAME                                                |
/// | `{instance}`   | the instance name: the daemon's name, or `<service>-<replica>`         |
/// | `{replica}`    | the 0-based replica index (0 for daemons)                              |
/// | `{scheme}`     | `https` when this daemon serves TLS in this run, else `http` (daemons) |
/// | `{scheme:NAME}`| the same for daemon NAME                                               |
/// | `{tls_cert}`   | the server certificate (PEM) given by the caller (`plexus up --tls`)   |
/// | `{tls_key}`    | its private key (PEM), given likewise                                  |
///
/// TLS. A daemon may list `tls_args`: arguments appended to its command when the caller runs
/// the manifest with TLS (`plexus up --tls`, SupervisorOptions::tls_cert). The daemon then serves
/// HTTPS on its port: `{scheme}` reads `https` and health probes speak TLS. Without TLS the
/// arguments are not used.
///
/// Only `{` is special: `{{` is a literal `{` (so a shell's `${HOME}` is written `${{HOME}`);
/// `}` outside a placeholder is literal.
///
/// Names of daemons and services: 1-63 characters of letters, digits, `_` and `-`, starting with a
/// letter or digit, unique across both sections; a daemon may not be named like a service replica
/// (`catalog-0`). Fixed daemon ports must be distinct.

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/result.hpp"
#include "plexus/supervisor/backoff.hpp"

namespace plexus::supervisor {

/// Most replicas a service may have.
inline constexpr int kMaxReplicas = 64;

/// A platform daemon (registry, gateway, ...): one process, started before all services.
struct DaemonSpec {
    /// Unique among daemons and services; the instance and log file name.
    std::string name;
    /// argv, with placeholders; never empty.
    std::vector<std::string> command;
    /// Fixed loopback port, or 0 to have the supervisor pick a free one.
    int port = 0;
    /// A second port for the daemon's admin endpoints (`admin_port:` in the manifest): fixed, or
    /// 0 to have one picked; -1 (no key) when the daemon has none. `{admin_port}` in its command.
    int admin_port = -1;
    /// HTTP path (starting with '/') the health probe polls; empty when the daemon has none.
    std::string health;
    /// Extra environment variables (values with placeholders).
    std::map<std::string, std::string> env;
    /// Appended to `command` in a run with TLS (see the file comment); empty: the daemon always
    /// serves plain HTTP.
    std::vector<std::string> tls_args;
};

/// The `liveness:` section of a manifest: how often `plexus up` checks that a running instance
/// still answers, and after how many failures in a row it is killed and restarted. `plexus up`
/// hands these to SupervisorOptions (liveness_interval, liveness_failures, liveness_grace); the
/// Supervisor reads only its options.
struct LivenessPolicy {
    /// Least time between two checks of one process. Must be positive.
    std::chrono::milliseconds interval{1000};
    /// Failures in a row that get the process killed; 1..kMaxLivenessFailures.
    int failures = 3;
    /// No verdict before a process has been up this long (and passed its health probe). Not negative.
    std::chrono::milliseconds grace{10000};
};

/// Most failures in a row a liveness policy may wait for.
inline constexpr int kMaxLivenessFailures = 100;

/// An application service: `replicas` identical processes.
///
/// Besides the supervisor's own environment and `env`, each replica gets:
///  - `PLEXUS_SERVICE=<name>`
///  - `PLEXUS_INSTANCE_ID=<name>-<replica>`
///  - `PLEXUS_DATA_DIR=<data_dir>/<name>` (created by the supervisor)
///  - `PLEXUS_LISTEN=127.0.0.1:0` (listen on any free loopback port, then register)
///  - `PLEXUS_REGISTRY=http://127.0.0.1:<port>` when a daemon named `registry` exists.
/// A key in `env` overrides any of these.
struct ServiceSpec {
    /// Unique among daemons and services; replicas are `<name>-<replica>`.
    std::string name;
    /// argv, with placeholders; never empty.
    std::vector<std::string> command;
    /// Desired number of processes, 0..kMaxReplicas.
    int replicas = 1;
    /// Extra environment variables (values with placeholders).
    std::map<std::string, std::string> env;
};

/// A whole manifest: plain data, validated by the loader.
struct Manifest {
    /// The application's name (`shop`).
    std::string name;
    /// As written; relative paths are relative to `manifest_dir`. The caller may override it.
    std::string data_dir = ".plexus";
    /// Directory of the manifest file; `{manifest_dir}`.
    std::string manifest_dir = ".";
    /// In start order.
    std::vector<DaemonSpec> daemons;
    /// In manifest order (all start together after the daemons).
    std::vector<ServiceSpec> services;
    /// Backoff for every restarted process.
    RestartPolicy restart;
    /// How long a process gets between SIGTERM and SIGKILL.
    std::chrono::milliseconds stop_timeout{10000};
    /// Liveness checks run by `plexus up` (see LivenessPolicy).
    LivenessPolicy liveness;
    /// Example commands printed once everything is up; `{gateway}` stands for the gateway's URL.
    std::vector<std::string> examples;

    /// The daemon named `name`, or nullptr.
    const DaemonSpec* daemon(std::string_view name) const noexcept;
    /// The service named `name`, or nullptr.
    const ServiceSpec* service(std::string_view name) const noexcept;
};

/// Reads and validates a manifest file. `manifest_dir` becomes the file's absolute directory.
/// Throws core::SettingsError (`file:line: key: reason`) for anything wrong.
Manifest load_manifest(const std::string& path);

/// Parses and validates manifest text; `file_name` stands for the file in messages.
/// Throws core::SettingsError.
Manifest parse_manifest(std::string_view yaml, const std::string& file_name, const std::string& manifest_dir);

/// Checks a manifest built in code by the rules the loader applies (names, ports, replicas,
/// placeholders, restart and liveness policies). Returns the first problem as a sentence, or nullopt.
std::optional<std::string> validate_manifest(const Manifest& manifest);

/// Where a placeholder text is used: daemons may use `{port}` and `{scheme}`, services may not.
enum class PlaceholderScope { daemon, service };

/// Checks the placeholders of `text`. `daemon_names` are the names `{port:NAME}` may refer to;
/// when null, any NAME is accepted. Returns why the text is wrong, or nullopt.
std::optional<std::string> check_placeholders(std::string_view text, PlaceholderScope scope,
                                              const std::set<std::string>* daemon_names);

/// The values placeholders expand to for one process.
struct PlaceholderValues {
    /// `{plexus}`; empty means "not given" (using it is then an error).
    std::string plexus;
    /// `{bin_dir}`; empty means "not given".
    std::string bin_dir;
    /// `{data_dir}`.
    std::string data_dir;
    /// `{manifest_dir}`.
    std::string manifest_dir;
    /// `{instance}`.
    std::string instance;
    /// `{port}`: this daemon's port; nullopt for services (`{port}` is then an error).
    std::optional<int> port;
    /// `{replica}`.
    int replica = 0;
    /// `{port:NAME}`: every daemon's port by name.
    std::map<std::string, int, std::less<>> daemon_ports;
    /// `{admin_port}`: this daemon's admin port, if it has one.
    std::optional<int> admin_port;
    /// `{admin_port:NAME}`: the admin ports of the daemons that have one.
    std::map<std::string, int, std::less<>> daemon_admin_ports;
    /// `{scheme:NAME}` is `https` for these daemons (served with TLS in this run).
    std::set<std::string, std::less<>> tls_daemons;
    /// `{scheme}`: whether this daemon serves TLS.
    bool tls = false;
    /// `{tls_cert}`, `{tls_key}`; empty means "not given" (using them is then an error).
    std::string tls_cert;
    std::string tls_key;
};

/// Expands every placeholder of `text`. Errors (core::errc::invalid_argument, with the reason in
/// `*why` when given): an unknown or unclosed placeholder, `{port}` without a port, `{port:NAME}`
/// of an unknown daemon, or `{plexus}`, `{bin_dir}`, `{tls_cert}` or `{tls_key}` when the caller gave no
/// value for it.
Result<std::string> expand_placeholders(std::string_view text, const PlaceholderValues& values,
                                        std::string* why = nullptr);

}  // namespace plexus::supervisor
