#pragma once
/// The registry's catalog: which instances of which services exist, whether they are healthy,
/// and a monotonically increasing index that blocking watches compare against.
///
/// Instances that miss their TTL are removed by `reap()`. Every mutation that matters after a
/// restart (register, deregister, draining, an instance's health check) is written to SQLite
/// before it is acknowledged; heartbeats and health status live in memory only, so restored
/// instances must heartbeat again within their TTL and start "passing" until checked again.
/// Thread-safe (one mutex; the registry is not on any request's hot path).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/core/result.hpp"
#include "plexus/discovery/registry_client.hpp"

namespace plexus::store {
class Database;
}

namespace plexus::registry {

struct CatalogLimits {
    std::chrono::milliseconds min_ttl{1000};
    std::chrono::milliseconds max_ttl{600'000};
    std::size_t max_metadata_bytes = 4096;
    std::size_t max_tags = 32;
};

/// A service as listed by `services()`.
struct ServiceSummary {
    std::string name;
    std::size_t instances = 0;
    std::size_t healthy = 0;  ///< in discovery: "passing" or "warning", and not draining
    std::uint64_t index = 0;
};

/// An instance whose registration declares an active health check, as `check_targets()` lists it.
struct CheckTarget {
    discovery::InstanceInfo instance;  ///< `instance.check` is set
    /// Tells registrations apart: every register_instance() (and every restored instance) gets a
    /// new number, so a re-registration is seen even when its fields did not change.
    std::uint64_t registration = 0;
};

class Catalog {
  public:
    /// `db` may be null (nothing persisted). With a database, the stored catalog is loaded and
    /// every restored instance gets a fresh TTL from `clock.now()`. Throws std::runtime_error if
    /// the database cannot be read or migrated.
    Catalog(core::Clock& clock, CatalogLimits limits, std::unique_ptr<store::Database> db = nullptr);
    ~Catalog();

    /// Checks an instance for registration; an error message for a person, or empty if valid.
    std::string validate(const discovery::InstanceInfo& instance) const;
    /// Adds or replaces an instance (keeping its draining flag off). An instance with a check
    /// starts "passing". Returns the new index, or an error if it is invalid (see validate()) or
    /// could not be persisted.
    Result<std::uint64_t> register_instance(discovery::InstanceInfo instance, std::string* problem = nullptr);
    /// Renews the TTL; core::errc::not_found if unknown.
    Result<void> heartbeat(const std::string& service, const std::string& id);
    Result<std::uint64_t> deregister(const std::string& service, const std::string& id);
    Result<std::uint64_t> set_draining(const std::string& service, const std::string& id);
    /// Removes every instance whose TTL has passed; returns how many.
    std::size_t reap();
    /// Sets an instance's status ("passing", "warning" or "critical"). With `registration` other
    /// than 0, only if the instance is still that registration (see CheckTarget). Returns whether
    /// the status changed; a change bumps the service's index and is announced like any other.
    /// The status itself is not persisted; with a database the new index is (blocking: call it
    /// off the io threads). Errors: core::errc::not_found if the instance (or that registration)
    /// is gone, core::errc::invalid_argument for another status.
    Result<bool> set_status(const std::string& service, const std::string& id, const std::string& status,
                            std::uint64_t registration = 0);

    /// The service's instances and its index (the global index if the service was never seen).
    /// Without `all`, only the instances in discovery: "passing" or "warning", and not draining.
    discovery::ServiceSnapshot snapshot(const std::string& service, bool all) const;
    std::uint64_t service_index(const std::string& service) const;
    std::vector<ServiceSummary> services() const;
    std::uint64_t index() const;
    /// The service's instances that declare a health check (draining ones included).
    std::vector<CheckTarget> check_targets(const std::string& service) const;

    /// Adds a listener, called (outside the lock, on the thread that made the change) with the
    /// service's name after each change. Listeners are never removed: each must stay valid as
    /// long as the catalog changes.
    void on_change(std::function<void(const std::string&)> fn);

  private:
    struct Entry {
        discovery::InstanceInfo info;
        core::SteadyTime expires;
        std::uint64_t registration = 0;
    };
    std::uint64_t bump(const std::string& service);  // lock held
    Result<void> persist_upsert(const discovery::InstanceInfo& in);
    Result<void> persist_delete(const std::string& service, const std::string& id);
    void persist_index();
    void notify(const std::vector<std::string>& services);

    core::Clock& clock_;
    CatalogLimits limits_;
    std::unique_ptr<store::Database> db_;
    mutable std::mutex mutex_;
    std::uint64_t index_ = 1;
    std::map<std::string, std::map<std::string, Entry>> services_;
    std::map<std::string, std::uint64_t> service_index_;
    std::uint64_t registrations_ = 0;
    std::vector<std::function<void(const std::string&)>> on_change_;
};

}  // namespace plexus::registry
