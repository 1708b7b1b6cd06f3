#include "login_throttle.hpp"

#include <algorithm>

namespace plexus::identity {

namespace {

std::string user_key(std::string_view user) {
    std::string key = "u:";
    for (char c : user) key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return key;
}

std::string address_key(std::string_view address) { return "a:" + std::string(address); }

}  // namespace

std::chrono::seconds LoginThrottle::wait_of(const std::string& key, core::SteadyTime now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::chrono::seconds(0);
    auto& e = it->second;
    if (now - e.last >= policy_.forget_after) {
        entries_.erase(it);
        return std::chrono::seconds(0);
    }
    int over = e.failures - policy_.free_failures;
    if (over <= 0) return std::chrono::seconds(0);
    auto wait = policy_.first_wait * (std::int64_t{1} << std::min(over - 1, 20));
    wait = std::min(wait, policy_.max_wait);
    auto until = e.last + wait;
    if (until <= now) return std::chrono::seconds(0);
    return std::chrono::ceil<std::chrono::seconds>(until - now);
}

std::chrono::seconds LoginThrottle::wait(std::string_view user, std::string_view address) {
    auto now = clock_.now();
    std::lock_guard lock(mutex_);
    return std::max(wait_of(user_key(user), now), wait_of(address_key(address), now));
}

void LoginThrottle::count(std::string key, core::SteadyTime now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        if (entries_.size() >= policy_.max_entries) {
            // Drop the entry whose last failure is oldest.
            auto oldest =
                std::min_element(entries_.begin(), entries_.end(),
                                 [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
            entries_.erase(oldest);
        }
        it = entries_.emplace(std::move(key), Entry{}).first;
    } else if (now - it->second.last >= policy_.forget_after) {
        it->second.failures = 0;
    }
    ++it->second.failures;
    it->second.last = now;
}

void LoginThrottle::failed(std::string_view user, std::string_view address) {
    auto now = clock_.now();
    std::lock_guard lock(mutex_);
    count(user_key(user), now);
    count(address_key(address), now);
}

void LoginThrottle::succeeded(std::string_view user) {
    std::lock_guard lock(mutex_);
    entries_.erase(user_key(user));
}

}  // namespace plexus::identity
