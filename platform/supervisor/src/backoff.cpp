#include "plexus/supervisor/backoff.hpp"

#include <algorithm>

namespace plexus::supervisor {

std::chrono::milliseconds backoff_delay(const RestartPolicy& policy, int consecutive_failures) noexcept {
    if (consecutive_failures <= 0) return std::chrono::milliseconds::zero();
    auto delay = policy.initial_backoff;
    // Double until the cap; stopping at the cap also keeps the multiplication from overflowing.
    for (int i = 1; i < consecutive_failures && delay < policy.max_backoff; ++i) delay *= 2;
    return std::min(delay, policy.max_backoff);
}

std::chrono::milliseconds RestartBackoff::exited(core::SteadyTime now) noexcept {
    if (now - started_at_ >= policy_.reset_after) failures_ = 0;
    if (failures_ < 1000) ++failures_;  // the delay is long capped by then; keep the count finite
    return backoff_delay(policy_, failures_);
}

}  // namespace plexus::supervisor
