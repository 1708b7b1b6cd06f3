#include "plexus/gateway/gateway.hpp"

#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <filesystem>
#include <map>
#include <mutex>

#include "plexus/core/duration.hpp"
#include "plexus/core/file_stamp.hpp"
#include "plexus/core/ids.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/snapshot.hpp"
#include "plexus/discovery/call.hpp"
#include "plexus/gateway/filter.hpp"
#include "plexus/gateway/forwarding.hpp"
#include "plexus/net/client.hpp"
#include "plexus/resilience/deadline.hpp"
#include "plexus/resilience/upstream.hpp"
#include "plexus/serving/request_scope.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/trace.hpp"

namespace plexus::gateway {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kUnmatchedRoute = "-";

// Upstream error kinds are the failed call outcomes (discovery::CallOutcome after `answered`).
constexpr std::size_t kFailureKinds = 8;

std::size_t failure_index(discovery::CallOutcome o) noexcept { return static_cast<std::size_t>(o) - 1; }

// Metric children of one route, looked up once per table load.
struct RouteMetrics {
    serving::RouteMeters meters;
    std::array<telemetry::Counter*, kFailureKinds> errors{};
};

// A route's resilience state: its upstream's (shared with the upstream's other routes) and its
// own breaker, if it has one.
struct RouteGuards {
    std::shared_ptr<resilience::Upstream> upstream;
    std::shared_ptr<resilience::MeteredBreaker> breaker;
};

// What one request needs from a load: the table and everything derived from it. Immutable.
struct Snapshot {
    std::shared_ptr<const RouteTable> table;
    std::vector<RouteMetrics> metrics;  // by Route::index()
    std::vector<FilterChain> chains;    // by Route::index()
    std::vector<RouteGuards> guards;    // by Route::index()
    std::string routes_json;
};

using core::FileStamp;
using core::stamp_of;

// Whether `path` has a "." or ".." segment, also percent-encoded ("%2e"): the gateway refuses to
// guess how an upstream would resolve it against the route's prefix.
bool has_dot_segment(std::string_view path) noexcept {
    while (!path.empty()) {
        path.remove_prefix(1);  // the '/'
        auto end = path.find('/');
        auto seg = path.substr(0, end);
        int dots = 0;
        bool only_dots = !seg.empty();
        for (std::size_t i = 0; i < seg.size() && only_dots;) {
            if (seg[i] == '.') {
                ++dots, ++i;
            } else if (seg.size() - i >= 3 && seg[i] == '%' && seg[i + 1] == '2' &&
                       (seg[i + 2] | 0x20) == 'e') {
                ++dots, i += 3;
            } else {
                only_dots = false;
            }
        }
        if (only_dots && dots <= 2) return true;
        if (end == std::string_view::npos) break;
        path.remove_prefix(end);
    }
    return false;
}

milliseconds left_until(Clock::time_point deadline) noexcept {
    return std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
}

}  // namespace

struct Gateway::Impl {
    GatewaySettings settings;
    ForwardingPolicy forwarding;
    discovery::Discovery* discovery;
    telemetry::Registry& metrics;
    telemetry::CounterFamily& requests_family;
    telemetry::HistogramFamily& duration_family;
    telemetry::CounterFamily& errors_family;
    RouteMetrics unmatched;
    resilience::Metrics resilience_metrics;
    resilience::UpstreamSet upstreams;

    core::SnapshotCell<Snapshot> snapshot;
    FilterState filter_state;  // outlives each load of the routes
    std::atomic<bool> stopped{false};
    std::mutex reload_mutex;  // serialises loads; never taken on the request path
    FileStamp loaded_stamp;   // guarded by reload_mutex
    // The config server's routes document and its name; guarded by reload_mutex.
    std::optional<std::pair<boost::json::object, std::string>> overlay;

    Impl(GatewaySettings s, discovery::Discovery* d, telemetry::Registry& m)
        : settings(std::move(s)),
          forwarding{settings.trust_forwarded_for},
          discovery(d),
          metrics(m),
          requests_family(m.counter("plexus_gateway_requests_total",
                                    "Requests answered by the gateway, by route and status class.",
                                    {"route", "code_class"})),
          duration_family(m.histogram("plexus_gateway_request_duration_seconds",
                                      "Time from the request's arrival to the end of its answer, by route.",
                                      {"route"}, telemetry::default_latency_buckets())),
          errors_family(m.counter("plexus_gateway_upstream_errors_total",
                                  "Failed upstream exchanges, by route and kind of failure.",
                                  {"route", "kind"})),
          resilience_metrics(m),
          upstreams(resilience_metrics) {
        unmatched = metrics_for(kUnmatchedRoute);
    }

    RouteMetrics metrics_for(std::string_view route) {
        RouteMetrics m;
        m.meters = serving::RouteMeters::of(requests_family, {route}, duration_family, {route});
        for (std::size_t i = 0; i < kFailureKinds; ++i) {
            auto kind = discovery::to_string(static_cast<discovery::CallOutcome>(i + 1));
            m.errors[i] = &errors_family.labels({route, kind});
        }
        return m;
    }

    std::size_t route_count() const {
        auto s = snapshot.load();
        return s ? s->table->size() : 0;
    }

    // Compiles and swaps in `routes`; throws std::invalid_argument. Caller holds reload_mutex.
    std::size_t install_locked(std::vector<RouteSettings> routes, std::string source) {
        for (std::size_t i = 0; i < routes.size(); ++i) {
            if (!routes[i].service.empty() && !discovery) {
                throw std::invalid_argument("route '" + routes[i].name + "' (routes[" + std::to_string(i) +
                                            "]): service: '" + routes[i].service +
                                            "' cannot be discovered: the gateway has no registry");
            }
        }
        auto next = std::make_shared<Snapshot>();
        next->table = RouteTable::compile(std::move(routes));
        // Filters first: a route whose filters cannot be built rejects the load before anything
        // else (watches, upstream state) changes.
        next->chains.resize(next->table->size());
        filter_state.begin_load();
        try {
            for (const auto& r : next->table->routes()) {
                FilterContext ctx{r.settings(),
                                  filter_state,
                                  metrics,
                                  &settings.auth,
                                  settings.background ? &*settings.background : nullptr,
                                  &settings.limits_uri};
                try {
                    next->chains[r.index()] = compile_filters(r.settings().filters, ctx);
                } catch (const std::invalid_argument& e) {
                    throw std::invalid_argument("route '" + r.name() + "' (routes[" +
                                                std::to_string(r.index()) + "]): " + e.what());
                }
            }
        } catch (...) {
            filter_state.end_load(false);
            throw;
        }
        filter_state.end_load(true);
        next->metrics.resize(next->table->size());
        next->guards.resize(next->table->size());
        for (const auto& r : next->table->routes()) {
            next->metrics[r.index()] = metrics_for(r.name());
            auto& g = next->guards[r.index()];
            g.upstream = upstreams.get(r.settings().upstream_name(), r.settings().upstream);
            if (r.settings().breaker)
                g.breaker = upstreams.breaker("route:" + r.name(), *r.settings().breaker);
            // Starts the registry watch now, so the first request rarely waits for it.
            if (!r.settings().service.empty())
                discovery->set_policy(r.settings().service, r.settings().policy);
        }
        next->routes_json = next->table->to_json();
        auto count = next->table->size();
        snapshot.store(std::move(next));
        telemetry::info("routes loaded", {{"source", source}, {"routes", count}});
        return count;
    }

    ReloadStatus reload_locked() {
        const auto& file = settings.routes_file;
        if (file.empty() && !overlay) return {false, "no routes file is configured", route_count()};
        // Stamped before reading: a change made during the read is seen by the next check.
        if (!file.empty()) loaded_stamp = stamp_of(file);
        std::string error;
        try {
            auto n = overlay
                         ? install_locked(load_routes(file, overlay->first, overlay->second), overlay->second)
                         : install_locked(load_routes(file), file);
            return {true, {}, n};
        } catch (const core::SettingsError& e) {
            error = e.what();
        } catch (const std::invalid_argument& e) {
            error = file + ": " + e.what();
        }
        auto kept = route_count();
        telemetry::error("routes rejected; the previous routes keep serving",
                         {{"file", file}, {"error", error}, {"routes", kept}});
        return {false, std::move(error), kept};
    }

    ReloadStatus reload() {
        std::lock_guard lock(reload_mutex);
        return reload_locked();
    }

    ReloadStatus set_overlay(boost::json::object doc, std::string source) {
        std::lock_guard lock(reload_mutex);
        auto kept = std::exchange(overlay, std::pair{std::move(doc), std::move(source)});
        auto status = reload_locked();
        if (!status.ok) overlay = std::move(kept);
        return status;
    }

    void reload_if_changed() {
        std::lock_guard lock(reload_mutex);
        if (stamp_of(settings.routes_file) == loaded_stamp) return;
        reload_locked();
    }

    ReloadStatus set_routes(std::vector<RouteSettings> routes) {
        std::lock_guard lock(reload_mutex);
        try {
            auto n = install_locked(std::move(routes), "code");
            return {true, {}, n};
        } catch (const std::invalid_argument& e) {
            auto kept = route_count();
            telemetry::error("routes rejected; the previous routes keep serving",
                             {{"error", e.what()}, {"routes", kept}});
            return {false, e.what(), kept};
        }
    }

    static net::Task<void> watch_file(std::weak_ptr<Impl> weak) {
        while (true) {
            milliseconds interval;
            {
                auto self = weak.lock();
                if (!self || self->stopped.load()) co_return;
                interval = self->settings.watch_interval;
            }
            co_await net::sleep_for(interval);
            auto self = weak.lock();
            if (!self || self->stopped.load()) co_return;
            co_await net::offload([self] { self->reload_if_changed(); });
        }
    }

    static net::Task<ReloadStatus> reload_task(std::shared_ptr<Impl> self) {
        co_return co_await net::offload([self] { return self->reload(); });
    }

    // ------------------------------------------------------------ admin endpoints

    // Answers the admin paths; false if `req` is not for one of them. On the public listener
    // (`full` false) only the health endpoints are served; the rest of /-/ is reserved (404) and
    // /metrics is an ordinary path. On the admin listener every other path is a 404.
    bool serve_admin(const net::Request& req, net::Response& res, bool full) const {
        std::string_view path = req.path();
        bool reserved = path.starts_with("/-/");
        if (reserved) path.remove_prefix(2);
        enum { none, live, ready, prometheus, routes, guards } which = none;
        if (path == "/health/live")
            which = live;
        else if (path == "/health/ready")
            which = ready;
        else if (path == "/metrics")
            which = prometheus;
        else if (reserved && path == "/routes")
            which = routes;
        else if (reserved && path == "/resilience")
            which = guards;
        if (!full && which != live && which != ready) {
            if (!reserved) return false;
            res.problem(404, "Not Found",
                        "no endpoint at " + std::string(req.path()) +
                            " (admin endpoints are served on the admin listener)",
                        req.path());
            return true;
        }
        if (which == none) {
            res.problem(404, "Not Found", "no admin endpoint at " + std::string(req.path()), req.path());
            return true;
        }
        if (req.method != "GET" && req.method != "HEAD") {
            res.problem(405, "Method Not Allowed", "admin endpoints answer GET and HEAD", req.path());
            res.headers.set("Allow", "GET, HEAD");
            return true;
        }
        auto snap = snapshot.load();
        switch (which) {
            case live:
                res.json(200, R"({"status":"live"})");
                break;
            case ready:
                if (snap) {
                    res.json(200,
                             R"({"status":"ready","routes":)" + std::to_string(snap->table->size()) + "}");
                } else {
                    res.problem(503, "Service Unavailable", "no routes are loaded", req.path());
                }
                break;
            case prometheus:
                res.status = 200;
                res.headers.set("Content-Type", telemetry::kPrometheusContentType);
                res.body = metrics.render();
                break;
            case routes:
                if (snap)
                    res.json(200, snap->routes_json);
                else
                    res.json(200, R"({"routes":[]})");
                break;
            case guards:
                res.json(200, resilience_json(snap.get()));
                break;
            case none:
                break;
        }
        return true;
    }

    // The upstreams' breakers, bulkheads, budgets and the outlier state of their instances.
    std::string resilience_json(const Snapshot* snap) const {
        namespace json = boost::json;
        std::map<std::string, json::array, std::less<>> instances;
        if (snap) {
            for (const auto& r : snap->table->routes()) {
                const auto& name = r.settings().upstream_name();
                if (instances.count(name)) continue;
                auto guards = snap->guards[r.index()].upstream;
                std::shared_ptr<const discovery::InstanceList> list;
                if (r.settings().service.empty())
                    list = std::shared_ptr<const discovery::InstanceList>(std::shared_ptr<void>(),
                                                                          &r.static_targets());
                else
                    list = discovery->instances(r.settings().service);
                json::array items;
                for (const auto& t : list->targets) {
                    const auto& h = t.state->health;
                    bool ejected = guards->outlier().ejected(h);
                    json::object o{{"id", t.info.id},
                                   {"address", t.info.endpoint().to_string()},
                                   {"ejected", ejected},
                                   {"ejections", h.ejections.load()},
                                   {"consecutive_errors", h.consecutive_errors.load()},
                                   {"in_flight", t.state->in_flight.load()}};
                    if (ejected) {
                        auto left = std::chrono::duration_cast<milliseconds>(
                            guards->outlier().ejected_until(h) - guards->outlier().clock().now());
                        o["ejected_for_ms"] = left.count();
                    }
                    items.push_back(std::move(o));
                }
                instances.emplace(name, std::move(items));
            }
        }
        auto doc = upstreams.to_json();
        if (auto* ups = doc.if_contains("upstreams"); ups && ups->is_array()) {
            for (auto& u : ups->as_array()) {
                auto& o = u.as_object();
                auto it = instances.find(o["name"].as_string());
                if (it != instances.end()) o["instances"] = it->second;
            }
        }
        return json::serialize(doc);
    }

    // ------------------------------------------------------------ the request path

    net::Task<void> handle(net::Request& req, net::Response& res) {
        auto start = Clock::now();
        if (serve_admin(req, res, false)) co_return;

        auto snap = snapshot.load();
        std::string_view path = req.path();
        bool bad_target = path.empty() || path.front() != '/' || has_dot_segment(path);
        const Route* route = bad_target ? nullptr : snap->table->match(req);
        std::string_view route_name = route ? std::string_view(route->name()) : kUnmatchedRoute;
        const RouteMetrics& m = route ? snap->metrics[route->index()] : unmatched;
        serving::RequestScope scope(req, route_name, start);
        prepare_upstream_request(req, forwarding);

        std::string_view upstream_id;
        std::shared_ptr<const discovery::InstanceList> held;  // keeps upstream_id's bytes alive
        if (bad_target) {
            res.problem(400, "Bad Request", "the request target must be a path without . or .. segments",
                        req.path());
        } else if (!route) {
            res.problem(404, "Not Found", "no route for " + std::string(req.path()), req.path());
        } else if (scope.deadline_malformed() || scope.deadline_spent()) {
            // A spent budget: nobody is waiting for the answer.
            if (scope.deadline_spent()) resilience_metrics.count_deadline_expired(true);
            scope.deadline_problem(res, req.path());
        } else {
            const FilterChain& chain = snap->chains[route->index()];
            Exchange x{req, res, scope, *route};
            std::size_t entered = chain.filters.size();  // filters whose request phases ran
            try {
                bool answered = false;
                if (chain.has(kRequestHead)) {
                    for (std::size_t i = 0; i < chain.filters.size() && !answered; ++i) {
                        const Filter& f = *chain.filters[i];
                        if (!(f.phases() & kRequestHead)) continue;
                        auto r = f.on_request_head(x);
                        if (r == FilterResult::suspend) r = co_await f.on_request_head_async(x);
                        if (r == FilterResult::answered) answered = true, entered = i + 1;
                    }
                }
                auto limit = static_cast<std::size_t>(route->settings().max_body_bytes);
                if (!answered && req.body_source) {
                    answered =
                        !net::answer_body_failure(co_await net::read_body(req, limit), limit, req, res);
                } else if (!answered && req.body.size() > limit) {
                    // Read by a server that does not defer bodies.
                    answered = !net::answer_body_failure(net::BodyStatus::too_large, limit, req, res);
                }
                if (!answered && chain.has(kRequestBody)) answered = chain.request_body(x, entered);
                if (!answered) {
                    if (route->changes_target()) {
                        req.headers.set(kOriginalPathHeader, req.target);
                        route->rewrite_target(req);
                    }
                    co_await forward(*route, m, snap->guards[route->index()], req, res, scope, upstream_id,
                                     held);
                }
                chain.respond(x, entered);
            } catch (...) {
                scope.answer_exception(res, req.path());
            }
            chain.complete(x);
        }

        std::string_view logged_path;
        if (route && route->changes_target()) {
            if (auto original = req.headers.get(kOriginalPathHeader))
                logged_path = original->substr(0, original->find('?'));
        }
        scope.finish(req, res, m.meters, {upstream_id, logged_path});
    }

    // One client span per attempt, carrying the traceparent the instance sees.
    // Failed attempts count as upstream errors, also when a retry then succeeded.
    struct AttemptSpans final : discovery::CallObserver {
        telemetry::Span& parent;
        const RouteMetrics& metrics;
        std::optional<telemetry::Span> call;
        std::array<char, 55> traceparent{};
        AttemptSpans(telemetry::Span& p, const RouteMetrics& m) : parent(p), metrics(m) {}
        void before_attempt(net::Request& req, const discovery::Target& t, int) override {
            if (call) call->end();
            call.emplace(parent.name(), telemetry::SpanKind::client, parent.context());
            req.headers.set(kTraceparentHeader, call->context().write_traceparent(traceparent));
            if (call->recording()) call->set_attribute("peer.instance", t.info.id);
        }
        void after_attempt(const discovery::Target&, ErrorCode error, const net::Response& res) override {
            if (error) {
                metrics.errors[failure_index(discovery::outcome_of(error))]->inc();
                call->set_status(telemetry::SpanStatus::error);
                if (call->recording()) call->set_attribute("error", error.message());
            } else if (call->recording()) {
                call->set_attribute("http.status_code", std::to_string(res.status));
            }
        }
    };

    // Sends `req` to the route's upstream under its policies (resilience/settings.hpp) and leaves
    // the answer, the fallback or the gateway's problem response in `res`. `held` keeps the
    // instance list (and so `upstream_id`'s bytes) alive for the access log.
    net::Task<void> forward(const Route& route, const RouteMetrics& m, const RouteGuards& guards,
                            net::Request& req, net::Response& res, serving::RequestScope& scope,
                            std::string_view& upstream_id,
                            std::shared_ptr<const discovery::InstanceList>& held) {
        const auto& rs = route.settings();
        auto start = scope.start();
        auto deadline = scope.deadline(rs.call.timeout);

        discovery::Instances instances;
        if (rs.service.empty()) {
            // Non-owning: the route table outlives the call (the request holds its snapshot).
            instances.list = std::shared_ptr<const discovery::InstanceList>(std::shared_ptr<void>(),
                                                                            &route.static_targets());
            instances.balancer = &route.balancer();
            instances.endpoints = &route.static_endpoints();
        } else {
            if (!discovery->instances(rs.service)->loaded) {
                co_await discovery->ready(rs.service,
                                          std::min(left_until(deadline), settings.discovery_wait));
            }
            instances.list = discovery->instances(rs.service);
            instances.balancer = &discovery->balancer(rs.service);
        }
        held = instances.list;

        AttemptSpans spans(scope.span(), m);
        discovery::CallContext ctx;
        ctx.policy = &rs.call;
        ctx.upstream = guards.upstream.get();
        ctx.extra_breaker = guards.breaker.get();
        ctx.deadline = deadline;
        ctx.observer = &spans;
        auto report = co_await discovery::call(ctx, std::move(instances), req, res);
        if (spans.call) spans.call->end();
        if (report.target) upstream_id = report.target->info.id;

        if (report.failed()) {
            // What no attempt's error explains (no instance, open breaker...) counts here.
            if (!report.error) m.errors[failure_index(report.outcome)]->inc();
            if (report.outcome == discovery::CallOutcome::timeout && left_until(deadline).count() <= 0 &&
                deadline < start + rs.call.timeout) {
                resilience_metrics.count_deadline_expired(false);
            }
        }
        if (rs.call.fallback.enabled && discovery::wants_fallback(report, res)) {
            discovery::fallback_response(
                rs.call.fallback, report.failed() ? discovery::to_string(report.outcome) : "upstream_error",
                res);
            co_return;
        }
        if (report.outcome == discovery::CallOutcome::answered ||
            report.outcome == discovery::CallOutcome::fault_abort) {
            if (report.outcome == discovery::CallOutcome::answered) prepare_downstream_response(res);
            co_return;
        }
        discovery::failure_response(report, rs.upstream_name(), rs.call.timeout, req.path(), res);
    }
};

Gateway::Gateway(GatewaySettings settings, discovery::Discovery* discovery, telemetry::Registry& metrics)
    : impl_(std::make_shared<Impl>(std::move(settings), discovery, metrics)) {
    std::lock_guard lock(impl_->reload_mutex);
    if (!impl_->settings.routes_file.empty()) {
        auto status = impl_->reload_locked();
        if (!status.ok) throw core::SettingsError(status.error);
    } else {
        impl_->install_locked(impl_->settings.routes, "settings");
    }
}

Gateway::~Gateway() { impl_->stopped.store(true); }

net::Handler Gateway::handler() const {
    return [impl = impl_](net::Request& req, net::Response& res) { return impl->handle(req, res); };
}

net::Handler Gateway::admin_handler() const {
    return [impl = impl_](net::Request& req, net::Response& res) -> net::Task<void> {
        impl->serve_admin(req, res, true);
        co_return;
    };
}

ReloadStatus Gateway::reload() { return impl_->reload(); }

net::Task<ReloadStatus> Gateway::reload_async() { return Impl::reload_task(impl_); }

ReloadStatus Gateway::set_overlay(boost::json::object doc, std::string source) {
    return impl_->set_overlay(std::move(doc), std::move(source));
}

ReloadStatus Gateway::set_routes(std::vector<RouteSettings> routes) {
    return impl_->set_routes(std::move(routes));
}

void Gateway::start_watching_file(net::Executor ex) {
    if (impl_->settings.routes_file.empty()) return;
    std::weak_ptr<Impl> weak = impl_;  // the watch must not keep the gateway alive
    net::spawn(ex, Impl::watch_file(weak), "gateway routes watch");
}

std::shared_ptr<const RouteTable> Gateway::routes() const { return impl_->snapshot.load()->table; }

}  // namespace plexus::gateway
