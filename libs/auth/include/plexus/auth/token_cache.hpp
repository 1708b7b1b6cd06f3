#pragma once
/// Checked credentials, so that one presented again costs a lookup, not a signature check or an
/// introspection: keyed by the credential itself (a hit compares every byte, so no other token
/// can hit an entry; only what the verifier checked is stored, so entries cannot be planted),
/// each entry kept until its token expires or its introspection answer ages out. A SHA-256 digest as the key
/// cost more than everything else the gateway does per request. Bounded: when a shard is full, expired
/// entries go first, then the one that expires soonest. Thread-safe (sharded, short locks).
#include <array>
#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "plexus/serving/request_scope.hpp"

namespace plexus::auth {

/// What a checked credential established: who, and the claims routes may test. A null principal
/// records a credential found inactive (introspection's negative cache).
struct CachedToken {
    std::shared_ptr<const serving::Principal> principal;
    boost::json::object claims;
    std::string jti;  ///< the token's (or API key's) id, checked against revocations at every use
};

class TokenCache {
  public:
    explicit TokenCache(std::size_t max_entries);
    /// The entry of `token`, if cached and not expired at `now` (seconds since the epoch).
    std::shared_ptr<const CachedToken> find(std::string_view token, std::int64_t now) const;
    /// Caches what a verified token established until `expires_at` (seconds since the epoch).
    void put(std::string key, std::shared_ptr<const CachedToken> token, std::int64_t expires_at);
    std::size_t size() const;

  private:
    struct Entry {
        std::shared_ptr<const CachedToken> token;
        std::int64_t expires_at = 0;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries;
    };
    static constexpr std::size_t kShards = 16;
    std::size_t max_per_shard_;
    std::array<Shard, kShards> shards_;
};

}  // namespace plexus::auth
