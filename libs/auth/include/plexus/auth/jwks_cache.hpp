#pragma once
/// The identity provider's public keys, fetched from its JWKS URL and kept for every route that
/// checks its tokens. A token signed with a kid the cache does not know triggers one refetch
/// (single flight: concurrent misses wait for the same fetch, bounded), at most once per
/// `min_refetch` so that tokens with made-up kids cannot hammer the identity server. The keys
/// survive reloads of the routes (kept in the FilterState). Thread-safe.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "plexus/core/clock.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/task.hpp"
#include "plexus/security/jwk.hpp"

namespace plexus::auth {

class JwksCache {
  public:
    /// Keys from `jwks_uri` ("http://host:port/path"); throws std::invalid_argument for another form.
    JwksCache(std::string jwks_uri, std::chrono::milliseconds min_refetch, core::Clock& clock);
    /// A cache holding `keys` that never fetches (for tests and static key sets).
    explicit JwksCache(security::KeySet keys);

    /// The keys known now (empty before the first fetch). Never null.
    std::shared_ptr<const security::KeySet> keys() const;
    /// Fetches the JWKS again unless a fetch ran less than `min_refetch` ago; a fetch already in
    /// flight is waited for (at most its timeout). True when the keys were (re)loaded by this or
    /// the awaited fetch. Failures are logged once per fetch and leave the old keys.
    net::Task<bool> refresh();
    const std::string& uri() const noexcept { return uri_; }

  private:
    net::Task<bool> fetch();

    std::string uri_;
    net::Endpoint endpoint_;
    std::string path_;
    std::chrono::milliseconds min_refetch_{0};
    core::Clock* clock_ = nullptr;
    mutable std::mutex mutex_;
    std::shared_ptr<const security::KeySet> keys_;
    core::SteadyTime last_attempt_{};
    std::atomic<bool> in_flight_{false};
    std::atomic<std::uint64_t> generation_{0};  // bumped when a fetch ends
};

}  // namespace plexus::auth
