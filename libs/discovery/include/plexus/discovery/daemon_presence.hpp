#pragma once
/// A platform daemon's place in the registry (identity, config, ...): registered from start
/// with a TTL and an active check of /health/ready, and at SIGTERM deregistered before the
/// daemon drains, so discovery stops sending it traffic first.
///
///     discovery::DaemonPresence presence(settings.registry, "config");   // throws on a bad URL
///     presence.start(runtime.executor(0), listen->host, server.port());
///     ... on SIGTERM: presence.leave_then(runtime.executor(0), [&] { server.shutdown(...); });

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "plexus/discovery/registry_client.hpp"
#include "plexus/net/client.hpp"

namespace plexus::discovery {

class DaemonPresence {
  public:
    /// `registry` "http://host:port", or empty for a daemon that registers nowhere. Throws
    /// std::invalid_argument for another form.
    DaemonPresence(const std::string& registry, std::string service);
    /// Starts keeping `service`-<pid> at `host`:`port` registered (no-op without a registry).
    void start(net::Executor ex, const std::string& host, std::uint16_t port);
    /// Stops the heartbeats, deregisters (a failure is logged), then calls `then`. Once.
    void leave_then(net::Executor ex, std::function<void()> then);

  private:
    std::optional<net::Endpoint> registry_;
    InstanceInfo self_;
    std::shared_ptr<std::atomic<bool>> stop_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace plexus::discovery
