#pragma once
/// The process control loop behind `plexus up`: keeps the daemons and service replicas of a
/// manifest running as child processes of this process.
///
///     supervisor::SupervisorOptions options;
///     options.plexus_binary = "/usr/bin/plexus";
///     options.bin_dir = "/opt/shop/bin";
///     options.health_probe = [&](const InstanceStatus& s) { return http_get_ok(s.port, s.health_path); };
///     options.liveness_probe = [&](const InstanceStatus& s) { return http_get_ok(s.port, "/health/live"); };
///     supervisor::Supervisor sup(supervisor::load_manifest("plexus.yaml"), options);
///     if (!sup.start(stop)) return;          // daemons in order, each healthy, then services
///     sup.run(stop);                          // tick() every tick_interval until stop is requested
///     sup.stop_all();                         // services, then daemons in reverse, SIGKILL stragglers
///
/// Control loop. `tick()` reaps exited children (waitpid WNOHANG), schedules restarts with
/// exponential backoff (see backoff.hpp), starts what is due, applies `scale()` requests, escalates
/// stops to SIGKILL after stop_timeout, runs the health probe (at most once per `probe_interval`
/// per instance) and the liveness probe (see below). Every process exit is restarted, whatever its
/// status: the desired state is "running". A process that exits leaves nothing behind: what is
/// left of its process group is SIGKILLed when it is reaped (so a child must not daemonise itself).
///
/// Liveness. The health probe says whether an instance is ready (it only marks it unhealthy); the
/// liveness probe says whether the process still answers at all. An instance in state running (its
/// health probe passed once) whose process has been up for `liveness_grace` is probed at most once
/// per `liveness_interval`; after `liveness_failures` failures in a row (an exception counts as
/// one) its process group is SIGKILLed and the ordinary exit path restarts it with backoff, as if
/// it had crashed. A passing probe resets the count. This heals a process that runs but is hung,
/// deadlocked or stopped (SIGSTOP: SIGKILL ends a stopped process too).
///
/// Time. Everything the loop schedules — backoff, reset_after, probe and liveness intervals, the
/// liveness grace, startup timeout, the SIGKILL deadline of a scaled-down replica — reads the
/// injected `core::Clock`, so tests drive it with a ManualClock. `stop_all()`'s timeout is real
/// time, so that shutdown is bounded whatever the clock; so are `run_until`'s timeout and the pause
/// between ticks.
///
/// Threads. The *control* methods — start, tick, run, run_until, stop_all and the destructor —
/// must be called from one thread at a time, and that thread must outlive the children
/// (PR_SET_PDEATHSIG is tied to the forking thread, see process.hpp): typically `plexus up`'s main
/// thread. `status()`, `scale()`, `daemon_port()` and the accessors are thread-safe and may be
/// called from any thread (e.g. the HTTP control API); `scale()` only records the request and
/// wakes the loop, the next tick applies it. The health and liveness probes and the event callback
/// are called on the control thread without any lock held, so they may call status().
///
/// A process that does not pass its first health probe within `startup_timeout` of its start is
/// killed and restarted the same way (once start() has brought the daemons up; during start() a
/// daemon that is not healthy in time fails the startup instead).
///
/// Not handled here: rolling deploys, and SIGCHLD set to SIG_IGN by the host program (exits then
/// read "status unknown").

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/core/result.hpp"
#include "plexus/supervisor/manifest.hpp"

namespace plexus::supervisor {

/// Errors of the supervisor's runtime API.
enum class errc {
    unknown_service = 1,  ///< no service of that name in the manifest
    invalid_replicas,     ///< a replica count outside 0..kMaxReplicas
    shutting_down,        ///< stop_all() has begun; nothing more is started
};

/// The category of `supervisor::errc`, named "plexus.supervisor"; a process-wide singleton.
const boost::system::error_category& supervisor_category() noexcept;

/// An error code of `supervisor_category()`.
inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), supervisor_category()}; }

/// Startup could not complete: a directory cannot be created, no free port, a placeholder with no
/// value, or a daemon that did not become healthy in time. The message says which and where to look.
class StartupError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Daemons are started first, one at a time; services are replicated.
enum class InstanceKind { daemon, service };

/// Where an instance is in its life.
enum class InstanceState {
    starting,  ///< process running, health probe has not passed yet
    running,   ///< process running and its probe passed once (or there is no probe)
    backoff,   ///< not running, waiting for `next_start` (after an exit or a failed start)
    stopping,  ///< SIGTERM sent, waiting for it to exit (SIGKILL after stop_timeout)
    stopped,   ///< not running and not to be restarted (after stop_all)
};

/// "daemon" or "service".
std::string_view to_string(InstanceKind kind) noexcept;
/// "starting", "running", "backoff", "stopping" or "stopped".
std::string_view to_string(InstanceState state) noexcept;

/// A snapshot of one managed process, as shown by `plexus status`.
struct InstanceStatus {
    /// Unique name, also of the log file: the daemon's name or `<service>-<replica>`.
    std::string name;
    /// The daemon or service it belongs to.
    std::string service;
    /// Daemon or service replica.
    InstanceKind kind = InstanceKind::service;
    /// 0-based replica index (0 for daemons).
    int replica = 0;
    /// 0 when no process is running.
    int pid = 0;
    /// The daemon's loopback port; 0 for services (they listen on a port of their own choosing).
    int port = 0;
    /// The daemon's admin port (DaemonSpec::admin_port); 0 when it has none.
    int admin_port = 0;
    /// The daemon's health path ("" for services and daemons without one).
    std::string health_path;
    /// The daemon serves HTTPS on `port` in this run (its manifest `tls_args` are in use).
    bool tls = false;
    /// See InstanceState.
    InstanceState state = InstanceState::backoff;
    /// The last probe passed (true while running when no probe is set).
    bool healthy = false;
    /// Starts after the first one (failed starts included, and restarts after a liveness kill).
    int restarts = 0;
    /// Liveness probes of the current process that failed in a row (0 after a passing one).
    int liveness_failures = 0;
    /// When the current (or last) process was started, on the injected clock and as wall time.
    core::SteadyTime started_at{};
    core::SystemTime started_wall{};
    /// In backoff: when the next start is due.
    core::SteadyTime next_start{};
    /// How the last process ended ("exited with status 1"), "" if none has yet. A process the
    /// supervisor killed as not alive reads "killed by SIGKILL (not alive: 3 liveness probes failed)".
    std::string last_exit;
    /// Why the last start failed, the last probe threw, or the process was killed as not alive; ""
    /// if none of these happened (cleared when a process starts).
    std::string last_error;
    /// `<logs_dir>/<name>.log`: the process's stdout and stderr.
    std::string log_file;
};

/// How to run a manifest; plain settings given by the caller (the CLI).
struct SupervisorOptions {
    /// `{plexus}`: path of the plexus binary.
    std::string plexus_binary;
    /// `{bin_dir}`: directory of the application binaries.
    std::string bin_dir;
    /// Overrides the manifest's data_dir; relative to the current directory. Empty: the manifest's,
    /// relative to the manifest's directory.
    std::string data_dir;
    /// Where `<instance>.log` files go. Empty: `<data_dir>/logs`.
    std::string logs_dir;
    /// `{tls_cert}` and `{tls_key}`: a server certificate and key (PEM). When set (both or
    /// neither), every daemon with `tls_args` runs with them appended and serves HTTPS
    /// (InstanceStatus::tls); `{scheme}` then reads `https` for it.
    std::string tls_cert;
    std::string tls_key;
    /// Decides whether an instance is healthy (for daemons typically an HTTP GET of
    /// `health_path` on `port`; for services e.g. "registered in the registry"). Called on the
    /// control thread from tick(), at most once per probe_interval per running instance; it blocks
    /// the loop, so it must be quick (bounded by its own short timeout). An exception counts as a
    /// failed probe. Unset: every started process counts as healthy.
    std::function<bool(const InstanceStatus&)> health_probe;
    /// Least time between two probes of one instance (on the injected clock).
    std::chrono::milliseconds probe_interval{1000};
    /// Decides whether a running instance's process is still alive (e.g. an HTTP GET of
    /// /health/live that answers). Called like health_probe: on the control thread from tick(),
    /// without locks, blocking the loop, so it must be bounded by its own short timeout. Only for
    /// instances in state running (their health probe passed once) whose process has been up for
    /// `liveness_grace`, at most once per `liveness_interval`. `liveness_failures` failures in a row
    /// (an exception counts as one) get the process group SIGKILLed and the instance restarted with
    /// backoff. Unset: no liveness checks.
    std::function<bool(const InstanceStatus&)> liveness_probe;
    /// Least time between two liveness probes of one process (on the injected clock). Positive.
    std::chrono::milliseconds liveness_interval{1000};
    /// Failed liveness probes in a row that get a process killed. At least 1.
    int liveness_failures = 3;
    /// How long after its start a process gets no liveness verdict (on the injected clock). Not
    /// negative.
    std::chrono::milliseconds liveness_grace{10000};
    /// How long start() waits for each daemon's first passing probe; later, how long any started
    /// process may take to pass its first probe before it is killed and restarted.
    std::chrono::milliseconds startup_timeout{30000};
    /// The pause between ticks in run(), run_until() and start().
    std::chrono::milliseconds tick_interval{100};
    /// Told about every start, exit, restart schedule, health change and stop, with a one-line
    /// message; for logging. Called on the control thread without any lock held.
    std::function<void(const InstanceStatus&, std::string_view message)> on_event;
};

/// Keeps a manifest's processes running. Not copyable or movable. See the file comment for the
/// threading rules.
class Supervisor {
  public:
    /// Prepares to run `manifest` (nothing is started yet). Throws StartupError if the manifest
    /// breaks the rules `load_manifest` enforces (see validate_manifest), a liveness setting of
    /// `options` is out of range, or only one of tls_cert and tls_key is given.
    Supervisor(Manifest manifest, SupervisorOptions options, core::Clock& clock = core::Clock::real());
    /// Stops everything still running, as stop_all() with the manifest's stop_timeout.
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    /// Creates the data, logs and per-service data directories, assigns daemon ports, then starts
    /// each daemon in manifest order and ticks until its probe passes before starting the next;
    /// then starts every service replica (without waiting for them). Control thread; call once.
    /// Returns false if `stop` was requested meanwhile (what was started keeps running until
    /// stop_all()). Throws StartupError naming the daemon, its state, last exit and log file when a
    /// daemon is not healthy within `startup_timeout`, or when a directory, port or placeholder
    /// value is missing; the daemons already started keep running until stop_all().
    bool start(std::stop_token stop = {});

    /// One round of the control loop (see the file comment). Control thread. Never throws for a
    /// child's failure: it is recorded in status().
    void tick();
    /// tick() every tick_interval until `stop` is requested (woken early by scale()). Control thread.
    void run(std::stop_token stop);
    /// tick()s until `done()` returns true (checked after each tick, without locks) or `timeout` of
    /// real time passed; returns the last `done()`. Control thread. Handy for tests and for
    /// waiting on a condition in the CLI.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

    /// Stops everything for good: no more restarts; SIGTERM to all service replicas (and SIGCONT, so
    /// that a stopped one sees it), wait up to
    /// `timeout` for them, SIGKILL the rest; then the same for each daemon in reverse start order.
    /// Every child is reaped before it returns. Real-time bounded by (1 + daemons) * timeout plus
    /// the reaping of SIGKILLed processes. Control thread. Later scale() calls fail with
    /// errc::shutting_down; later ticks do nothing.
    void stop_all(std::chrono::milliseconds timeout);
    /// stop_all with the manifest's stop_timeout.
    void stop_all();

    /// Sets the desired replica count of `service`; the next tick starts the missing replicas
    /// (indices up from the current count) or stops the highest ones. Thread-safe. Errors:
    /// errc::unknown_service, errc::invalid_replicas (outside 0..kMaxReplicas),
    /// errc::shutting_down.
    Result<void> scale(std::string_view service, int replicas);

    /// A snapshot of every instance: daemons in start order, then services in manifest order by
    /// replica. Thread-safe.
    std::vector<InstanceStatus> status() const;
    /// The port assigned to daemon `name` (known once start() began), or nullopt. Thread-safe.
    std::optional<int> daemon_port(std::string_view name) const;
    /// The admin port assigned to daemon `name`, or nullopt (none declared, or not started yet).
    std::optional<int> daemon_admin_port(std::string_view name) const;

    /// The manifest being run. Immutable; thread-safe.
    const Manifest& manifest() const noexcept;
    /// The absolute data directory. Immutable; thread-safe.
    const std::string& data_dir() const noexcept;
    /// The absolute logs directory. Immutable; thread-safe.
    const std::string& logs_dir() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::supervisor

template <>
struct boost::system::is_error_code_enum<plexus::supervisor::errc> : std::true_type {};
