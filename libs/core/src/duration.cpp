#include "plexus/core/duration.hpp"

#include <charconv>

namespace plexus::core {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
    if (text == "0") return std::chrono::milliseconds{0};
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 12) return std::nullopt;
    std::int64_t n = 0;
    std::from_chars(text.data(), text.data() + digits, n);
    auto unit = text.substr(digits);
    if (unit == "ms") return std::chrono::milliseconds{n};
    if (unit == "s") return std::chrono::milliseconds{n * 1000};
    if (unit == "m") return std::chrono::milliseconds{n * 60'000};
    if (unit == "h") return std::chrono::milliseconds{n * 3'600'000};
    return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace plexus::core
