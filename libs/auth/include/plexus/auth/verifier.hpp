#pragma once
/// Checks the credentials callers present — JWT access tokens, opaque access tokens and API keys
/// of one identity provider — for the gateway's `auth` filter and for services (the SDK's
/// Service::require), so the edge and the service behind it apply the same rules.
///
///   - A JWT is verified locally (libs/security's JwtVerifier: RFC 8725, `typ` at+jwt, iss, aud,
///     exp, nbf with a bounded skew) against the provider's JWKS, fetched when a token names a
///     kid not yet known (at most once per 10 s).
///   - An opaque token (`pxo_…`) or an API key (`pxk_<id>.<secret>`) is introspected (RFC 7662)
///     with the checker's own client credentials; the answer is cached, an active one for at most
///     `introspection_ttl` (and never past the token's expiry), an inactive one for
///     `negative_ttl`.
///   - Every credential that checked out is cached (keyed by the credential itself) so a repeated
///     one costs a lookup, and every use is checked against the provider's revocation watch (a
///     long poll that brings a revoked token id, API key id or refresh family's token ids within
///     about a second), so a revoked credential is refused at once even while cached.
///
/// `check` answers from what is known without any I/O (the request path's fast case) or says
/// `pending`; `check_async` does the I/O. Thread-safe; share one per provider.
///
///     auth::Verifier v(settings, 10'000, core::Clock::real());
///     auto c = v.check(token, auth::kJwt | auth::kOpaque);
///     if (c.status == auth::Check::pending) c = co_await v.check_async(std::string(token), kinds);

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "plexus/auth/jwks_cache.hpp"
#include "plexus/auth/revoked_tokens.hpp"
#include "plexus/auth/token_cache.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/net/task.hpp"
#include "plexus/security/jwt.hpp"

namespace plexus::auth {

/// Kinds of credential, as a bit set.
using TokenKinds = std::uint8_t;
inline constexpr TokenKinds kJwt = 1;
inline constexpr TokenKinds kOpaque = 2;
inline constexpr TokenKinds kApiKey = 4;

/// "jwt", "opaque" or "api_key" to its bit; 0 for anything else.
TokenKinds kind_named(std::string_view name) noexcept;
/// The names of the kinds in `kinds`, e.g. "jwt, api_key".
std::string kind_names(TokenKinds kinds);
/// The kind a presented credential has by its form: `pxk_` an API key, `pxo_` an opaque token,
/// three dot-separated parts a JWT; 0 for none of them.
TokenKinds kind_of(std::string_view credential) noexcept;

/// The identity provider.
struct ProviderSettings {
    std::string issuer{};    ///< tokens' `iss`
    std::string jwks_uri{};  ///< http://host:port/path of the JWKS
    std::string audience{};  ///< tokens' `aud` must hold it; empty: not checked
    /// http://host:port/path of the provider's revocation watch (GET ?since=N&wait=30s); empty:
    /// revoked JWTs are refused only once they expire.
    std::string revocations_uri{};
    /// http://host:port/path of the introspection endpoint (RFC 7662), for opaque tokens and API
    /// keys; empty: those are refused.
    std::string introspection_uri{};
    /// A JSON file {"client_id": ..., "client_secret": ...}: the confidential client that
    /// introspects. Read at the first introspection and again whenever it changes.
    std::string credentials_file{};
    std::chrono::seconds leeway{30};
    std::chrono::seconds introspection_ttl{60};
    std::chrono::seconds negative_ttl{5};
    /// Introspections in flight at once. Past it, a credential that is not cached is answered
    /// `unavailable` (a 503 to retry) rather than sent: a flood of made-up tokens, each a cache
    /// miss, cannot pile up on the identity provider.
    std::size_t max_introspections = 64;
};

/// The outcome of a check.
struct Check {
    /// ok; invalid (a 401); pending (`check` only: I/O needed); unavailable: the provider could
    /// not be asked (a 503, nothing cached)
    enum Status : std::uint8_t { ok, invalid, pending, unavailable };
    Status status = invalid;
    std::shared_ptr<const CachedToken> token{};  ///< ok: who, and the claims
    std::string detail{};                        ///< invalid, unavailable: why, for the answer's detail
};

class Verifier : public std::enable_shared_from_this<Verifier> {
  public:
    /// `cache_size`: credentials remembered (verified and inactive ones together).
    Verifier(ProviderSettings settings, std::size_t cache_size, core::Clock& clock);
    /// A verifier of JWTs signed by `keys` only, never fetching (tests, static key sets).
    Verifier(ProviderSettings settings, security::KeySet keys, std::size_t cache_size, core::Clock& clock);

    /// Without I/O: `ok` or `invalid` when the caches and the known keys decide, else `pending`.
    Check check(std::string_view credential, TokenKinds accepted) const;
    /// Decides, fetching the JWKS or introspecting as needed. Never `pending`.
    net::Task<Check> check_async(std::string credential, TokenKinds accepted);

    /// Starts following the provider's revocations on `ex` (once; no-op without a
    /// revocations_uri). The watch ends when the verifier is gone.
    void watch(net::Executor ex);

    const ProviderSettings& settings() const noexcept { return settings_; }
    const RevokedTokens& revoked() const noexcept { return revoked_; }

  private:
    struct Introspection;
    Verifier(ProviderSettings settings, std::optional<security::KeySet> keys, std::size_t cache_size,
             core::Clock& clock);
    std::int64_t now() const;
    Check conclude_jwt(const security::Verified& v, std::string credential) const;
    Check from_cache(std::shared_ptr<const CachedToken> t) const;
    net::Task<Check> introspect(std::string credential, TokenKinds kind);

    ProviderSettings settings_;
    core::Clock& clock_;
    JwksCache jwks_;
    mutable TokenCache tokens_;
    RevokedTokens revoked_;
    security::JwtVerifier jwt_;
    std::shared_ptr<Introspection> introspection_;
    std::atomic<bool> watching_{false};
};

}  // namespace plexus::auth
