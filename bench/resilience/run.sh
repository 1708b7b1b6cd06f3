#!/usr/bin/env bash
# Resilience micro-benchmarks: the checks around one successful call (bulkhead, circuit breaker,
# retry budget) with the real clock, for a count and a time window, on one thread and on two
# threads sharing one upstream. Prints time per call and heap allocations per call
# (`allocs_per_call`, counted by replacing operator new in the benchmark).
#
#   bench/resilience/run.sh                         # configure the bench preset, build, run
#   BUILD_DIR=build/res-bench bench/resilience/run.sh
#   bench/resilience/run.sh --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#
# Extra arguments go to the benchmark binary. Needs libbenchmark-dev (Debian). The target is
# under 100 ns per uncontended call and 0 allocations.
#
# Reading the results: `BM_SuccessPath/*` is the library's work per call (the budget, and a time
# window, read the real clock); `*TimedByCaller*` adds the caller's two clock reads that measure
# the call; `BM_ClockNow` is one clock read. For `threads:2`, Google Benchmark's Time is wall time
# divided by the calls of both threads (inverse throughput): one thread's call takes about twice
# that. `BM_AllocationCounterCheck` must show allocs_per_call = 1, proving the counter counts.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD_DIR="${BUILD_DIR:-build/bench}"
cmake --preset bench -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" --target resilience_bench
"$BUILD_DIR/bench/resilience/resilience_bench" --benchmark_counters_tabular=true "$@"
