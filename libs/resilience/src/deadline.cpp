#include "plexus/resilience/deadline.hpp"

#include <cstdint>

namespace plexus::resilience {

std::optional<std::chrono::milliseconds> parse_budget(std::string_view value) noexcept {
    constexpr std::int64_t kMax = std::int64_t{1} << 31;
    if (value.empty()) return std::nullopt;
    std::int64_t n = 0;
    for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
        if (n > kMax) return std::nullopt;
    }
    return std::chrono::milliseconds{n};
}

}  // namespace plexus::resilience
