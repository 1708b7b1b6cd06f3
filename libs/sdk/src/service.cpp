#include "plexus/service.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <variant>

#include "access.hpp"
#include "components.hpp"
#include "live_settings.hpp"
#include "plexus/auth/verifier.hpp"
#include "plexus/core/duration.hpp"
#include "plexus/core/ids.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/snapshot.hpp"
#include "plexus/discovery/call.hpp"
#include "plexus/discovery/discovery.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/resilience/deadline.hpp"
#include "plexus/resilience/fault.hpp"
#include "plexus/resilience/retry.hpp"
#include "plexus/resilience/upstream.hpp"
#include "plexus/serving/request_scope.hpp"
#include "plexus/telemetry/trace.hpp"
#include "service_state.hpp"

namespace plexus {

namespace {

using detail::ServiceState;

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::move(fallback);
}

// Runs `inner` as one served request (serving::RequestScope): a malformed or spent deadline and
// inbound faults first, then the handler, its errors turned into problem answers, then the
// X-Request-Id echo, metrics, span and access log.
net::Handler instrument(std::shared_ptr<ServiceState> st, std::string route_name, const std::string& method,
                        net::Handler inner) {
    // The route's series are looked up once here, not per request; only a HEAD answered by a
    // GET route (another method label) looks them up per request.
    serving::RouteMeters meters;
    if (method != "*")  // "*": any method, each labelled as it comes
        meters = serving::RouteMeters::of(*st->requests, {route_name, method}, *st->latency, {route_name});
    return [st, route_name = std::move(route_name), method, meters, inner = std::move(inner)](
               Request& req, Response& res) -> Task<void> {
        serving::RequestScope scope(req, route_name);
        std::array<char, 55> traceparent;
        req.headers.set(serving::kTraceparentHeader, scope.span().context().write_traceparent(traceparent));
        try {
            if (scope.deadline_malformed() || scope.deadline_spent()) {
                // Whoever sent a spent budget has stopped waiting: the work would be wasted.
                if (scope.deadline_spent()) st->resilience_metrics->count_deadline_expired(true);
                scope.deadline_problem(res, req.path());
            } else {
                req.deadline = scope.caller_deadline();
                bool aborted = false;
                if (auto fault = st->inbound_fault.load(); fault && fault->active()) {
                    auto d = resilience::decide_fault(*fault, resilience::fast_random(),
                                                      resilience::fast_random());
                    if (d.delay.count() > 0) co_await net::sleep_for(d.delay);
                    if (d.abort_status) {
                        res.problem(d.abort_status, net::reason_phrase(d.abort_status),
                                    "fault injected into " + st->name, req.path());
                        aborted = true;
                    }
                }
                if (!aborted) co_await inner(req, res);
            }
        } catch (...) {
            scope.answer_exception(res, req.path());
        }
        if (req.method == method) {
            scope.finish(req, res, meters);
        } else {
            scope.finish(req, res,
                         serving::RouteMeters::of(*st->requests, {route_name, req.method}, *st->latency,
                                                  {route_name}));
        }
    };
}

// A route: its handler's answer is the response.
net::Handler wrap(std::shared_ptr<ServiceState> st, const detail::RouteDef& r, auth::TokenKinds kinds) {
    net::Handler inner = [h = r.handler](Request& req, Response& res) -> Task<void> {
        res = co_await h(req);
    };
    if (kinds) inner = detail::guarded(st->verifier, kinds, r.access.scopes, std::move(inner));
    return instrument(std::move(st), r.pattern, r.method, std::move(inner));
}

boost::json::object fault_json(const resilience::FaultSettings& f) {
    return {{"delay_percent", f.delay_percent},
            {"delay_ms", f.delay.count()},
            {"abort_percent", f.abort_percent},
            {"abort_status", f.abort_status}};
}

// Reads a fault object of /-/faults; a person-readable problem, or empty.
std::string fault_from_json(const boost::json::value& v, resilience::FaultSettings& f) {
    if (!v.is_object()) return "must be an object";
    for (const auto& [key, value] : v.as_object()) {
        auto number = [&]() -> std::optional<double> {
            if (value.is_int64()) return static_cast<double>(value.as_int64());
            if (value.is_uint64()) return static_cast<double>(value.as_uint64());
            if (value.is_double()) return value.as_double();
            return std::nullopt;
        };
        auto n = number();
        if (!n) return std::string(key) + " must be a number";
        if (key == "delay_percent" || key == "abort_percent") {
            if (*n < 0 || *n > 100) return std::string(key) + " must be from 0 to 100";
            (key == "delay_percent" ? f.delay_percent : f.abort_percent) = *n;
        } else if (key == "delay_ms") {
            if (*n < 0 || *n > 600'000) return "delay_ms must be from 0 to 600000";
            f.delay = std::chrono::milliseconds(static_cast<std::int64_t>(*n));
        } else if (key == "abort_status") {
            if (*n < 200 || *n > 599) return "abort_status must be from 200 to 599";
            f.abort_status = static_cast<int>(*n);
        } else {
            return "unknown key " + std::string(key);
        }
    }
    return {};
}

void add_admin_routes(net::Router& router, std::shared_ptr<ServiceState> state) {
    router.add("GET", "/-/resilience", [state](Request&, Response& res) -> Task<void> {
        auto doc = state->upstreams->to_json();
        if (auto* ups = doc.if_contains("upstreams"); ups && ups->is_array() && state->discovery) {
            for (auto& u : ups->as_array()) {
                auto& o = u.as_object();
                std::string name(o["name"].as_string());
                auto guards = state->upstreams->find(name);
                if (!guards) continue;
                boost::json::array items;
                for (const auto& t : state->discovery->instances(name)->targets) {
                    const auto& h = t.state->health;
                    bool ejected = guards->outlier().ejected(h);
                    items.push_back({{"id", t.info.id},
                                     {"address", t.info.endpoint().to_string()},
                                     {"ejected", ejected},
                                     {"ejections", h.ejections.load()},
                                     {"consecutive_errors", h.consecutive_errors.load()}});
                }
                o["instances"] = std::move(items);
            }
        }
        res.json(200, boost::json::serialize(doc));
        co_return;
    });
    auto faults = [state](Request& req, Response& res) -> Task<void> {
        std::lock_guard lock(state->clients_mutex);  // no suspension below
        if (req.method == "PUT") {
            boost::system::error_code ec;
            auto body = boost::json::parse(req.body, ec);
            if (ec || !body.is_object()) throw HttpError(400, "Bad Request", "body must be a JSON object");
            auto inbound = state->inbound_fault.load();
            resilience::FaultSettings in = inbound ? *inbound : resilience::FaultSettings{};
            std::map<std::string, resilience::FaultSettings> clients;
            for (const auto& [key, value] : body.as_object()) {
                if (key == "inbound") {
                    in = {};
                    if (auto bad = fault_from_json(value, in); !bad.empty())
                        throw HttpError(400, "Bad Request", "inbound: " + bad);
                } else if (key == "clients" && value.is_object()) {
                    for (const auto& [name, f] : value.as_object()) {
                        if (!state->clients.count(name))
                            throw HttpError(400, "Bad Request",
                                            "clients: no client for " + std::string(name));
                        resilience::FaultSettings settings;
                        if (auto bad = fault_from_json(f, settings); !bad.empty())
                            throw HttpError(400, "Bad Request", "clients." + std::string(name) + ": " + bad);
                        clients[std::string(name)] = settings;
                    }
                } else {
                    throw HttpError(400, "Bad Request",
                                    "unknown key " + std::string(key) + " (expected inbound or clients)");
                }
            }
            state->inbound_fault.store(std::make_shared<const resilience::FaultSettings>(in));
            for (auto& [name, settings] : clients) {
                auto& cs = *state->clients[name];
                auto next = std::make_shared<detail::InForce>(*cs.live.load());
                next->call.fault = settings;
                cs.live.store(std::move(next));
            }
            telemetry::warn("fault injection changed", {{"faults", req.body}});
        }
        boost::json::object doc;
        auto in = state->inbound_fault.load();
        doc["inbound"] = fault_json(in ? *in : resilience::FaultSettings{});
        boost::json::object clients;
        for (const auto& [name, cs] : state->clients) {
            if (auto live = cs->live.load()) clients[name] = fault_json(live->call.fault);
        }
        doc["clients"] = std::move(clients);
        res.json(200, boost::json::serialize(doc));
        co_return;
    };
    router.add("GET", "/-/faults", faults);
    router.add("PUT", "/-/faults", faults);
}

}  // namespace

// ---------------------------------------------------------------- Client

Task<Response> Client::post(const Request& incoming, std::string target, std::string body,
                            std::string content_type) {
    co_return co_await call(incoming,
                            net::make_request("POST", std::move(target), std::move(body), content_type));
}

Task<Response> Client::put(const Request& incoming, std::string target, std::string body,
                           std::string content_type) {
    co_return co_await call(incoming,
                            net::make_request("PUT", std::move(target), std::move(body), content_type));
}

Task<Response> Client::get(const Request& incoming, std::string target) {
    co_return co_await call(incoming, net::make_request("GET", std::move(target)));
}

Task<Response> Client::del(const Request& incoming, std::string target) {
    co_return co_await call(incoming, net::make_request("DELETE", std::move(target)));
}

const std::string& Client::service() const noexcept { return client_->service; }
void Client::set_timeout(std::chrono::milliseconds t) { client_->call.timeout = t; }
void Client::set_policy(resilience::CallPolicy call, resilience::UpstreamPolicy upstream) {
    client_->code_call = client_->call = std::move(call);
    client_->code_upstream = client_->upstream = std::move(upstream);
}
void Client::set_fallback(std::function<Response(const CallFailure&)> fallback) {
    client_->fallback = std::move(fallback);
}
void Client::relay_caller_token() { client_->credential.kind = detail::ClientCredential::Kind::relay; }
void Client::use_service_token(std::vector<std::string> scopes) {
    client_->credential.kind = detail::ClientCredential::Kind::service;
    client_->credential.scopes = std::move(scopes);
}

RouteRef& RouteRef::require(std::vector<std::string> scopes, std::vector<std::string> accept) {
    auto& a = state_->routes.at(index_).access;
    a.guarded = true;
    a.scopes = std::move(scopes);
    a.accept = std::move(accept);
    return *this;
}

namespace {

// One client span per attempt, its traceparent in the outgoing request.
struct ClientSpans final : discovery::CallObserver {
    telemetry::Span& span;
    explicit ClientSpans(telemetry::Span& s) : span(s) {}
    void before_attempt(net::Request&, const discovery::Target& t, int attempt) override {
        if (!span.recording()) return;
        span.set_attribute("peer.instance", t.info.id);
        if (attempt > 1) span.set_attribute("retry", std::to_string(attempt - 1));
    }
};

}  // namespace

Task<Response> Client::call(const Request& incoming, Request out, std::chrono::milliseconds timeout) {
    auto& cs = *client_;
    auto& disco = state_->discovery;
    const auto& service = cs.service;
    if (!disco) throw HttpError(503, "Service Unavailable", "no registry configured to find " + service);
    auto live = cs.live.load();  // the policy and the guards, one snapshot
    if (!live) throw HttpError(503, "Service Unavailable", "the service is not running yet");
    if (timeout.count() <= 0) timeout = live->call.timeout;

    auto parent =
        telemetry::TraceContext::parse_traceparent(incoming.headers.get("traceparent").value_or(""));
    telemetry::Span span(out.method + " " + service, telemetry::SpanKind::client, parent);
    std::array<char, 55> traceparent;
    out.headers.set("traceparent", span.context().write_traceparent(traceparent));
    if (auto rid = incoming.headers.get("x-request-id")) out.headers.set("X-Request-Id", *rid);
    auto sent = co_await cs.credential.attach(incoming, out);
    const auto& credential_error = sent.error;

    auto now = std::chrono::steady_clock::now();
    auto deadline = std::min(now + timeout, incoming.deadline);
    Response res;
    discovery::CallReport report;
    if (!credential_error.empty()) {
        // Not sent: handled below as a failure (the fallback, or a 503).
    } else if (deadline <= now) {
        state_->resilience_metrics->count_deadline_expired(false);
        report.outcome = discovery::CallOutcome::timeout;
    } else {
        if (!disco->instances(service)->loaded) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
            co_await disco->ready(service, std::min(left, std::chrono::milliseconds(2000)));
        }
        discovery::Instances instances{disco->instances(service), &disco->balancer(service), nullptr};
        ClientSpans spans(span);
        discovery::CallContext ctx;
        ctx.policy = &live->call;
        ctx.upstream = live->upstream.get();
        ctx.deadline = deadline;
        ctx.observer = &spans;
        report = co_await discovery::call(ctx, std::move(instances), out, res);
        if (report.outcome == discovery::CallOutcome::timeout && incoming.deadline < now + timeout)
            state_->resilience_metrics->count_deadline_expired(false);
    }
    if (res.status == 401) cs.credential.rejected(sent);
    if (credential_error.empty() && !report.failed() && res.status < 500) {
        if (span.recording()) span.set_attribute("http.status_code", std::to_string(res.status));
        co_return res;
    }

    span.set_status(telemetry::SpanStatus::error);
    CallFailure failure;
    failure.service = service;
    if (!credential_error.empty()) {
        failure.reason = "no_credential";
        failure.status = 503;
        failure.detail = "no access token to call " + service + ": " + credential_error;
        state_->client_errors->labels({service, failure.reason}).inc();
    } else if (report.failed()) {
        auto answer = discovery::describe_failure(report, service, timeout);
        failure.reason = discovery::to_string(report.outcome);
        failure.status = report.outcome == discovery::CallOutcome::fault_abort ? res.status : answer.status;
        failure.detail = std::move(answer.detail);
        state_->client_errors->labels({service, failure.reason}).inc();
    } else {
        failure.reason = "status";
        failure.status = res.status;
        failure.detail = service + " answered " + std::to_string(res.status);
        span.set_attribute("http.status_code", std::to_string(res.status));
    }
    span.set_attribute("error", failure.detail);
    if (cs.fallback) co_return cs.fallback(failure);
    if (live->call.fallback.enabled) {
        Response fb;
        discovery::fallback_response(live->call.fallback, failure.reason, fb);
        co_return fb;
    }
    if (credential_error.empty() && !report.failed()) co_return res;  // the service's own 5xx
    throw HttpError(failure.status, std::string(net::reason_phrase(failure.status)), failure.detail);
}

// ---------------------------------------------------------------- Service

Service::Service(std::string name) : state_(std::make_shared<ServiceState>()) {
    state_->name = std::move(name);
    auto& m = *state_->metrics;
    state_->requests =
        &m.counter("plexus_http_requests_total", "HTTP requests served, by route, method and status class",
                   {"route", "method", "code_class"});
    state_->latency = &m.histogram("plexus_http_request_duration_seconds", "Time to serve HTTP requests",
                                   {"route"}, telemetry::default_latency_buckets());
    state_->client_errors =
        &m.counter("plexus_client_errors_total", "Failed calls to other services", {"service", "kind"});
    state_->resilience_metrics = std::make_unique<resilience::Metrics>(m);
    state_->upstreams = std::make_unique<resilience::UpstreamSet>(*state_->resilience_metrics);
}

Service::~Service() = default;

RouteRef Service::route(std::string method, std::string_view pattern, RouteHandler h,
                        std::size_t max_body_bytes) {
    state_->routes.push_back({.method = std::move(method),
                              .pattern = std::string(pattern),
                              .handler = std::move(h),
                              .max_body = max_body_bytes});
    return RouteRef(state_, state_->routes.size() - 1);
}
RouteRef Service::get(std::string_view p, RouteHandler h) { return route("GET", p, std::move(h)); }
RouteRef Service::post(std::string_view p, RouteHandler h, std::size_t m) {
    return route("POST", p, std::move(h), m);
}
RouteRef Service::put(std::string_view p, RouteHandler h, std::size_t m) {
    return route("PUT", p, std::move(h), m);
}
RouteRef Service::del(std::string_view p, RouteHandler h) { return route("DELETE", p, std::move(h)); }

Client Service::client(std::string service) {
    std::lock_guard lock(state_->clients_mutex);
    auto& slot = state_->clients[service];
    if (!slot) {
        slot = std::make_shared<detail::ClientState>();
        slot->service = service;
        // Made while running (in a handler, say): its default policies apply at once.
        if (state_->running) state_->activate(service, *slot);
    }
    return Client(state_, slot);
}
void Service::set_readiness(std::function<bool()> ready) { state_->readiness = std::move(ready); }
void Service::add_readiness_check(std::string name, std::function<bool()> check) {
    state_->readiness_checks.emplace_back(std::move(name), std::move(check));
}
void Service::set_metadata(std::string key, std::string value) {
    state_->metadata[std::move(key)] = std::move(value);
}
void Service::on_start(std::function<void()> fn) { state_->on_start.push_back(std::move(fn)); }
void Service::add_settings(std::shared_ptr<detail::SettingsSlot> slot) {
    auto& st = *state_;
    if (slot->section == "clients" || slot->section.empty())
        st.settings_error = "settings() section '" + slot->section + "' is reserved";
    for (const auto& s : st.settings)
        if (s->section == slot->section)
            st.settings_error = "two settings() sections are called '" + slot->section + "'";
    st.settings.push_back(std::move(slot));
}

void Service::add_component(std::shared_ptr<Component> component) {
    state_->components.push_back(std::move(component));
}

Task<void> Component::start() { co_return; }
Task<void> Component::stop() { co_return; }
const std::string& Service::name() const noexcept { return state_->name; }
const std::string& Service::instance_id() const noexcept { return state_->instance_id; }
const std::string& Service::data_dir() const noexcept { return state_->data_dir; }
telemetry::Registry& Service::metrics() noexcept { return *state_->metrics; }

int Service::run(int argc, char** argv) {
    auto& st = *state_;
    CLI::App app{"Plexus service " + st.name};
    std::string registry = env_or("PLEXUS_REGISTRY", "");
    std::string listen = env_or("PLEXUS_LISTEN", "127.0.0.1:0");
    st.instance_id = env_or("PLEXUS_INSTANCE_ID", core::new_instance_id(st.name));
    st.data_dir = env_or("PLEXUS_DATA_DIR", "data/" + st.name);
    std::size_t threads = 0;
    std::string threads_text = env_or("PLEXUS_THREADS", "0");
    std::string log_level = env_or("PLEXUS_LOG_LEVEL", "info");
    std::string heartbeat_text = "1s", ttl_text = "5s";
    std::string check_interval_text = env_or("PLEXUS_CHECK_INTERVAL", "1s");
    app.add_option("--registry", registry, "registry URL (http://host:port)");
    app.add_option("--listen", listen, "address to listen on (host:port, port 0 = any)");
    app.add_option("--instance-id", st.instance_id, "instance id");
    app.add_option("--data-dir", st.data_dir, "directory for this service's data");
    app.add_option("--threads", threads_text, "io threads (0 = one per core)");
    app.add_option("--log-level", log_level, "debug, info, warn or error");
    app.add_option("--heartbeat", heartbeat_text, "heartbeat interval");
    app.add_option("--ttl", ttl_text, "registration TTL");
    std::string config_file = env_or("PLEXUS_CONFIG", "");
    app.add_option("--config", config_file,
                   "YAML settings: the clients' resilience policies, the service's sections");
    std::string config_server = env_or("PLEXUS_CONFIG_SERVER", "");
    std::string profiles = env_or("PLEXUS_PROFILES", "default");
    app.add_option("--config-server", config_server,
                   "the config server, http://host:port (settings applied live)");
    app.add_option("--profiles", profiles, "config server profiles, e.g. prod or prod,eu");
    app.add_option("--check-interval", check_interval_text,
                   "how often the registry checks /health/ready (0 = no active check)");
    auto& access = st.access;
    access.identity = env_or("PLEXUS_IDENTITY", "");
    access.issuer = env_or("PLEXUS_ISSUER", "");
    access.audience = env_or("PLEXUS_AUDIENCE", "plexus");
    access.credentials = env_or("PLEXUS_CREDENTIALS", "");
    app.add_option("--identity", access.identity, "the identity server, http://host:port");
    app.add_option("--issuer", access.issuer, "the iss of the tokens routes accept");
    app.add_option("--audience", access.audience, "the aud those tokens must name");
    app.add_option("--credentials", access.credentials,
                   "JSON file with this service's client_id and client_secret");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help answers 0; every flag CLI11 itself rejects is a bad flag like the ones below.
        return app.exit(e) == 0 ? 0 : 2;
    }
    auto level = telemetry::parse_level(log_level);
    auto heartbeat = core::parse_duration(heartbeat_text);
    auto ttl = core::parse_duration(ttl_text);
    auto check_interval = core::parse_duration(check_interval_text);
    auto listen_ep = net::parse_listen_address(listen);
    std::optional<net::Endpoint> registry_ep;
    if (!registry.empty()) registry_ep = net::parse_endpoint(registry);
    std::string flag_error;
    auto [threads_end, threads_ec] =
        std::from_chars(threads_text.data(), threads_text.data() + threads_text.size(), threads);
    if (threads_ec != std::errc{} || threads_end != threads_text.data() + threads_text.size() ||
        threads > 256) {
        flag_error = "--threads (PLEXUS_THREADS) must be a number from 0 to 256, got '" + threads_text + "'";
    } else if (!level)
        flag_error = "--log-level must be debug, info, warn or error";
    else if (!heartbeat || heartbeat->count() <= 0)
        flag_error = "--heartbeat must be a duration such as 1s";
    else if (!ttl || *ttl < *heartbeat)
        flag_error = "--ttl must be a duration longer than --heartbeat";
    else if (!check_interval ||
             (check_interval->count() != 0 && (*check_interval < std::chrono::milliseconds(100) ||
                                               *check_interval > std::chrono::minutes(10))))
        flag_error =
            "--check-interval (PLEXUS_CHECK_INTERVAL) must be 0 or a duration from 100ms to 10m, got '" +
            check_interval_text + "'";
    else if (!listen_ep)
        flag_error = "--listen must be host:port";
    else if (!registry.empty() && !registry_ep)
        flag_error = "--registry must be http://host:port";
    else if (!access.identity.empty() && !net::parse_http_url(access.identity))
        flag_error = "--identity (PLEXUS_IDENTITY) must be http://host:port, got '" + access.identity + "'";
    while (!access.identity.empty() && access.identity.back() == '/') access.identity.pop_back();
    detail::RouteGuards guards;
    if (flag_error.empty()) {
        std::vector<detail::GuardedRoute> routes;
        for (const auto& r : st.routes) routes.push_back({r.method, r.pattern, r.access});
        guards = detail::resolve_guards(routes, access);
        flag_error = guards.error;
        st.verifier = guards.verifier;
    }
    if (!flag_error.empty()) {
        std::fprintf(stderr, "%s: %s\n", st.name.c_str(), flag_error.c_str());
        return 2;
    }
    telemetry::init_logging(st.name, st.instance_id, *level);

    if (!st.settings_error.empty()) {
        std::fprintf(stderr, "%s: %s\n", st.name.c_str(), st.settings_error.c_str());
        return 2;
    }
    auto live = std::make_shared<detail::LiveSettings>(
        st.settings, [state = state_](core::SettingsReader& r) { return detail::read_clients(state, r); });
    try {
        if (!config_file.empty()) live->load_file(config_file);
    } catch (const core::SettingsError& e) {
        std::fprintf(stderr, "%s: %s\n", st.name.c_str(), e.what());
        return 2;
    }
    if (auto why = live->apply({}, config_file.empty() ? "settings" : config_file, true); !why.empty()) {
        std::fprintf(stderr, "%s: %s\n", st.name.c_str(), why.c_str());
        return 2;
    }
    std::shared_ptr<settings::ConfigClient> config_client;
    if (!config_server.empty()) {
        try {
            config_client = detail::config_client(config_server, profiles, st.name, st.instance_id, access);
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "%s: --config-server (PLEXUS_CONFIG_SERVER): %s\n", st.name.c_str(),
                         e.what());
            return 2;
        }
    }
    {
        std::lock_guard lock(st.clients_mutex);
        for (auto& [name, cs] : st.clients) {
            if (auto bad = st.activate(name, *cs); !bad.empty()) {
                std::fprintf(stderr, "%s: client %s: %s\n", st.name.c_str(), name.c_str(), bad.c_str());
                return 2;
            }
        }
        st.running = true;
    }

    auto order = detail::start_order(st.components);
    if (auto* why = std::get_if<std::string>(&order)) {
        std::fprintf(stderr, "%s: %s\n", st.name.c_str(), why->c_str());
        return 2;
    }
    auto components = std::get<0>(std::move(order));
    for (const auto& c : components) st.readiness_checks.emplace_back(c->name(), [c] { return c->ready(); });

    try {
        std::filesystem::create_directories(st.data_dir);
        for (auto& fn : st.on_start) fn();
    } catch (const std::exception& e) {
        telemetry::error("startup failed", {{"error", e.what()}});
        return 1;
    }

    net::Runtime runtime(threads);
    if (registry_ep) {
        st.discovery = std::make_unique<discovery::Discovery>(discovery::RegistryClient(*registry_ep),
                                                              runtime.executor(0));
    }
    net::Router router;
    for (std::size_t i = 0; i < st.routes.size(); ++i) {
        const auto& r = st.routes[i];
        router.add(r.method, r.pattern, wrap(state_, r, guards.kinds[i]), r.max_body);
    }
    if (st.verifier) st.verifier->watch(runtime.executor(0));
    // Requests no route takes (the router's 404 and 405) are served requests too: logged, counted
    // under route "-", traced, their X-Request-Id echoed. Probes of /health and /metrics are not,
    // or every check of the registry would be a log line.
    router.set_unmatched(instrument(state_, "-", "*", [](Request&, Response&) -> Task<void> { co_return; }));
    router.add("GET", "/health/live", [](Request&, Response& res) -> Task<void> {
        res.json(200, R"({"status":"pass"})");
        co_return;
    });
    router.add("GET", "/health/ready", [this](Request&, Response& res) -> Task<void> {
        bool ok = state_->ready.load();
        boost::json::object checks;
        auto run_check = [&](const std::string& name, const std::function<bool()>& check) {
            bool pass = false;
            try {
                pass = check();
            } catch (const std::exception& e) {
                telemetry::warn("readiness check threw", {{"check", name}, {"error", e.what()}});
            }
            checks[name] = pass ? "pass" : "fail";
            ok = ok && pass;
        };
        if (state_->readiness) run_check("readiness", state_->readiness);
        for (const auto& [name, check] : state_->readiness_checks) run_check(name, check);
        boost::json::object body{{"status", ok ? "pass" : "fail"}, {"checks", std::move(checks)}};
        res.json(ok ? 200 : 503, boost::json::serialize(body));
        co_return;
    });
    add_admin_routes(router, state_);
    router.add("GET", "/metrics", [this](Request&, Response& res) -> Task<void> {
        res.status = 200;
        res.headers.set("Content-Type", telemetry::kPrometheusContentType);
        res.body = state_->metrics->render();
        co_return;
    });

    net::ServerSettings ss;
    ss.address = listen_ep->host;
    ss.port = listen_ep->port;
    net::Server server(runtime, ss, router.handler(), router.body_limit_fn());
    auto stop = std::make_shared<std::atomic<bool>>(false);
    std::optional<discovery::RegistryClient> reg;
    discovery::InstanceInfo self;
    // What startup and shutdown share. Both run on executor 0 only, so they take turns; the
    // locals they use live until runtime.run() has returned.
    std::vector<std::shared_ptr<Component>> started;  // stopped in reverse after the drain
    bool listening = false;
    int exit_code = 0;
    auto executor = runtime.executor(0);
    std::function<void()> stop_runtime = [&] {
        net::spawn(
            executor,
            [](std::vector<std::shared_ptr<Component>>* comps, net::Runtime* rt) -> Task<void> {
                co_await detail::stop_components(std::exchange(*comps, {}));
                rt->stop();
            }(&started, &runtime),
            "components stop");
    };
    // SIGTERM: leave discovery first (deregister), then stop accepting and drain, then stop the
    // components. Handled from before the server starts: a signal that comes during startup ends
    // it after the component being started, instead of killing the process.
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        if (stop->exchange(true)) return;
        st.ready = false;
        telemetry::info("shutting down", {{"signal", sig}});
        net::spawn(
            executor,
            [](bool* listening, std::optional<discovery::RegistryClient>* reg, discovery::InstanceInfo* self,
               net::Server* server, std::function<void()> stop_runtime) -> Task<void> {
                if (!*listening) co_return;  // startup sees `stop` and ends itself
                if (*reg) {
                    auto ec = co_await (*reg)->deregister(self->service, self->id);
                    if (ec)
                        telemetry::warn("deregistration failed", {{"error", ec.message()}});
                    else
                        telemetry::info("deregistered");
                }
                server->shutdown(stop_runtime);
            }(&listening, &reg, &self, &server, stop_runtime),
            "shutdown");
    });

    // Read the config server, start the components in order, then listen and register; all on
    // executor 0.
    auto start_up = [&]() -> Task<void> {
        if (config_client) {
            auto why = co_await detail::start_live_settings(config_client, live, stop, executor);
            if (!why.empty()) {
                telemetry::error("cannot start with the config server's settings", {{"error", why}});
                exit_code = 1;
                stop_runtime();
                co_return;
            }
        }
        for (const auto& c : components) {
            if (stop->load()) break;
            std::string error;
            try {
                co_await c->start();
            } catch (const std::exception& e) {
                error = e.what();
            }
            if (!error.empty()) {
                telemetry::error("component failed to start", {{"component", c->name()}, {"error", error}});
                exit_code = 1;
                break;
            }
            started.push_back(c);
            telemetry::info("component started", {{"component", c->name()}});
        }
        if (exit_code == 0 && !stop->load()) {
            try {
                server.start();
                listening = true;
            } catch (const std::exception& e) {
                telemetry::error("cannot listen", {{"listen", listen}, {"error", e.what()}});
                exit_code = 1;
            }
        }
        if (!listening) {
            stop_runtime();
            co_return;
        }
        st.ready = true;
        telemetry::info("listening", {{"address", ss.address}, {"port", server.port()}});
        if (registry_ep) {
            reg.emplace(*registry_ep);
            self.service = st.name;
            self.id = st.instance_id;
            self.address = ss.address == "0.0.0.0" ? "127.0.0.1" : ss.address;
            self.port = server.port();
            self.metadata = st.metadata;
            self.ttl = *ttl;
            if (check_interval->count() > 0) {
                discovery::HealthCheck check;
                check.http = "/health/ready";
                check.interval = *check_interval;
                check.timeout = *check_interval / 2;
                self.check = check;
            }
            net::spawn(executor, discovery::keep_registered(*reg, self, *heartbeat, stop), "registration");
        }
    };
    net::spawn(executor, start_up(), "startup");

    runtime.run();
    if (st.discovery) st.discovery->stop();
    telemetry::info("stopped");
    return exit_code;
}

}  // namespace plexus
