#pragma once
/// Deadlines: a request's remaining time travels as `X-Plexus-Deadline-Ms: <milliseconds>`.
/// A server that receives an expired budget answers 504 without doing the work; an outbound
/// call uses min(its own timeout, the remaining budget) and sends what is left downstream.

#include <chrono>
#include <optional>
#include <string_view>

namespace plexus::resilience {

inline constexpr std::string_view kDeadlineHeader = "X-Plexus-Deadline-Ms";

/// Parses a deadline header value: a non-negative decimal integer of milliseconds (at most
/// 2^31); nullopt for anything else (the header is then ignored).
std::optional<std::chrono::milliseconds> parse_budget(std::string_view value) noexcept;

/// The earlier of `own` and `budget`-from-`start`.
inline std::chrono::steady_clock::time_point deadline_for(std::chrono::steady_clock::time_point start,
                                                          std::chrono::milliseconds own,
                                                          std::optional<std::chrono::milliseconds> budget) noexcept {
    auto d = start + own;
    if (budget && start + *budget < d) d = start + *budget;
    return d;
}

}  // namespace plexus::resilience
