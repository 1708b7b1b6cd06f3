#pragma once
/// The `rate_limit` filter: a token bucket per key (the client's address, the route, or a header
/// such as an API key), checked before the body is read. Local to one gateway process, or with
/// `scope: global` shared by every gateway through the limit service (see global_limit.hpp for
/// how, and its worst-case overshoot).
///
///     filters:
///       - name: rate_limit
///         requests: 100        # tokens regained per `per`
///         per: 1s
///         burst: 20            # bucket size (default: requests)
///         key: ip              # ip (default), route, or header:<Name> (missing header: one shared bucket)
///         max_keys: 100000     # keys remembered at once (the longest idle is forgotten first)
///         scope: local         # or global: the limit service's buckets (plexus gateway --limits-uri)
///         batch: 0             # global: tokens leased at a time (0: a tenth of the burst)
///
/// A refused request gets 429 `application/problem+json` with `Retry-After` (whole seconds,
/// rounded up). Every answer of the route carries `RateLimit-Limit`, `RateLimit-Remaining` and
/// `RateLimit-Reset` (seconds until the bucket is full), as draft-ietf-httpapi-ratelimit-headers
/// describes. Buckets survive a reload of the routes as long as the route keeps the same filter
/// settings. Each route has its own buckets, also when the filter comes from `default_filters`.
/// With `scope: global`, RateLimit-Remaining counts the tokens this gateway holds for the key.
/// Refusals count in `plexus_gateway_rate_limited_total{route}`.

#include <algorithm>
#include <memory>
#include <string>

#include "plexus/gateway/filter.hpp"
#include "plexus/resilience/token_buckets.hpp"

namespace plexus::gateway::filters {

/// The filter's settings.
struct RateLimitConfig final : FilterConfig {
    resilience::BucketSettings buckets;
    /// "ip", "route" or "header:<Name>".
    std::string key = "ip";
    /// "local": this gateway's buckets; "global": the limit service's, shared by every gateway.
    std::string scope = "local";
    /// Global: tokens leased at a time; 0: a tenth of the burst (at least 1).
    std::int64_t batch = 0;
    std::int64_t effective_batch() const noexcept {
        return batch > 0 ? batch : std::max<std::int64_t>(1, buckets.capacity() / 10);
    }
    void to_json(boost::json::object& out) const override;
};

/// The factory registered as "rate_limit".
const FilterFactory& rate_limit_factory() noexcept;

/// The factory with another clock (for tests that drive time).
std::unique_ptr<FilterFactory> make_rate_limit_factory(core::Clock& clock);

}  // namespace plexus::gateway::filters
