#include "plexus/resilience/token_buckets.hpp"

#include <algorithm>
#include <cmath>

namespace plexus::resilience {

TokenBuckets::TokenBuckets(BucketSettings settings, core::Clock& clock)
    : settings_(settings),
      clock_(clock),
      per_ms_(static_cast<double>(settings.requests) / static_cast<double>(settings.per.count())),
      buckets_(settings.max_keys) {}

BucketDecision TokenBuckets::take(std::string_view key) { return take_n(key, 1, false); }

BucketDecision TokenBuckets::take_up_to(std::string_view key, std::int64_t n) { return take_n(key, n, true); }

BucketDecision TokenBuckets::take_n(std::string_view key, std::int64_t n, bool lease) {
    const auto now = clock_.now();
    const auto capacity = static_cast<double>(settings_.capacity());
    return buckets_.upsert(
        key, [&] { return Bucket{capacity, now}; },
        [&](Bucket& b) {
            auto elapsed = std::chrono::duration<double, std::milli>(now - b.updated).count();
            if (elapsed > 0) b.tokens = std::min(capacity, b.tokens + elapsed * per_ms_);
            b.updated = std::max(b.updated, now);

            BucketDecision d;
            if (b.tokens >= 1.0) {
                auto taken = std::min<std::int64_t>(n, static_cast<std::int64_t>(std::floor(b.tokens)));
                b.tokens -= static_cast<double>(taken);
                d.allowed = true;
                if (lease) d.remaining = taken;
            } else {
                d.retry_after = std::chrono::milliseconds(
                    static_cast<std::int64_t>(std::ceil((1.0 - b.tokens) / per_ms_)));
            }
            if (!lease) d.remaining = static_cast<std::int64_t>(std::floor(b.tokens));
            d.full_in = std::chrono::milliseconds(
                static_cast<std::int64_t>(std::ceil((capacity - b.tokens) / per_ms_)));
            return d;
        });
}

std::size_t TokenBuckets::size() const { return buckets_.size(); }

}  // namespace plexus::resilience
