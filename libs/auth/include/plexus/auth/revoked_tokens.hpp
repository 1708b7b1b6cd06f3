#pragma once
/// The JWT ids the identity provider has revoked, kept current by a long poll of its revocation
/// watch (GET <uri>?since=N&wait=30s, answered as soon as a revocation happens), so a revoked
/// token is refused by every gateway within about a second, also when its verification is cached.
/// Entries are dropped once their tokens have expired anyway. Thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/net/task.hpp"

namespace plexus::auth {

class RevokedTokens {
  public:
    /// Whether `jti` is revoked (an empty jti never is).
    bool contains(std::string_view jti) const;
    /// Adds revoked ids with the expiry of their tokens (seconds since the epoch) and moves the
    /// watch position to `index`; drops entries that expired before `now`.
    void add(const std::vector<std::pair<std::string, std::int64_t>>& revoked, std::int64_t index,
             std::int64_t now);
    /// The watch position: the provider's revocations up to here are known.
    std::int64_t index() const;
    std::size_t size() const;

    /// The watch: long-polls `uri` and adds what it answers, backing off after failures (each
    /// failure streak logged once). `lock` gives the RevokedTokens to fill, or null once its owner
    /// is gone, which ends the watch.
    static net::Task<void> watch(std::string uri, std::function<std::shared_ptr<RevokedTokens>()> lock);

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const std::map<std::string, std::int64_t, std::less<>>> revoked_ =
        std::make_shared<const std::map<std::string, std::int64_t, std::less<>>>();
    std::int64_t index_ = 0;
};

}  // namespace plexus::auth
