#include "plexus/auth/token_cache.hpp"

namespace plexus::auth {

TokenCache::TokenCache(std::size_t max_entries) : entries_(max_entries) {}

std::shared_ptr<const CachedToken> TokenCache::find(std::string_view key, std::int64_t now) const {
    return entries_.find(key, [now](const Entry* e) -> std::shared_ptr<const CachedToken> {
        if (!e || e->expires_at < now) return nullptr;
        return e->token;
    });
}

void TokenCache::put(std::string key, std::shared_ptr<const CachedToken> token, std::int64_t expires_at) {
    entries_.upsert(key, [] { return Entry{}; }, [&](Entry& e) { e = Entry{std::move(token), expires_at}; });
}

std::size_t TokenCache::size() const { return entries_.size(); }

}  // namespace plexus::auth
