#pragma once
/// The JWT ids the identity provider has revoked, and the clients it has deleted (every token a
/// deleted client was issued until then), kept current by a long poll of its revocation watch
/// (GET <uri>?since=N&wait=30s, answered as soon as a revocation happens), so a revoked token is
/// refused by every gateway within about a second, also when its verification is cached.
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

/// One entry of the watch: a token id, or (client_id set) every token of that client issued at
/// or before `issued_before`. `expires_at`: when the entry's tokens have all expired anyway.
struct Revocation {
    std::string jti;
    std::int64_t expires_at = 0;
    std::string client_id{};
    std::int64_t issued_before = 0;
};

class RevokedTokens {
  public:
    /// Whether the token `jti` of `client_id`, issued at `issued_at` (seconds since the epoch; 0
    /// when unknown), is revoked: by its id (an empty jti never is), or by its client's deletion
    /// at or after it was issued.
    bool contains(std::string_view jti, std::string_view client_id = {}, std::int64_t issued_at = 0) const;
    /// Adds revocations and moves the watch position to `index`; drops entries that expired
    /// before `now`.
    void add(const std::vector<Revocation>& revoked, std::int64_t index, std::int64_t now);
    /// The watch position: the provider's revocations up to here are known.
    std::int64_t index() const;
    std::size_t size() const;

    /// The watch: long-polls `uri` and adds what it answers, backing off after failures (each
    /// failure streak logged once). `lock` gives the RevokedTokens to fill, or null once its owner
    /// is gone, which ends the watch.
    static net::Task<void> watch(std::string uri, std::function<std::shared_ptr<RevokedTokens>()> lock);

  private:
    struct ClientEntry {
        std::int64_t issued_before = 0, expires_at = 0;
    };
    struct State {
        std::map<std::string, std::int64_t, std::less<>> jtis;  // id → expiry
        std::map<std::string, ClientEntry, std::less<>> clients;
    };
    mutable std::mutex mutex_;
    std::shared_ptr<const State> state_ = std::make_shared<const State>();
    std::int64_t index_ = 0;
};

}  // namespace plexus::auth
