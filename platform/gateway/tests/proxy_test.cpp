// The gateway in process: a net::Server running Gateway::handler() in front of upstream servers
// on loopback (port 0), driven by net::send. Every wait is bounded by kWait.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "plexus/core/settings.hpp"
#include "plexus/core/yaml_json.hpp"
#include "plexus/discovery/discovery.hpp"
#include "plexus/gateway/filter.hpp"
#include "plexus/gateway/gateway.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/dev_ca.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/net/tls.hpp"
#include "plexus/net/tls_testing.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace gateway = plexus::gateway;
namespace net = plexus::net;
namespace telemetry = plexus::telemetry;
namespace discovery = plexus::discovery;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using namespace plexus::net::testing;

namespace {

// The echo upstream's answer: "METHOD TARGET\n", then "name: value\n" per header, "\n", the body.
std::optional<std::string> echoed_header(const std::string& body, std::string_view name) {
    std::string_view rest = body;
    rest.remove_prefix(std::min(rest.size(), rest.find('\n') + 1));
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        auto line = rest.substr(0, nl);
        if (line.empty()) break;
        auto colon = line.find(": ");
        if (colon != std::string_view::npos && net::iequals(line.substr(0, colon), name)) {
            return std::string(line.substr(colon + 2));
        }
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    return std::nullopt;
}

std::string first_line(const std::string& body) { return body.substr(0, body.find('\n')); }

std::string echoed_body(const std::string& body) {
    auto end = body.find("\n\n");
    return end == std::string::npos ? std::string() : body.substr(end + 2);
}

// Collects log lines (the sink is process-wide; tests in this file run one at a time).
struct LogCapture {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::vector<std::string> matching(std::string_view needle) {
        std::lock_guard lock(mutex);
        std::vector<std::string> out;
        for (const auto& l : lines) {
            if (l.find(needle) != std::string::npos) out.push_back(l);
        }
        return out;
    }
};

class TempFile {
  public:
    TempFile() {
        static std::atomic<int> counter{0};
        path_ = (std::filesystem::temp_directory_path() /
                 ("plexus-gateway-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".yaml"))
                    .string();
    }
    ~TempFile() { std::filesystem::remove(path_); }
    // Replaces the content (write to a temporary, then rename: the watcher never sees half a file).
    void write(const std::string& text) {
        auto tmp = path_ + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << text;
        }
        std::filesystem::rename(tmp, path_);
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

gateway::GatewaySettings with_routes(std::vector<gateway::RouteSettings> routes, bool trust = false) {
    gateway::GatewaySettings s;
    s.routes = std::move(routes);
    s.trust_forwarded_for = trust;
    return s;
}

gateway::GatewaySettings with_file(std::string path, std::chrono::milliseconds watch_interval = 1s) {
    gateway::GatewaySettings s;
    s.routes_file = std::move(path);
    s.watch_interval = watch_interval;
    return s;
}

std::string static_route(std::string name, std::string prefix, std::string upstream, std::string extra = {}) {
    return "  - name: " + name + "\n    match:\n      prefix: " + prefix + "\n    upstreams: [\"" + upstream +
           "\"]\n" + extra;
}

class ProxyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        telemetry::set_log_sink([this](std::string_view line) {
            std::lock_guard lock(logs_.mutex);
            logs_.lines.emplace_back(line);
        });
        runtime_ = std::make_unique<net::Runtime>(2);
        runner_ = std::thread([rt = runtime_.get()] { rt->run(); });
        start_upstream();
    }

    void TearDown() override {
        runtime_->stop();
        runner_.join();
        servers_.clear();
        gateways_.clear();
        disco_.reset();
        runtime_.reset();
        telemetry::set_log_sink({});
    }

    void start_upstream() {
        router_.add("*", "/{path...}", [this](net::Request& req, net::Response& res) -> net::Task<void> {
            hits_.fetch_add(1);
            if (req.method == "POST") posts_.fetch_add(1);
            std::string body = req.method + " " + req.target + "\n";
            for (const auto& h : req.headers) body += std::string(h.name()) + ": " + h.value + "\n";
            body += "\n" + req.body;
            res.text(200, std::move(body));
            res.headers.add("X-Up", "yes");
            res.headers.add("Keep-Alive", "timeout=5");
            res.headers.add("Proxy-Authenticate", "Basic");
            co_return;
        });
        router_.add("GET", "/status/{code}",
                    [this](net::Request& req, net::Response& res) -> net::Task<void> {
                        hits_.fetch_add(1);
                        res.text(std::stoi(std::string(req.param("code"))), "as asked");
                        co_return;
                    });
        router_.add("GET", "/slow-counted", [this](net::Request& req, net::Response& res) -> net::Task<void> {
            hits_.fetch_add(1);
            co_await net::sleep_for(3s);
            res.text(200, "late");
        });
        router_.add("GET", "/slow", [](net::Request& req, net::Response& res) -> net::Task<void> {
            co_await net::sleep_for(3s);
            res.text(200, "late");
        });
        upstream_ = start_server(router_.handler(), router_.body_limit_fn());
    }

    std::uint16_t start_server(net::Handler handler, net::BodyLimit limit = {}, bool defer_body = false) {
        net::ServerSettings settings;
        settings.defer_body = defer_body;
        servers_.push_back(
            std::make_unique<net::Server>(*runtime_, settings, std::move(handler), std::move(limit)));
        servers_.back()->start();
        return servers_.back()->port();
    }

    std::string upstream_address() const { return "127.0.0.1:" + std::to_string(upstream_); }

    // Route "pair": every path, to a closed port first, then to the upstream.
    gateway::RouteSettings pair_route(const ClosedPort& closed) const {
        gateway::RouteSettings r;
        r.name = "pair";
        r.prefix = "/";
        r.upstreams = {closed.address(), upstream_address()};
        return r;
    }

    // Starts a gateway and its server; returns the server's port.
    std::uint16_t start_gateway(gateway::GatewaySettings settings, discovery::Discovery* disco = nullptr) {
        gateways_.push_back(std::make_unique<gateway::Gateway>(std::move(settings), disco, metrics_));
        auto& gw = *gateways_.back();
        auto port = start_server(gw.handler(), {}, true);
        admin_ports_[port] = start_server(gw.admin_handler());
        return port;
    }

    // The admin listener of the gateway whose public port is `gw`.
    std::uint16_t admin(std::uint16_t gw) const { return admin_ports_.at(gw); }

    std::uint16_t start_gateway_with(std::string routes_yaml, bool trust = false) {
        auto routes = gateway::parse_routes(routes_yaml, "test-routes.yaml");
        return start_gateway(with_routes(std::move(routes), trust));
    }

    plexus::Result<net::Response> send(std::uint16_t port, net::Request req,
                                       std::chrono::milliseconds timeout = 5s) {
        auto promise = std::make_shared<std::promise<plexus::Result<net::Response>>>();
        auto future = promise->get_future();
        net::spawn(runtime_->executor(0),
                   deliver(send_owned({"127.0.0.1", port}, std::move(req), timeout), promise),
                   "test request");
        if (future.wait_for(kWait) != std::future_status::ready)
            throw std::runtime_error("request timed out");
        return future.get();
    }

    net::Response call(std::uint16_t port, std::string method, std::string target,
                       std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {},
                       std::string body = {}) {
        net::Request req;
        req.method = std::move(method);
        req.target = std::move(target);
        for (const auto& [n, v] : headers) req.headers.add(n, v);
        req.body = std::move(body);
        auto r = send(port, std::move(req));
        if (!r) throw std::runtime_error("request failed: " + r.error().message());
        return std::move(*r);
    }

    std::string metric_line(std::string_view prefix) {
        auto text = metrics_.render();
        auto at = text.find(prefix);
        if (at == std::string::npos) return "(absent)";
        return text.substr(at, text.find('\n', at) - at);
    }

    telemetry::Registry metrics_;
    LogCapture logs_;
    std::unique_ptr<net::Runtime> runtime_;
    std::thread runner_;
    net::Router router_;
    std::uint16_t upstream_ = 0;
    std::atomic<int> hits_{0};
    std::atomic<int> posts_{0};
    std::vector<std::unique_ptr<gateway::Gateway>> gateways_;
    std::map<std::uint16_t, std::uint16_t> admin_ports_;  // public port → admin port
    std::vector<std::unique_ptr<net::Server>> servers_;
    std::unique_ptr<discovery::Discovery> disco_;
};

}  // namespace

TEST_F(ProxyTest, TerminatesTlsAndForwardsInPlainTextAsHttps) {
    std::string dir = (std::filesystem::temp_directory_path() / "plexus-gateway-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    auto ca = net::ensure_dev_ca(dir);
    gateways_.push_back(std::make_unique<gateway::Gateway>(
        with_routes(gateway::parse_routes(
            "routes:\n" + static_route("api", "/api/", upstream_address(), "    strip_prefix: /api\n"),
            "test-routes.yaml")),
        nullptr, metrics_));
    net::ServerSettings settings;
    settings.defer_body = true;
    settings.tls = std::make_shared<net::ServerTls>(ca.cert, ca.key);
    servers_.push_back(std::make_unique<net::Server>(*runtime_, settings, gateways_.back()->handler()));
    servers_.back()->start();

    TlsClientOptions options;
    options.ca_file = ca.ca_cert;
    options.host = "localhost";
    TlsClient client(servers_.back()->port(), options);
    ASSERT_TRUE(client.handshake()) << client.error();
    auto res = client.get("/api/items/1");
    ASSERT_EQ(status_of(res), 200) << res;
    auto body = res.substr(res.find("\r\n\r\n") + 4);
    EXPECT_EQ(first_line(body), "GET /items/1");
    EXPECT_EQ(echoed_header(body, "X-Forwarded-Proto"), "https");
    EXPECT_EQ(echoed_header(body, "X-Forwarded-Host"), "localhost");
    // A body the gateway reads itself (deferred), on the same connection.
    ASSERT_TRUE(
        client.send("POST /api/orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7\r\n\r\npayload"));
    auto posted = client.read_response();
    ASSERT_EQ(status_of(posted), 200) << posted;
    EXPECT_EQ(echoed_body(posted.substr(posted.find("\r\n\r\n") + 4)), "payload");
    std::filesystem::remove_all(dir);
}

TEST_F(ProxyTest, ProxiesToAStaticUpstreamWithForwardingHeaders) {
    auto gw = start_gateway_with("routes:\n" + static_route("api", "/api/", upstream_address(),
                                                            "    strip_prefix: /api\n    timeout: 3s\n"));
    const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    auto res = call(gw, "GET", "/api/items/1?x=2",
                    {{"Host", "shop.local:8080"},
                     {"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"},
                     {"Keep-Alive", "timeout=1"},
                     {"Proxy-Authorization", "Basic c2VjcmV0"},
                     {"X-Custom", "kept"}});
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(first_line(res.body), "GET /items/1?x=2");

    // What the upstream received.
    EXPECT_EQ(echoed_header(res.body, "X-Custom"), "kept");
    EXPECT_EQ(echoed_header(res.body, "X-Forwarded-For"), "127.0.0.1");
    EXPECT_EQ(echoed_header(res.body, "X-Forwarded-Proto"), "http");
    EXPECT_EQ(echoed_header(res.body, "X-Forwarded-Host"), "shop.local:8080");
    EXPECT_EQ(echoed_header(res.body, "Host"), upstream_address());
    EXPECT_EQ(echoed_header(res.body, "X-Plexus-Original-Path"), "/api/items/1?x=2");
    EXPECT_FALSE(echoed_header(res.body, "Keep-Alive"));
    EXPECT_FALSE(echoed_header(res.body, "Proxy-Authorization"));
    auto deadline = echoed_header(res.body, "X-Plexus-Deadline-Ms");
    ASSERT_TRUE(deadline);
    EXPECT_LE(std::stoi(*deadline), 3000);
    EXPECT_GT(std::stoi(*deadline), 0);
    auto upstream_tp = echoed_header(res.body, "traceparent");
    ASSERT_TRUE(upstream_tp);
    EXPECT_EQ(upstream_tp->substr(0, 35), "00-" + trace);        // the trace continues...
    EXPECT_NE(upstream_tp->substr(36, 16), "00f067aa0ba902b7");  // ...with the gateway's span as parent

    // What the client received.
    auto rid = res.headers.get("X-Request-Id");
    ASSERT_TRUE(rid);
    EXPECT_EQ(rid->size(), 32u);
    EXPECT_EQ(echoed_header(res.body, "X-Request-Id"), std::string(*rid));
    EXPECT_EQ(res.headers.get("X-Up"), "yes");
    EXPECT_FALSE(res.headers.contains("Keep-Alive"));
    EXPECT_FALSE(res.headers.contains("Proxy-Authenticate"));

    EXPECT_EQ(metric_line("plexus_gateway_requests_total{route=\"api\",code_class=\"2xx\"}"),
              "plexus_gateway_requests_total{route=\"api\",code_class=\"2xx\"} 1");
    EXPECT_EQ(metric_line("plexus_gateway_request_duration_seconds_count{route=\"api\"}"),
              "plexus_gateway_request_duration_seconds_count{route=\"api\"} 1");

    auto access = logs_.matching(R"("msg":"access")");
    ASSERT_EQ(access.size(), 1u);
    const auto& line = access[0];
    for (std::string field : std::vector<std::string>{
             R"("method":"GET")", R"("path":"/api/items/1")", R"("status":200)", R"("route":"api")",
             R"("bytes_in":0)", R"("remote":"127.0.0.1")", R"("upstream":")" + upstream_address() + "\"",
             R"("trace_id":")" + trace + "\"", R"("request_id":")" + std::string(*rid) + "\"",
             R"("duration_ms":)"}) {
        EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
    }
    EXPECT_EQ(logs_.matching(R"("msg":"span")").size(), 2u);  // the server span and the upstream call
}

TEST_F(ProxyTest, PropagatesASaneRequestIdAndForwardsTheBody) {
    auto gw = start_gateway_with("routes:\n" + static_route("api", "/", upstream_address()));
    auto res = call(gw, "POST", "/orders", {{"X-Request-Id", "client-id-1"}, {"Content-Type", "text/plain"}},
                    "hello");
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(first_line(res.body), "POST /orders");
    EXPECT_EQ(echoed_body(res.body), "hello");
    EXPECT_EQ(echoed_header(res.body, "X-Request-Id"), "client-id-1");
    EXPECT_EQ(res.headers.get("X-Request-Id"), "client-id-1");
    EXPECT_FALSE(echoed_header(res.body, "X-Plexus-Original-Path"));  // not rewritten
}

TEST_F(ProxyTest, NoRouteIs404Problem) {
    auto gw = start_gateway_with("routes:\n" + static_route("api", "/api", upstream_address()));
    auto res = call(gw, "GET", "/nothing/here");
    EXPECT_EQ(res.status, 404);
    EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json");
    EXPECT_TRUE(res.headers.contains("X-Request-Id"));
    EXPECT_EQ(hits_.load(), 0);
    EXPECT_EQ(metric_line("plexus_gateway_requests_total{route=\"-\",code_class=\"4xx\"}"),
              "plexus_gateway_requests_total{route=\"-\",code_class=\"4xx\"} 1");

    auto dots = call(gw, "GET", "/api/../admin");
    EXPECT_EQ(dots.status, 400);
    auto encoded = call(gw, "GET", "/api/%2E%2e/admin");
    EXPECT_EQ(encoded.status, 400);
    EXPECT_EQ(hits_.load(), 0);
}

TEST_F(ProxyTest, ClosedUpstreamIs502) {
    ClosedPort closed;
    auto gw = start_gateway_with("routes:\n" + static_route("dead", "/", closed.address()));
    auto res = call(gw, "GET", "/x");
    EXPECT_EQ(res.status, 502) << res.body;
    EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json");
    EXPECT_TRUE(res.headers.contains("X-Request-Id"));
    // The default policy tries twice; with no other instance, the same one again.
    EXPECT_EQ(metric_line("plexus_gateway_upstream_errors_total{route=\"dead\",kind=\"connect_failure\"}"),
              "plexus_gateway_upstream_errors_total{route=\"dead\",kind=\"connect_failure\"} 2");
}

TEST_F(ProxyTest, SlowUpstreamIs504WithinTheRouteTimeout) {
    auto gw = start_gateway_with("routes:\n" +
                                 static_route("slow", "/", upstream_address(), "    timeout: 200ms\n"));
    auto t0 = Clock::now();
    auto res = call(gw, "GET", "/slow");  // answers 200 after 3 s: a 504 means the timeout cut it
    EXPECT_EQ(res.status, 504) << res.body;
    EXPECT_EQ(res.headers.get("Content-Type"), "application/problem+json");
    EXPECT_GE(Clock::now() - t0, 150ms);
    EXPECT_EQ(metric_line("plexus_gateway_upstream_errors_total{route=\"slow\",kind=\"timeout\"}"),
              "plexus_gateway_upstream_errors_total{route=\"slow\",kind=\"timeout\"} 1");
}

TEST_F(ProxyTest, IdempotentRequestIsRetriedOnTheOtherUpstream) {
    ClosedPort closed;
    auto r = pair_route(closed);  // round robin starts with the closed one
    auto gw = start_gateway(with_routes({r}));
    for (int i = 0; i < 4; ++i) {
        auto res = call(gw, i % 2 ? "GET" : "PUT", "/item");
        EXPECT_EQ(res.status, 200) << i << ": " << res.body;
    }
    EXPECT_EQ(hits_.load(), 4);
    // At least the first request met the refusing upstream first (round robin starts there).
    auto refused =
        metric_line("plexus_gateway_upstream_errors_total{route=\"pair\",kind=\"connect_failure\"}");
    auto count = refused.substr(refused.rfind(' ') + 1);
    EXPECT_GE(std::atoi(count.c_str()), 1) << refused;
    EXPECT_EQ(metric_line("plexus_gateway_requests_total{route=\"pair\",code_class=\"2xx\"}"),
              "plexus_gateway_requests_total{route=\"pair\",code_class=\"2xx\"} 4");
}

TEST_F(ProxyTest, PostIsNotRetried) {
    ClosedPort closed;
    auto r = pair_route(closed);
    auto gw = start_gateway(with_routes({r}));
    std::vector<int> statuses;
    for (int i = 0; i < 2; ++i) statuses.push_back(call(gw, "POST", "/orders", {}, "x").status);
    std::sort(statuses.begin(), statuses.end());
    EXPECT_EQ(statuses, (std::vector<int>{200, 502}));
    EXPECT_EQ(posts_.load(), 1);
}

TEST_F(ProxyTest, RetryCanBeTurnedOff) {
    ClosedPort closed;
    auto r = pair_route(closed);
    r.call.retry.attempts = 1;
    auto gw = start_gateway(with_routes({r}));
    std::vector<int> statuses;
    for (int i = 0; i < 2; ++i) statuses.push_back(call(gw, "GET", "/x").status);
    std::sort(statuses.begin(), statuses.end());
    EXPECT_EQ(statuses, (std::vector<int>{200, 502}));
}

TEST_F(ProxyTest, BodyLimitIsPerRoute) {
    auto gw = start_gateway_with(
        "routes:\n" + static_route("small", "/small", upstream_address(), "    max_body_bytes: 10\n") +
        static_route("big", "/big", upstream_address()));
    EXPECT_EQ(call(gw, "POST", "/small", {}, std::string(11, 'x')).status, 413);
    EXPECT_EQ(call(gw, "POST", "/small", {}, std::string(10, 'x')).status, 200);
    EXPECT_EQ(call(gw, "POST", "/big", {}, std::string(1000, 'x')).status, 200);
}

TEST_F(ProxyTest, ForwardedForIsTrustedOnlyWhenConfigured) {
    auto routes = "routes:\n" + static_route("api", "/", upstream_address());
    auto untrusted = start_gateway_with(routes, false);
    auto trusted = start_gateway_with(routes, true);

    auto a =
        call(untrusted, "GET", "/", {{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "https"}});
    ASSERT_EQ(a.status, 200);
    EXPECT_EQ(echoed_header(a.body, "X-Forwarded-For"), "127.0.0.1");
    EXPECT_EQ(echoed_header(a.body, "X-Forwarded-Proto"), "http");

    auto b = call(trusted, "GET", "/", {{"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "https"}});
    ASSERT_EQ(b.status, 200);
    EXPECT_EQ(echoed_header(b.body, "X-Forwarded-For"), "203.0.113.9, 127.0.0.1");
    EXPECT_EQ(echoed_header(b.body, "X-Forwarded-Proto"), "https");
}

TEST_F(ProxyTest, AdminEndpointsAreOnTheAdminListenerOnly) {
    auto gw = start_gateway_with("routes:\n" + static_route("everything", "/", upstream_address()));
    // The public port answers the health probes itself, before any route.
    EXPECT_EQ(call(gw, "GET", "/health/live").status, 200);
    auto ready = call(gw, "GET", "/health/ready");
    EXPECT_EQ(ready.status, 200);
    EXPECT_NE(ready.body.find(R"("routes":1)"), std::string::npos) << ready.body;
    EXPECT_EQ(call(gw, "GET", "/-/health/ready").status, 200);
    // The rest of /-/ is reserved there; /metrics is an ordinary path the routes may take.
    EXPECT_EQ(call(gw, "GET", "/-/routes").status, 404);
    EXPECT_EQ(call(gw, "GET", "/-/resilience").status, 404);
    EXPECT_EQ(call(gw, "GET", "/-/metrics").status, 404);
    EXPECT_EQ(call(gw, "GET", "/metrics").status, 200);
    EXPECT_EQ(first_line(call(gw, "GET", "/metrics").body), "GET /metrics");  // the upstream's echo
    EXPECT_EQ(hits_.load(), 2);

    auto routes = call(admin(gw), "GET", "/-/routes");
    EXPECT_EQ(routes.status, 200);
    EXPECT_NE(routes.body.find(R"("name":"everything")"), std::string::npos) << routes.body;
    auto metrics = call(admin(gw), "GET", "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_EQ(metrics.headers.get("Content-Type"), telemetry::kPrometheusContentType);
    EXPECT_NE(metrics.body.find("plexus_gateway_requests_total{route=\"everything\",code_class=\"2xx\"} 2"),
              std::string::npos)
        << metrics.body;
    EXPECT_EQ(call(admin(gw), "GET", "/health/ready").status, 200);
    EXPECT_EQ(call(admin(gw), "POST", "/metrics").status, 405);
    EXPECT_EQ(call(admin(gw), "GET", "/-/unknown").status, 404);
    EXPECT_EQ(call(admin(gw), "GET", "/user").status, 404);  // no routing on the admin listener
    EXPECT_EQ(hits_.load(), 2);
}

TEST_F(ProxyTest, ReloadWithABrokenFileKeepsTheOldRoutes) {
    TempFile file;
    file.write("routes:\n" + static_route("v1", "/v1", upstream_address()));
    gateways_.push_back(std::make_unique<gateway::Gateway>(with_file(file.path()), nullptr, metrics_));
    auto& gw = *gateways_.back();
    auto port = start_server(gw.handler(), {}, true);
    EXPECT_EQ(call(port, "GET", "/v1/a").status, 200);

    file.write(
        "routes:\n"
        "  - name: v1\n"
        "    match: {prefix: /v1}\n"
        "    upstreams: [\"" +
        upstream_address() +
        "\"]\n"
        "    bogus: 1\n");
    auto status = gw.reload();
    EXPECT_FALSE(status.ok);
    EXPECT_EQ(status.error, file.path() + ":5: routes[0].bogus: unknown key");
    EXPECT_EQ(status.routes, 1u);
    EXPECT_EQ(call(port, "GET", "/v1/a").status, 200);  // the old table still serves
    auto rejected = logs_.matching("routes rejected");
    ASSERT_EQ(rejected.size(), 1u);
    EXPECT_NE(rejected[0].find(":5: routes[0].bogus: unknown key"), std::string::npos) << rejected[0];

    file.write("routes:\n" + static_route("v2", "/v2", upstream_address()));
    status = gw.reload();
    EXPECT_TRUE(status.ok) << status.error;
    EXPECT_EQ(call(port, "GET", "/v2/a").status, 200);
    EXPECT_EQ(call(port, "GET", "/v1/a").status, 404);
}

TEST_F(ProxyTest, AConfigServerOverlayReplacesTheFilesRoutesAndABrokenOneIsRefused) {
    TempFile file;
    file.write("routes:\n" + static_route("v1", "/v1", upstream_address()));
    gateways_.push_back(std::make_unique<gateway::Gateway>(with_file(file.path()), nullptr, metrics_));
    auto& gw = *gateways_.back();
    auto port = start_server(gw.handler(), {}, true);
    auto doc = [](const std::string& yaml) {
        return plexus::core::yaml_to_json(yaml, "overlay").as_object();
    };

    auto status =
        gw.set_overlay(doc("routes:\n" + static_route("v2", "/v2", upstream_address())), "server v7");
    ASSERT_TRUE(status.ok) << status.error;
    EXPECT_EQ(call(port, "GET", "/v2/a").status, 200);
    EXPECT_EQ(call(port, "GET", "/v1/a").status, 404);  // the list is replaced, not merged

    status = gw.set_overlay(doc("routes:\n  - name: broken\n    match: {prefix: /b}\n"), "server v8");
    EXPECT_FALSE(status.ok);
    EXPECT_NE(status.error.find("server v8"), std::string::npos) << status.error;
    EXPECT_NE(status.error.find("routes[0]"), std::string::npos) << status.error;
    EXPECT_EQ(call(port, "GET", "/v2/a").status, 200);  // refused: the previous overlay stays

    // A reload of the file keeps the overlay on top; an empty overlay leaves the file's routes.
    file.write("routes:\n" + static_route("v3", "/v3", upstream_address()));
    ASSERT_TRUE(gw.reload().ok);
    EXPECT_EQ(call(port, "GET", "/v2/a").status, 200);
    ASSERT_TRUE(gw.set_overlay({}, "server v9").ok);
    EXPECT_EQ(call(port, "GET", "/v3/a").status, 200);
    EXPECT_EQ(call(port, "GET", "/v2/a").status, 404);
}

TEST_F(ProxyTest, AChangedFileIsReloadedByTheWatch) {
    TempFile file;
    file.write("routes:\n" + static_route("v1", "/v1", upstream_address()));
    gateways_.push_back(std::make_unique<gateway::Gateway>(with_file(file.path(), 20ms), nullptr, metrics_));
    auto& gw = *gateways_.back();
    auto port = start_server(gw.handler(), {}, true);
    gw.start_watching_file(runtime_->executor(1));

    file.write("routes:\n" + static_route("v1", "/v1", upstream_address()) +
               static_route("v2", "/v2", upstream_address()));
    EXPECT_TRUE(wait_until([&] { return call(port, "GET", "/v2/x").status == 200; }));

    file.write("routes: [oops");  // broken: rejected, the routes stay
    EXPECT_TRUE(wait_until([&] { return !logs_.matching("routes rejected").empty(); }));
    EXPECT_EQ(call(port, "GET", "/v2/x").status, 200);
}

TEST_F(ProxyTest, ServiceRoutesUseDiscovery) {
    // A registry stand-in answering the watch of "catalog" with the echo upstream, and of any
    // other service with no instance.
    net::Router registry;
    auto up_port = upstream_;
    registry.add(
        "GET", "/v1/services/{service}", [up_port](net::Request& req, net::Response& res) -> net::Task<void> {
            if (req.query_param("index").value_or("0") != "0") co_await net::sleep_for(100ms);
            std::string instances;
            if (req.param("service") == "catalog") {
                instances = R"({"service":"catalog","id":"catalog-1","address":"127.0.0.1","port":)" +
                            std::to_string(up_port) + "}";
            }
            res.json(200, R"({"index":1,"instances":[)" + instances + "]}");
        });
    auto registry_port = start_server(registry.handler());
    disco_ = std::make_unique<discovery::Discovery>(discovery::RegistryClient({"127.0.0.1", registry_port}),
                                                    runtime_->executor(1));
    auto routes = gateway::parse_routes(R"(
routes:
  - name: catalog
    match: {prefix: /catalog}
    service: catalog
    strip_prefix: /catalog
    timeout: 3s
  - name: ghost
    match: {prefix: /ghost}
    service: ghost
    timeout: 3s
)",
                                        "routes.yaml");
    auto gw = start_gateway(with_routes(routes), disco_.get());
    auto res = call(gw, "GET", "/catalog/products/1");
    EXPECT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(first_line(res.body), "GET /products/1");
    auto none = call(gw, "GET", "/ghost/x");
    EXPECT_EQ(none.status, 503) << none.body;
    EXPECT_EQ(metric_line("plexus_gateway_upstream_errors_total{route=\"ghost\",kind=\"no_instance\"}"),
              "plexus_gateway_upstream_errors_total{route=\"ghost\",kind=\"no_instance\"} 1");
    auto access = logs_.matching(R"("route":"catalog")");
    ASSERT_FALSE(access.empty());
    EXPECT_NE(access[0].find(R"("upstream":"catalog-1")"), std::string::npos) << access[0];
}

TEST_F(ProxyTest, ServiceRoutesNeedARegistry) {
    gateway::RouteSettings r;
    r.name = "catalog";
    r.prefix = "/";
    r.service = "catalog";
    EXPECT_THROW(gateway::Gateway(with_routes({r}), nullptr, metrics_), std::invalid_argument);
    TempFile file;
    file.write("routes:\n  - name: catalog\n    match: {prefix: /}\n    service: catalog\n");
    try {
        gateway::Gateway gw(with_file(file.path()), nullptr, metrics_);
        FAIL() << "constructed";
    } catch (const plexus::core::SettingsError& e) {
        EXPECT_NE(std::string(e.what()).find("has no registry"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------- resilience policies

namespace {

TEST_F(ProxyTest, FallbackAnswersWhenTheUpstreamFails) {
    ClosedPort closed;
    auto gw = start_gateway_with(
        "routes:\n" +
        static_route("down", "/", closed.address(), "    fallback: {status: 200, body: '{\"items\":[]}'}\n"));
    auto res = call(gw, "GET", "/anything");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, R"({"items":[]})");
    EXPECT_EQ(res.headers.get("x-plexus-fallback").value_or(""), "connect_failure");
    EXPECT_EQ(res.headers.get("content-type").value_or(""), "application/json");
}

TEST_F(ProxyTest, FaultInjectionAbortsWithoutCallingTheUpstream) {
    auto gw =
        start_gateway_with("routes:\n" + static_route("chaos", "/", upstream_address(),
                                                      "    fault: {abort: {percent: 100, status: 418}}\n"));
    auto res = call(gw, "GET", "/x");
    EXPECT_EQ(res.status, 418);
    EXPECT_NE(res.body.find("fault injected"), std::string::npos) << res.body;
    EXPECT_EQ(hits_.load(), 0);
    EXPECT_EQ(metric_line("plexus_gateway_upstream_errors_total{route=\"chaos\",kind=\"fault_abort\"}"),
              "plexus_gateway_upstream_errors_total{route=\"chaos\",kind=\"fault_abort\"} 1");
}

TEST_F(ProxyTest, FaultInjectionDelaysWithinTheTimeout) {
    auto gw = start_gateway_with(
        "routes:\n" + static_route("late", "/", upstream_address(),
                                   "    timeout: 100ms\n    fault: {delay: {percent: 100, duration: 1h}}\n"));
    auto res = call(gw, "GET", "/x");  // an answer at all: the delay was cut at the deadline
    EXPECT_EQ(res.status, 504);
    EXPECT_EQ(hits_.load(), 0);
}

TEST_F(ProxyTest, BreakerOpensOnFailuresAndFailsFastNamingTheUpstream) {
    auto gw = start_gateway_with(
        "routes:\n" + static_route("flaky", "/", upstream_address(), "    retry: {attempts: 1}\n") +
        "upstreams:\n  flaky:\n    circuit_breaker: {size: 4, minimum_calls: 4, "
        "failure_rate: 50, open_for: 1h}\n    outlier: {enabled: false}\n");
    for (int i = 0; i < 4; ++i) EXPECT_EQ(call(gw, "GET", "/status/500").status, 500);
    EXPECT_EQ(hits_.load(), 4);
    auto res = call(gw, "GET", "/status/200");
    EXPECT_EQ(res.status, 503);
    EXPECT_NE(res.body.find("circuit breaker of flaky is open"), std::string::npos) << res.body;
    EXPECT_EQ(res.headers.get("x-plexus-circuit").value_or(""), "flaky");
    EXPECT_EQ(hits_.load(), 4);  // failed fast: the upstream saw nothing
    EXPECT_EQ(metric_line("plexus_circuit_breaker_state{breaker=\"flaky\"}"),
              "plexus_circuit_breaker_state{breaker=\"flaky\"} 1");
    auto admin = call(this->admin(gw), "GET", "/-/resilience");
    EXPECT_EQ(admin.status, 200);
    EXPECT_NE(admin.body.find("\"state\":\"open\""), std::string::npos) << admin.body;
}

TEST_F(ProxyTest, ADeadInstanceIsEjectedWhileTheBreakerStaysClosed) {
    ClosedPort closed;
    auto r = pair_route(closed);
    r.upstream.breaker.size = 10;
    r.upstream.breaker.minimum_calls = 5;
    r.upstream.outlier.consecutive_errors = 3;
    auto gw = start_gateway(with_routes({r}));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(call(gw, "GET", "/x").status, 200) << i;
    EXPECT_EQ(metric_line("plexus_circuit_breaker_state{breaker=\"pair\"}"),
              "plexus_circuit_breaker_state{breaker=\"pair\"} 0");
    EXPECT_EQ(metric_line("plexus_outlier_ejections_total{upstream=\"pair\"}"),
              "plexus_outlier_ejections_total{upstream=\"pair\"} 1");
    // Once ejected, the dead instance is no longer tried: no more connect errors.
    auto errors =
        metric_line("plexus_gateway_upstream_errors_total{route=\"pair\",kind=\"connect_failure\"}");
    EXPECT_EQ(errors, "plexus_gateway_upstream_errors_total{route=\"pair\",kind=\"connect_failure\"} 3");
    auto admin = call(this->admin(gw), "GET", "/-/resilience");
    EXPECT_NE(admin.body.find("\"ejected\":true"), std::string::npos) << admin.body;
}

TEST_F(ProxyTest, RetriesA503OnceWhenThePolicySaysSo) {
    auto gw = start_gateway_with("routes:\n" + static_route("again", "/", upstream_address(),
                                                            "    retry: {attempts: 3, backoff: 1ms}\n"));
    auto res = call(gw, "GET", "/status/503");
    EXPECT_EQ(res.status, 503);  // still 503 after the retries: the upstream's own answer
    EXPECT_EQ(hits_.load(), 3);
    EXPECT_EQ(metric_line("plexus_retries_total{upstream=\"again\"}"),
              "plexus_retries_total{upstream=\"again\"} 2");
    hits_ = 0;
    EXPECT_EQ(call(gw, "GET", "/status/500").status, 500);  // 500 is not retried by default
    EXPECT_EQ(hits_.load(), 1);
}

TEST_F(ProxyTest, PerTryTimeoutIsRetriedWithinTheRouteTimeout) {
    auto gw = start_gateway_with("routes:\n" +
                                 static_route("slow", "/", upstream_address(),
                                              "    timeout: 5s\n    retry: {attempts: 2, backoff: 1ms, "
                                              "per_try_timeout: 200ms, on: [timeout]}\n"));
    // The upstream answers 200 after 3 s, within the route's timeout: only the per-try timeout
    // makes this a 504 after two tries.
    auto start = std::chrono::steady_clock::now();
    auto res = call(gw, "GET", "/slow-counted");
    EXPECT_EQ(res.status, 504);
    EXPECT_EQ(hits_.load(), 2);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 390ms);
}

TEST_F(ProxyTest, ExpiredDeadlineIs504WithoutCallingTheUpstream) {
    auto gw = start_gateway_with("routes:\n" + static_route("any", "/", upstream_address()));
    auto res = call(gw, "GET", "/x", {{"X-Plexus-Deadline-Ms", "0"}});
    EXPECT_EQ(res.status, 504);
    EXPECT_EQ(hits_.load(), 0);
    EXPECT_EQ(metric_line("plexus_deadline_expired_total{where=\"inbound\"}"),
              "plexus_deadline_expired_total{where=\"inbound\"} 1");
}

TEST_F(ProxyTest, TheUpstreamLearnsTheRemainingBudget) {
    auto gw =
        start_gateway_with("routes:\n" + static_route("any", "/", upstream_address(), "    timeout: 3s\n"));
    auto res = call(gw, "GET", "/x", {{"X-Plexus-Deadline-Ms", "1500"}});
    ASSERT_EQ(res.status, 200);
    auto at = res.body.find("X-Plexus-Deadline-Ms: ");
    ASSERT_NE(at, std::string::npos) << res.body;
    auto budget = std::stoi(res.body.substr(at + 22));
    EXPECT_GT(budget, 1000);
    EXPECT_LE(budget, 1500);  // the caller's budget, not the route's 3 s
}

TEST_F(ProxyTest, ShortBudgetCutsASlowUpstream) {
    auto gw =
        start_gateway_with("routes:\n" + static_route("any", "/", upstream_address(), "    timeout: 10s\n"));
    auto res = call(gw, "GET", "/slow", {{"X-Plexus-Deadline-Ms", "150"}});
    EXPECT_EQ(res.status, 504);  // the upstream answers 200 after 3 s, within the route's 10 s
}

TEST_F(ProxyTest, UnknownUpstreamEntryIsAnError) {
    try {
        gateway::parse_routes("routes:\n" + static_route("a", "/", upstream_address()) +
                                  "upstreams:\n  b:\n    bulkhead: {max_concurrent: 1}\n",
                              "r.yaml");
        FAIL() << "accepted";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("upstreams.b: no route uses"), std::string::npos) << e.what();
    }
}

TEST_F(ProxyTest, AMalformedDeadlineIs400) {
    auto gw = start_gateway_with("routes:\n" + static_route("any", "/", upstream_address()));
    for (auto bad : {"abc", "-5", "1.5", "99999999999"}) {
        auto res = call(gw, "GET", "/x", {{"X-Plexus-Deadline-Ms", bad}});
        EXPECT_EQ(res.status, 400) << bad;
        EXPECT_NE(res.body.find("X-Plexus-Deadline-Ms"), std::string::npos) << res.body;
    }
    EXPECT_EQ(hits_.load(), 0);
}

// ---------------------------------------------------------------- the filter chain

// A filter of the tests' own: records each phase it runs in, under its tag, and can answer,
// suspend or throw in the request head phase.
struct ProbeConfig final : gateway::FilterConfig {
    std::string tag;
    enum class Head { next, answer, suspend, fail } head = Head::next;
    void to_json(boost::json::object& out) const override { out["tag"] = tag; }
};

struct ProbeLog {
    std::mutex mutex;
    std::vector<std::string> events;
    void add(std::string e) {
        std::lock_guard lock(mutex);
        events.push_back(std::move(e));
    }
    std::vector<std::string> take() {
        std::lock_guard lock(mutex);
        return std::exchange(events, {});
    }
};

class ProbeFilter final : public gateway::Filter {
  public:
    ProbeFilter(ProbeConfig c, ProbeLog& log)
        : Filter(gateway::kRequestHead | gateway::kRequestBody | gateway::kResponseHead |
                 gateway::kResponseBody | gateway::kComplete),
          c_(std::move(c)),
          log_(log) {}
    gateway::FilterResult on_request_head(gateway::Exchange& x) const override {
        log_.add(c_.tag + ":head");
        x.request.headers.add("X-Probe", c_.tag);
        switch (c_.head) {
            case ProbeConfig::Head::next:
                return gateway::FilterResult::next;
            case ProbeConfig::Head::answer:
                x.response.problem(403, "Forbidden", "probe " + c_.tag + " says no");
                return gateway::FilterResult::answered;
            case ProbeConfig::Head::suspend:
                return gateway::FilterResult::suspend;
            case ProbeConfig::Head::fail:
                throw std::runtime_error("probe " + c_.tag + " broke");
        }
        return gateway::FilterResult::next;
    }
    net::Task<gateway::FilterResult> on_request_head_async(gateway::Exchange& x) const override {
        co_await net::sleep_for(20ms);
        log_.add(c_.tag + ":resumed");
        x.request.headers.add("X-Probe-Resumed", c_.tag);
        co_return gateway::FilterResult::next;
    }
    gateway::FilterResult on_request_body(gateway::Exchange& x) const override {
        log_.add(c_.tag + ":body " + std::to_string(x.request.body.size()));
        return gateway::FilterResult::next;
    }
    void on_response_head(gateway::Exchange& x) const override {
        log_.add(c_.tag + ":response " + std::to_string(x.response.status));
        x.response.headers.add("X-Probe-Out", c_.tag);
    }
    void on_response_body(gateway::Exchange&) const override { log_.add(c_.tag + ":response body"); }
    void on_complete(const gateway::Exchange& x) const noexcept override {
        log_.add(c_.tag + ":complete " + std::to_string(x.response.status));
    }

  private:
    ProbeConfig c_;
    ProbeLog& log_;
};

class ProbeFactory final : public gateway::FilterFactory {
  public:
    explicit ProbeFactory(ProbeLog& log) : log_(log) {}
    std::string_view name() const noexcept override { return "probe"; }
    std::shared_ptr<const gateway::FilterConfig> parse(plexus::core::SettingsReader&) const override {
        throw std::logic_error("probes are built in code");
    }
    std::shared_ptr<const gateway::Filter> create(const gateway::FilterConfig& c,
                                                  gateway::FilterContext&) const override {
        return std::make_shared<ProbeFilter>(dynamic_cast<const ProbeConfig&>(c), log_);
    }

  private:
    ProbeLog& log_;
};

class FilterChainTest : public ProxyTest {
  protected:
    gateway::FilterSpec probe(std::string tag, ProbeConfig::Head head = ProbeConfig::Head::next) {
        auto c = std::make_shared<ProbeConfig>();
        c->tag = std::move(tag);
        c->head = head;
        return {"probe", c, &factory_};
    }
    std::uint16_t start_with(std::vector<gateway::FilterSpec> filters) {
        gateway::RouteSettings r;
        r.name = "probed";
        r.prefix = "/";
        r.upstreams = {upstream_address()};
        r.filters = std::move(filters);
        return start_gateway(with_routes({r}));
    }
    ProbeLog probes_;
    ProbeFactory factory_{probes_};
};

TEST_F(FilterChainTest, RequestPhasesRunInOrderAndResponsePhasesInReverse) {
    auto gw = start_with({probe("a"), probe("b")});
    auto res = call(gw, "POST", "/x", {}, "12345");
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(echoed_header(res.body, "X-Probe"), "a");  // the first; "b" follows as a second field
    EXPECT_NE(res.body.find("X-Probe: b\n"), std::string::npos) << res.body;
    // Response filters see the upstream's answer; the last request filter is the first to see it.
    std::vector<std::string> outs;
    for (const auto& h : res.headers)
        if (net::iequals(h.name(), "X-Probe-Out")) outs.push_back(h.value);
    EXPECT_EQ(outs, (std::vector<std::string>{"b", "a"}));
    EXPECT_EQ(probes_.take(),
              (std::vector<std::string>{"a:head", "b:head", "a:body 5", "b:body 5", "b:response 200",
                                        "a:response 200", "b:response body", "a:response body",
                                        "a:complete 200", "b:complete 200"}));
}

TEST_F(FilterChainTest, AnAnswerStopsTheChainBeforeTheBodyIsReadOrContinueSent) {
    auto gw = start_with({probe("a"), probe("b", ProbeConfig::Head::answer), probe("c")});
    RawSocket s(gw);
    ASSERT_TRUE(s.connected());
    ASSERT_TRUE(s.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    // Answered at once, without "100 Continue" and without waiting for the body, and closed:
    // the unread body cannot be told from a next request.
    EXPECT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(s.received().rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << s.received();
    EXPECT_NE(s.received().find("probe b says no"), std::string::npos);
    EXPECT_NE(s.received().find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(hits_.load(), 0);
    // "c" never saw the request; "b" and "a" see the answer; everyone completes.
    EXPECT_EQ(probes_.take(), (std::vector<std::string>{
                                  "a:head", "b:head", "b:response 403", "a:response 403", "b:response body",
                                  "a:response body", "a:complete 403", "b:complete 403", "c:complete 403"}));
    EXPECT_EQ(metric_line("plexus_gateway_requests_total{route=\"probed\",code_class=\"4xx\"}"),
              "plexus_gateway_requests_total{route=\"probed\",code_class=\"4xx\"} 1");
    auto access = logs_.matching(R"("msg":"access")");
    ASSERT_EQ(access.size(), 1u);
    EXPECT_NE(access[0].find(R"("status":403)"), std::string::npos) << access[0];
}

TEST_F(FilterChainTest, ASuspendedFilterResumesTheChain) {
    auto gw = start_with({probe("a", ProbeConfig::Head::suspend), probe("b")});
    auto res = call(gw, "GET", "/x");
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(echoed_header(res.body, "X-Probe-Resumed"), "a");
    auto events = probes_.take();
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events[0], "a:head");
    EXPECT_EQ(events[1], "a:resumed");
    EXPECT_EQ(events[2], "b:head");
}

TEST_F(FilterChainTest, AThrowingFilterIsA500ThatIsCountedLoggedAndCompleted) {
    auto gw = start_with({probe("a"), probe("b", ProbeConfig::Head::fail)});
    auto res = call(gw, "GET", "/x");
    EXPECT_EQ(res.status, 500);
    EXPECT_EQ(res.headers.get("Content-Type").value_or(""), "application/problem+json");
    EXPECT_FALSE(res.headers.get("X-Request-Id").value_or("").empty());
    EXPECT_EQ(hits_.load(), 0);
    auto events = probes_.take();
    EXPECT_EQ(std::count(events.begin(), events.end(), "a:complete 500"), 1)
        << ::testing::PrintToString(events);
    EXPECT_EQ(std::count(events.begin(), events.end(), "b:complete 500"), 1);
    EXPECT_EQ(metric_line("plexus_gateway_requests_total{route=\"probed\",code_class=\"5xx\"}"),
              "plexus_gateway_requests_total{route=\"probed\",code_class=\"5xx\"} 1");
    EXPECT_EQ(logs_.matching(R"("msg":"access")").size(), 1u);
    auto failed = logs_.matching("handler failed");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_NE(failed[0].find("probe b broke"), std::string::npos) << failed[0];
    EXPECT_NE(failed[0].find(R"("request_id")"), std::string::npos) << failed[0];
}

TEST_F(FilterChainTest, ARouteWithoutFiltersRunsNone) {
    gateway::RouteSettings plain;
    plain.name = "plain";
    plain.prefix = "/plain";
    plain.upstreams = {upstream_address()};
    gateway::RouteSettings probed = plain;
    probed.name = "probed";
    probed.prefix = "/probed";
    probed.filters = {probe("a")};
    auto gw = start_gateway(with_routes({plain, probed}));
    EXPECT_EQ(call(gw, "GET", "/plain").status, 200);
    EXPECT_TRUE(probes_.take().empty());
    EXPECT_EQ(call(gw, "GET", "/probed").status, 200);
    EXPECT_FALSE(probes_.take().empty());
}

TEST_F(ProxyTest, HeaderFiltersFromTheFileIncludingDefaults) {
    auto gw = start_gateway_with(
        "default_filters:\n"
        "  - name: headers\n"
        "    response: {set: {X-Content-Type-Options: nosniff}}\n"
        "routes:\n" +
        static_route("edited", "/edited", upstream_address(),
                     "    filters:\n"
                     "      - name: headers\n"
                     "        request: {set: {X-Env: prod}, remove: [X-Debug], add: {X-Tag: gw}}\n"
                     "        response: {remove: [X-Up], set: {Cache-Control: no-store}}\n") +
        static_route("other", "/other", ClosedPort().address()));
    auto res = call(gw, "GET", "/edited", {{"X-Debug", "1"}, {"X-Env", "dev"}});
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(echoed_header(res.body, "X-Env"), "prod");
    EXPECT_EQ(echoed_header(res.body, "X-Tag"), "gw");
    EXPECT_FALSE(echoed_header(res.body, "X-Debug"));
    EXPECT_FALSE(res.headers.get("X-Up"));
    EXPECT_EQ(res.headers.get("Cache-Control").value_or(""), "no-store");
    EXPECT_EQ(res.headers.get("X-Content-Type-Options").value_or(""), "nosniff");
    // The gateway's own answers pass the response filters too.
    auto failed = call(gw, "GET", "/other");
    EXPECT_EQ(failed.status, 502);
    EXPECT_EQ(failed.headers.get("X-Content-Type-Options").value_or(""), "nosniff");

    auto routes = call(admin(gw), "GET", "/-/routes");
    EXPECT_NE(routes.body.find(
                  R"("filters":[{"name":"headers","response":{"set":{"X-Content-Type-Options":"nosniff"}}})"),
              std::string::npos)
        << routes.body;
}

TEST_F(ProxyTest, IpAccessRefusesByPeerAddress) {
    auto gw = start_gateway_with(
        "routes:\n" +
        static_route("closed", "/closed", upstream_address(),
                     "    filters:\n      - name: ip_access\n        deny: [127.0.0.0/8]\n") +
        static_route("open", "/open", upstream_address(),
                     "    filters:\n      - name: ip_access\n        allow: [127.0.0.1, \"::1\"]\n"));
    auto refused = call(gw, "GET", "/closed");
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(refused.headers.get("Content-Type").value_or(""), "application/problem+json");
    EXPECT_EQ(call(gw, "GET", "/open").status, 200);
    EXPECT_EQ(hits_.load(), 1);
}

TEST_F(ProxyTest, AnUnknownFilterOrBadFilterSettingsNameFileLineAndKey) {
    auto error_of = [](const std::string& yaml) -> std::string {
        try {
            gateway::parse_routes(yaml, "r.yaml");
        } catch (const std::exception& e) {
            return e.what();
        }
        return "accepted";
    };
    auto route = static_route("a", "/", "127.0.0.1:1");
    EXPECT_EQ(error_of("routes:\n" + route + "    filters:\n      - name: nosuch\n"),
              "r.yaml:7: routes[0].filters[0].name: no filter is called 'nosuch' (known: auth, cors, "
              "headers, ip_access, rate_limit)");
    EXPECT_EQ(error_of("routes:\n" + route +
                       "    filters:\n      - name: ip_access\n        allow: [10.0.0.1/8]\n"),
              "r.yaml:8: routes[0].filters[0].allow: '10.0.0.1/8' is not an address or CIDR block");
    EXPECT_EQ(error_of("routes:\n" + route + "    filters:\n      - name: headers\n        respons: {}\n"),
              "r.yaml:8: routes[0].filters[0].respons: unknown key");
    EXPECT_EQ(
        error_of("routes:\n" + route + "    filters:\n      - name: auth\n        accept: [jwt, saml]\n"),
        "r.yaml:8: routes[0].filters[0].accept: 'saml' is not jwt, opaque or api_key");
    EXPECT_EQ(error_of("routes:\n" + route +
                       "    filters:\n      - name: headers\n        request: {set: {Host: x}}\n"),
              "r.yaml:8: routes[0].filters[0].request.set: 'Host' is set by the gateway itself");
}

TEST_F(ProxyTest, RateLimitRefusesBeforeTheUpstreamAndKeepsItsBucketsAcrossAReload) {
    const std::string limited = static_route("limited", "/", upstream_address(),
                                             "    filters:\n      - name: rate_limit\n        requests: 2\n"
                                             "        per: 1h\n");
    gateway::GatewaySettings settings;
    settings.routes = gateway::parse_routes("routes:\n" + limited, "r.yaml");
    gateways_.push_back(std::make_unique<gateway::Gateway>(settings, nullptr, metrics_));
    auto& g = *gateways_.back();
    auto gw = start_server(g.handler(), {}, true);
    auto ok = call(gw, "GET", "/x");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.headers.get("RateLimit-Limit").value_or(""), "2");
    EXPECT_EQ(ok.headers.get("RateLimit-Remaining").value_or(""), "1");
    EXPECT_EQ(call(gw, "GET", "/x").status, 200);
    auto refused = call(gw, "GET", "/x");
    EXPECT_EQ(refused.status, 429);
    // One token every 30 minutes, less the moments since the bucket was last full.
    auto retry_after = std::stoi(std::string(refused.headers.get("Retry-After").value_or("0")));
    EXPECT_LE(retry_after, 1800);
    EXPECT_GT(retry_after, 1700);
    EXPECT_EQ(hits_.load(), 2);
    // The same routes loaded again: the bucket is the same, still empty.
    ASSERT_TRUE(g.set_routes(gateway::parse_routes("routes:\n" + limited, "r.yaml")).ok);
    EXPECT_EQ(call(gw, "GET", "/x").status, 429);
    EXPECT_EQ(metric_line("plexus_gateway_rate_limited_total{route=\"limited\"}"),
              "plexus_gateway_rate_limited_total{route=\"limited\"} 2");
    EXPECT_EQ(metric_line("plexus_gateway_requests_total{route=\"limited\",code_class=\"4xx\"}"),
              "plexus_gateway_requests_total{route=\"limited\",code_class=\"4xx\"} 2");
}

// ---------------------------------------------------------------- auth

class AuthFilterTest : public ProxyTest {
  protected:
    void SetUp() override {
        ProxyTest::SetUp();
        keys_.add(signer_);
        jwks_router_.add("GET", "/jwks", [this](net::Request&, net::Response& res) -> net::Task<void> {
            jwks_hits_.fetch_add(1);
            std::lock_guard lock(keys_mutex_);
            res.json(200, keys_.to_json());
            co_return;
        });
        // The revocation watch: answers once the test revokes something after `since`.
        jwks_router_.add(
            "GET", "/revocations", [this](net::Request& req, net::Response& res) -> net::Task<void> {
                auto since = std::stoll(req.query_param("since").value_or("0"));
                for (int i = 0; i < 3000 && revoked_count_.load() <= since; ++i)
                    co_await net::sleep_for(10ms);
                std::lock_guard lock(keys_mutex_);
                boost::json::array list;
                for (const auto& [jti, exp] : revoked_)
                    list.push_back(boost::json::object{{"jti", jti}, {"exp", exp}});
                res.json(200, boost::json::serialize(
                                  boost::json::object{{"index", revoked_count_.load()}, {"revoked", list}}));
            });
        jwks_port_ = start_server(jwks_router_.handler());
    }

    void revoke(const std::string& token) {
        auto claims = boost::json::parse(*plexus::security::base64url_decode(token.substr(
                                             token.find('.') + 1, token.rfind('.') - token.find('.') - 1)))
                          .as_object();
        std::lock_guard lock(keys_mutex_);
        revoked_.emplace_back(std::string(claims.at("jti").as_string()), claims.at("exp").as_int64());
        revoked_count_.fetch_add(1);
    }

    std::uint16_t start_auth_gateway(const std::string& filters) {
        gateway::GatewaySettings settings;
        settings.routes = gateway::parse_routes(
            "routes:\n" +
                static_route("guarded", "/guarded", upstream_address(), "    filters:\n" + filters) +
                static_route("open", "/open", upstream_address()),
            "r.yaml");
        const auto base = "http://127.0.0.1:" + std::to_string(jwks_port_);
        settings.auth = {.issuer = "https://id.test",
                         .jwks_uri = base + "/jwks",
                         .audience = "shop",
                         .revocations_uri = base + "/revocations"};
        settings.background = runtime_->executor(0);
        return start_gateway(std::move(settings));
    }

    std::string token(const plexus::security::Key& key, std::string scope, std::int64_t lifetime = 300) {
        auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        return plexus::security::sign_jwt(key, {{"iss", "https://id.test"},
                                                {"aud", "shop"},
                                                {"sub", "user-1"},
                                                {"client_id", "web"},
                                                {"scope", std::move(scope)},
                                                {"iat", now},
                                                {"exp", now + lifetime},
                                                {"jti", plexus::security::random_token(8)}});
    }

    plexus::security::Key signer_ = plexus::security::Key::generate(plexus::security::Algorithm::es256, "k1");
    std::mutex keys_mutex_;
    plexus::security::KeySet keys_;
    net::Router jwks_router_;
    std::uint16_t jwks_port_ = 0;
    std::atomic<int> jwks_hits_{0};
    std::vector<std::pair<std::string, std::int64_t>> revoked_;  // guarded by keys_mutex_
    std::atomic<std::int64_t> revoked_count_{0};
};

TEST_F(AuthFilterTest, ARevokedTokenIsRefusedAtOnceEvenWhenItsVerificationIsCached) {
    auto gw = start_auth_gateway("      - name: auth\n");
    auto good = token(signer_, "");
    auto other = token(signer_, "");
    EXPECT_EQ(call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + good}}).status,
              200);  // now cached
    revoke(good);
    // Pushed by the watch (a long poll the stub answers at once), not learnt at expiry.
    EXPECT_TRUE(wait_until([&] {
        return call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + good}}).status == 401;
    })) << ::testing::PrintToString(logs_.matching("revocation"));
    auto refused = call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + good}});
    EXPECT_NE(refused.body.find("revoked"), std::string::npos) << refused.body;
    EXPECT_EQ(call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + other}}).status,
              200);  // others still pass
}

TEST_F(AuthFilterTest, ChecksBearerTokensAtTheEdgeAndPassesThePrincipalUpstream) {
    auto gw = start_auth_gateway("      - name: auth\n        scopes: [catalog:write]\n");
    auto none = call(gw, "POST", "/guarded/x", {}, "body");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.headers.get("WWW-Authenticate").value_or(""), R"(Bearer realm="plexus")");
    EXPECT_EQ(none.headers.get("Content-Type").value_or(""), "application/problem+json");
    auto garbage = call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer not.a.jwt"}});
    EXPECT_EQ(garbage.status, 401);
    EXPECT_EQ(garbage.headers.get("WWW-Authenticate").value_or(""),
              R"(Bearer realm="plexus", error="invalid_token")");
    auto expired =
        call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + token(signer_, "catalog:write", -120)}});
    EXPECT_EQ(expired.status, 401);
    EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
    auto reader =
        call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + token(signer_, "catalog:read")}});
    EXPECT_EQ(reader.status, 403);
    EXPECT_EQ(reader.headers.get("WWW-Authenticate").value_or(""),
              R"(Bearer realm="plexus", error="insufficient_scope", scope="catalog:write")");
    EXPECT_EQ(hits_.load(), 0);  // nothing reached the upstream

    auto good = token(signer_, "catalog:read catalog:write");
    for (int i = 0; i < 3; ++i) {  // the second and third come from the verified-token cache
        auto ok = call(gw, "GET", "/guarded/x",
                       {{"Authorization", "Bearer " + good}, {"X-Plexus-Subject", "admin"}});
        ASSERT_EQ(ok.status, 200) << ok.body;
        EXPECT_EQ(echoed_header(ok.body, "X-Plexus-Subject"), "user-1");  // the client's claim was dropped
        EXPECT_EQ(echoed_header(ok.body, "X-Plexus-Client"), "web");
        EXPECT_EQ(echoed_header(ok.body, "X-Plexus-Scopes"), "catalog:read catalog:write");
        EXPECT_FALSE(echoed_header(ok.body, "Authorization"));  // not relayed
    }
    // An open route never passes a client's identity headers on either.
    auto open =
        call(gw, "GET", "/open/x", {{"X-Plexus-Subject", "admin"}, {"X-Plexus-Scopes", "plexus:admin"}});
    EXPECT_FALSE(echoed_header(open.body, "X-Plexus-Subject"));
    EXPECT_FALSE(echoed_header(open.body, "X-Plexus-Scopes"));

    EXPECT_EQ(jwks_hits_.load(), 1);  // fetched once, at the first token
    EXPECT_EQ(metric_line("plexus_gateway_auth_total{route=\"guarded\",result=\"ok\"}"),
              "plexus_gateway_auth_total{route=\"guarded\",result=\"ok\"} 3");
    EXPECT_EQ(metric_line("plexus_gateway_auth_total{route=\"guarded\",result=\"missing\"}"),
              "plexus_gateway_auth_total{route=\"guarded\",result=\"missing\"} 1");
    EXPECT_EQ(metric_line("plexus_gateway_auth_total{route=\"guarded\",result=\"invalid\"}"),
              "plexus_gateway_auth_total{route=\"guarded\",result=\"invalid\"} 2");
    EXPECT_EQ(metric_line("plexus_gateway_auth_total{route=\"guarded\",result=\"forbidden\"}"),
              "plexus_gateway_auth_total{route=\"guarded\",result=\"forbidden\"} 1");
    bool logged = false;
    for (const auto& line : logs_.matching(R"("route":"guarded")")) {
        if (line.find(R"("status":200)") != std::string::npos)
            logged = line.find(R"("subject":"user-1")") != std::string::npos;
    }
    EXPECT_TRUE(logged);
}

TEST_F(AuthFilterTest, ANewKeyIsFetchedOnceAndMadeUpKidsDoNotHammerTheJwks) {
    auto gw = start_auth_gateway("      - name: auth\n");
    EXPECT_EQ(call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + token(signer_, "")}}).status, 200);
    EXPECT_EQ(jwks_hits_.load(), 1);
    // Tokens naming kids nobody published: refused, and at most one refetch per 10 s.
    for (int i = 0; i < 5; ++i) {
        auto bogus =
            plexus::security::Key::generate(plexus::security::Algorithm::es256, "bogus-" + std::to_string(i));
        EXPECT_EQ(call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + token(bogus, "")}}).status,
                  401);
    }
    EXPECT_LE(jwks_hits_.load(), 2);
    EXPECT_EQ(hits_.load(), 1);
}

TEST_F(AuthFilterTest, RelayTokenPassesTheTokenAndClaimPredicatesNarrowTheRoute) {
    auto gw = start_auth_gateway(
        "      - name: auth\n        relay_token: true\n        claims: {client_id: web}\n");
    auto good = token(signer_, "");
    auto ok = call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + good}});
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(echoed_header(ok.body, "Authorization"), "Bearer " + good);  // relayed as it came
    EXPECT_EQ(echoed_header(ok.body, "X-Plexus-Subject"), "user-1");
    // A token of another client: valid, but the claim predicate refuses it.
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    auto other = plexus::security::sign_jwt(signer_, {{"iss", "https://id.test"},
                                                      {"aud", "shop"},
                                                      {"sub", "user-2"},
                                                      {"client_id", "mobile"},
                                                      {"iat", now},
                                                      {"exp", now + 300},
                                                      {"jti", "j-2"}});
    auto refused = call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + other}});
    EXPECT_EQ(refused.status, 403);
    EXPECT_NE(refused.body.find("client_id claim"), std::string::npos) << refused.body;
    EXPECT_EQ(hits_.load(), 1);
}

TEST_F(AuthFilterTest, RequiredRolesComeFromTheRolesClaimAndArePassedUpstream) {
    auto gw = start_auth_gateway("      - name: auth\n        roles: [editor]\n");
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    auto with_roles = [&](boost::json::array roles) {
        return plexus::security::sign_jwt(signer_, {{"iss", "https://id.test"},
                                                    {"aud", "shop"},
                                                    {"sub", "u-1"},
                                                    {"client_id", "plexus-cli"},
                                                    {"roles", std::move(roles)},
                                                    {"iat", now},
                                                    {"exp", now + 300},
                                                    {"jti", plexus::security::random_token(8)}});
    };
    auto ok =
        call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + with_roles({"viewer", "editor"})}});
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(echoed_header(ok.body, "X-Plexus-Roles"), "viewer editor");
    auto viewer = call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + with_roles({"viewer"})}});
    EXPECT_EQ(viewer.status, 403);
    EXPECT_NE(viewer.body.find("lacks role editor"), std::string::npos) << viewer.body;
    EXPECT_NE(viewer.headers.get("WWW-Authenticate").value_or("").find("insufficient_scope"),
              std::string::npos);
    auto none = call(gw, "GET", "/guarded/x", {{"Authorization", "Bearer " + token(signer_, "")}});
    EXPECT_EQ(none.status, 403);
    // A client cannot claim roles by sending the header itself.
    auto forged = call(gw, "GET", "/open/x", {{"X-Plexus-Roles", "admin"}});
    ASSERT_EQ(forged.status, 200);
    EXPECT_FALSE(echoed_header(forged.body, "X-Plexus-Roles"));
}

TEST_F(AuthFilterTest, ARouteWithAuthNeedsAnIdentityProvider) {
    gateway::GatewaySettings settings;
    settings.routes = gateway::parse_routes(
        "routes:\n" + static_route("guarded", "/", upstream_address(), "    filters:\n      - name: auth\n"),
        "r.yaml");
    try {
        gateway::Gateway g(settings, nullptr, metrics_);
        FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("no identity provider"), std::string::npos) << e.what();
    }
    // Opaque tokens and API keys are introspected: the gateway needs its own client for that.
    settings.routes = gateway::parse_routes("routes:\n" + static_route("guarded", "/", upstream_address(),
                                                                       "    filters:\n      - name: auth\n"
                                                                       "        accept: [api_key]\n"),
                                            "r.yaml");
    settings.auth = {.issuer = "https://id.test", .jwks_uri = "http://127.0.0.1:1/jwks"};
    try {
        gateway::Gateway g(settings, nullptr, metrics_);
        FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("accept: api_key needs the gateway's --introspection-uri"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
