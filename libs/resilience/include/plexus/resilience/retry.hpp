#pragma once
/// Retry decisions: which failures are retried, how long to wait before the next attempt
/// (exponential backoff with full jitter), and a retry budget that caps retries at a share of
/// the requests, so that retries cannot multiply an outage.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string_view>

#include "plexus/core/clock.hpp"
#include "plexus/resilience/settings.hpp"

namespace plexus::resilience {

/// Whether an attempt that ended with `failure` (or, when failure == none, with HTTP `status`)
/// may be retried under `retry`, for a request whose method is `idempotent` or not (see
/// net::is_idempotent). Does not look at attempts, the deadline or the budget.
bool retryable(const RetrySettings& retry, bool idempotent, Failure failure, int status) noexcept;

/// The wait before retry number `retry_number` (1 for the first retry): a uniformly random
/// duration in [0, min(max_backoff, backoff × 2^(retry_number-1))] ("full jitter").
std::chrono::milliseconds backoff_delay(const RetrySettings& retry, int retry_number, std::uint64_t random) noexcept;

/// A cheap per-thread random number (for jitter and fault injection); not for security.
std::uint64_t fast_random() noexcept;

/// Caps retries at `ratio` × requests over a sliding window, plus `min_per_second` × window
/// seconds so that low traffic can still retry. Lock-free: counters in one-second buckets.
/// Thread-safe.
class RetryBudget {
  public:
    explicit RetryBudget(BudgetSettings settings, core::Clock& clock = core::Clock::real());
    ~RetryBudget();
    RetryBudget(const RetryBudget&) = delete;
    RetryBudget& operator=(const RetryBudget&) = delete;

    /// Counts a request (its first attempt). No allocation.
    void on_request() noexcept;
    /// Takes a retry from the budget; false when the budget is spent (then do not retry).
    bool try_retry() noexcept;

    /// Requests and retries currently in the window.
    std::uint64_t requests() const noexcept;
    std::uint64_t retries() const noexcept;
    const BudgetSettings& settings() const noexcept { return settings_; }

  private:
    struct Impl;
    BudgetSettings settings_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::resilience
