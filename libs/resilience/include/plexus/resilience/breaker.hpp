#pragma once
/// A circuit breaker with Resilience4j's semantics.
///
/// CLOSED: calls pass; their outcomes fill a sliding window (the last `size` calls, or the calls
/// of the last `size` seconds). Once the window holds at least `minimum_calls`, a failure rate or
/// slow-call rate at or above its threshold opens the breaker.
/// OPEN: calls are refused (fail fast) for `open_for`; the next permission request after that
/// moves to HALF_OPEN (automatic transition, checked lazily: no timer thread).
/// HALF_OPEN: `half_open_calls` calls are let through; when all have reported, the breaker closes
/// (rates below the thresholds, window cleared) or opens again. Other calls are refused meanwhile.
///
///     if (!breaker.try_acquire()) return fail_fast();
///     auto start = clock.now();
///     bool ok = co_await call();
///     ok ? breaker.on_success(clock.now() - start) : breaker.on_error(clock.now() - start);
///
/// Thread-safe. The success path in CLOSED is one atomic load, one short mutex-guarded window
/// update and no allocation (the window is allocated once). A thread that finds the mutex taken
/// never waits for it: it leaves its outcome in an atomic counter that the next holder (or
/// `stats()`) folds into the window, so a decision may come one call later than a strictly
/// serial count would make it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/resilience/settings.hpp"

namespace plexus::resilience {

enum class BreakerState : std::uint8_t { closed = 0, open = 1, half_open = 2, disabled = 3 };
std::string_view to_string(BreakerState s) noexcept;

/// A breaker's numbers at one moment (for admin endpoints and tests).
struct BreakerStats {
    BreakerState state = BreakerState::closed;
    int buffered_calls = 0;  ///< outcomes in the window
    int failed_calls = 0;
    int slow_calls = 0;
    double failure_rate = -1;         ///< percent; -1 while below minimum_calls
    double slow_call_rate = -1;       ///< percent; -1 while below minimum_calls
    std::uint64_t not_permitted = 0;  ///< calls refused since creation
    std::uint64_t transitions = 0;
    core::SteadyTime opened_at{};  ///< when it last opened
};

class CircuitBreaker {
  public:
    /// Called after every state change, outside the breaker's lock, from the reporting thread.
    using Listener = std::function<void(BreakerState from, BreakerState to)>;

    CircuitBreaker(std::string name, BreakerSettings settings, core::Clock& clock = core::Clock::real());
    ~CircuitBreaker();
    CircuitBreaker(const CircuitBreaker&) = delete;
    CircuitBreaker& operator=(const CircuitBreaker&) = delete;

    /// Whether a call may go ahead now. In HALF_OPEN a `true` takes one of the trial permits, so
    /// every `true` must be followed by exactly one on_success, on_error or release.
    bool try_acquire() noexcept;
    /// The permitted call succeeded after `duration` (slow if ≥ slow_call_duration).
    void on_success(std::chrono::nanoseconds duration) noexcept;
    /// The permitted call failed after `duration`.
    void on_error(std::chrono::nanoseconds duration) noexcept;
    /// The permitted call was not made (or its outcome says nothing about the upstream, e.g.
    /// the caller gave up); returns a half-open permit.
    void release() noexcept;

    BreakerState state() const noexcept;
    BreakerStats stats() const;
    const std::string& name() const noexcept { return name_; }
    const BreakerSettings& settings() const noexcept { return settings_; }

    /// Sets the listener; call before the breaker is shared.
    void on_transition(Listener listener);
    /// Back to CLOSED with an empty window (an operator's reset).
    void reset();

  private:
    struct Impl;
    std::string name_;
    BreakerSettings settings_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::resilience
