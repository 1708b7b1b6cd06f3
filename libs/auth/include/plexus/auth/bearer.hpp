#pragma once
/// The protected-resource side of RFC 6750, shared by the gateway's auth filter and services:
/// where a credential is presented, and the problem+json answers with their `WWW-Authenticate`
/// challenges.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/auth/verifier.hpp"
#include "plexus/net/http.hpp"

namespace plexus::auth {

/// The credential a request presents: the `Authorization: Bearer` token, or (when `kinds` holds
/// API keys) the `X-API-Key` header; empty when none.
std::string_view presented(const net::Headers& headers, TokenKinds kinds);

/// The first of `scopes` the principal lacks, as a reason ("the token lacks scope x"); nullopt
/// when it has them all.
std::optional<std::string> lacking_scope(const serving::Principal& p, const std::vector<std::string>& scopes);

/// Passes who the caller is on: `X-Plexus-Subject`, `-Client`, `-Scopes` and `-Roles` from the
/// principal, replacing whatever the request carried under those names (removed when empty).
void set_identity_headers(net::Headers& headers, const serving::Principal& p);

/// 401: no credential (`check` null) or a refused one (`error="invalid_token"`); 503 with
/// Retry-After when the provider could not be asked.
void answer_unauthorized(net::Response& res, const Check* check, TokenKinds kinds, std::string_view path);
/// 403 `error="insufficient_scope"`, naming the scopes the resource needs.
void answer_forbidden(net::Response& res, const std::string& why, const std::vector<std::string>& scopes,
                      std::string_view path);

}  // namespace plexus::auth
