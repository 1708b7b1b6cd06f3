// The cost of the resilience checks around one successful outbound call: bulkhead, circuit
// breaker (count or time window) and retry budget, with the real clock, on one thread and on two
// threads sharing one upstream; then the same with the caller timing the call (two more clock
// reads), and one clock read alone for scale. Heap allocations made by the measuring thread during the timed
// loop are counted through replaced global operator new and reported as `allocs_per_call`.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <new>

#include "plexus/core/clock.hpp"
#include "plexus/resilience/breaker.hpp"
#include "plexus/resilience/bulkhead.hpp"
#include "plexus/resilience/retry.hpp"

namespace {

thread_local std::uint64_t t_allocations = 0;

void* counted_alloc(std::size_t size) {
    ++t_allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t align) {
    ++t_allocations;
    const auto a = static_cast<std::size_t>(align);
    if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
    throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    ++t_allocations;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    ++t_allocations;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new(std::size_t size, std::align_val_t align) { return counted_aligned_alloc(size, align); }
void* operator new[](std::size_t size, std::align_val_t align) { return counted_aligned_alloc(size, align); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using namespace plexus;
using namespace plexus::resilience;

// What one upstream shares between its calls, with production defaults.
struct UpstreamState {
    explicit UpstreamState(WindowType window) : breaker("bench", settings(window)) {}

    static BreakerSettings settings(WindowType window) {
        BreakerSettings s;
        s.window = window;
        s.size = window == WindowType::count ? 50 : 10;
        return s;
    }

    CircuitBreaker breaker;
    RetryBudget budget{BudgetSettings{}};
    Bulkhead bulkhead{BulkheadSettings{}};
};

// One upstream per window type, shared by every thread of a benchmark.
UpstreamState& upstream(WindowType window) {
    static UpstreamState count(WindowType::count);
    static UpstreamState time(WindowType::time);
    return window == WindowType::count ? count : time;
}

// The checks around one call. With `timed`, the caller also reads the clock twice to measure the
// call, as the breaker's doc example does; otherwise the call "took" a fixed millisecond.
template <bool timed>
bool one_call(UpstreamState& u, const core::Clock& clock) {
    if (!u.bulkhead.try_acquire()) return false;
    if (!u.breaker.try_acquire()) {
        u.bulkhead.release();
        return false;
    }
    u.budget.on_request();
    if constexpr (timed) {
        const auto start = clock.now();
        u.breaker.on_success(clock.now() - start);
    } else {
        u.breaker.on_success(std::chrono::milliseconds(1));
    }
    u.bulkhead.release();
    return true;
}

void report(benchmark::State& state, std::uint64_t allocations) {
    state.counters["allocs_per_call"] =
        benchmark::Counter(static_cast<double>(allocations), benchmark::Counter::kAvgIterations);
}

template <bool timed>
void run_calls(benchmark::State& state, WindowType window) {
    auto& u = upstream(window);
    const auto& clock = core::Clock::real();
    std::uint64_t refused = 0;
    const auto before = t_allocations;
    for (auto _ : state) {
        if (!one_call<timed>(u, clock)) ++refused;
    }
    report(state, t_allocations - before);
    if (refused != 0) state.SkipWithError("a call was refused");
}

void BM_SuccessPath(benchmark::State& state, WindowType window) { run_calls<false>(state, window); }
void BM_SuccessPathTimedByCaller(benchmark::State& state, WindowType window) {
    run_calls<true>(state, window);
}

// The real clock alone, for scale: the budget reads it once per call, a time window once more.
void BM_ClockNow(benchmark::State& state) {
    const auto& clock = core::Clock::real();
    for (auto _ : state) benchmark::DoNotOptimize(clock.now());
}

// Checks the counter itself: one allocation per iteration must read as allocs_per_call = 1.
void BM_AllocationCounterCheck(benchmark::State& state) {
    const auto before = t_allocations;
    for (auto _ : state) {
        auto* p = new std::uint64_t(42);
        benchmark::DoNotOptimize(p);
        delete p;
    }
    report(state, t_allocations - before);
}

}  // namespace

BENCHMARK_CAPTURE(BM_SuccessPath, count_window, WindowType::count);
BENCHMARK_CAPTURE(BM_SuccessPath, time_window, WindowType::time);
BENCHMARK_CAPTURE(BM_SuccessPath, count_window, WindowType::count)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_SuccessPath, time_window, WindowType::time)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_SuccessPathTimedByCaller, count_window, WindowType::count);
BENCHMARK_CAPTURE(BM_SuccessPathTimedByCaller, time_window, WindowType::time);
BENCHMARK(BM_ClockNow);
BENCHMARK(BM_AllocationCounterCheck);

BENCHMARK_MAIN();
