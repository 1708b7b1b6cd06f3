#pragma once
/// Restart backoff: how long the supervisor waits before starting a process that exited again.
/// The delay starts at `initial_backoff` and doubles with each consecutive failure up to
/// `max_backoff`; a process that stayed up at least `reset_after` starts over at `initial_backoff`.
/// Pure computation on times handed in by the caller, so tests drive it with a ManualClock.

#include <chrono>

#include "plexus/core/clock.hpp"

namespace plexus::supervisor {

/// The `restart:` section of a manifest.
struct RestartPolicy {
    /// Delay after the first failure. Must be positive.
    std::chrono::milliseconds initial_backoff{200};
    /// Upper bound of the delay. Must be >= initial_backoff.
    std::chrono::milliseconds max_backoff{10000};
    /// A process that ran at least this long before exiting gets its backoff reset.
    std::chrono::milliseconds reset_after{30000};
};

/// The delay before the next start after `consecutive_failures` failures in a row (1 for the
/// first): initial_backoff * 2^(failures-1), capped at max_backoff; zero for failures <= 0.
std::chrono::milliseconds backoff_delay(const RestartPolicy& policy, int consecutive_failures) noexcept;

/// The backoff state of one managed process: call `started` when it is (re)started and `exited`
/// when it exits or fails to start. Not synchronised: owned by one instance, used by one thread.
class RestartBackoff {
  public:
    explicit RestartBackoff(RestartPolicy policy = {}) noexcept : policy_(policy) {}

    /// The process was started at `now`.
    void started(core::SteadyTime now) noexcept { started_at_ = now; }
    /// The process exited (or could not be started) at `now`. Resets the failure count first if
    /// it had been up for at least `reset_after`, then counts this failure and returns the delay
    /// before the next start.
    std::chrono::milliseconds exited(core::SteadyTime now) noexcept;
    /// Failures in a row so far (0 before the first exit and right after a reset).
    int consecutive_failures() const noexcept { return failures_; }

  private:
    RestartPolicy policy_;
    core::SteadyTime started_at_{};
    int failures_ = 0;
};

}  // namespace plexus::supervisor
