#pragma once
/// The `rate_limit` filter: a token bucket per key (the client's address, the route, or a header
/// such as an API key), checked before the body is read. Local to one gateway process.
///
///     filters:
///       - name: rate_limit
///         requests: 100        # tokens regained per `per`
///         per: 1s
///         burst: 20            # bucket size (default: requests)
///         key: ip              # ip (default), route, or header:<Name> (missing header: one shared bucket)
///         max_keys: 100000     # keys remembered at once (the longest idle is forgotten first)
///
/// A refused request gets 429 `application/problem+json` with `Retry-After` (whole seconds,
/// rounded up). Every answer of the route carries `RateLimit-Limit`, `RateLimit-Remaining` and
/// `RateLimit-Reset` (seconds until the bucket is full), as draft-ietf-httpapi-ratelimit-headers
/// describes. Buckets survive a reload of the routes as long as the route keeps the same filter
/// settings. Each route has its own buckets, also when the filter comes from `default_filters`.
/// Refusals count in `plexus_gateway_rate_limited_total{route}`.

#include <memory>
#include <string>

#include "plexus/gateway/filter.hpp"
#include "rate_limit/token_buckets.hpp"

namespace plexus::gateway::filters {

/// The filter's settings.
struct RateLimitConfig final : FilterConfig {
    BucketSettings buckets;
    /// "ip", "route" or "header:<Name>".
    std::string key = "ip";
    void to_json(boost::json::object& out) const override;
};

/// The factory registered as "rate_limit".
const FilterFactory& rate_limit_factory() noexcept;

/// The factory with another clock (for tests that drive time).
std::unique_ptr<FilterFactory> make_rate_limit_factory(core::Clock& clock);

}  // namespace plexus::gateway::filters
