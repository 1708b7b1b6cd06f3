#pragma once
/// Durations as people write them in settings, flags and query strings: "250ms", "5s", "2m", "1h".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace plexus::core {

/// Parses "<digits><unit>" with unit one of ms, s, m, h. A bare "0" is accepted. nullopt otherwise.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;

/// Formats as the largest unit that divides exactly ("1500ms", "5s", "2m").
std::string format_duration(std::chrono::milliseconds d);

}  // namespace plexus::core
