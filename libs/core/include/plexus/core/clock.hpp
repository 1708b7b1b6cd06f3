#pragma once
/// An injectable clock. Code that measures time (TTLs, backoff, breakers) takes a `Clock&` so
/// tests drive time with `ManualClock` instead of sleeping.

#include <atomic>
#include <chrono>
#include <string>

namespace plexus::core {

using SteadyTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

/// Appends `t` in RFC 3339 UTC, to the second ("2026-12-06T02:37:00Z") or, with `millis`, to
/// the millisecond ("2026-12-06T02:37:00.123Z"). Years before 0 are written as 0000.
void append_rfc3339(std::string& out, SystemTime t, bool millis = false);
/// The same as a new string.
std::string rfc3339(SystemTime t, bool millis = false);

/// Source of the current time. Implementations are thread-safe.
class Clock {
  public:
    virtual ~Clock() = default;
    /// Monotonic time, for intervals and deadlines.
    virtual SteadyTime now() const noexcept = 0;
    /// Wall-clock time, for timestamps shown to people.
    virtual SystemTime wall() const noexcept = 0;

    /// The process's real clock.
    static Clock& real() noexcept;
};

/// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
  public:
    explicit ManualClock(SteadyTime start = SteadyTime{} + std::chrono::hours(1)) : now_(start) {}
    SteadyTime now() const noexcept override { return now_.load(); }
    SystemTime wall() const noexcept override {
        return SystemTime{} +
               std::chrono::duration_cast<SystemTime::duration>(now_.load().time_since_epoch());
    }
    void advance(std::chrono::nanoseconds d) noexcept { now_.store(now_.load() + d); }

  private:
    std::atomic<SteadyTime> now_;
};

}  // namespace plexus::core
