#include "plexus/discovery/daemon_presence.hpp"

#include <unistd.h>

#include <stdexcept>

#include "plexus/telemetry/log.hpp"

namespace plexus::discovery {

DaemonPresence::DaemonPresence(const std::string& registry, std::string service) {
    self_.service = std::move(service);
    if (registry.empty()) return;
    registry_ = net::parse_endpoint(registry);
    if (!registry_)
        throw std::invalid_argument("--registry must be http://host:port, got '" + registry + "'");
}

void DaemonPresence::start(net::Executor ex, const std::string& host, std::uint16_t port) {
    if (!registry_) return;
    self_.id = self_.service + "-" + std::to_string(::getpid());
    self_.address = host == "0.0.0.0" ? "127.0.0.1" : host;
    self_.port = port;
    self_.ttl = std::chrono::seconds(5);
    HealthCheck check;
    check.http = "/health/ready";
    check.interval = std::chrono::seconds(1);
    check.timeout = std::chrono::milliseconds(500);
    self_.check = check;
    net::spawn(ex, keep_registered(RegistryClient(*registry_), self_, std::chrono::seconds(1), stop_),
               "registration");
}

void DaemonPresence::leave_then(net::Executor ex, std::function<void()> then) {
    if (stop_->exchange(true)) return;
    net::spawn(
        ex,
        [](std::optional<net::Endpoint> registry, InstanceInfo self,
           std::function<void()> then) -> net::Task<void> {
            if (registry && !self.id.empty()) {
                if (auto ec = co_await RegistryClient(*registry).deregister(self.service, self.id))
                    telemetry::warn("deregistration failed", {{"error", ec.message()}});
            }
            then();
        }(registry_, self_, std::move(then)),
        "leaving the registry");
}

}  // namespace plexus::discovery
