#pragma once
/// A bulkhead: at most `max_concurrent` calls to one upstream at once; a call over the limit is
/// refused at once (never queued), so a slow upstream cannot take every connection and thread.
/// Thread-safe, lock-free.

#include <atomic>
#include <cstdint>

#include "plexus/resilience/settings.hpp"

namespace plexus::resilience {

class Bulkhead {
  public:
    explicit Bulkhead(BulkheadSettings settings) : settings_(settings) {}
    Bulkhead(const Bulkhead&) = delete;
    Bulkhead& operator=(const Bulkhead&) = delete;

    /// Takes a place; false (and counted as rejected) when all are taken.
    bool try_acquire() noexcept;
    /// Gives back a place taken by try_acquire.
    void release() noexcept;

    int in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
    std::uint64_t rejected() const noexcept { return rejected_.load(std::memory_order_relaxed); }
    const BulkheadSettings& settings() const noexcept { return settings_; }

    /// Holds a place for its lifetime (empty if acquiring failed).
    class Permit {
      public:
        Permit() = default;
        explicit Permit(Bulkhead* b) noexcept : b_(b) {}
        Permit(Permit&& o) noexcept : b_(o.b_) { o.b_ = nullptr; }
        Permit& operator=(Permit&& o) noexcept {
            if (this != &o) {
                reset();
                b_ = o.b_;
                o.b_ = nullptr;
            }
            return *this;
        }
        ~Permit() { reset(); }
        explicit operator bool() const noexcept { return b_ != nullptr; }
        void reset() noexcept {
            if (b_) b_->release();
            b_ = nullptr;
        }

      private:
        Bulkhead* b_ = nullptr;
    };
    /// A permit, or an empty one when the bulkhead is full.
    Permit acquire() noexcept { return try_acquire() ? Permit(this) : Permit(); }

  private:
    BulkheadSettings settings_;
    std::atomic<int> in_use_{0};
    std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace plexus::resilience
