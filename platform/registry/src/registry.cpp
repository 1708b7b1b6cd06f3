#include "plexus/registry/registry.hpp"

#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <filesystem>

#include "plexus/core/duration.hpp"
#include "plexus/etcd/store_settings.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/registry/health_checker.hpp"
#include "plexus/serving/probes.hpp"
#include "plexus/store/database.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::registry {

namespace json = boost::json;
using net::HttpError;
using net::Request;
using net::Response;
using net::Task;

namespace {
// Watchers wait on one of these signals, chosen by their service's name: a change wakes only the
// watchers of services that share its shard, and the memory stays bounded whatever names
// clients watch.
constexpr std::size_t kWatchShards = 64;

// The durable part of a change: everything queued is written on the blocking pool (by this
// request's job or one already running), then the change is applied.
Task<Result<std::uint64_t>> written(Catalog& catalog, std::shared_ptr<PendingWrite> pending,
                                    std::string* problem) {
    if (!pending->done()) co_await net::offload([c = &catalog] { c->write_pending(); });
    auto r = pending->result();
    if (!r && problem) *problem = pending->problem();
    co_return r;
}
}  // namespace

struct Api::Impl {
    Catalog& catalog;
    std::chrono::milliseconds max_wait;
    std::array<net::Signal, kWatchShards> changed;
    std::atomic<bool> stopping{false};
    // Looked up once: a heartbeat takes no lock of the metrics registry.
    telemetry::Counter &registered, &heartbeats, &drained, &deregistered;
    telemetry::GaugeFamily& watchers;

    Impl(Catalog& c, telemetry::Registry& m, std::chrono::milliseconds w)
        : catalog(c),
          max_wait(w),
          registered(operations(m).labels({"register"})),
          heartbeats(operations(m).labels({"heartbeat"})),
          drained(operations(m).labels({"draining"})),
          deregistered(operations(m).labels({"deregister"})),
          watchers(m.gauge("plexus_registry_watchers", "Blocking watches currently waiting")) {}

    static telemetry::CounterFamily& operations(telemetry::Registry& m) {
        return m.counter("plexus_registry_operations_total", "Registry operations by kind", {"op"});
    }

    net::Signal& signal_of(std::string_view service) {
        return changed[std::hash<std::string_view>{}(service) % kWatchShards];
    }

    static void reply_index(Response& res, std::uint64_t index, json::object body) {
        body["index"] = index;
        res.json(200, json::serialize(body));
        res.headers.set("X-Plexus-Index", std::to_string(index));
    }

    Task<void> put_instance(Request& req, Response& res) {
        std::string why;
        auto parsed = discovery::registration_from_json(req.body, std::string(req.param("service")),
                                                        std::string(req.param("id")), &why);
        if (!parsed) throw HttpError(400, "Bad Request", why);
        auto in = std::move(*parsed);
        in.draining = false;  // a registration is never draining; draining has its own call
        if (auto why = catalog.validate(in); !why.empty()) throw HttpError(400, "Bad Request", why);
        std::string service = in.service, id = in.id, address = in.address,
                    check = in.check ? in.check->http : std::string();
        auto port = in.port;
        std::string problem;
        auto idx = co_await written(catalog, catalog.queue_register(std::move(in)), &problem);
        if (!idx && idx.error() == core::errc::invalid_argument) throw HttpError(400, "Bad Request", problem);
        if (!idx) throw HttpError(500, "Internal Server Error", problem);
        registered.inc();
        telemetry::info("instance registered", {{"for_service", service},
                                                {"instance_id", id},
                                                {"address", address},
                                                {"port", port},
                                                {"check", check}});
        reply_index(res, *idx, {});
    }

    Task<void> heartbeat(Request& req, Response& res) {
        auto r = catalog.heartbeat(std::string(req.param("service")), std::string(req.param("id")));
        if (!r) throw HttpError(404, "Not Found", "unknown instance; register again");
        heartbeats.inc();
        res.status = 204;
        co_return;
    }

    Task<void> draining(Request& req, Response& res) {
        std::string service(req.param("service")), id(req.param("id"));
        std::string problem;
        auto r = co_await written(catalog, catalog.queue_draining(service, id), &problem);
        if (!r && r.error() == core::errc::not_found) throw HttpError(404, "Not Found", "unknown instance");
        if (!r) throw HttpError(500, "Internal Server Error", problem);
        drained.inc();
        telemetry::info("instance draining", {{"for_service", service}, {"instance_id", id}});
        reply_index(res, *r, {});
    }

    Task<void> deregister(Request& req, Response& res) {
        std::string service(req.param("service")), id(req.param("id"));
        std::string problem;
        auto r = co_await written(catalog, catalog.queue_deregister(service, id), &problem);
        if (!r && r.error() == core::errc::not_found) throw HttpError(404, "Not Found", "unknown instance");
        if (!r) throw HttpError(500, "Internal Server Error", problem);
        deregistered.inc();
        telemetry::info("instance deregistered", {{"for_service", service}, {"instance_id", id}});
        reply_index(res, *r, {});
    }

    Task<void> list_services(Request& req, Response& res) {
        json::array arr;
        for (const auto& s : catalog.services()) {
            arr.push_back(json::object{
                {"name", s.name}, {"instances", s.instances}, {"healthy", s.healthy}, {"index", s.index}});
        }
        reply_index(res, catalog.index(), {{"services", std::move(arr)}});
        co_return;
    }

    Task<void> get_service(Request& req, Response& res) {
        std::string service(req.param("service"));
        bool all = req.query_param("all").value_or("false") == "true";
        bool delta = req.query_param("delta").value_or("false") == "true";
        std::uint64_t index = 0;
        if (auto i = req.query_param("index")) {
            // Not stoull: it reads "-1" as 2^64-1 and "5x" as 5, turning a bad index into a watch
            // that waits out its whole time (or answers at once) instead of a 400.
            auto [end, ec] = std::from_chars(i->data(), i->data() + i->size(), index);
            if (ec != std::errc{} || end != i->data() + i->size()) {
                throw HttpError(400, "Bad Request", "index must be a non-negative integer");
            }
        }
        auto wait = std::chrono::milliseconds(30'000);
        if (auto w = req.query_param("wait")) {
            auto d = core::parse_duration(*w);
            if (!d) throw HttpError(400, "Bad Request", "wait must be a duration such as 500ms or 30s");
            wait = std::min(*d, max_wait);
        }
        if (index > 0) {
            auto& signal = signal_of(service);
            auto deadline = std::chrono::steady_clock::now() + wait;
            watchers.labels().inc();
            while (true) {
                // Taken before the check: a change (or stop) between the check and the wait still
                // wakes this watch instead of leaving it to wait out its whole time.
                auto seen = signal.epoch();
                if (stopping.load() || catalog.service_index(service) > index) break;
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) break;
                co_await signal.wait(left, seen);
            }
            watchers.labels().dec();
        }
        auto answer =
            delta && index > 0 ? catalog.changes_since(service, all, index) : catalog.answer(service, all);
        res.json(200, answer->body);
        res.headers.set("X-Plexus-Index", std::to_string(answer->index));
    }
};

Api::Api(Catalog& catalog, telemetry::Registry& metrics, std::chrono::milliseconds max_wait)
    : impl_(std::make_unique<Impl>(catalog, metrics, max_wait)) {
    catalog.on_change(
        [impl = impl_.get()](const std::string& service) { impl->signal_of(service).notify_all(); });
}

Api::~Api() = default;

void Api::stop_watches() {
    impl_->stopping.store(true);
    for (auto& s : impl_->changed) s.notify_all();
}

void Api::add_routes(net::Router& router) {
    auto* i = impl_.get();
    const std::string instance = "/v1/services/{service}/instances/{id}";
    router.add("PUT", instance, [i](Request& q, Response& r) { return i->put_instance(q, r); }, 64 * 1024);
    router.add("PUT", instance + "/heartbeat", [i](Request& q, Response& r) { return i->heartbeat(q, r); });
    router.add("PUT", instance + "/draining", [i](Request& q, Response& r) { return i->draining(q, r); });
    router.add("DELETE", instance, [i](Request& q, Response& r) { return i->deregister(q, r); });
    router.add("GET", "/v1/services", [i](Request& q, Response& r) { return i->list_services(q, r); });
    router.add("GET", "/v1/services/{service}",
               [i](Request& q, Response& r) { return i->get_service(q, r); });
}

namespace {
Task<void> reap_loop(Catalog& catalog, std::chrono::milliseconds interval,
                     std::shared_ptr<std::atomic<bool>> stop, telemetry::CounterFamily& expired) {
    while (!stop->load()) {
        co_await net::sleep_for(interval);
        auto n = co_await net::offload([&] { return catalog.reap(); });
        if (n) {
            expired.labels().inc(n);
            telemetry::info("instances expired", {{"count", static_cast<std::int64_t>(n)}});
        }
    }
}
}  // namespace

void read_settings(core::SettingsReader& r, Settings& s) {
    r.field("listen", s.listen);
    etcd::read_store_settings(r, s.store, s.etcd, s.etcd_prefix);
    r.field("data_dir", s.data_dir);
    r.field("reap_interval", s.reap_interval);
    r.field("max_wait", s.max_wait);
    int threads = static_cast<int>(s.threads);
    if (r.field("threads", threads, 0, 256)) s.threads = static_cast<std::size_t>(threads);
    r.section("limits", [&](core::SettingsReader& l) {
        l.field("min_ttl", s.limits.min_ttl);
        l.field("max_ttl", s.limits.max_ttl);
        auto size = [&](std::string_view key, std::size_t& out, int hi) {
            int v = static_cast<int>(out);
            if (l.field(key, v, 1, hi)) out = static_cast<std::size_t>(v);
        };
        size("max_metadata_bytes", s.limits.max_metadata_bytes, 1 << 20);
        size("max_tags", s.limits.max_tags, 1024);
        size("change_log", s.limits.change_log, 1 << 20);
    });
}

namespace {
// The catalog `settings` ask for; null (after logging why) for settings that do not make sense.
// Throws std::runtime_error when the store cannot be opened or read.
std::unique_ptr<Catalog> open_catalog(const Settings& settings) {
    std::string why;
    auto cluster = etcd::cluster_of(settings.store, settings.etcd, settings.etcd_prefix, why);
    if (!why.empty()) {
        telemetry::error(why);
        return nullptr;
    }
    if (cluster) {
        return std::make_unique<Catalog>(core::Clock::real(), settings.limits,
                                         open_etcd_catalog(std::move(*cluster), settings.etcd_prefix));
    }
    std::unique_ptr<store::Database> db;
    if (!settings.data_dir.empty()) {
        std::filesystem::create_directories(settings.data_dir);
        auto opened = store::Database::open(settings.data_dir + "/registry.db");
        if (!opened)
            throw std::runtime_error("cannot open " + settings.data_dir +
                                     "/registry.db: " + opened.error().message());
        db = std::make_unique<store::Database>(std::move(*opened));
    }
    return std::make_unique<Catalog>(core::Clock::real(), settings.limits, std::move(db));
}
}  // namespace

int run(const Settings& settings) {
    auto listen = net::parse_listen_address(settings.listen);
    if (!listen) {
        telemetry::error("invalid listen address", {{"listen", settings.listen}});
        return 2;
    }
    std::unique_ptr<Catalog> catalog_ptr;
    try {
        catalog_ptr = open_catalog(settings);
    } catch (const std::exception& e) {
        telemetry::error("cannot open the registry's catalog",
                         {{"store", settings.store}, {"error", e.what()}});
        return 1;
    }
    if (!catalog_ptr) return 2;
    auto& catalog = *catalog_ptr;
    auto& metrics = telemetry::default_registry();
    Api api(catalog, metrics, settings.max_wait);

    net::Runtime runtime(settings.threads);
    HealthChecker checker(catalog, metrics, runtime);
    // On every way out, first: nothing may call the listeners (the API's signals, the checker)
    // once the function's locals go.
    struct StopFollowing {
        Catalog& catalog;
        ~StopFollowing() { catalog.stop_following(); }
    } stop_following{catalog};
    net::Router router;
    api.add_routes(router);
    serving::add_probe_routes(router, metrics);

    auto server_ptr = serving::start_listener(runtime, *listen, router, settings.listen);
    if (!server_ptr) return 1;
    auto& server = *server_ptr;
    auto stop = std::make_shared<std::atomic<bool>>(false);
    net::spawn(runtime.executor(0),
               reap_loop(catalog, settings.reap_interval, stop,
                         metrics.counter("plexus_registry_expired_total",
                                         "Instances removed because their TTL passed")),
               "registry reaper");
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        telemetry::info("shutting down", {{"signal", sig}});
        stop->store(true);
        checker.stop();
        api.stop_watches();
        server.shutdown([&runtime] { runtime.stop(); });
    });
    telemetry::info("registry listening",
                    {{"address", listen->host},
                     {"port", server.port()},
                     {"instances", static_cast<std::int64_t>(catalog.services().size())}});
    runtime.run();
    return 0;
}

}  // namespace plexus::registry
