#include "plexus/auth/token_cache.hpp"

#include <algorithm>

namespace plexus::auth {

TokenCache::TokenCache(std::size_t max_entries)
    : max_per_shard_(std::max<std::size_t>(1, max_entries / kShards)) {}

std::shared_ptr<const CachedToken> TokenCache::find(std::string_view key, std::int64_t now) const {
    const auto& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(key);
    if (it == shard.entries.end() || it->second.expires_at < now) return nullptr;
    return it->second.token;
}

void TokenCache::put(std::string key, std::shared_ptr<const CachedToken> token, std::int64_t expires_at) {
    auto& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
    std::lock_guard lock(shard.mutex);
    if (shard.entries.size() >= max_per_shard_ && !shard.entries.count(key)) {
        auto soonest = std::min_element(
            shard.entries.begin(), shard.entries.end(),
            [](const auto& a, const auto& b) { return a.second.expires_at < b.second.expires_at; });
        shard.entries.erase(soonest);
    }
    shard.entries[std::move(key)] = Entry{std::move(token), expires_at};
}

std::size_t TokenCache::size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
        std::lock_guard lock(s.mutex);
        n += s.entries.size();
    }
    return n;
}

}  // namespace plexus::auth
