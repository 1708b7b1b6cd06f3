#pragma once
/// The `ip_access` filter: allows or denies a route by the client's address (nginx's
/// allow/deny, Kong's ip-restriction), before the body is read.
///
///     filters:
///       - name: ip_access
///         allow: [10.0.0.0/8, "2001:db8::/32", 127.0.0.1]   # if given, only these may call
///         deny: [10.1.2.0/24]                               # never these (checked first)
///
/// Entries are IPv4 or IPv6 addresses with an optional prefix length; an IPv4 client that
/// arrives as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 entries. A refused
/// request gets 403 `application/problem+json`. The address is the TCP peer's: behind a proxy it
/// is the proxy's, whatever X-Forwarded-For says.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/gateway/filter.hpp"

namespace plexus::gateway::filters {

/// An address block: an IPv6 address (IPv4 as ::ffff:a.b.c.d) and how many leading bits count.
struct AddressBlock {
    std::array<std::uint8_t, 16> bytes{};
    int bits = 128;

    /// Parses "10.0.0.0/8", "2001:db8::/32" or a single address; nullopt if malformed (also a
    /// prefix longer than the address or host bits set past it).
    static std::optional<AddressBlock> parse(std::string_view text) noexcept;
    /// Whether `address` (already in this 16-byte form) lies in the block.
    bool contains(const std::array<std::uint8_t, 16>& address) const noexcept;
    /// The block as written canonically ("10.0.0.0/8").
    std::string to_string() const;
};

/// Parses one address into the 16-byte form of AddressBlock; nullopt if it is not one.
std::optional<std::array<std::uint8_t, 16>> parse_address(std::string_view text) noexcept;

/// The filter's settings.
struct IpAccessConfig final : FilterConfig {
    std::vector<std::string> allow;  ///< empty: everyone not denied
    std::vector<std::string> deny;
    void to_json(boost::json::object& out) const override;
};

/// The factory registered as "ip_access".
const FilterFactory& ip_access_factory() noexcept;

}  // namespace plexus::gateway::filters
