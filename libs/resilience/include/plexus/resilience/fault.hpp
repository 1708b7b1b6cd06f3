#pragma once
/// Fault injection: per request, decide whether to add a delay and whether to abort with a
/// status instead of calling. Off unless a percentage is set.

#include <chrono>
#include <cstdint>

#include "plexus/resilience/settings.hpp"

namespace plexus::resilience {

struct FaultDecision {
    std::chrono::milliseconds delay{0};  ///< wait this long first (0: none)
    int abort_status = 0;                ///< answer this status instead of calling (0: call)
};

/// The decision for one request, from two uniform random numbers (see fast_random()).
FaultDecision decide_fault(const FaultSettings& fault, std::uint64_t random_delay, std::uint64_t random_abort) noexcept;

}  // namespace plexus::resilience
