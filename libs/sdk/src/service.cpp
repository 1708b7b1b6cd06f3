#include "plexus/service.hpp"

#include <CLI/CLI.hpp>
#include <array>
#include <charconv>
#include <cstdlib>
#include <filesystem>

#include "plexus/core/duration.hpp"
#include "plexus/core/ids.hpp"
#include "plexus/discovery/discovery.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/telemetry/trace.hpp"

namespace plexus {

namespace detail {

struct RouteDef {
    std::string method;
    std::string pattern;
    RouteHandler handler;
    std::size_t max_body;
};

struct ServiceState {
    std::string name;
    std::string instance_id;
    std::string data_dir;
    std::vector<RouteDef> routes;
    std::function<bool()> readiness;
    std::map<std::string, std::string> metadata;
    std::vector<std::function<void()>> on_start;
    std::unique_ptr<discovery::Discovery> discovery;
    std::atomic<bool> ready{false};
    telemetry::Registry* metrics = &telemetry::default_registry();
    telemetry::CounterFamily* requests = nullptr;
    telemetry::HistogramFamily* latency = nullptr;
    telemetry::CounterFamily* client_errors = nullptr;
};

}  // namespace detail

namespace {

using detail::ServiceState;

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::move(fallback);
}

std::string_view code_class(int status) {
    static constexpr std::string_view kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    int i = status / 100 - 1;
    return i >= 0 && i < 5 ? kClasses[i] : std::string_view("5xx");
}

// Wraps business code with tracing, correlation ids, problem responses, metrics and logs.
net::Handler wrap(std::shared_ptr<ServiceState> st, std::string route_name, const std::string& method,
                  RouteHandler h) {
    // The route's series are looked up once here, not per request; only a HEAD answered by a
    // GET route (another method label) takes the family's lookup.
    std::array<telemetry::Counter*, 5> by_class{};
    for (int c = 0; c < 5; ++c)
        by_class[c] = &st->requests->labels({route_name, method, code_class((c + 1) * 100)});
    telemetry::Histogram* latency = &st->latency->labels({route_name});
    return [st, route_name = std::move(route_name), method, by_class, latency, h = std::move(h)](
               Request& req, Response& res) -> Task<void> {
        auto start = std::chrono::steady_clock::now();
        auto parent = telemetry::TraceContext::parse_traceparent(req.headers.get("traceparent").value_or(""));
        telemetry::Span span(req.method + " " + route_name, telemetry::SpanKind::server, parent);
        req.headers.set("traceparent", span.context().traceparent());
        std::string request_id(req.headers.get("x-request-id").value_or(""));
        if (request_id.empty() || request_id.size() > 128) {
            request_id = core::new_request_id();
            req.headers.set("X-Request-Id", request_id);
        }
        auto trace_hex = span.context().trace_id.hex();
        auto span_hex = span.context().span_id.hex();
        telemetry::LogContext ctx{trace_hex, span_hex, request_id};
        try {
            res = co_await h(req);
        } catch (const HttpError& e) {
            res.clear();
            res.problem(e.status(), e.title(), e.what(), req.path());
        } catch (const std::exception& e) {
            telemetry::error("handler failed", {{"route", route_name}, {"error", e.what()}}, &ctx);
            res.clear();
            res.problem(500, "Internal Server Error", "the request could not be handled", req.path());
        }
        res.headers.set("X-Request-Id", request_id);
        auto elapsed = std::chrono::steady_clock::now() - start;
        int cls = res.status / 100 - 1;
        if (req.method == method && cls >= 0 && cls < 5) {
            by_class[cls]->inc();
        } else {
            st->requests->labels({route_name, req.method, code_class(res.status)}).inc();
        }
        latency->observe(elapsed);
        span.set_attribute("http.status_code", std::to_string(res.status));
        if (res.status >= 500) span.set_status(telemetry::SpanStatus::error);
        span.end();
        telemetry::info("request",
                        {{"method", req.method},
                         {"path", req.path()},
                         {"route", route_name},
                         {"status", res.status},
                         {"duration_ms", std::chrono::duration<double, std::milli>(elapsed).count()},
                         {"remote", req.remote_address}},
                        &ctx);
    };
}

Task<void> registration_loop(std::shared_ptr<ServiceState> st, discovery::RegistryClient client,
                             discovery::InstanceInfo self, std::chrono::milliseconds heartbeat,
                             std::shared_ptr<std::atomic<bool>> stop) {
    bool registered = false;
    auto backoff = std::chrono::milliseconds(200);
    while (!stop->load()) {
        if (!registered) {
            auto ec = co_await client.register_instance(self);
            if (stop->load()) break;
            if (ec) {
                telemetry::warn("registration failed, retrying",
                                {{"registry", client.endpoint().to_string()}, {"error", ec.message()}});
                co_await net::sleep_for(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
                continue;
            }
            registered = true;
            backoff = std::chrono::milliseconds(200);
            telemetry::info("registered", {{"registry", client.endpoint().to_string()}, {"port", self.port}});
        }
        co_await net::sleep_for(heartbeat);
        if (stop->load()) break;
        auto ec = co_await client.heartbeat(self.service, self.id);
        if (ec == discovery::errc::unknown_instance) {
            telemetry::warn("registry forgot this instance; registering again");
            registered = false;
        } else if (ec) {
            telemetry::warn("heartbeat failed", {{"error", ec.message()}});
        }
    }
}

}  // namespace

// ---------------------------------------------------------------- Client

Task<Response> Client::post(const Request& incoming, std::string target, std::string body,
                            std::string content_type) {
    auto out = net::make_request("POST", std::move(target), std::move(body), content_type);
    co_return co_await call(incoming, std::move(out), timeout_);
}

Task<Response> Client::put(const Request& incoming, std::string target, std::string body,
                           std::string content_type) {
    auto out = net::make_request("PUT", std::move(target), std::move(body), content_type);
    co_return co_await call(incoming, std::move(out), timeout_);
}

Task<Response> Client::get(const Request& incoming, std::string target) {
    auto out = net::make_request("GET", std::move(target));
    co_return co_await call(incoming, std::move(out), timeout_);
}

Task<Response> Client::del(const Request& incoming, std::string target) {
    auto out = net::make_request("DELETE", std::move(target));
    co_return co_await call(incoming, std::move(out), timeout_);
}

Task<Response> Client::call(const Request& incoming, Request out, std::chrono::milliseconds timeout) {
    auto& disco = state_->discovery;
    if (!disco) throw HttpError(503, "Service Unavailable", "no registry configured to find " + service_);
    auto parent =
        telemetry::TraceContext::parse_traceparent(incoming.headers.get("traceparent").value_or(""));
    telemetry::Span span(out.method + " " + service_, telemetry::SpanKind::client, parent);
    out.headers.set("traceparent", span.context().traceparent());
    if (auto rid = incoming.headers.get("x-request-id")) out.headers.set("X-Request-Id", *rid);

    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!disco->instances(service_)->loaded)
        co_await disco->ready(service_, std::min(timeout, std::chrono::milliseconds(2000)));
    std::vector<std::string> tried;
    Response res;
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto target = disco->pick(service_, tried);
        if (!target) {
            state_->client_errors->labels({service_, "no_instance"}).inc();
            span.set_status(telemetry::SpanStatus::error);
            throw HttpError(503, "Service Unavailable", "no healthy instance of " + service_);
        }
        discovery::InFlight guard(target->state);
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        span.set_attribute("peer.instance", target->info.id);
        auto ec = co_await net::send(target->info.endpoint(), out, res, left);
        if (!ec) {
            span.set_attribute("http.status_code", std::to_string(res.status));
            if (res.status >= 500) span.set_status(telemetry::SpanStatus::error);
            co_return res;
        }
        tried.push_back(target->info.id);
        if (net::retry_on_another_instance(ec, out.method)) {
            state_->client_errors->labels({service_, "connect"}).inc();
            continue;
        }
        span.set_status(telemetry::SpanStatus::error);
        if (ec == net::errc::timeout) {
            state_->client_errors->labels({service_, "timeout"}).inc();
            throw HttpError(504, "Gateway Timeout", service_ + " did not answer in time");
        }
        state_->client_errors->labels({service_, "failure"}).inc();
        throw HttpError(502, "Bad Gateway", service_ + " failed: " + ec.message());
    }
    span.set_status(telemetry::SpanStatus::error);
    throw HttpError(502, "Bad Gateway", service_ + " could not be reached");
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
}

Service::~Service() = default;

void Service::route(std::string method, std::string_view pattern, RouteHandler h,
                    std::size_t max_body_bytes) {
    state_->routes.push_back({std::move(method), std::string(pattern), std::move(h), max_body_bytes});
}
void Service::get(std::string_view p, RouteHandler h) { route("GET", p, std::move(h)); }
void Service::post(std::string_view p, RouteHandler h, std::size_t m) { route("POST", p, std::move(h), m); }
void Service::put(std::string_view p, RouteHandler h, std::size_t m) { route("PUT", p, std::move(h), m); }
void Service::del(std::string_view p, RouteHandler h) { route("DELETE", p, std::move(h)); }

Client Service::client(std::string service) { return Client(state_, std::move(service)); }
void Service::set_readiness(std::function<bool()> ready) { state_->readiness = std::move(ready); }
void Service::set_metadata(std::string key, std::string value) {
    state_->metadata[std::move(key)] = std::move(value);
}
void Service::on_start(std::function<void()> fn) { state_->on_start.push_back(std::move(fn)); }
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
    app.add_option("--registry", registry, "registry URL (http://host:port)");
    app.add_option("--listen", listen, "address to listen on (host:port, port 0 = any)");
    app.add_option("--instance-id", st.instance_id, "instance id");
    app.add_option("--data-dir", st.data_dir, "directory for this service's data");
    app.add_option("--threads", threads_text, "io threads (0 = one per core)");
    app.add_option("--log-level", log_level, "debug, info, warn or error");
    app.add_option("--heartbeat", heartbeat_text, "heartbeat interval");
    app.add_option("--ttl", ttl_text, "registration TTL");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    auto level = telemetry::parse_level(log_level);
    auto heartbeat = core::parse_duration(heartbeat_text);
    auto ttl = core::parse_duration(ttl_text);
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
    else if (!listen_ep)
        flag_error = "--listen must be host:port";
    else if (!registry.empty() && !registry_ep)
        flag_error = "--registry must be http://host:port";
    if (!flag_error.empty()) {
        std::fprintf(stderr, "%s: %s\n", st.name.c_str(), flag_error.c_str());
        return 2;
    }
    telemetry::init_logging(st.name, st.instance_id, *level);

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
    for (auto& r : st.routes) {
        router.add(r.method, r.pattern, wrap(state_, r.pattern, r.method, r.handler), r.max_body);
    }
    router.add("GET", "/health/live", [](Request&, Response& res) -> Task<void> {
        res.json(200, R"({"status":"pass"})");
        co_return;
    });
    router.add("GET", "/health/ready", [this](Request&, Response& res) -> Task<void> {
        bool ok = state_->ready.load() && (!state_->readiness || state_->readiness());
        res.json(ok ? 200 : 503, ok ? R"({"status":"pass"})" : R"({"status":"fail"})");
        co_return;
    });
    router.add("GET", "/metrics", [this](Request&, Response& res) -> Task<void> {
        res.status = 200;
        res.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        res.body = state_->metrics->render();
        co_return;
    });

    net::ServerSettings ss;
    ss.address = listen_ep->host;
    ss.port = listen_ep->port;
    net::Server server(runtime, ss, router.handler(), router.body_limit_fn());
    try {
        server.start();
    } catch (const std::exception& e) {
        telemetry::error("cannot listen", {{"listen", listen}, {"error", e.what()}});
        return 1;
    }
    st.ready = true;
    telemetry::info("listening", {{"address", ss.address}, {"port", server.port()}});

    auto stop = std::make_shared<std::atomic<bool>>(false);
    std::optional<discovery::RegistryClient> reg;
    discovery::InstanceInfo self;
    if (registry_ep) {
        reg.emplace(*registry_ep);
        self.service = st.name;
        self.id = st.instance_id;
        self.address = ss.address == "0.0.0.0" ? "127.0.0.1" : ss.address;
        self.port = server.port();
        self.metadata = st.metadata;
        self.ttl = *ttl;
        net::spawn(runtime.executor(0), registration_loop(state_, *reg, self, *heartbeat, stop),
                   "registration");
    }

    // SIGTERM: leave discovery first (deregister), then stop accepting and drain.
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        if (stop->exchange(true)) return;
        st.ready = false;
        telemetry::info("shutting down", {{"signal", sig}});
        auto finish = [&] { server.shutdown([&runtime] { runtime.stop(); }); };
        if (!reg) {
            finish();
            return;
        }
        net::spawn(
            runtime.executor(0),
            [](discovery::RegistryClient client, discovery::InstanceInfo self,
               std::function<void()> finish) -> Task<void> {
                auto ec = co_await client.deregister(self.service, self.id);
                if (ec)
                    telemetry::warn("deregistration failed", {{"error", ec.message()}});
                else
                    telemetry::info("deregistered");
                finish();
            }(*reg, self, finish),
            "deregistration");
    });
    runtime.run();
    if (st.discovery) st.discovery->stop();
    telemetry::info("stopped");
    return 0;
}

}  // namespace plexus
