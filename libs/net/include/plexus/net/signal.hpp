#pragma once
/// A broadcast wake-up that tasks on any io_context can wait on, with a timeout. Used for
/// blocking watches (a registry answering a long poll when the catalog changes) and local views
/// that callers wait to be filled.

#include <chrono>
#include <cstdint>
#include <memory>

#include "plexus/net/task.hpp"

namespace plexus::net {

class Signal {
  public:
    Signal();
    ~Signal();
    Signal(const Signal&) = delete;
    Signal& operator=(const Signal&) = delete;

    /// Suspends until `notify_all()` is called after this wait began (returns true) or `timeout`
    /// passes (returns false). Any thread, any io_context.
    Task<bool> wait(std::chrono::milliseconds timeout);
    /// Like wait(timeout), but also returns true at once if `notify_all()` was called after
    /// `epoch()` returned `since`. Read the epoch before checking the condition being waited for:
    /// a notify between the check and the wait is then not lost.
    ///
    ///     auto seen = signal.epoch();
    ///     if (!ready()) co_await signal.wait(timeout, seen);
    Task<bool> wait(std::chrono::milliseconds timeout, std::uint64_t since);
    /// How many times `notify_all()` has been called. Thread-safe.
    std::uint64_t epoch() const;
    /// Wakes every current waiter. Thread-safe, never blocks on I/O.
    void notify_all();
    /// Number of tasks currently waiting.
    std::size_t waiters() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace plexus::net
