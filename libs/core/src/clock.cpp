#include "plexus/core/clock.hpp"

namespace plexus::core {
namespace {
class RealClock final : public Clock {
  public:
    SteadyTime now() const noexcept override { return std::chrono::steady_clock::now(); }
    SystemTime wall() const noexcept override { return std::chrono::system_clock::now(); }
};
}  // namespace

Clock& Clock::real() noexcept {
    static RealClock clock;
    return clock;
}
}  // namespace plexus::core
