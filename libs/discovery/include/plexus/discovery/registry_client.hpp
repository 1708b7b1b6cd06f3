#pragma once
/// Client of the registry's HTTP API (see platform/registry): registration, heartbeat,
/// deregistration, draining, and the blocking watch on one service.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plexus/core/result.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/task.hpp"

namespace plexus::discovery {

/// Errors of the discovery library.
enum class errc {
    rejected = 1,      ///< the registry answered 4xx (bad registration)
    unknown_instance,  ///< heartbeat for an instance the registry does not know: register again
    unavailable,       ///< the registry could not be reached or answered 5xx
    bad_response,      ///< the registry's answer did not parse
};
const boost::system::error_category& discovery_category() noexcept;
inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), discovery_category()}; }

/// An active health check the registry runs against an instance: `GET http://address:port<http>`
/// every `interval`, each bounded by `timeout`. A 2xx answer passes, 429 is a warning (the instance
/// stays in discovery), anything else fails (another status, connection refused, timeout).
/// `unhealthy_threshold` consecutive failures make the instance "critical" (out of discovery);
/// `healthy_threshold` consecutive passes make it "passing" again.
struct HealthCheck {
    std::string http;  ///< the path to GET, starting with '/'
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds timeout{500};
    int healthy_threshold = 1;
    int unhealthy_threshold = 2;

    friend bool operator==(const HealthCheck&, const HealthCheck&) = default;
};

/// One registered instance of a service, as the registry reports it.
struct InstanceInfo {
    std::string service;
    std::string id;
    std::string address;
    std::uint16_t port = 0;
    std::vector<std::string> tags;
    std::map<std::string, std::string> metadata;
    std::chrono::milliseconds ttl{5000};
    bool draining = false;
    /// "passing", "warning" (listed, but e.g. overloaded) or "critical" (not listed).
    std::string status = "passing";
    std::optional<HealthCheck> check;  ///< none: only the TTL decides whether it stays

    net::Endpoint endpoint() const { return {address, port}; }
};

/// Whether the registry lists an instance for traffic: "passing" or "warning", and not draining.
inline bool in_discovery(const InstanceInfo& in) noexcept {
    return !in.draining && (in.status == "passing" || in.status == "warning");
}

/// A service's instances at a catalog index.
struct ServiceSnapshot {
    std::uint64_t index = 0;
    std::vector<InstanceInfo> instances;
};

/// What changed in a service after an index, as RegistryClient::watch_changes() reports it.
struct ServiceChanges {
    std::uint64_t index = 0;
    /// True when `instances` is the whole list (the registry could not answer with the changes
    /// only: they were too far back, or it restarted); `removed` is then empty.
    bool full = false;
    /// full: every instance. Otherwise the instances added or changed after `since` (in
    /// discovery, unless `all` was asked for), by id.
    std::vector<InstanceInfo> instances;
    /// Not full: the ids that left (or left discovery) after `since`, by id; some may never have
    /// been in the caller's list.
    std::vector<std::string> removed;
};

/// Talks to one registry. Cheap to copy; usable from any io_context. The calls copy their
/// arguments into the task they return, so a task may be kept and awaited later; the client
/// itself must outlive it.
class RegistryClient {
  public:
    explicit RegistryClient(net::Endpoint registry,
                            std::chrono::milliseconds timeout = std::chrono::seconds(2))
        : registry_(std::move(registry)), timeout_(timeout) {}

    const net::Endpoint& endpoint() const noexcept { return registry_; }

    /// Registers (or re-registers) `instance`; errc::rejected with the registry's detail on 4xx.
    net::Task<ErrorCode> register_instance(InstanceInfo instance) const;
    /// errc::unknown_instance if the registry has forgotten it (TTL expired, registry reset).
    net::Task<ErrorCode> heartbeat(std::string service, std::string id) const;
    net::Task<ErrorCode> deregister(std::string service, std::string id) const;
    /// Marks an instance draining: it stays registered but leaves discovery (no new traffic).
    net::Task<ErrorCode> set_draining(std::string service, std::string id) const;
    /// The service's instances; with `index` > 0 waits up to `wait` for a change after `index`.
    /// `all` includes draining and critical instances.
    net::Task<Result<ServiceSnapshot>> watch(std::string service, std::uint64_t index,
                                             std::chrono::milliseconds wait, bool all = false) const;
    /// Like watch(), but with `since` > 0 answered with only what changed after `since` (the
    /// index of the list the caller has), which the caller applies to its list; a full list when
    /// the registry cannot (see ServiceChanges::full). With `since` 0, the full list at once.
    net::Task<Result<ServiceChanges>> watch_changes(std::string service, std::uint64_t since,
                                                    std::chrono::milliseconds wait, bool all = false) const;

  private:
    net::Endpoint registry_;
    std::chrono::milliseconds timeout_;
};

/// Parses the registry's instance JSON object; used by the client and the registry's tests.
Result<InstanceInfo> instance_from_json(std::string_view json);
/// Parses a registration body of the registry API (address, port, tags, metadata, ttl_ms, status,
/// check) for instance `id` of `service`. errc::rejected with `problem` saying what is wrong; the values
/// are checked for form here and for sense by the registry.
Result<InstanceInfo> registration_from_json(std::string_view body, std::string service, std::string id,
                                            std::string* problem);
/// Serialises an instance as the registry's JSON object.
std::string instance_to_json(const InstanceInfo& instance);
/// A check as its JSON object: {"http":"/health/ready","interval_ms":1000,"timeout_ms":500,
/// "healthy_threshold":1,"unhealthy_threshold":2}.
std::string health_check_to_json(const HealthCheck& check);
/// Parses a check's JSON object; absent fields keep their defaults, `http` is required.
/// errc::rejected with `problem` naming the field that is missing or of the wrong type.
Result<HealthCheck> health_check_from_json(std::string_view json, std::string* problem = nullptr);

/// Keeps `self` registered until `*stop`: registers (retrying with backoff while the registry
/// cannot be reached), heartbeats every `heartbeat`, and registers again when the registry has
/// forgotten the instance (it restarted, or the TTL passed). Logs each change of state once.
/// Deregistering at shutdown is the caller's (set `*stop` first).
net::Task<void> keep_registered(RegistryClient client, InstanceInfo self, std::chrono::milliseconds heartbeat,
                                std::shared_ptr<std::atomic<bool>> stop);

}  // namespace plexus::discovery

template <>
struct boost::system::is_error_code_enum<plexus::discovery::errc> : std::true_type {};
