#include "plexus/resilience/fault.hpp"

namespace plexus::resilience {
namespace {

// True for `percent` percent of uniform `random` values, in steps of 0.01%.
bool hit(double percent, std::uint64_t random) noexcept {
    return percent > 0 && static_cast<double>(random % 10'000) < percent * 100;
}

}  // namespace

FaultDecision decide_fault(const FaultSettings& fault, std::uint64_t random_delay,
                           std::uint64_t random_abort) noexcept {
    FaultDecision d;
    if (hit(fault.delay_percent, random_delay)) d.delay = fault.delay;
    if (hit(fault.abort_percent, random_abort)) d.abort_status = fault.abort_status;
    return d;
}

}  // namespace plexus::resilience
