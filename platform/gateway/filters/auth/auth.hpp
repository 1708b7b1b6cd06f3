#pragma once
/// The `auth` filter: the route needs a valid access token (RFC 6750 Bearer), checked at the
/// edge before the body is read.
///
///     filters:
///       - name: auth
///         scopes: [catalog:write]      # every one required (403 insufficient_scope otherwise)
///         roles: [editor]              # every one required in the token's `roles` claim (403)
///         claims: {org: petstore}      # each claim must equal the value (or, for a list, hold it)
///         relay_token: false           # true: the upstream also gets the Authorization header
///         cache_size: 10000            # verified tokens remembered
///
/// Tokens are JWTs of the gateway's identity provider (`plexus gateway --issuer --jwks-uri
/// --audience`), verified as libs/security's JwtVerifier does (RFC 8725; `typ` at+jwt; iss, aud,
/// exp, nbf with a 30 s skew). The JWKS is fetched when a token names a kid not yet known, at most
/// once per 10 s; a verified token is cached (keyed by the token itself) until it expires, so a
/// repeated token costs a lookup, not a signature check. The cache and the keys survive reloads.
///
/// Answers (problem+json): no token → 401 with `WWW-Authenticate: Bearer realm="plexus"`; a bad
/// one → 401 `error="invalid_token"` with the reason; missing scopes or claims → 403
/// `error="insufficient_scope"`. A request that passes goes upstream with `X-Plexus-Subject`,
/// `X-Plexus-Client`, `X-Plexus-Scopes` and `X-Plexus-Roles` (the gateway drops those headers from every client
/// request, on every route, so only it can set them) and without its Authorization header unless
/// `relay_token`. Counts in `plexus_gateway_auth_total{route,result}` (ok, missing, invalid,
/// forbidden). Missing roles or claims are also 403 `insufficient_scope`.

#include <map>
#include <string>
#include <vector>

#include "plexus/gateway/filter.hpp"

namespace plexus::gateway::filters {

/// The filter's settings.
struct AuthConfig final : FilterConfig {
    std::vector<std::string> scopes;
    std::vector<std::string> roles;
    std::map<std::string, std::string> claims;
    bool relay_token = false;
    std::int64_t cache_size = 10'000;
    void to_json(boost::json::object& out) const override;
};

/// The factory registered as "auth".
const FilterFactory& auth_factory() noexcept;

}  // namespace plexus::gateway::filters
