#pragma once
/// Client of the registry's HTTP API (see platform/registry): registration, heartbeat,
/// deregistration, draining, and the blocking watch on one service.

#include <chrono>
#include <cstdint>
#include <map>
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
    std::string status = "passing";  ///< "passing" or "critical"

    net::Endpoint endpoint() const { return {address, port}; }
};

/// A service's instances at a catalog index.
struct ServiceSnapshot {
    std::uint64_t index = 0;
    std::vector<InstanceInfo> instances;
};

/// Talks to one registry. Cheap to copy; usable from any io_context.
class RegistryClient {
  public:
    explicit RegistryClient(net::Endpoint registry,
                            std::chrono::milliseconds timeout = std::chrono::seconds(2))
        : registry_(std::move(registry)), timeout_(timeout) {}

    const net::Endpoint& endpoint() const noexcept { return registry_; }

    /// Registers (or re-registers) `instance`; errc::rejected with the registry's detail on 4xx.
    net::Task<ErrorCode> register_instance(const InstanceInfo& instance) const;
    /// errc::unknown_instance if the registry has forgotten it (TTL expired, registry reset).
    net::Task<ErrorCode> heartbeat(const std::string& service, const std::string& id) const;
    net::Task<ErrorCode> deregister(const std::string& service, const std::string& id) const;
    /// Marks an instance draining: it stays registered but leaves discovery (no new traffic).
    net::Task<ErrorCode> set_draining(const std::string& service, const std::string& id) const;
    /// The service's instances; with `index` > 0 waits up to `wait` for a change after `index`.
    /// `all` includes draining and critical instances.
    net::Task<Result<ServiceSnapshot>> watch(const std::string& service, std::uint64_t index,
                                             std::chrono::milliseconds wait, bool all = false) const;

  private:
    net::Endpoint registry_;
    std::chrono::milliseconds timeout_;
};

/// Parses the registry's instance JSON object; used by the client and the registry's tests.
Result<InstanceInfo> instance_from_json(std::string_view json);
/// Parses a registration body of the registry API (address, port, tags, metadata, ttl_ms, status)
/// for instance `id` of `service`. errc::rejected with `problem` saying what is wrong; the values
/// are checked for form here and for sense by the registry.
Result<InstanceInfo> registration_from_json(std::string_view body, std::string service, std::string id,
                                            std::string* problem);
/// Serialises an instance as the registry's JSON object.
std::string instance_to_json(const InstanceInfo& instance);

}  // namespace plexus::discovery

template <>
struct boost::system::is_error_code_enum<plexus::discovery::errc> : std::true_type {};
