#pragma once
/// Active health checks: for every catalog instance that declares a check (see
/// discovery::HealthCheck), a loop on one of the runtime's io threads sends
/// `GET http://address:port<check.http>` every `interval`, each bounded by `timeout`, and sets the
/// instance's status in the catalog:
///
///   2xx                        pass     `healthy_threshold` passes in a row → "passing"
///   429                        warning  → "warning" at once (stays in discovery)
///   anything else (status,     fail     `unhealthy_threshold` failures in a row → "critical"
///   refused, reset, timeout)            (leaves discovery)
///
/// A new or re-registered instance starts "passing" and is checked right away. The loops follow
/// the catalog (they listen to its changes): an instance that is deregistered or reaped loses its
/// loop, a re-registration replaces it. Status changes go through Catalog::set_status, so they
/// bump the service's index and answer blocking watches at once. Each check counts in
/// `plexus_registry_health_checks_total{result="pass|warning|fail"}`, each status change in
/// `plexus_registry_status_changes_total{status}` and one log line with the reason.

#include <cstddef>
#include <memory>
#include <string>

#include "plexus/net/runtime.hpp"
#include "plexus/registry/catalog.hpp"

namespace plexus::telemetry {
class Registry;
}

namespace plexus::registry {

class HealthChecker {
  public:
    /// Starts a loop for every instance with a check already in `catalog` (restored ones) and
    /// follows its changes from then on. Loops run on the io_contexts of `runtime`, spread over
    /// them; they start when the runtime runs. `catalog` and `metrics` must outlive the runtime's
    /// work (the loops refer to them until the runtime is stopped or they end).
    HealthChecker(Catalog& catalog, telemetry::Registry& metrics, net::Runtime& runtime);
    /// Stops every loop (see stop()).
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    /// Brings the loops of `service` in line with the catalog: starts the missing ones, stops
    /// those whose registration is gone or was replaced. Called on every catalog change; needed
    /// directly only by tests. Thread-safe.
    void sync(const std::string& service);
    /// Stops every loop: a loop waiting for its next check ends at once, one with a check in
    /// flight when the check completes, without touching the catalog. Later catalog changes
    /// start no loop. Thread-safe, idempotent.
    void stop();
    /// How many instances have a check loop right now. Thread-safe.
    std::size_t loops() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace plexus::registry
