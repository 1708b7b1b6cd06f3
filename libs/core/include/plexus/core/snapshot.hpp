#pragma once
/// SnapshotCell<T>: an immutable snapshot (routes, a service's instances) that many threads read
/// on every request and one writer replaces now and then.
///
/// Readers take no lock and touch no shared cache line but one read-only counter: each thread
/// keeps its own copy of the current snapshot in a slot of its own and refreshes it (under the
/// writer's mutex) only after a store. `std::atomic<std::shared_ptr>` is not used on purpose:
/// libstdc++ implements it with a spin lock, and a reader preempted while holding it makes the
/// other threads spin for the rest of a scheduler tick — milliseconds of tail latency on a busy
/// machine.
///
/// load() hands out a shared_ptr, so a reader keeps its snapshot alive however long it needs it.
/// The copies a thread gets share a reference count of that thread's own (its slot holds the
/// snapshot through a small holder of its own), so a copy per request increments a counter no
/// other core writes, not the one all threads share. Thread-safe. Threads beyond kSlots share a
/// mutex-protected fallback.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace plexus::core {

namespace detail {
/// A small dense index for the calling thread (0, 1, 2, ... in order of first use).
inline std::size_t thread_slot() noexcept {
    static std::atomic<std::size_t> next{0};
    thread_local std::size_t slot = next.fetch_add(1, std::memory_order_relaxed);
    return slot;
}
}  // namespace detail

template <class T>
class SnapshotCell {
  public:
    static constexpr std::size_t kSlots = 64;

    explicit SnapshotCell(std::shared_ptr<const T> initial = nullptr) : current_(std::move(initial)) {}
    SnapshotCell(const SnapshotCell&) = delete;
    SnapshotCell& operator=(const SnapshotCell&) = delete;

    /// Replaces the snapshot; readers see it from their next load().
    void store(std::shared_ptr<const T> next) {
        std::lock_guard lock(mutex_);
        current_ = std::move(next);
        version_.fetch_add(1, std::memory_order_release);
    }

    /// The current snapshot.
    std::shared_ptr<const T> load() const {
        auto index = detail::thread_slot();
        auto version = version_.load(std::memory_order_acquire);
        if (index >= kSlots) {
            std::lock_guard lock(mutex_);
            return current_;
        }
        auto& slot = slots_[index];
        if (slot.version != version || !slot.filled) {
            std::lock_guard lock(mutex_);
            if (current_) {
                // Aliasing: points at the snapshot, counts in the thread's own holder.
                auto holder = std::make_shared<const std::shared_ptr<const T>>(current_);
                slot.snapshot = std::shared_ptr<const T>(holder, holder->get());
            } else {
                slot.snapshot = nullptr;
            }
            slot.version = version_.load(std::memory_order_relaxed);
            slot.filled = true;
        }
        return slot.snapshot;
    }

  private:
    struct alignas(64) Slot {
        std::uint64_t version = 0;
        bool filled = false;
        std::shared_ptr<const T> snapshot;
    };

    mutable std::mutex mutex_;
    std::shared_ptr<const T> current_;
    std::atomic<std::uint64_t> version_{0};
    mutable std::array<Slot, kSlots> slots_;
};

}  // namespace plexus::core
