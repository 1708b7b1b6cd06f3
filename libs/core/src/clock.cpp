#include "plexus/core/clock.hpp"

#include <cstdint>

namespace plexus::core {
namespace {

// Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil inverse).
void civil_from_days(std::int64_t z, int& year, unsigned& month, unsigned& day) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    day = doy - (153 * mp + 2) / 5 + 1;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0));
}

void append_digits(std::string& out, unsigned value, int width) {
    char buf[8];
    for (int i = width - 1; i >= 0; --i) {
        buf[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
    out.append(buf, static_cast<std::size_t>(width));
}

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

void append_rfc3339(std::string& out, SystemTime t, bool millis) {
    using namespace std::chrono;
    const auto ms = floor<milliseconds>(t.time_since_epoch()).count();
    std::int64_t days = ms / 86'400'000;
    std::int64_t in_day = ms % 86'400'000;
    if (in_day < 0) {
        in_day += 86'400'000;
        --days;
    }
    int year = 0;
    unsigned month = 0, day = 0;
    civil_from_days(days, year, month, day);
    const auto ms_of_day = static_cast<unsigned>(in_day);
    append_digits(out, static_cast<unsigned>(year < 0 ? 0 : year), 4);
    out.push_back('-');
    append_digits(out, month, 2);
    out.push_back('-');
    append_digits(out, day, 2);
    out.push_back('T');
    append_digits(out, ms_of_day / 3'600'000, 2);
    out.push_back(':');
    append_digits(out, ms_of_day / 60'000 % 60, 2);
    out.push_back(':');
    append_digits(out, ms_of_day / 1000 % 60, 2);
    if (millis) {
        out.push_back('.');
        append_digits(out, ms_of_day % 1000, 3);
    }
    out.push_back('Z');
}

std::string rfc3339(SystemTime t, bool millis) {
    std::string out;
    append_rfc3339(out, t, millis);
    return out;
}

}  // namespace plexus::core
