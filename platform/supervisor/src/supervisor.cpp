#include "plexus/supervisor/supervisor.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "plexus/core/duration.hpp"
#include "plexus/supervisor/process.hpp"

extern char** environ;

namespace plexus::supervisor {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

class SupervisorCategory final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "plexus.supervisor"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::unknown_service:
                return "no such service in the manifest";
            case errc::invalid_replicas:
                return "replicas must be between 0 and " + std::to_string(kMaxReplicas);
            case errc::shutting_down:
                return "the supervisor is shutting down";
        }
        return "unknown supervisor error";
    }
};

// How often stop_all() looks for exited children while it waits.
constexpr milliseconds kStopPollInterval{10};

std::string absolute_dir(const fs::path& p) {
    std::error_code ec;
    auto abs = fs::absolute(p, ec);
    auto normal = (ec ? p : abs).lexically_normal();
    if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
        normal = normal.parent_path();  // drop a trailing '/'
    }
    return normal.string();
}

std::string plural(int n, std::string_view word) {
    return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

std::map<std::string, std::string> environment_snapshot() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        auto eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

}  // namespace

const boost::system::error_category& supervisor_category() noexcept {
    static const SupervisorCategory category;
    return category;
}

std::string_view to_string(InstanceKind kind) noexcept {
    return kind == InstanceKind::daemon ? "daemon" : "service";
}

std::string_view to_string(InstanceState state) noexcept {
    switch (state) {
        case InstanceState::starting:
            return "starting";
        case InstanceState::running:
            return "running";
        case InstanceState::backoff:
            return "backoff";
        case InstanceState::stopping:
            return "stopping";
        case InstanceState::stopped:
            return "stopped";
    }
    return "unknown";
}

// One managed process slot: a daemon, or one replica of a service.
struct Instance {
    InstanceStatus st;           // the public view, kept current
    std::size_t spec_index = 0;  // position of its daemon or service in the manifest
    ProcessSpec spec;
    RestartBackoff backoff;
    bool retire = false;  // scaled away: remove once its process is gone
    bool ever_started = false;
    bool killed = false;  // SIGKILL already sent
    bool probed = false;
    core::SteadyTime last_probe{};
    bool liveness_probed = false;
    core::SteadyTime last_liveness_probe{};
    std::string kill_reason;  // why the loop SIGKILLed a running process; appended to last_exit
    core::SteadyTime stop_deadline{};
};

struct Supervisor::Impl {
    Impl(Manifest m, SupervisorOptions o, core::Clock& c)
        : manifest(std::move(m)), options(std::move(o)), clock(c) {}

    const Manifest manifest;
    const SupervisorOptions options;
    core::Clock& clock;
    std::string manifest_dir;
    std::string data_dir;
    std::string logs_dir;
    std::map<std::string, std::string> base_env;

    mutable std::mutex mutex;
    std::condition_variable_any wake_cv;
    bool wake = false;
    std::map<std::string, int, std::less<>> daemon_ports;
    std::map<std::string, int, std::less<>> daemon_admin_ports;
    std::map<std::string, int, std::less<>> desired;  // service → replicas
    std::vector<std::unique_ptr<Instance>> instances;
    std::size_t daemons_active = 0;  // daemons [0, daemons_active) may be started
    bool services_active = false;
    bool started = false;
    bool shutting_down = false;
    std::vector<std::pair<InstanceStatus, std::string>> events;  // queued under the lock, delivered after

    // ---- building instances ----

    bool serves_tls(const DaemonSpec& d) const { return !options.tls_cert.empty() && !d.tls_args.empty(); }

    std::optional<ProcessSpec> build_spec(InstanceKind kind, std::size_t index, int replica,
                                          const std::string& name, std::string& why) const {
        PlaceholderValues values;
        values.plexus = options.plexus_binary;
        values.bin_dir = options.bin_dir;
        values.data_dir = data_dir;
        values.manifest_dir = manifest_dir;
        values.instance = name;
        values.replica = replica;
        values.daemon_ports = daemon_ports;
        values.daemon_admin_ports = daemon_admin_ports;
        values.tls_cert = options.tls_cert;
        values.tls_key = options.tls_key;
        for (const auto& d : manifest.daemons) {
            if (serves_tls(d)) values.tls_daemons.insert(d.name);
        }
        const bool daemon = kind == InstanceKind::daemon;
        if (daemon) {
            values.tls = serves_tls(manifest.daemons[index]);
            values.port = daemon_ports.at(manifest.daemons[index].name);
            if (auto it = daemon_admin_ports.find(manifest.daemons[index].name);
                it != daemon_admin_ports.end())
                values.admin_port = it->second;
        }
        const auto& command = daemon ? manifest.daemons[index].command : manifest.services[index].command;
        const auto& extra_env = daemon ? manifest.daemons[index].env : manifest.services[index].env;

        ProcessSpec spec;
        spec.log_file = logs_dir + "/" + name + ".log";
        for (const auto& arg : command) {
            auto expanded = expand_placeholders(arg, values, &why);
            if (!expanded) return std::nullopt;
            spec.argv.push_back(std::move(*expanded));
        }
        if (values.tls) {
            for (const auto& arg : manifest.daemons[index].tls_args) {
                auto expanded = expand_placeholders(arg, values, &why);
                if (!expanded) {
                    why = "tls_args: " + why;
                    return std::nullopt;
                }
                spec.argv.push_back(std::move(*expanded));
            }
        }
        auto env = base_env;
        if (!daemon) {
            const auto& service = manifest.services[index].name;
            env["PLEXUS_SERVICE"] = service;
            env["PLEXUS_INSTANCE_ID"] = name;
            env["PLEXUS_DATA_DIR"] = data_dir + "/" + service;
            env["PLEXUS_LISTEN"] = "127.0.0.1:0";
            if (auto it = daemon_ports.find("registry"); it != daemon_ports.end()) {
                env["PLEXUS_REGISTRY"] = "http://127.0.0.1:" + std::to_string(it->second);
            }
        }
        for (const auto& [key, value] : extra_env) {
            auto expanded = expand_placeholders(value, values, &why);
            if (!expanded) {
                why = key + ": " + why;
                return std::nullopt;
            }
            env[key] = std::move(*expanded);
        }
        for (const auto& [key, value] : env) spec.env.push_back(key + "=" + value);
        return spec;
    }

    Instance& add_instance_locked(InstanceKind kind, std::size_t index, int replica, core::SteadyTime now) {
        auto inst = std::make_unique<Instance>();
        const bool daemon = kind == InstanceKind::daemon;
        const auto& group = daemon ? manifest.daemons[index].name : manifest.services[index].name;
        inst->st.kind = kind;
        inst->st.service = group;
        inst->st.replica = replica;
        inst->st.name = daemon ? group : group + "-" + std::to_string(replica);
        inst->st.port = daemon ? daemon_ports.at(group) : 0;
        if (auto it = daemon_admin_ports.find(group); daemon && it != daemon_admin_ports.end())
            inst->st.admin_port = it->second;
        inst->st.health_path = daemon ? manifest.daemons[index].health : "";
        inst->st.tls = daemon && serves_tls(manifest.daemons[index]);
        inst->st.state = InstanceState::backoff;
        inst->st.next_start = now;
        inst->st.log_file = logs_dir + "/" + inst->st.name + ".log";
        inst->spec_index = index;
        inst->backoff = RestartBackoff(manifest.restart);
        std::string why;
        if (auto spec = build_spec(kind, index, replica, inst->st.name, why)) {
            inst->spec = std::move(*spec);
        } else {
            inst->st.last_error = why;  // start() checked every command, so only a bug gets here
        }
        instances.push_back(std::move(inst));
        return *instances.back();
    }

    Instance* find_locked(std::string_view name) {
        for (auto& inst : instances) {
            if (inst->st.name == name && !inst->retire) return inst.get();
        }
        return nullptr;
    }

    bool active_locked(const Instance& inst) const {
        return inst.st.kind == InstanceKind::daemon ? inst.spec_index < daemons_active : services_active;
    }

    void event_locked(const Instance& inst, std::string message) {
        if (options.on_event) events.emplace_back(inst.st, std::move(message));
    }

    void flush_events() {
        std::vector<std::pair<InstanceStatus, std::string>> batch;
        {
            std::lock_guard lock(mutex);
            batch.swap(events);
        }
        for (const auto& [status, message] : batch) options.on_event(status, message);
    }

    // ---- the steps of a tick ----

    void spawn_locked(Instance& inst, core::SteadyTime now) {
        if (inst.ever_started) ++inst.st.restarts;
        inst.ever_started = true;
        inst.backoff.started(now);
        inst.st.started_at = now;
        inst.st.started_wall = clock.wall();
        inst.killed = false;
        inst.probed = false;
        inst.liveness_probed = false;
        inst.st.liveness_failures = 0;
        inst.kill_reason.clear();
        Result<int> pid = inst.spec.argv.empty()
                              ? Result<int>(core::make_error_code(core::errc::invalid_argument))
                              : spawn_process(inst.spec);
        if (!pid) {
            if (!inst.spec.argv.empty()) {
                inst.st.last_error =
                    "cannot start '" + inst.spec.argv.front() + "': " + pid.error().message();
            }
            auto delay = inst.backoff.exited(now);
            inst.st.state = InstanceState::backoff;
            inst.st.next_start = now + delay;
            event_locked(inst, inst.st.last_error + "; retrying in " + core::format_duration(delay));
            return;
        }
        inst.st.pid = *pid;
        inst.st.last_error.clear();
        inst.st.state = options.health_probe ? InstanceState::starting : InstanceState::running;
        inst.st.healthy = !options.health_probe;
        event_locked(inst, "started, pid " + std::to_string(*pid));
    }

    void exited_locked(Instance& inst, const ExitStatus& status, core::SteadyTime now) {
        inst.st.pid = 0;
        inst.st.healthy = false;
        inst.st.last_exit = status.describe();
        if (!inst.kill_reason.empty()) {
            inst.st.last_exit += " (" + inst.kill_reason + ")";
            inst.kill_reason.clear();
        }
        if (inst.st.state == InstanceState::stopping || inst.retire || shutting_down) {
            inst.st.state = InstanceState::stopped;
            event_locked(inst, "stopped (" + inst.st.last_exit + ")");
            return;
        }
        auto delay = inst.backoff.exited(now);
        inst.st.state = InstanceState::backoff;
        inst.st.next_start = now + delay;
        event_locked(inst, inst.st.last_exit + "; restarting in " + core::format_duration(delay));
    }

    void terminate_locked(Instance& inst, core::SteadyTime now) {
        signal_group(inst.st.pid, SIGTERM);
        // A stopped process (SIGSTOP) would only see the SIGTERM once continued.
        signal_group(inst.st.pid, SIGCONT);
        inst.st.state = InstanceState::stopping;
        inst.stop_deadline = now + manifest.stop_timeout;
        event_locked(inst, "stopping (SIGTERM)");
    }

    void reap_locked(core::SteadyTime now) {
        for (auto& inst : instances) {
            if (inst->st.pid <= 0) continue;
            if (auto status = try_reap(inst->st.pid)) exited_locked(*inst, *status, now);
        }
    }

    void escalate_locked(core::SteadyTime now) {
        for (auto& inst : instances) {
            if (inst->st.state != InstanceState::stopping || inst->st.pid <= 0 || inst->killed) continue;
            if (now < inst->stop_deadline) continue;
            signal_group(inst->st.pid, SIGKILL);
            inst->killed = true;
            event_locked(*inst,
                         "did not stop within " + core::format_duration(manifest.stop_timeout) + "; SIGKILL");
        }
    }

    void reconcile_locked(core::SteadyTime now) {
        if (!services_active) return;
        for (auto& inst : instances) {
            if (inst->st.kind != InstanceKind::service || inst->retire) continue;
            if (inst->st.replica < desired.at(inst->st.service)) continue;
            inst->retire = true;
            if (inst->st.pid > 0) {
                terminate_locked(*inst, now);
            } else {
                inst->st.state = InstanceState::stopped;
            }
        }
        std::erase_if(instances, [](const auto& inst) { return inst->retire && inst->st.pid <= 0; });
        for (std::size_t i = 0; i < manifest.services.size(); ++i) {
            const auto& name = manifest.services[i].name;
            const int want = desired.at(name);
            for (int replica = 0; replica < want; ++replica) {
                bool present = std::any_of(instances.begin(), instances.end(), [&](const auto& inst) {
                    // A scaled-away replica with this index that is still stopping holds its name and
                    // log file; the new one waits until it is gone.
                    return inst->st.kind == InstanceKind::service && inst->st.service == name &&
                           inst->st.replica == replica;
                });
                if (!present) add_instance_locked(InstanceKind::service, i, replica, now);
            }
        }
    }

    void start_due_locked(core::SteadyTime now) {
        for (auto& inst : instances) {
            if (inst->st.state != InstanceState::backoff || inst->retire || !active_locked(*inst)) continue;
            if (now >= inst->st.next_start) spawn_locked(*inst, now);
        }
    }

    struct ProbeJob {
        InstanceStatus status;
        bool ok = false;
        std::string error;
    };

    std::vector<ProbeJob> due_probes_locked(core::SteadyTime now) {
        std::vector<ProbeJob> jobs;
        if (!options.health_probe) return jobs;
        for (auto& inst : instances) {
            const auto state = inst->st.state;
            if (inst->st.pid <= 0 || inst->killed ||
                (state != InstanceState::starting && state != InstanceState::running))
                continue;
            if (inst->probed && now - inst->last_probe < options.probe_interval) continue;
            inst->probed = true;
            inst->last_probe = now;
            jobs.push_back(ProbeJob{inst->st, false, {}});
        }
        return jobs;
    }

    void apply_probes_locked(const std::vector<ProbeJob>& jobs) {
        for (const auto& job : jobs) {
            Instance* inst = find_locked(job.status.name);
            if (inst == nullptr || inst->st.pid != job.status.pid) continue;  // exited meanwhile
            const bool was = inst->st.healthy;
            inst->st.healthy = job.ok;
            if (!job.error.empty()) inst->st.last_error = job.error;
            if (job.ok && inst->st.state == InstanceState::starting) {
                inst->st.state = InstanceState::running;
                event_locked(*inst, "healthy");
            } else if (inst->st.state == InstanceState::running && was != job.ok) {
                event_locked(*inst, job.ok ? "healthy again" : "unhealthy");
            }
        }
    }

    // Running instances whose process is past its grace period and due for a liveness probe; one
    // already SIGKILLed is left to the reaper.
    std::vector<ProbeJob> due_liveness_locked(core::SteadyTime now) {
        std::vector<ProbeJob> jobs;
        if (!options.liveness_probe) return jobs;
        for (auto& inst : instances) {
            if (inst->st.pid <= 0 || inst->killed || inst->st.state != InstanceState::running) continue;
            if (now - inst->st.started_at < options.liveness_grace) continue;
            if (inst->liveness_probed && now - inst->last_liveness_probe < options.liveness_interval)
                continue;
            inst->liveness_probed = true;
            inst->last_liveness_probe = now;
            jobs.push_back(ProbeJob{inst->st, false, {}});
        }
        return jobs;
    }

    void apply_liveness_locked(const std::vector<ProbeJob>& jobs) {
        for (const auto& job : jobs) {
            Instance* inst = find_locked(job.status.name);
            if (inst == nullptr || inst->st.pid != job.status.pid || inst->killed ||
                inst->st.state != InstanceState::running)
                continue;  // exited, scaled away or being stopped meanwhile
            if (job.ok) {
                if (inst->st.liveness_failures > 0) {
                    event_locked(*inst, "alive again after " +
                                            plural(inst->st.liveness_failures, "failed liveness probe"));
                }
                inst->st.liveness_failures = 0;
                continue;
            }
            const int failures = ++inst->st.liveness_failures;
            if (!job.error.empty()) inst->st.last_error = job.error;
            if (failures < options.liveness_failures) {
                event_locked(*inst, "liveness probe failed (" + std::to_string(failures) + " of " +
                                        std::to_string(options.liveness_failures) + ")" +
                                        (job.error.empty() ? "" : ": " + job.error));
                continue;
            }
            // The exit this causes goes through the ordinary path: reaped, then restarted with backoff.
            inst->kill_reason = "not alive: " + plural(failures, "liveness probe") + " failed";
            inst->st.last_error = inst->kill_reason + "; killed";
            inst->st.healthy = false;
            signal_group(inst->st.pid, SIGKILL);
            inst->killed = true;
            event_locked(*inst, inst->st.last_error);
        }
    }

    // A process that has not passed its first health probe within startup_timeout is stuck (it
    // cannot reach the registry, waits on a lock...): it is killed and restarted with backoff,
    // like one that stops answering. Not during start(), which fails the whole startup instead.
    void expire_startups_locked(core::SteadyTime now) {
        if (!options.health_probe || !services_active) return;
        for (auto& inst : instances) {
            if (inst->st.pid <= 0 || inst->killed || inst->st.state != InstanceState::starting) continue;
            if (now - inst->st.started_at < options.startup_timeout) continue;
            inst->kill_reason = "not healthy within " + core::format_duration(options.startup_timeout) +
                                " of its start";
            inst->st.last_error = inst->kill_reason + "; killed";
            signal_group(inst->st.pid, SIGKILL);
            inst->killed = true;
            event_locked(*inst, inst->st.last_error);
        }
    }

    // Runs `probe` for every job, on this thread and without the lock.
    static void run_probes(const std::function<bool(const InstanceStatus&)>& probe,
                           std::vector<ProbeJob>& jobs, std::string_view what) {
        for (auto& job : jobs) {
            try {
                job.ok = probe(job.status);
            } catch (const std::exception& e) {
                job.error = std::string(what) + " threw: " + e.what();
            } catch (...) {
                job.error = std::string(what) + " threw";
            }
        }
    }

    void tick() {
        std::vector<ProbeJob> health;
        std::vector<ProbeJob> liveness;
        {
            std::lock_guard lock(mutex);
            if (shutting_down) return;
            const auto now = clock.now();
            reap_locked(now);
            escalate_locked(now);
            reconcile_locked(now);
            start_due_locked(now);
            expire_startups_locked(now);
            health = due_probes_locked(now);
            liveness = due_liveness_locked(now);
        }
        if (!health.empty() || !liveness.empty()) {
            run_probes(options.health_probe, health, "health probe");
            run_probes(options.liveness_probe, liveness, "liveness probe");
            std::lock_guard lock(mutex);
            apply_probes_locked(health);
            apply_liveness_locked(liveness);
        }
        flush_events();
    }

    // Waits up to `d` of real time, or less when woken by scale() or a stop request.
    void pause(std::stop_token stop, milliseconds d) {
        std::unique_lock lock(mutex);
        wake_cv.wait_for(lock, stop, d, [this] { return wake; });
        wake = false;
    }

    // ---- startup ----

    void prepare_startup() {
        std::error_code ec;
        std::vector<std::string> dirs = {data_dir, logs_dir};
        for (const auto& s : manifest.services) dirs.push_back(data_dir + "/" + s.name);
        for (const auto& dir : dirs) {
            fs::create_directories(dir, ec);
            if (ec) throw StartupError("cannot create directory '" + dir + "': " + ec.message());
        }

        std::map<std::string, int, std::less<>> ports, admin_ports;
        std::set<int> taken;
        for (const auto& d : manifest.daemons) {
            if (d.port != 0) taken.insert(d.port);
            if (d.admin_port > 0) taken.insert(d.admin_port);
        }
        auto assign = [&](const DaemonSpec& d, int fixed) {
            int port = fixed;
            for (int attempt = 0; port == 0 && attempt < 20; ++attempt) {
                auto picked = pick_free_port();
                if (!picked) {
                    throw StartupError("daemon '" + d.name +
                                       "': cannot pick a free port: " + picked.error().message());
                }
                if (!taken.contains(*picked)) port = *picked;
            }
            if (port == 0) throw StartupError("daemon '" + d.name + "': cannot pick a free port");
            taken.insert(port);
            return port;
        };
        for (const auto& d : manifest.daemons) {
            ports[d.name] = assign(d, d.port);
            if (d.admin_port >= 0) admin_ports[d.name] = assign(d, d.admin_port);
        }
        {
            std::lock_guard lock(mutex);
            daemon_ports = std::move(ports);
            daemon_admin_ports = std::move(admin_ports);
        }

        // Expand every command once now, so that a missing {plexus} or {bin_dir} fails here with a
        // clear message instead of as a restart loop.
        std::string why;
        for (std::size_t i = 0; i < manifest.daemons.size(); ++i) {
            if (!build_spec(InstanceKind::daemon, i, 0, manifest.daemons[i].name, why)) {
                throw StartupError("daemon '" + manifest.daemons[i].name + "': " + why);
            }
        }
        for (std::size_t i = 0; i < manifest.services.size(); ++i) {
            if (!build_spec(InstanceKind::service, i, 0, manifest.services[i].name + "-0", why)) {
                throw StartupError("service '" + manifest.services[i].name + "': " + why);
            }
        }
    }

    std::string startup_failure(const InstanceStatus& st) const {
        std::string msg = "daemon '" + st.name + "' did not become healthy within " +
                          core::format_duration(options.startup_timeout) + " (state " +
                          std::string(to_string(st.state)) + ", " + std::to_string(st.restarts) + " restarts";
        if (!st.last_exit.empty()) msg += ", last " + st.last_exit;
        if (!st.last_error.empty()) msg += ", " + st.last_error;
        if (!st.health_path.empty())
            msg += ", probing " + st.health_path + " on port " + std::to_string(st.port) +
                   (st.tls ? " over TLS" : "");
        return msg + "); see its log " + st.log_file;
    }

    // ---- shutdown ----

    // SIGTERM to every instance `pick` selects, wait up to `timeout` of real time, SIGKILL and reap
    // what is left.
    template <class Pick>
    void stop_group(Pick pick, milliseconds timeout) {
        std::vector<Instance*> targets;
        {
            std::lock_guard lock(mutex);
            const auto now = clock.now();
            for (auto& inst : instances) {
                if (inst->st.pid <= 0 || !pick(*inst)) continue;
                targets.push_back(inst.get());
                if (inst->st.state != InstanceState::stopping) terminate_locked(*inst, now);
            }
        }
        flush_events();
        if (targets.empty()) return;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            bool alive = false;
            {
                std::lock_guard lock(mutex);
                const auto now = clock.now();
                for (auto* inst : targets) {
                    if (inst->st.pid <= 0) continue;
                    if (auto status = try_reap(inst->st.pid)) {
                        exited_locked(*inst, *status, now);
                    } else {
                        alive = true;
                    }
                }
            }
            if (!alive || std::chrono::steady_clock::now() >= deadline) break;
            std::this_thread::sleep_for(kStopPollInterval);
        }
        {
            std::lock_guard lock(mutex);
            const auto now = clock.now();
            for (auto* inst : targets) {
                if (inst->st.pid <= 0) continue;
                signal_group(inst->st.pid, SIGKILL);
                event_locked(*inst, "did not stop within " + core::format_duration(timeout) + "; SIGKILL");
                exited_locked(*inst, reap(inst->st.pid), now);
            }
        }
        flush_events();
    }
};

Supervisor::Supervisor(Manifest manifest, SupervisorOptions options, core::Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(manifest), std::move(options), clock)) {
    auto& m = impl_->manifest;
    if (auto why = validate_manifest(m)) throw StartupError("invalid manifest: " + *why);
    const auto& o = impl_->options;
    if (o.liveness_interval <= milliseconds::zero()) throw StartupError("liveness_interval must be positive");
    if (o.liveness_failures < 1) throw StartupError("liveness_failures must be at least 1");
    if (o.liveness_grace < milliseconds::zero()) throw StartupError("liveness_grace must not be negative");
    if (o.tls_cert.empty() != o.tls_key.empty()) throw StartupError("tls_cert and tls_key go together");
    impl_->manifest_dir = absolute_dir(m.manifest_dir);
    if (!impl_->options.data_dir.empty()) {
        impl_->data_dir = absolute_dir(impl_->options.data_dir);
    } else {
        fs::path dir(m.data_dir);
        impl_->data_dir = absolute_dir(dir.is_absolute() ? dir : fs::path(impl_->manifest_dir) / dir);
    }
    impl_->logs_dir =
        impl_->options.logs_dir.empty() ? impl_->data_dir + "/logs" : absolute_dir(impl_->options.logs_dir);
    impl_->base_env = environment_snapshot();
    for (const auto& s : m.services) impl_->desired[s.name] = s.replicas;
}

Supervisor::~Supervisor() {
    bool running = false;
    {
        std::lock_guard lock(impl_->mutex);
        running = std::any_of(impl_->instances.begin(), impl_->instances.end(),
                              [](const auto& inst) { return inst->st.pid > 0; });
    }
    if (!running) return;
    try {
        stop_all();
    } catch (...) {
        // Only the caller's event callback can throw here; the children are reaped regardless.
    }
}

bool Supervisor::start(std::stop_token stop) {
    auto& impl = *impl_;
    {
        std::lock_guard lock(impl.mutex);
        if (impl.started) throw std::logic_error("Supervisor::start called twice");
        if (impl.shutting_down) throw std::logic_error("Supervisor::start after stop_all");
        impl.started = true;
    }
    impl.prepare_startup();

    for (std::size_t i = 0; i < impl.manifest.daemons.size(); ++i) {
        const auto& name = impl.manifest.daemons[i].name;
        {
            std::lock_guard lock(impl.mutex);
            impl.daemons_active = i + 1;
            impl.add_instance_locked(InstanceKind::daemon, i, 0, impl.clock.now());
        }
        const auto deadline = impl.clock.now() + impl.options.startup_timeout;
        for (;;) {
            impl.tick();
            {
                std::lock_guard lock(impl.mutex);
                const Instance* inst = impl.find_locked(name);
                if (inst->st.state == InstanceState::running) break;
                if (impl.clock.now() >= deadline) throw StartupError(impl.startup_failure(inst->st));
            }
            if (stop.stop_requested()) return false;
            impl.pause(stop, impl.options.tick_interval);
        }
    }
    {
        std::lock_guard lock(impl.mutex);
        impl.services_active = true;
    }
    impl.tick();
    return !stop.stop_requested();
}

void Supervisor::tick() { impl_->tick(); }

void Supervisor::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        impl_->tick();
        impl_->pause(stop, impl_->options.tick_interval);
    }
}

bool Supervisor::run_until(const std::function<bool()>& done, milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        impl_->tick();
        if (done()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        auto left = std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1);
        impl_->pause({}, std::min(impl_->options.tick_interval, left));
    }
}

void Supervisor::stop_all(milliseconds timeout) {
    auto& impl = *impl_;
    {
        std::lock_guard lock(impl.mutex);
        impl.shutting_down = true;
        for (auto& inst : impl.instances) {
            if (inst->st.pid <= 0 && inst->st.state != InstanceState::stopped) {
                inst->st.state = InstanceState::stopped;
                impl.event_locked(*inst, "stopped");
            }
        }
    }
    impl.stop_group([](const Instance& inst) { return inst.st.kind == InstanceKind::service; }, timeout);
    for (std::size_t i = impl.manifest.daemons.size(); i-- > 0;) {
        impl.stop_group(
            [i](const Instance& inst) {
                return inst.st.kind == InstanceKind::daemon && inst.spec_index == i;
            },
            timeout);
    }
    {
        std::lock_guard lock(impl.mutex);
        std::erase_if(impl.instances, [](const auto& inst) { return inst->retire && inst->st.pid <= 0; });
    }
    impl.flush_events();
}

void Supervisor::stop_all() { stop_all(impl_->manifest.stop_timeout); }

Result<void> Supervisor::scale(std::string_view service, int replicas) {
    std::lock_guard lock(impl_->mutex);
    if (impl_->shutting_down) return errc::shutting_down;
    auto it = impl_->desired.find(service);
    if (it == impl_->desired.end()) return errc::unknown_service;
    if (replicas < 0 || replicas > kMaxReplicas) return errc::invalid_replicas;
    it->second = replicas;
    impl_->wake = true;
    impl_->wake_cv.notify_all();
    return {};
}

std::vector<InstanceStatus> Supervisor::status() const {
    // The position in `instances` ends the key, so the order is total and stable.
    std::vector<std::pair<std::tuple<int, std::size_t, int, bool, std::size_t>, InstanceStatus>> keyed;
    {
        std::lock_guard lock(impl_->mutex);
        std::size_t position = 0;
        for (const auto& inst : impl_->instances) {
            keyed.emplace_back(std::tuple(inst->st.kind == InstanceKind::daemon ? 0 : 1, inst->spec_index,
                                          inst->st.replica, inst->retire, position++),
                               inst->st);
        }
    }
    std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<InstanceStatus> out;
    out.reserve(keyed.size());
    for (auto& [key, st] : keyed) out.push_back(std::move(st));
    return out;
}

std::optional<int> Supervisor::daemon_admin_port(std::string_view name) const {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->daemon_admin_ports.find(name);
    if (it == impl_->daemon_admin_ports.end()) return std::nullopt;
    return it->second;
}

std::optional<int> Supervisor::daemon_port(std::string_view name) const {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->daemon_ports.find(name);
    if (it == impl_->daemon_ports.end()) return std::nullopt;
    return it->second;
}

const Manifest& Supervisor::manifest() const noexcept { return impl_->manifest; }
const std::string& Supervisor::data_dir() const noexcept { return impl_->data_dir; }
const std::string& Supervisor::logs_dir() const noexcept { return impl_->logs_dir; }

}  // namespace plexus::supervisor
