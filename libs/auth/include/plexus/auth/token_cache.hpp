#pragma once
/// Checked credentials, so that one presented again costs a lookup, not a signature check or an
/// introspection: keyed by the credential itself (a hit compares every byte, so no other token
/// can hit an entry; only what the verifier checked is stored, so entries cannot be planted),
/// each entry kept until its token expires or its introspection answer ages out. A SHA-256 digest as the key
/// cost more than everything else the gateway does per request. Bounded: when a shard is full, the entry
/// that expires soonest (or has expired) goes first. Thread-safe (sharded, short locks).
#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "plexus/core/sharded_map.hpp"
#include "plexus/serving/request_scope.hpp"

namespace plexus::auth {

/// What a checked credential established: who, and the claims routes may test. A null principal
/// records a credential found inactive (introspection's negative cache).
struct CachedToken {
    std::shared_ptr<const serving::Principal> principal;
    boost::json::object claims;
    std::string jti;             ///< the token's (or API key's) id, checked against revocations at every use
    std::int64_t issued_at = 0;  ///< its iat (0: none), against its client's deletion
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
    struct ExpiresAt {
        std::int64_t operator()(const Entry& e) const noexcept { return e.expires_at; }
    };
    core::ShardedMap<Entry, ExpiresAt> entries_;
};

}  // namespace plexus::auth
