#pragma once
/// Outlier detection for load balancing: an instance that fails `consecutive_errors` times in a
/// row (5xx answers or connection failures) is ejected from the balancer for
/// base_ejection × its ejection count (capped at max_ejection), unless that would eject more
/// than max_ejection_percent of the service's instances. An instance that stays healthy for a
/// base_ejection after its ejection ended has its ejection count decay by one.
///
/// The per-instance state (`HostHealth`) lives with the instance in the discovery view and
/// survives snapshot swaps; `OutlierDetector` holds the settings and the clock. Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>

#include "plexus/core/clock.hpp"
#include "plexus/resilience/settings.hpp"

namespace plexus::resilience {

/// One instance's outlier state. All atomics; any thread may report.
struct HostHealth {
    std::atomic<int> consecutive_errors{0};
    std::atomic<int> ejections{0};
    std::atomic<std::int64_t> ejected_until{0};  ///< steady-clock nanoseconds; 0 = never
    std::atomic<std::int64_t> last_ejection_end{0};
};

class OutlierDetector {
  public:
    explicit OutlierDetector(OutlierSettings settings, core::Clock& clock = core::Clock::real())
        : settings_(settings), clock_(&clock) {}

    /// A call to the instance succeeded (any answer that is not a 5xx). No allocation.
    void on_success(HostHealth& h) noexcept;
    /// A call to the instance failed. `peers` are the health states of all the service's
    /// instances (to enforce max_ejection_percent). Returns true if this ejected the instance.
    bool on_failure(HostHealth& h, std::span<HostHealth* const> peers) noexcept;
    /// Whether the instance is ejected now.
    bool ejected(const HostHealth& h) const noexcept;
    /// When the instance's ejection ends (a past time point if it is not ejected).
    core::SteadyTime ejected_until(const HostHealth& h) const noexcept;

    std::uint64_t total_ejections() const noexcept { return total_.load(std::memory_order_relaxed); }
    const OutlierSettings& settings() const noexcept { return settings_; }
    core::Clock& clock() const noexcept { return *clock_; }

  private:
    OutlierSettings settings_;
    core::Clock* clock_;
    std::atomic<std::uint64_t> total_{0};
};

}  // namespace plexus::resilience
