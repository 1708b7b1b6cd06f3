#pragma once
/// The `auth` filter: the route needs a valid access token (RFC 6750 Bearer), checked at the
/// edge before the body is read.
///
///     filters:
///       - name: auth
///         accept: [jwt, opaque]        # jwt, opaque, api_key; default: jwt, and opaque
///                                      # when the gateway can introspect
///         scopes: [catalog:write]      # every one required (403 insufficient_scope otherwise)
///         roles: [editor]              # every one required in the token's `roles` claim (403)
///         claims: {org: petstore}      # each claim must equal the value (or, for a list, hold it)
///         relay_token: false           # true: the upstream also gets the Authorization header
///         cache_size: 10000            # verified tokens remembered
///
/// Credentials are checked by libs/auth's Verifier against the gateway's identity provider
/// (`plexus gateway --issuer --jwks-uri --audience --revocations-uri`): JWTs locally (RFC 8725),
/// opaque tokens and API keys by introspection (`--introspection-uri`, with the gateway's own
/// client from `--client-credentials`), each cached, revocations pushed within a second. A
/// token comes as `Authorization: Bearer`; an API key as a Bearer token or in `X-API-Key`. The
/// caches and keys survive reloads.
///
/// Answers (problem+json): no credential → 401 with `WWW-Authenticate: Bearer realm="plexus"`; a
/// bad one, or one of a kind the route does not accept → 401 `error="invalid_token"` with the
/// reason; missing scopes or claims → 403 `error="insufficient_scope"`; the identity provider
/// unreachable for an introspection → 503 with Retry-After. A request that passes goes upstream with
/// `X-Plexus-Subject`, `X-Plexus-Client`, `X-Plexus-Scopes` and `X-Plexus-Roles` (the gateway drops those
/// headers from every client request, on every route, so only it can set them) and without its Authorization
/// header unless `relay_token`. Counts in `plexus_gateway_auth_total{route,result}` (ok, missing, invalid,
/// forbidden, unavailable). Missing roles or claims are also 403 `insufficient_scope`.

#include <map>
#include <string>
#include <vector>

#include "plexus/gateway/filter.hpp"

namespace plexus::gateway::filters {

/// The filter's settings.
struct AuthConfig final : FilterConfig {
    std::vector<std::string> accept;  ///< empty: jwt, and opaque when the gateway introspects
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
