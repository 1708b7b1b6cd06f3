#include "plexus/serving/probes.hpp"

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

}  // namespace plexus::serving
