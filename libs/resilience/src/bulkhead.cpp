#include "plexus/resilience/bulkhead.hpp"

namespace plexus::resilience {

// The counter guards no data, so relaxed ordering is enough.
bool Bulkhead::try_acquire() noexcept {
    const int limit = settings_.max_concurrent;
    const int before = in_use_.fetch_add(1, std::memory_order_relaxed);
    if (limit > 0 && before >= limit) {
        in_use_.fetch_sub(1, std::memory_order_relaxed);
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void Bulkhead::release() noexcept { in_use_.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace plexus::resilience
