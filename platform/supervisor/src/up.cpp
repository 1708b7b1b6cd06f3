#include "plexus/supervisor/up.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>
#include <tuple>

#include "plexus/core/files.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/discovery/registry_client.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/dev_ca.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/tls.hpp"
#include "plexus/supervisor/manifest.hpp"
#include "plexus/supervisor/supervisor.hpp"

namespace plexus::supervisor {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kStateFile = "supervisor.json";
// A live process answers /health/live at once; one that does not within this is hung or stopped.
constexpr auto kLivenessTimeout = 500ms;

std::optional<json::object> read_state(const std::string& data_dir) {
    return core::read_json_object(data_dir + "/" + kStateFile);
}

bool alive(int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

std::string format_uptime(std::chrono::seconds s) {
    auto n = s.count();
    std::ostringstream o;
    if (n >= 3600)
        o << n / 3600 << "h" << (n % 3600) / 60 << "m";
    else if (n >= 60)
        o << n / 60 << "m" << n % 60 << "s";
    else
        o << n << "s";
    return o.str();
}

std::string resolve_data_dir(const Manifest& m, const std::string& override_dir) {
    fs::path dir = override_dir.empty() ? fs::path(m.data_dir) : fs::path(override_dir);
    if (override_dir.empty() && dir.is_relative()) dir = fs::path(m.manifest_dir) / dir;
    return fs::weakly_canonical(fs::absolute(dir)).string();
}

// The gateway URLs and the manifest's example commands ({gateway}, {gateway_admin} and
// {data_dir} in them replaced), printed once everything is healthy. With a CA (`ca_file`, the gateway on
// HTTPS), the curl examples that call the gateway trust it with --cacert.
void print_ready(const std::string& headline, const std::string& gateway, const std::string& gateway_admin,
                 const std::string& ca_file, const std::vector<std::string>& examples,
                 const std::string& data_dir, const char* stop_hint) {
    std::printf("\n%s\n", headline.c_str());
    if (!gateway.empty()) std::printf("Gateway: %s\n", gateway.c_str());
    if (!gateway.empty() && !ca_file.empty()) {
        std::printf("TLS: certificates of the development CA %s; trust it, e.g.\n", ca_file.c_str());
        std::printf("  curl --cacert %s %s/health/ready\n", ca_file.c_str(), gateway.c_str());
    }
    if (!gateway_admin.empty()) std::printf("Gateway admin (loopback only): %s\n", gateway_admin.c_str());
    // Written by the identity server on a fresh data dir; read it, then keep or delete it.
    if (auto creds = data_dir + "/identity/admin-credentials.json"; fs::exists(creds))
        std::printf(
            "First admin's credentials (the admin user's password, the admin client's secret; file mode "
            "0600): "
            "%s\nSign in as admin: plexus login --data-dir %s\n",
            creds.c_str(), data_dir.c_str());
    if (!examples.empty()) std::printf("Try:\n");
    for (auto line : examples) {
        if (!ca_file.empty() && line.starts_with("curl ") && line.find("{gateway}") != std::string::npos)
            line.insert(5, "--cacert " + ca_file + " ");
        for (auto [name, value] :
             {std::pair<std::string_view, const std::string*>{"{gateway_admin}", &gateway_admin},
              {"{gateway}", &gateway},
              {"{data_dir}", &data_dir}}) {
            for (auto pos = line.find(name); pos != std::string::npos; pos = line.find(name))
                line.replace(pos, name.size(), *value);
        }
        std::printf("  %s\n", line.c_str());
    }
    std::printf("Status: plexus status --data-dir %s    Stop: %splexus down --data-dir %s\n",
                data_dir.c_str(), stop_hint, data_dir.c_str());
    std::fflush(stdout);
}

// The running deployment: supervisor, control API, probes.
class Deployment {
  public:
    // `tls`: the development CA's files when the run serves TLS, else null.
    Deployment(Manifest manifest, const UpOptions& o, std::string data_dir, const net::DevCa* tls, bool quiet)
        : quiet_(quiet), data_dir_(std::move(data_dir)), runtime_(1) {
        SupervisorOptions so;
        if (tls) {
            so.tls_cert = tls->cert;
            so.tls_key = tls->key;
            ca_file_ = tls->ca_cert;
            auto* gateway = manifest.daemon("gateway");
            gateway_tls_ = gateway && !gateway->tls_args.empty();
        }
        so.plexus_binary = o.plexus_binary;
        so.bin_dir = o.bin_dir;
        so.data_dir = data_dir_;
        so.health_probe = [this](const InstanceStatus& s) { return probe(s); };
        so.liveness_probe = [this](const InstanceStatus& s) { return live(s); };
        so.liveness_interval = manifest.liveness.interval;
        so.liveness_failures = manifest.liveness.failures;
        so.liveness_grace = manifest.liveness.grace;
        so.on_event = [this](const InstanceStatus& s, std::string_view msg) { on_event(s, msg); };
        supervisor_ = std::make_unique<Supervisor>(std::move(manifest), std::move(so));
    }

    int run(const UpOptions& o) {
        fs::create_directories(data_dir_);
        if (!start_control()) return 1;
        std::thread io([this] { runtime_.run(); });
        std::stop_source stop;
        stop_ = &stop;
        runtime_.on_signals({SIGINT, SIGTERM}, [&stop](int) { stop.request_stop(); });

        int code = 0;
        try {
            if (!quiet_) {
                std::printf("plexus: starting %s (data in %s)\n", supervisor_->manifest().name.c_str(),
                            data_dir_.c_str());
                std::fflush(stdout);
            }
            if (!supervisor_->start(stop.get_token())) {
                code = stop.stop_requested() ? 0 : 1;
            } else {
                write_state();
                bool announced = false;
                auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
                while (!stop.stop_requested()) {
                    supervisor_->tick();
                    if (!announced && all_healthy()) {
                        announce();
                        announced = true;
                    } else if (!announced && std::chrono::steady_clock::now() > deadline) {
                        std::fprintf(stderr,
                                     "plexus: not every instance became healthy within %llds; see %s\n",
                                     static_cast<long long>(o.ready_timeout.count() / 1000),
                                     supervisor_->logs_dir().c_str());
                        announced = true;  // keep running; `plexus status` shows what is wrong
                    }
                    std::this_thread::sleep_for(100ms);
                }
            }
        } catch (const StartupError& e) {
            std::fprintf(stderr, "plexus: %s\n", e.what());
            code = 1;
        }
        if (!quiet_) std::printf("plexus: stopping\n");
        supervisor_->stop_all();
        std::error_code ec;
        fs::remove(data_dir_ + "/" + kStateFile, ec);
        server_->shutdown([this] { runtime_.stop(); });
        io.join();
        if (!quiet_) std::printf("plexus: stopped\n");
        return code;
    }

  private:
    bool start_control() {
        router_.add("GET", "/v1/status", [this](net::Request&, net::Response& res) -> net::Task<void> {
            res.json(200, json::serialize(status_json()));
            co_return;
        });
        router_.add("POST", "/v1/shutdown", [this](net::Request&, net::Response& res) -> net::Task<void> {
            if (stop_) stop_->request_stop();
            res.json(202, R"({"status":"stopping"})");
            co_return;
        });
        router_.add("PUT", "/v1/services/{name}/replicas",
                    [this](net::Request& req, net::Response& res) -> net::Task<void> {
                        boost::system::error_code ec;
                        auto v = json::parse(req.body, ec);
                        const json::value* n =
                            (!ec && v.is_object()) ? v.as_object().if_contains("replicas") : nullptr;
                        if (!n || !n->is_int64())
                            throw net::HttpError(400, "Bad Request", "body must be {\"replicas\": N}");
                        // Clamped, not cast: a count past int's range stays out of range
                        // instead of wrapping into a valid one.
                        auto replicas =
                            static_cast<int>(std::clamp<std::int64_t>(n->as_int64(), -1, kMaxReplicas + 1));
                        auto r = supervisor_->scale(req.param("name"), replicas);
                        if (!r) {
                            if (r.error() == errc::unknown_service) {
                                throw net::HttpError(404, reason(404),
                                                     "no service named '" + std::string(req.param("name")) +
                                                         "' in the manifest");
                            }
                            throw net::HttpError(400, reason(400), r.error().message());
                        }
                        res.json(202, json::serialize(json::object{{"service", req.param("name")},
                                                                   {"replicas", n->as_int64()}}));
                        co_return;
                    });
        server_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                                router_.body_limit_fn());
        try {
            server_->start();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "plexus: cannot open the control port: %s\n", e.what());
            return false;
        }
        return true;
    }

    static std::string reason(int status) { return std::string(net::reason_phrase(status)); }

    void write_state() {
        json::object o{{"pid", ::getpid()},
                       {"control_port", server_->port()},
                       {"data_dir", data_dir_},
                       {"manifest", supervisor_->manifest().name}};
        if (auto p = supervisor_->daemon_port("gateway")) o["gateway_port"] = *p;
        if (auto p = supervisor_->daemon_admin_port("gateway")) o["gateway_admin_port"] = *p;
        if (auto p = supervisor_->daemon_port("registry")) o["registry_port"] = *p;
        if (auto p = supervisor_->daemon_port("config")) o["config_port"] = *p;
        auto tmp = data_dir_ + "/" + kStateFile + ".tmp";
        {
            std::ofstream out(tmp);
            out << json::serialize(o) << "\n";
        }
        fs::rename(tmp, data_dir_ + "/" + kStateFile);
    }

    std::optional<net::Endpoint> registry() const {
        auto p = supervisor_->daemon_port("registry");
        if (!p) return std::nullopt;
        return net::Endpoint{"127.0.0.1", static_cast<std::uint16_t>(*p)};
    }

    // GET `path` on a daemon's or service's port: over TLS (trusting the development CA) for a
    // daemon that serves it.
    std::optional<Result<net::Response>> get(const InstanceStatus& s, int port, const std::string& path,
                                             std::chrono::milliseconds timeout) {
        net::Endpoint ep{"127.0.0.1", static_cast<std::uint16_t>(port)};
        auto task = s.tls ? net::fetch_https(ep, ca_file_, "GET", path, timeout)
                          : net::fetch(ep, "GET", path, {}, {}, timeout);
        return net::run_blocking(runtime_.executor(0), std::move(task), timeout + 700ms);
    }

    // Daemons: their HTTP health path answers 2xx. Services: registered and passing.
    bool probe(const InstanceStatus& s) {
        if (s.kind == InstanceKind::daemon) {
            if (s.health_path.empty() || s.port <= 0) return true;
            auto r = get(s, s.port, s.health_path, 800ms);
            return r && *r && (*r)->status >= 200 && (*r)->status < 300;
        }
        auto reg = registry();
        if (!reg) return true;
        auto snap =
            net::run_blocking(runtime_.executor(0),
                              discovery::RegistryClient(*reg, 800ms).watch(s.service, 0, 0ms, true), 1500ms);
        if (!snap || !*snap) return false;
        for (const auto& in : (*snap)->instances) {
            if (in.id == s.name) {
                std::lock_guard lock(ports_mutex_);
                service_ports_[s.name] = in.port;
                return in.status != "critical" && !in.draining;
            }
        }
        return false;
    }

    // GET /health/live on the instance's port: the daemon's own, or for a service the port the
    // health probe learned from the registry. Any answer below 500 means the process still serves
    // requests (a daemon without /health/live answers 404). Nothing to ask — a daemon with no
    // health path, a service whose port is not known yet — counts as alive.
    bool live(const InstanceStatus& s) {
        int port = s.port;
        if (s.kind == InstanceKind::daemon) {
            if (s.health_path.empty()) return true;
        } else {
            std::lock_guard lock(ports_mutex_);
            auto it = service_ports_.find(s.name);
            port = it == service_ports_.end() ? 0 : it->second;
        }
        if (port <= 0) return true;
        auto r = get(s, port, "/health/live", kLivenessTimeout);
        return r && *r && (*r)->status < 500;
    }

    bool all_healthy() const {
        for (const auto& s : supervisor_->status()) {
            if (s.state == InstanceState::stopped) continue;
            if (!s.healthy || s.state != InstanceState::running) return false;
        }
        return true;
    }

    void on_event(const InstanceStatus& s, std::string_view msg) {
        if (quiet_) {
            // In the background the supervisor's log is the record of what happened.
            std::printf("%s: %.*s\n", s.name.c_str(), static_cast<int>(msg.size()), msg.data());
            std::fflush(stdout);
            return;
        }
        std::printf("  %-14s %.*s\n", s.name.c_str(), static_cast<int>(msg.size()), msg.data());
        std::fflush(stdout);
    }

    std::string gateway_url() const {
        auto p = supervisor_->daemon_port("gateway");
        if (!p) return {};
        return (gateway_tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(*p);
    }

    void announce() {
        std::string gateway = gateway_url();
        std::string gateway_admin;
        if (auto p = supervisor_->daemon_admin_port("gateway"))
            gateway_admin = "http://127.0.0.1:" + std::to_string(*p);
        if (quiet_) {
            std::printf("ready\n");
            std::fflush(stdout);
            return;
        }
        print_ready("Plexus is up: " + std::to_string(supervisor_->status().size()) + " instances healthy.",
                    gateway, gateway_admin, gateway_tls_ ? ca_file_ : std::string(),
                    supervisor_->manifest().examples, data_dir_, "Ctrl-C or ");
    }

    json::object status_json() {
        json::array items;
        auto now = std::chrono::steady_clock::now();
        bool healthy = true;
        for (const auto& s : supervisor_->status()) {
            int port = s.port;
            if (s.kind == InstanceKind::service) {
                std::lock_guard lock(ports_mutex_);
                if (auto it = service_ports_.find(s.name); it != service_ports_.end()) port = it->second;
            }
            bool up = s.state == InstanceState::running || s.state == InstanceState::starting;
            healthy = healthy &&
                      (s.state == InstanceState::stopped || (s.healthy && s.state == InstanceState::running));
            json::object item{
                {"name", s.name},
                {"service", s.service},
                {"kind", to_string(s.kind)},
                {"pid", up ? s.pid : 0},
                {"address", port > 0 ? "127.0.0.1:" + std::to_string(port) : ""},
                {"state", to_string(s.state)},
                {"healthy", s.healthy},
                {"restarts", s.restarts},
                {"uptime_s",
                 up ? std::chrono::duration_cast<std::chrono::seconds>(now - s.started_at).count() : 0},
                {"last_exit", s.last_exit},
                {"log", s.log_file}};
            if (s.admin_port > 0) item["admin_address"] = "127.0.0.1:" + std::to_string(s.admin_port);
            if (s.tls) item["tls"] = true;
            items.push_back(std::move(item));
        }
        json::object o{
            {"manifest", supervisor_->manifest().name}, {"healthy", healthy}, {"instances", items}};
        if (auto url = gateway_url(); !url.empty()) o["gateway"] = url;
        if (gateway_tls_) o["gateway_ca"] = ca_file_;
        if (auto p = supervisor_->daemon_admin_port("gateway"))
            o["gateway_admin"] = "http://127.0.0.1:" + std::to_string(*p);
        return o;
    }

    bool quiet_;
    std::string data_dir_;
    net::Runtime runtime_;
    net::Router router_;
    std::unique_ptr<net::Server> server_;
    std::unique_ptr<Supervisor> supervisor_;
    std::stop_source* stop_ = nullptr;
    std::string ca_file_;       // the development CA's certificate, in a run with TLS
    bool gateway_tls_ = false;  // the gateway serves HTTPS
    std::mutex ports_mutex_;
    std::map<std::string, int> service_ports_;
};

// Fetches the control API's /v1/status of a running deployment (from a plain thread).
// Calls a running supervisor's control API from a plain thread (a CLI command); one io thread
// for the client's lifetime.
class ControlClient {
  public:
    explicit ControlClient(int control_port)
        : port_(static_cast<std::uint16_t>(control_port)), io_([this] { runtime_.run(); }) {}
    ~ControlClient() {
        runtime_.stop();
        io_.join();
    }

    std::optional<net::Response> call(std::string method, std::string target, std::string body = {}) {
        return fetch({"127.0.0.1", port_}, std::move(method), std::move(target), std::move(body), 2s);
    }

    /// A request to any endpoint (an instance's admin API), from the same io thread.
    std::optional<net::Response> fetch(net::Endpoint ep, std::string method, std::string target,
                                       std::string body = {}, std::chrono::milliseconds timeout = 2s) {
        auto r = net::run_blocking(runtime_.executor(0),
                                   net::fetch(std::move(ep), std::move(method), std::move(target),
                                              std::move(body), "application/json", timeout),
                                   timeout + 1s);
        if (!r || !*r) return std::nullopt;
        return std::move(**r);
    }

    std::optional<json::object> status() {
        auto r = call("GET", "/v1/status");
        if (!r || r->status != 200) return std::nullopt;
        boost::system::error_code ec;
        auto v = json::parse(r->body, ec);
        if (ec || !v.is_object()) return std::nullopt;
        return v.as_object();
    }

  private:
    std::uint16_t port_;
    net::Runtime runtime_{1};
    std::thread io_;
};

// Waits in the parent of a detached supervisor until it reports every instance healthy.
int wait_detached(pid_t child, const std::string& data_dir, const std::vector<std::string>& examples,
                  const UpOptions& o) {
    auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
    std::string last_line;
    std::unique_ptr<ControlClient> control;
    while (std::chrono::steady_clock::now() < deadline) {
        int st = 0;
        if (::waitpid(child, &st, WNOHANG) == child) {
            std::fprintf(stderr, "plexus: the supervisor exited during startup; see %s/logs/supervisor.log\n",
                         data_dir.c_str());
            return 1;
        }
        if (auto state = read_state(data_dir)) {
            auto port = static_cast<int>(state->at("control_port").to_number<std::int64_t>());
            if (!control) control = std::make_unique<ControlClient>(port);
            if (auto s = control->status()) {
                std::size_t ready = 0, total = 0;
                for (const auto& i : s->at("instances").as_array()) {
                    ++total;
                    ready += i.at("healthy").as_bool() && i.at("state").as_string() == "running";
                }
                std::string line = std::to_string(ready) + "/" + std::to_string(total) + " instances healthy";
                if (line != last_line) {
                    std::printf("  %s\n", line.c_str());
                    std::fflush(stdout);
                    last_line = line;
                }
                if (s->at("healthy").as_bool()) {
                    std::string gateway, gateway_admin, ca_file;
                    if (auto* g = s->if_contains("gateway")) gateway = std::string(g->as_string());
                    if (auto* c = s->if_contains("gateway_ca")) ca_file = std::string(c->as_string());
                    if (auto* g = s->if_contains("gateway_admin"))
                        gateway_admin = std::string(g->as_string());
                    print_ready("Plexus is up (supervisor pid " + std::to_string(child) + ").", gateway,
                                gateway_admin, ca_file, examples, data_dir, "");
                    return 0;
                }
            }
        }
        std::this_thread::sleep_for(200ms);
    }
    std::fprintf(stderr, "plexus: not healthy within %llds; see plexus status --data-dir %s\n",
                 static_cast<long long>(o.ready_timeout.count() / 1000), data_dir.c_str());
    return 1;
}

}  // namespace

std::string default_data_dir(const std::string& manifest_path) {
    try {
        return resolve_data_dir(load_manifest(manifest_path), {});
    } catch (const std::exception&) {
        return fs::absolute(".plexus").string();
    }
}

int up(const UpOptions& o) {
    Manifest manifest;
    try {
        manifest = load_manifest(o.manifest_path);
        if (o.tls && std::none_of(manifest.daemons.begin(), manifest.daemons.end(),
                                  [](const DaemonSpec& d) { return !d.tls_args.empty(); }))
            throw core::SettingsError(o.manifest_path + ": --tls given but no daemon declares tls_args");
        for (auto [flag, value, admin] : {std::tuple{"--gateway-port", o.gateway_port, false},
                                          std::tuple{"--gateway-admin-port", o.gateway_admin_port, true}}) {
            if (value < 0) continue;
            auto gateway = std::find_if(manifest.daemons.begin(), manifest.daemons.end(),
                                        [](const DaemonSpec& d) { return d.name == "gateway"; });
            if (gateway == manifest.daemons.end())
                throw core::SettingsError(o.manifest_path + ": " + flag +
                                          " given but no daemon is named gateway");
            if (admin && gateway->admin_port < 0)
                throw core::SettingsError(o.manifest_path + ": " + flag +
                                          " given but the gateway daemon declares no admin_port");
            (admin ? gateway->admin_port : gateway->port) = value;
        }
    } catch (const core::SettingsError& e) {
        std::fprintf(stderr, "plexus: %s\n", e.what());
        return 2;
    }
    auto data_dir = resolve_data_dir(manifest, o.data_dir);
    if (auto state = read_state(data_dir)) {
        auto pid = static_cast<int>(state->at("pid").to_number<std::int64_t>());
        if (alive(pid)) {
            std::fprintf(stderr,
                         "plexus: already running from %s (supervisor pid %d); run plexus down first\n",
                         data_dir.c_str(), pid);
            return 1;
        }
    }
    fs::create_directories(data_dir + "/logs");

    std::optional<net::DevCa> tls;
    if (o.tls) {
        try {
            tls = net::ensure_dev_ca(data_dir + "/tls");
        } catch (const net::TlsError& e) {
            std::fprintf(stderr, "plexus: cannot prepare the development CA: %s\n", e.what());
            return 1;
        }
        if (tls->created_ca)
            std::printf("plexus: made a development CA, %s (clients trust it with --cacert)\n",
                        tls->ca_cert.c_str());
        else if (tls->created_cert)
            std::printf("plexus: issued a new server certificate, %s\n", tls->cert.c_str());
    }
    const net::DevCa* tls_files = tls ? &*tls : nullptr;

    if (!o.detach) return Deployment(std::move(manifest), o, data_dir, tls_files, false).run(o);
    auto examples = manifest.examples;  // the parent prints them once the child reports healthy

    std::printf("plexus: starting %s in the background (data in %s)\n", manifest.name.c_str(),
                data_dir.c_str());
    std::fflush(stdout);
    pid_t child = ::fork();
    if (child < 0) {
        std::perror("plexus: fork");
        return 1;
    }
    if (child == 0) {
        ::setsid();
        int log = ::open((data_dir + "/logs/supervisor.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0) ::dup2(null, 0);
        if (log >= 0) {
            ::dup2(log, 1);
            ::dup2(log, 2);
        }
        std::_Exit(Deployment(std::move(manifest), o, data_dir, tls_files, true).run(o));
    }
    return wait_detached(child, data_dir, examples, o);
}

// The breakers of every running instance that serves /-/resilience (the gateway and the SDK
// services), with the instances their outlier detection has ejected.
void print_breakers(ControlClient& control, const json::object& status, std::ostream& out) {
    struct Row {
        std::string instance, upstream, state, failures, refused, ejected;
    };
    std::vector<Row> rows;
    for (const auto& v : status.at("instances").as_array()) {
        const auto& i = v.as_object();
        if (i.at("state").as_string() != "running") continue;
        // Daemons serve it on their admin listener, services on their own port.
        const auto* admin = i.if_contains("admin_address");
        auto ep = net::parse_endpoint(std::string((admin ? *admin : i.at("address")).as_string()));
        if (!ep) continue;
        auto r = control.fetch(*ep, "GET", "/-/resilience", {}, 800ms);
        if (!r || r->status != 200) continue;
        boost::system::error_code ec;
        auto doc = json::parse(r->body, ec);
        if (ec || !doc.is_object()) continue;
        const auto* ups = doc.as_object().if_contains("upstreams");
        if (!ups || !ups->is_array()) continue;
        for (const auto& u : ups->as_array()) {
            const auto& o = u.as_object();
            const auto& b = o.at("breaker").as_object();
            Row row;
            row.instance = std::string(i.at("name").as_string());
            row.upstream = std::string(o.at("name").as_string());
            row.state = std::string(b.at("state").as_string());
            double rate = b.at("failure_rate").to_number<double>();
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.0f%%", rate);
            row.failures = rate < 0 ? "-" : buf;
            row.refused = std::to_string(b.at("not_permitted").to_number<std::int64_t>());
            if (const auto* list = o.if_contains("instances"); list && list->is_array()) {
                for (const auto& in : list->as_array()) {
                    if (!in.as_object().at("ejected").as_bool()) continue;
                    if (!row.ejected.empty()) row.ejected += ",";
                    row.ejected += std::string(in.as_object().at("id").as_string());
                }
            }
            if (row.ejected.empty()) row.ejected = "-";
            rows.push_back(std::move(row));
        }
    }
    if (rows.empty()) return;
    out << "\n"
        << std::left << std::setw(16) << "INSTANCE" << std::setw(14) << "UPSTREAM" << std::setw(11)
        << "BREAKER" << std::setw(10) << "FAILURES" << std::setw(9) << "REFUSED" << "EJECTED\n";
    for (const auto& r : rows) {
        out << std::setw(16) << r.instance << std::setw(14) << r.upstream << std::setw(11) << r.state
            << std::setw(10) << r.failures << std::setw(9) << r.refused << r.ejected << "\n";
    }
}

std::optional<int> deployed_port(const std::string& data_dir, std::string_view daemon) {
    auto state = read_state(data_dir);
    const auto* p = state ? state->if_contains(std::string(daemon) + "_port") : nullptr;
    if (!p || !p->is_int64()) return std::nullopt;
    return static_cast<int>(p->get_int64());
}

int status(const std::string& data_dir, std::ostream& out) {
    auto state = read_state(data_dir);
    if (!state) {
        out << "nothing is running from " << data_dir << "\n";
        return 1;
    }
    auto port = static_cast<int>(state->at("control_port").to_number<std::int64_t>());
    ControlClient control(port);
    auto s = control.status();
    if (!s) {
        out << "the supervisor of " << data_dir << " does not answer (pid "
            << state->at("pid").to_number<std::int64_t>() << ")\n";
        return 1;
    }
    out << std::left << std::setw(12) << "SERVICE" << std::setw(16) << "INSTANCE" << std::setw(9) << "PID"
        << std::setw(18) << "ADDRESS" << std::setw(11) << "HEALTH" << std::setw(10) << "RESTARTS"
        << "UPTIME\n";
    for (const auto& v : s->at("instances").as_array()) {
        const auto& i = v.as_object();
        std::string health = i.at("state").as_string() == "running"
                                 ? (i.at("healthy").as_bool() ? "healthy" : "unhealthy")
                                 : std::string(i.at("state").as_string());
        auto pid = i.at("pid").to_number<std::int64_t>();
        out << std::setw(12) << std::string(i.at("service").as_string()) << std::setw(16)
            << std::string(i.at("name").as_string()) << std::setw(9) << (pid ? std::to_string(pid) : "-")
            << std::setw(18) << std::string(i.at("address").as_string()) << std::setw(11) << health
            << std::setw(10) << i.at("restarts").to_number<std::int64_t>()
            << format_uptime(std::chrono::seconds(i.at("uptime_s").to_number<std::int64_t>())) << "\n";
    }
    if (auto* g = s->if_contains("gateway")) out << "gateway: " << std::string(g->as_string()) << "\n";
    if (auto* c = s->if_contains("gateway_ca"))
        out << "gateway CA (curl --cacert): " << std::string(c->as_string()) << "\n";
    if (auto* g = s->if_contains("gateway_admin"))
        out << "gateway admin: " << std::string(g->as_string()) << "\n";
    print_breakers(control, *s, out);
    return 0;
}

int scale(const std::string& data_dir, const std::string& service, int replicas) {
    auto state = read_state(data_dir);
    if (!state) {
        std::fprintf(stderr, "plexus: nothing is running from %s\n", data_dir.c_str());
        return 1;
    }
    auto port = static_cast<std::uint16_t>(state->at("control_port").to_number<std::int64_t>());
    auto r = ControlClient(port).call("PUT", "/v1/services/" + service + "/replicas",
                                      json::serialize(json::object{{"replicas", replicas}}));
    if (!r) {
        std::fprintf(stderr, "plexus: the supervisor of %s does not answer\n", data_dir.c_str());
        return 1;
    }
    if (r->status != 202) {
        std::string detail = r->body;
        boost::system::error_code ec;
        auto v = json::parse(detail, ec);
        if (!ec && v.is_object() && v.as_object().contains("detail"))
            detail = json::value_to<std::string>(v.at("detail"));
        std::fprintf(stderr, "plexus: %s\n", detail.c_str());
        return 1;
    }
    std::printf("plexus: %s scaled to %d\n", service.c_str(), replicas);
    return 0;
}

int down(const std::string& data_dir, std::chrono::milliseconds timeout) {
    auto state = read_state(data_dir);
    if (!state) {
        std::printf("plexus: nothing is running from %s\n", data_dir.c_str());
        return 0;
    }
    auto pid = static_cast<int>(state->at("pid").to_number<std::int64_t>());
    auto port = static_cast<int>(state->at("control_port").to_number<std::int64_t>());
    auto accepted = ControlClient(port).call("POST", "/v1/shutdown");
    if ((!accepted || accepted->status != 202) && alive(pid)) ::kill(pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (alive(pid) && std::chrono::steady_clock::now() < deadline) {
        int st;
        ::waitpid(pid, &st, WNOHANG);  // reaps it when `down` runs in the process that started it
        std::this_thread::sleep_for(50ms);
    }
    if (alive(pid)) {
        // Children die with their supervisor (PDEATHSIG), so this still leaves nothing behind.
        std::fprintf(stderr, "plexus: supervisor %d did not stop within %llds; killing it\n", pid,
                     static_cast<long long>(timeout.count() / 1000));
        ::kill(pid, SIGKILL);
    }
    std::error_code ec;
    fs::remove(data_dir + "/" + kStateFile, ec);
    std::printf("plexus: stopped\n");
    return 0;
}

}  // namespace plexus::supervisor
