#pragma once
/// The limit service: rate limits shared by every gateway. Gateways keep the hot path local — each
/// spends tokens it has leased — and lease more in batches (one request carries the leases of
/// many keys) when they run low, so the service sees a few requests per second per gateway, not
/// one per client request.
///
///     POST /v1/leases
///     {"leases": [{"bucket": "products/10.0.0.7", "requests": 100, "per_ms": 1000, "burst": 100,
///                  "want": 10}, ...]}
///     → {"granted": [{"tokens": 10, "retry_after_ms": 0}, ...]}   (same order)
///
/// Each bucket is a token bucket (`requests` per `per_ms`, `burst` at most) kept here; a lease
/// takes up to `want` whole tokens from it at once. Buckets are keyed by name and settings, so two
/// gateways that disagree on a limit do not share a bucket. A malformed body is a 400
/// problem+json naming the lease and the field. Counts in `plexus_limits_leases_total` and
/// `plexus_limits_tokens_granted_total`.
///
/// The overshoot this allows, with G gateways each leasing at most `want` = b tokens per key:
/// tokens are only ever handed out of the shared bucket, so over any interval T the admitted
/// requests are at most burst + rate·T + G·b — the last term being leases drawn before the
/// interval and spent in it (a lease is spent within a second or dropped). See bench/ratelimit.

#include <cstdint>
#include <memory>
#include <string>

#include "plexus/core/clock.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/net/router.hpp"
#include "plexus/resilience/token_buckets.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::limits {

/// Flags of `plexus limits`.
struct Settings {
    std::string listen = "127.0.0.1:8700";
    std::size_t threads = 1;
    std::size_t max_keys = 1'000'000;  ///< buckets remembered per limit (the longest idle go first)
};

/// Reads the keys of Settings (listen, threads, max_keys) present in `r`; the same loader for a
/// settings file and the config server. Throws core::SettingsError naming the key.
void read_settings(core::SettingsReader& r, Settings& s);

/// Most leases in one request.
inline constexpr std::size_t kMaxLeasesPerRequest = 1000;

class Server {
  public:
    explicit Server(telemetry::Registry& metrics, std::size_t max_keys = 1'000'000,
                    core::Clock& clock = core::Clock::real());
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Adds POST /v1/leases to `router`.
    void add_routes(net::Router& router);
    /// One lease: up to `want` tokens of `bucket` (see the file comment).
    resilience::BucketDecision lease(const std::string& bucket, const resilience::BucketSettings& settings,
                                     std::int64_t want);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Runs the daemon until SIGTERM/SIGINT; the process exit code (2 for bad settings, 1 when it
/// cannot listen).
int run(const Settings& settings);

}  // namespace plexus::limits
