#include "plexus/resilience/breaker.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <limits>

namespace plexus::resilience {
namespace {

using std::chrono::nanoseconds;

constexpr std::int64_t kNoSecond = std::numeric_limits<std::int64_t>::min();

struct Counts {
    int calls = 0;
    int failed = 0;
    int slow = 0;

    Counts& operator+=(const Counts& o) noexcept {
        calls += o.calls;
        failed += o.failed;
        slow += o.slow;
        return *this;
    }
    Counts& operator-=(const Counts& o) noexcept {
        calls -= o.calls;
        failed -= o.failed;
        slow -= o.slow;
        return *this;
    }
};

// One second of a time window.
struct Bucket {
    std::int64_t second = kNoSecond;
    Counts counts;
};

// An outcome in the count window's ring, as bits.
constexpr std::uint8_t kFailed = 1;
constexpr std::uint8_t kSlow = 2;

Counts counts_of(std::uint8_t outcome) noexcept {
    return {1, (outcome & kFailed) ? 1 : 0, (outcome & kSlow) ? 1 : 0};
}

std::int64_t nanos_of(core::SteadyTime t) noexcept {
    return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t second_of(core::SteadyTime t) noexcept {
    return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

double rate(int part, int calls) noexcept { return part * 100.0 / calls; }

// A state change to report once the lock is released.
struct Transition {
    bool happened = false;
    BreakerState from = BreakerState::closed;
    BreakerState to = BreakerState::closed;
};

// The changes one holder of the lock made, in order. More than fit are folded into the last
// (its `to` becomes the latest state), so the listener always ends on the current state.
struct Transitions {
    std::array<Transition, 4> items{};
    std::size_t count = 0;
    void add(const Transition& t) noexcept {
        if (!t.happened) return;
        if (count < items.size()) {
            items[count++] = t;
        } else {
            items.back().to = t.to;
        }
    }
};

}  // namespace

std::string_view to_string(BreakerState s) noexcept {
    switch (s) {
        case BreakerState::closed:
            return "closed";
        case BreakerState::open:
            return "open";
        case BreakerState::half_open:
            return "half_open";
        case BreakerState::disabled:
            return "disabled";
    }
    return "unknown";
}

struct CircuitBreaker::Impl {
    Impl(const BreakerSettings& s, core::Clock& c)
        : clock(&c),
          time_window(s.window == WindowType::time),
          size(std::max(1, s.size)),
          // A count window never holds more than `size` calls (Resilience4j caps it the same way).
          minimum_calls(time_window ? std::max(1, s.minimum_calls) : std::clamp(s.minimum_calls, 1, size)),
          half_open_calls(std::max(1, s.half_open_calls)),
          failure_threshold(s.failure_rate),
          slow_threshold(s.slow_call_rate),
          slow_duration(s.slow_call_duration),
          open_for(std::chrono::duration_cast<nanoseconds>(s.open_for).count()),
          state(s.enabled ? BreakerState::closed : BreakerState::disabled) {
        if (time_window) {
            buckets.resize(std::bit_ceil(static_cast<std::size_t>(size)));
        } else {
            ring.resize(static_cast<std::size_t>(size));
        }
    }

    core::Clock* clock;
    const bool time_window;
    const int size;
    const int minimum_calls;
    const int half_open_calls;
    const double failure_threshold;
    const double slow_threshold;
    const nanoseconds slow_duration;
    const std::int64_t open_for;

    std::atomic<BreakerState> state;
    std::atomic<std::int64_t> open_until{0};  // steady nanoseconds; meaningful while OPEN
    std::atomic<int> half_open_permits{0};
    std::atomic<std::uint64_t> not_permitted{0};
    std::atomic<std::uint64_t> transitions{0};
    Listener listener;

    // Guarded by `mutex`; the state is also only changed under it.
    std::mutex mutex;
    // Outcomes recorded while another thread held `mutex`, by outcome bits, folded into the window
    // by the next holder: a call's thread never waits for the lock (whose holder may have been
    // preempted for a whole scheduler tick).
    std::array<std::atomic<std::uint32_t>, 4> pending{};
    std::vector<std::uint8_t> ring;  // count window
    int head = 0;
    // Time window: a power of two (≥ size) of buckets, so that a second's bucket is found with a
    // mask; a second leaves the window (and its bucket) `size` seconds later.
    std::vector<Bucket> buckets;
    std::int64_t last_second = kNoSecond;
    Counts window;            // totals over the ring or the live buckets
    Counts trial;             // outcomes of the half-open calls
    bool show_trial = false;  // OPEN after a failed trial: stats show the trial
    core::SteadyTime opened_at{};

    bool over_threshold(const Counts& c) const noexcept {
        return c.calls > 0 &&
               (rate(c.failed, c.calls) >= failure_threshold || rate(c.slow, c.calls) >= slow_threshold);
    }

    Bucket& bucket_of(std::int64_t second) noexcept {
        return buckets[static_cast<std::uint64_t>(second) & (buckets.size() - 1)];
    }

    // Drops the seconds that fell out of the window by `second`.
    void advance(std::int64_t second) noexcept {
        if (last_second != kNoSecond && second <= last_second) return;
        if (last_second == kNoSecond || second - last_second >= size) {
            for (auto& b : buckets) b = Bucket{};
            window = {};
        } else {
            for (auto s = last_second + 1; s <= second; ++s) {
                auto& leaving = bucket_of(s - size);
                if (leaving.second == s - size) {
                    window -= leaving.counts;
                    leaving = Bucket{};
                }
            }
        }
        last_second = second;
    }

    void add(std::uint8_t outcome, std::int64_t second) noexcept {
        const Counts delta = counts_of(outcome);
        if (time_window) {
            advance(second);
            auto& b = bucket_of(last_second);
            if (b.second != last_second) b = Bucket{last_second, {}};  // emptied when it left the window
            b.counts += delta;
        } else {
            if (window.calls == size) window -= counts_of(ring[static_cast<std::size_t>(head)]);
            ring[static_cast<std::size_t>(head)] = outcome;
            head = head + 1 == size ? 0 : head + 1;
        }
        window += delta;
    }

    void clear_window() noexcept {
        window = {};
        head = 0;
        last_second = kNoSecond;
        for (auto& b : buckets) b = Bucket{};
    }

    // Under the lock.
    Transition move_to(BreakerState to) noexcept {
        const auto from = state.load(std::memory_order_relaxed);
        switch (to) {
            case BreakerState::open:
                opened_at = clock->now();
                open_until.store(nanos_of(opened_at) + open_for, std::memory_order_relaxed);
                half_open_permits.store(0, std::memory_order_relaxed);
                break;
            case BreakerState::half_open:
                trial = {};
                show_trial = false;
                half_open_permits.store(half_open_calls, std::memory_order_relaxed);
                break;
            case BreakerState::closed:
                clear_window();
                show_trial = false;
                half_open_permits.store(0, std::memory_order_relaxed);
                break;
            case BreakerState::disabled:
                break;
        }
        state.store(to, std::memory_order_release);
        transitions.fetch_add(1, std::memory_order_relaxed);
        return {true, from, to};
    }

    void notify(const Transition& t) const {
        if (t.happened && listener) listener(t.from, t.to);
    }
    void notify(const Transitions& ts) const {
        for (std::size_t i = 0; i < ts.count; ++i) notify(ts.items[i]);
    }

    // OPEN whose time is up becomes HALF_OPEN; returns the state after.
    BreakerState settle() noexcept {
        auto s = state.load(std::memory_order_acquire);
        if (s != BreakerState::open || nanos_of(clock->now()) < open_until.load(std::memory_order_relaxed))
            return s;
        Transition t;
        {
            std::lock_guard lock(mutex);
            if (state.load(std::memory_order_relaxed) == BreakerState::open &&
                nanos_of(clock->now()) >= open_until.load(std::memory_order_relaxed)) {
                t = move_to(BreakerState::half_open);
            }
        }
        notify(t);
        return state.load(std::memory_order_acquire);
    }

    // Under the lock: takes in one outcome and makes the transition it calls for, if any.
    Transition apply(std::uint8_t outcome, std::int64_t second) noexcept {
        const auto s = state.load(std::memory_order_relaxed);
        if (s == BreakerState::closed) {
            add(outcome, second);
            if (window.calls >= minimum_calls && over_threshold(window)) return move_to(BreakerState::open);
        } else if (s == BreakerState::half_open) {
            trial += counts_of(outcome);
            if (trial.calls >= half_open_calls) {
                if (over_threshold(trial)) {
                    auto t = move_to(BreakerState::open);
                    show_trial = true;
                    return t;
                }
                return move_to(BreakerState::closed);
            }
        }
        return {};
    }

    // Under the lock: applies the outcomes other threads left while the lock was taken, in the
    // state each finds (late ones in OPEN are dropped, as in record).
    void drain(std::int64_t second, Transitions& out) noexcept {
        for (std::uint8_t outcome = 0; outcome < pending.size(); ++outcome) {
            if (pending[outcome].load(std::memory_order_relaxed) == 0) continue;
            for (auto n = pending[outcome].exchange(0, std::memory_order_acq_rel); n > 0; --n) {
                out.add(apply(outcome, second));
            }
        }
    }

    void record(bool failed, nanoseconds duration) noexcept {
        auto s = state.load(std::memory_order_acquire);
        // OPEN: a late outcome of a call permitted before the breaker opened says nothing new.
        if (s == BreakerState::disabled || s == BreakerState::open) return;
        const std::uint8_t outcome = (failed ? kFailed : 0) | (duration >= slow_duration ? kSlow : 0);
        const std::int64_t second = time_window ? second_of(clock->now()) : 0;
        std::unique_lock lock(mutex, std::try_to_lock);
        if (!lock.owns_lock()) {
            pending[outcome].fetch_add(1, std::memory_order_relaxed);
            return;
        }
        Transitions ts;
        drain(second, ts);
        ts.add(apply(outcome, second));
        lock.unlock();
        notify(ts);
    }
};

CircuitBreaker::CircuitBreaker(std::string name, BreakerSettings settings, core::Clock& clock)
    : name_(std::move(name)), settings_(settings), impl_(std::make_unique<Impl>(settings_, clock)) {}

CircuitBreaker::~CircuitBreaker() = default;

bool CircuitBreaker::try_acquire() noexcept {
    auto& m = *impl_;
    auto s = m.state.load(std::memory_order_acquire);
    if (s == BreakerState::closed || s == BreakerState::disabled) return true;
    if (s == BreakerState::open) s = m.settle();
    if (s == BreakerState::closed) return true;
    if (s == BreakerState::half_open) {
        int p = m.half_open_permits.load(std::memory_order_relaxed);
        while (p > 0) {
            if (m.half_open_permits.compare_exchange_weak(p, p - 1, std::memory_order_acq_rel)) return true;
        }
    }
    m.not_permitted.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void CircuitBreaker::on_success(std::chrono::nanoseconds duration) noexcept {
    impl_->record(false, duration);
}

void CircuitBreaker::on_error(std::chrono::nanoseconds duration) noexcept { impl_->record(true, duration); }

void CircuitBreaker::release() noexcept {
    auto& m = *impl_;
    if (m.state.load(std::memory_order_acquire) != BreakerState::half_open) return;
    int p = m.half_open_permits.load(std::memory_order_relaxed);
    while (p < m.half_open_calls) {
        if (m.half_open_permits.compare_exchange_weak(p, p + 1, std::memory_order_acq_rel)) return;
    }
}

BreakerState CircuitBreaker::state() const noexcept { return impl_->settle(); }

BreakerStats CircuitBreaker::stats() const {
    auto& m = *impl_;
    m.settle();
    BreakerStats out;
    std::unique_lock lock(m.mutex);
    Transitions drained;
    m.drain(m.time_window ? second_of(m.clock->now()) : 0, drained);
    if (drained.count) {
        lock.unlock();
        m.notify(drained);
        lock.lock();
    }
    out.state = m.state.load(std::memory_order_relaxed);
    out.not_permitted = m.not_permitted.load(std::memory_order_relaxed);
    out.transitions = m.transitions.load(std::memory_order_relaxed);
    out.opened_at = m.opened_at;
    if (out.state == BreakerState::disabled) return out;
    const bool trial =
        out.state == BreakerState::half_open || (out.state == BreakerState::open && m.show_trial);
    if (!trial && m.time_window) m.advance(second_of(m.clock->now()));
    const Counts& c = trial ? m.trial : m.window;
    out.buffered_calls = c.calls;
    out.failed_calls = c.failed;
    out.slow_calls = c.slow;
    if (c.calls > 0 && c.calls >= (trial ? m.half_open_calls : m.minimum_calls)) {
        out.failure_rate = rate(c.failed, c.calls);
        out.slow_call_rate = rate(c.slow, c.calls);
    }
    return out;
}

void CircuitBreaker::on_transition(Listener listener) { impl_->listener = std::move(listener); }

void CircuitBreaker::reset() {
    auto& m = *impl_;
    Transition t;
    {
        std::lock_guard lock(m.mutex);
        const auto s = m.state.load(std::memory_order_relaxed);
        if (s == BreakerState::disabled) return;
        if (s == BreakerState::closed) {
            m.clear_window();
        } else {
            t = m.move_to(BreakerState::closed);
        }
    }
    m.notify(t);
}

}  // namespace plexus::resilience
