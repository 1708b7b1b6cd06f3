#pragma once
/// The registry's catalog: which instances of which services exist, whether they are healthy,
/// and a monotonically increasing index that blocking watches compare against.
///
/// Instances that miss their TTL are removed by `reap()`. Every mutation that matters after a
/// restart (register, deregister, draining) is written to SQLite before it is acknowledged;
/// heartbeats live in memory only, so restored instances must heartbeat again within their TTL.
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
    std::size_t healthy = 0;
    std::uint64_t index = 0;
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
    /// Adds or replaces an instance (keeping its draining flag off). Returns the new index, or an
    /// error if it is invalid (see validate()) or could not be persisted.
    Result<std::uint64_t> register_instance(discovery::InstanceInfo instance, std::string* problem = nullptr);
    /// Renews the TTL; core::errc::not_found if unknown.
    Result<void> heartbeat(const std::string& service, const std::string& id);
    Result<std::uint64_t> deregister(const std::string& service, const std::string& id);
    Result<std::uint64_t> set_draining(const std::string& service, const std::string& id);
    /// Removes every instance whose TTL has passed; returns how many.
    std::size_t reap();

    /// The service's instances and its index (the global index if the service was never seen).
    /// Without `all`, only instances that are passing and not draining.
    discovery::ServiceSnapshot snapshot(const std::string& service, bool all) const;
    std::uint64_t service_index(const std::string& service) const;
    std::vector<ServiceSummary> services() const;
    std::uint64_t index() const;

    /// Called (outside the lock) with the service's name after each change.
    void on_change(std::function<void(const std::string&)> fn);

  private:
    struct Entry {
        discovery::InstanceInfo info;
        core::SteadyTime expires;
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
    std::function<void(const std::string&)> on_change_;
};

}  // namespace plexus::registry
