#pragma once
/// Token buckets by key, for the gateway's rate_limit filter and the limit service: each key may spend
/// `burst` tokens at once and regains `rate` tokens per `per`. Memory is bounded by `max_keys`: when a shard
/// is full, the key untouched for longest is forgotten (it would have refilled the soonest). Thread-safe:
/// keys are spread over shards, each with its own short lock (held for one map lookup and a few arithmetic
/// operations), as nginx's limit_req zone does.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "plexus/core/clock.hpp"
#include "plexus/core/sharded_map.hpp"

namespace plexus::resilience {

/// What the buckets are.
struct BucketSettings {
    std::int64_t requests = 100;          ///< tokens regained per `per`
    std::chrono::milliseconds per{1000};  ///< > 0
    std::int64_t burst = 0;               ///< bucket size; 0: `requests`
    std::size_t max_keys = 100'000;       ///< keys remembered at once

    std::int64_t capacity() const noexcept { return burst > 0 ? burst : requests; }
};

/// The outcome of taking one token.
struct BucketDecision {
    bool allowed = false;
    std::int64_t remaining = 0;                ///< whole tokens left after this request
    std::chrono::milliseconds retry_after{0};  ///< refused: until one token is back
    std::chrono::milliseconds full_in{0};      ///< until the bucket is full again
};

class TokenBuckets {
  public:
    TokenBuckets(BucketSettings settings, core::Clock& clock);

    /// Takes one token from `key`'s bucket (a new key starts full).
    BucketDecision take(std::string_view key);
    /// Takes up to `n` whole tokens from `key`'s bucket at once (a lease); `allowed` says whether
    /// any was taken, `remaining` how many were (not what is left), `retry_after` when one is
    /// back if none was.
    BucketDecision take_up_to(std::string_view key, std::int64_t n);
    /// The number of keys remembered now.
    std::size_t size() const;
    const BucketSettings& settings() const noexcept { return settings_; }

  private:
    struct Bucket {
        double tokens = 0;
        core::SteadyTime updated{};
    };
    struct Updated {
        core::SteadyTime operator()(const Bucket& b) const noexcept { return b.updated; }
    };
    BucketDecision take_n(std::string_view key, std::int64_t n, bool lease);

    BucketSettings settings_;
    core::Clock& clock_;
    double per_ms_;  // tokens regained per millisecond
    core::ShardedMap<Bucket, Updated> buckets_;
};

}  // namespace plexus::resilience
