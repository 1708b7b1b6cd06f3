#include "plexus/resilience/retry.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

namespace plexus::resilience {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

std::uint64_t random_seed() noexcept {
    // The thread's address and the time keep threads apart should random_device be unusable.
    auto seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    int local = 0;
    seed ^= reinterpret_cast<std::uintptr_t>(&local);
    try {
        std::random_device rd;
        seed ^= (static_cast<std::uint64_t>(rd()) << 32) | rd();
    } catch (...) {
    }
    return seed;
}

// The count of one kind of event in one second of a budget's window: the second (modulo 2^32) in
// the high half, the count in the low half. A counter still holding an older second is reset and
// counted in by one compare-exchange, so no event is lost when a bucket is reused and no thread
// waits for another.
class SecondCounter {
  public:
    // Counts one event in `second` unless that second's count has reached `limit`; whether it
    // counted.
    bool add(std::uint32_t second, std::uint32_t limit = std::numeric_limits<std::uint32_t>::max()) noexcept {
        auto v = value_.load(std::memory_order_relaxed);
        for (;;) {
            const auto held = static_cast<std::uint32_t>(v >> 32);
            std::uint64_t next = 0;
            // A thread whose clock reading is a little behind counts in the newer second.
            if (held == second || static_cast<std::int32_t>(held - second) > 0) {
                if (static_cast<std::uint32_t>(v) >= limit) return false;
                next = v + 1;
            } else {
                if (limit == 0) return false;
                next = (std::uint64_t{second} << 32) | 1;
            }
            if (value_.compare_exchange_weak(v, next, std::memory_order_relaxed)) return true;
        }
    }

    // The count if it belongs to one of the `seconds` seconds ending with `now`.
    std::uint64_t count_within(std::uint32_t now, std::uint32_t seconds) const noexcept {
        const auto v = value_.load(std::memory_order_relaxed);
        const auto held = static_cast<std::uint32_t>(v >> 32);
        return static_cast<std::uint32_t>(now - held) < seconds ? static_cast<std::uint32_t>(v) : 0;
    }

  private:
    std::atomic<std::uint64_t> value_{0};
};

struct BudgetBucket {
    SecondCounter requests;
    SecondCounter retries;
};

}  // namespace

bool retryable(const RetrySettings& retry, bool idempotent, Failure failure, int status) noexcept {
    if (!retry.non_idempotent && !idempotent) return false;
    switch (failure) {
        case Failure::none:
            return retry.on.status(status);
        case Failure::connect_failure:
            return retry.on.connect_failure;
        case Failure::reset:
            return retry.on.reset;
        case Failure::timeout:
            return retry.on.timeout;
        case Failure::protocol:
            return false;
    }
    return false;
}

std::chrono::milliseconds backoff_delay(const RetrySettings& retry, int retry_number,
                                        std::uint64_t random) noexcept {
    const std::int64_t base = std::max<std::int64_t>(0, retry.backoff.count());
    const std::int64_t most = std::max<std::int64_t>(0, retry.max_backoff.count());
    const int shift = std::clamp(retry_number - 1, 0, 62);
    // base << shift, unless that would pass `most` (or overflow on the way there).
    const std::int64_t cap = base > (most >> shift) ? most : base << shift;
    return std::chrono::milliseconds{static_cast<std::int64_t>(random % static_cast<std::uint64_t>(cap + 1))};
}

std::uint64_t fast_random() noexcept {
    thread_local std::uint64_t state = random_seed();
    return splitmix64(state);
}

struct RetryBudget::Impl {
    Impl(const BudgetSettings& s, core::Clock& c)
        : clock(&c),
          seconds(static_cast<std::uint32_t>(
              std::clamp<std::int64_t>((s.window.count() + 999) / 1000, 1, kMaxSeconds))),
          floor(s.min_per_second * seconds),
          ratio(s.ratio),
          buckets(std::bit_ceil(seconds)),
          mask(buckets.size() - 1) {}

    // Bounds the ring for windows set in code without check(), which allows at most an hour.
    static constexpr std::int64_t kMaxSeconds = 86'400;

    core::Clock* clock;
    const std::uint32_t seconds;
    const double floor;
    const double ratio;
    // A power of two, at least `seconds`, so that finding a second's bucket is a mask, not a
    // division; counters outside the window are left out of the totals.
    std::vector<BudgetBucket> buckets;
    const std::uint64_t mask;

    std::int64_t now_second() const noexcept {
        return std::chrono::floor<std::chrono::seconds>(clock->now().time_since_epoch()).count();
    }

    BudgetBucket& bucket_of(std::int64_t second) noexcept {
        return buckets[static_cast<std::uint64_t>(second) & mask];
    }

    struct Totals {
        std::uint64_t requests = 0;
        std::uint64_t retries = 0;
    };

    Totals totals(std::int64_t second) const noexcept {
        Totals t;
        const auto now = static_cast<std::uint32_t>(second);
        for (const auto& b : buckets) {
            t.requests += b.requests.count_within(now, seconds);
            t.retries += b.retries.count_within(now, seconds);
        }
        return t;
    }
};

RetryBudget::RetryBudget(BudgetSettings settings, core::Clock& clock)
    : settings_(settings), impl_(std::make_unique<Impl>(settings_, clock)) {}

RetryBudget::~RetryBudget() = default;

void RetryBudget::on_request() noexcept {
    const auto second = impl_->now_second();
    impl_->bucket_of(second).requests.add(static_cast<std::uint32_t>(second));
}

bool RetryBudget::try_retry() noexcept {
    auto& m = *impl_;
    const auto second = m.now_second();
    const auto now = static_cast<std::uint32_t>(second);
    const auto t = m.totals(second);
    auto& mine = m.bucket_of(second).retries;
    // What this second may still hold, given the other seconds' retries; the add re-checks it
    // atomically, so concurrent retries cannot overdraw the budget.
    const double room = m.floor + m.ratio * static_cast<double>(t.requests) -
                        static_cast<double>(t.retries - mine.count_within(now, m.seconds));
    if (!(room >= 1)) return false;
    constexpr double kMax = std::numeric_limits<std::uint32_t>::max();
    return mine.add(
        now, room >= kMax ? std::numeric_limits<std::uint32_t>::max() : static_cast<std::uint32_t>(room));
}

std::uint64_t RetryBudget::requests() const noexcept { return impl_->totals(impl_->now_second()).requests; }

std::uint64_t RetryBudget::retries() const noexcept { return impl_->totals(impl_->now_second()).retries; }

}  // namespace plexus::resilience
