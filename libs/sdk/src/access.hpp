#pragma once
// Credentials in a service: the ones its routes require (RouteRef::require, checked with the
// same verifier the gateway uses) and the ones its clients present (Client::relay_caller_token,
// Client::use_service_token).

#include <memory>
#include <string>
#include <vector>

#include "plexus/auth/verifier.hpp"
#include "plexus/net/router.hpp"
#include "plexus/service.hpp"

namespace plexus::auth {
class TokenSource;
}

namespace plexus::detail {

/// What one route requires of its caller.
struct RouteAccess {
    bool guarded = false;                     ///< RouteRef::require was called
    std::vector<std::string> accept, scopes;  ///< credential kinds taken (empty: the default), scopes
};

/// The --identity, --issuer, --audience and --credentials a service runs with.
struct AccessFlags {
    std::string identity, issuer, audience, credentials;
};

/// Each route's accepted credential kinds (0: none required), and the verifier they share, made
/// only when a route requires a credential; or the flag problem, naming the route.
struct RouteGuards {
    std::vector<auth::TokenKinds> kinds;
    std::shared_ptr<auth::Verifier> verifier;
    std::string error;
};

/// `routes` holds (method, pattern, access) for each route, in order.
struct GuardedRoute {
    const std::string& method;
    const std::string& pattern;
    const RouteAccess& access;
};
RouteGuards resolve_guards(const std::vector<GuardedRoute>& routes, const AccessFlags& flags);

/// Runs `inner` only for a caller whose credential is one of `kinds` and holds `scopes`, with
/// the caller's identity in X-Plexus-Subject, -Client, -Scopes and -Roles (auth::set_identity_headers); the
/// RFC 6750 answers otherwise.
net::Handler guarded(std::shared_ptr<auth::Verifier> verifier, auth::TokenKinds kinds,
                     std::vector<std::string> scopes, net::Handler inner);

/// What a client presents on its calls.
struct ClientCredential {
    enum class Kind : std::uint8_t { none, relay, service } kind = Kind::none;
    std::vector<std::string> scopes;           ///< Kind::service: the scopes asked for
    std::shared_ptr<auth::TokenSource> token;  ///< Kind::service: made by activate()

    /// Makes the token source of a service credential; the problem when the flags lack one.
    std::string activate(const AccessFlags& flags);

    /// Puts the credential on `out` (the caller's, or the service token). Returns the service
    /// token sent (to forget it on a 401) or, in `error`, why there is none.
    struct Sent {
        std::string token, error;
    };
    Task<Sent> attach(const Request& incoming, Request& out) const;

    /// After a 401 to `sent`: the next call fetches a new service token.
    void rejected(const Sent& sent) const;
};

}  // namespace plexus::detail
