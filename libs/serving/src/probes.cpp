#include "plexus/serving/probes.hpp"

#include "plexus/telemetry/log.hpp"

namespace plexus::serving {

void add_probe_routes(net::Router& router, telemetry::Registry& metrics, std::function<bool()> ready) {
    router.add("GET", "/health/live", [](net::Request&, net::Response& r) -> net::Task<void> {
        r.json(200, R"({"status":"pass"})");
        co_return;
    });
    router.add("GET", "/health/ready",
               [ready = std::move(ready)](net::Request&, net::Response& r) -> net::Task<void> {
                   if (!ready || ready())
                       r.json(200, R"({"status":"pass"})");
                   else
                       r.json(503, R"({"status":"fail"})");
                   co_return;
               });
    router.add("GET", "/metrics", [&metrics](net::Request&, net::Response& r) -> net::Task<void> {
        r.status = 200;
        r.headers.set("Content-Type", telemetry::kPrometheusContentType);
        r.body = metrics.render();
        co_return;
    });
}

std::unique_ptr<net::Server> start_listener(net::Runtime& runtime, const net::Endpoint& at,
                                            net::Router& router, std::string_view listen) {
    net::ServerSettings ss;
    ss.address = at.host;
    ss.port = at.port;
    auto server = std::make_unique<net::Server>(runtime, ss, router.handler(), router.body_limit_fn());
    try {
        server->start();
    } catch (const std::exception& e) {
        telemetry::error("cannot listen", {{"listen", std::string(listen)}, {"error", e.what()}});
        return nullptr;
    }
    return server;
}

}  // namespace plexus::serving
