#pragma once
// Login backoff: after a few failed passwords for one user, or from one address, the next
// attempt must wait, twice as long after each further failure (capped), so guessing is slow
// for one account and for one attacker spraying many. While an attempt must wait it is refused
// without checking the password (the slow hash is not a lever for exhausting the server).
// A success clears its user's count (not its address's: one known account must not unlock an
// address that is guessing others). Counts are forgotten a while after their last failure.
// Bounded: the oldest entries go first when too many addresses fail at once.

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "plexus/core/clock.hpp"

namespace plexus::identity {

class LoginThrottle {
  public:
    struct Policy {
        int free_failures = 3;                   ///< failures before any wait
        std::chrono::seconds first_wait{1};      ///< the wait after the first counted failure
        std::chrono::seconds max_wait{300};      ///< the longest wait
        std::chrono::seconds forget_after{900};  ///< a count is dropped this long after its last failure
        std::size_t max_entries = 100'000;
    };

    explicit LoginThrottle(core::Clock& clock) : LoginThrottle(clock, Policy{}) {}
    LoginThrottle(core::Clock& clock, Policy policy) : clock_(clock), policy_(policy) {}

    /// How long an attempt for `user` from `address` must still wait; zero: it may go ahead.
    std::chrono::seconds wait(std::string_view user, std::string_view address);
    void failed(std::string_view user, std::string_view address);
    void succeeded(std::string_view user);

  private:
    struct Entry {
        int failures = 0;
        core::SteadyTime last{};
    };
    std::chrono::seconds wait_of(const std::string& key, core::SteadyTime now);
    void count(std::string key, core::SteadyTime now);

    core::Clock& clock_;
    Policy policy_;
    std::mutex mutex_;
    std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace plexus::identity
