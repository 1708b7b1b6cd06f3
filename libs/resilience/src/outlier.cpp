#include "plexus/resilience/outlier.hpp"

#include <algorithm>
#include <limits>

namespace plexus::resilience {
namespace {

std::int64_t nanos_of(core::SteadyTime t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t nanos_of(std::chrono::milliseconds d) noexcept {
    constexpr std::int64_t kMaxMillis = std::numeric_limits<std::int64_t>::max() / 1'000'000;
    return std::clamp<std::int64_t>(d.count(), 0, kMaxMillis) * 1'000'000;
}

// base × ejections, capped at `most`, without overflowing on the way.
std::int64_t ejection_nanos(std::int64_t base, int ejections, std::int64_t most) noexcept {
    if (ejections > 0 && base > most / ejections) return most;
    return std::min(most, base * ejections);
}

}  // namespace

void OutlierDetector::on_success(HostHealth& h) noexcept {
    // Avoid writing a shared cache line on the common path.
    if (h.consecutive_errors.load(std::memory_order_relaxed) != 0) {
        h.consecutive_errors.store(0, std::memory_order_relaxed);
    }
    int ejections = h.ejections.load(std::memory_order_relaxed);
    if (ejections <= 0) return;
    const auto now = nanos_of(clock_->now());
    if (h.ejected_until.load(std::memory_order_acquire) > now) return;
    // last_ejection_end is when the last ejection ended, then when the count last decayed; the
    // compare-exchange lets one thread decay per base_ejection.
    auto since = h.last_ejection_end.load(std::memory_order_acquire);
    if (now - since < nanos_of(settings_.base_ejection)) return;
    if (!h.last_ejection_end.compare_exchange_strong(since, now, std::memory_order_acq_rel)) return;
    while (ejections > 0 &&
           !h.ejections.compare_exchange_weak(ejections, ejections - 1, std::memory_order_relaxed)) {
    }
}

bool OutlierDetector::on_failure(HostHealth& h, std::span<HostHealth* const> peers) noexcept {
    if (!settings_.enabled) return false;
    const int errors = h.consecutive_errors.fetch_add(1, std::memory_order_relaxed) + 1;
    if (errors < settings_.consecutive_errors) return false;

    const auto now = nanos_of(clock_->now());
    auto until = h.ejected_until.load(std::memory_order_acquire);
    if (until > now) return false;

    std::size_t ejected_peers = 0;
    for (const HostHealth* p : peers) {
        if (p != nullptr && p != &h && p->ejected_until.load(std::memory_order_relaxed) > now)
            ++ejected_peers;
    }
    // An empty list means the caller knows of no other instance.
    const std::size_t instances = std::max<std::size_t>(1, peers.size());
    const auto limit = static_cast<std::size_t>(std::max(0, settings_.max_ejection_percent));
    if ((ejected_peers + 1) * 100 > limit * instances) return false;

    const int ejections = h.ejections.load(std::memory_order_relaxed) + 1;
    const auto end =
        now + ejection_nanos(nanos_of(settings_.base_ejection), ejections, nanos_of(settings_.max_ejection));
    // Of several threads reporting the same failure streak, one ejects.
    if (!h.ejected_until.compare_exchange_strong(until, end, std::memory_order_acq_rel)) return false;
    h.ejections.fetch_add(1, std::memory_order_relaxed);
    h.last_ejection_end.store(end, std::memory_order_release);
    h.consecutive_errors.store(0, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

bool OutlierDetector::ejected(const HostHealth& h) const noexcept {
    auto until = h.ejected_until.load(std::memory_order_acquire);
    return until != 0 && until > nanos_of(clock_->now());  // never ejected: no clock read
}

core::SteadyTime OutlierDetector::ejected_until(const HostHealth& h) const noexcept {
    return core::SteadyTime{} + std::chrono::nanoseconds{h.ejected_until.load(std::memory_order_acquire)};
}

}  // namespace plexus::resilience
