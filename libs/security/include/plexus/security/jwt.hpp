#pragma once
/// JSON Web Tokens (RFC 7519) in JWS compact form, signed and verified as RFC 8725 (JWT Best
/// Current Practices) asks:
///  - the algorithm is the key's own (looked up by `kid` only): `none`, HS*, or an `alg` other
///    than the key's are refused, so no token can pick how it is checked;
///  - `jku`, `x5u`, `jwk` and `x5c` headers are refused: keys come from the verifier's key set,
///    never from the token;
///  - a `crit` header is refused (no extension is understood);
///  - `typ` must be the expected one (`at+jwt` for access tokens, RFC 9068), so an ID token
///    cannot be replayed as an access token;
///  - `iss`, `aud`, `exp` and `nbf` are checked against the policy with a bounded clock skew;
///  - oversized tokens and malformed base64url or JSON are refused before any cryptography.
///
///     security::JwtVerifier verifier({.issuer = "https://id.example", .audiences = {"shop"}}, clock);
///     auto v = verifier.verify(token, keys);
///     if (!v) return unauthorized(v.detail);           // e.g. "the token expired 12 s ago"
///     v.claims.at("sub")...
///
/// Thread-safe: a verifier is immutable after construction.

#include <boost/json/object.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/security/jwk.hpp"

namespace plexus::security {

/// Signs `claims` as a compact JWS with header {"alg", "kid", "typ"}. Throws like Key::sign.
std::string sign_jwt(const Key& key, const boost::json::object& claims, std::string_view typ = "at+jwt");

/// What a verifier demands of a token.
struct VerifyPolicy {
    std::string issuer;                  ///< `iss` must equal it; empty: not checked
    std::vector<std::string> audiences;  ///< `aud` must contain one of them; empty: not checked
    std::string typ = "at+jwt";  ///< the `typ` header (case-insensitive, "application/" optional); empty: any
    std::chrono::seconds leeway{30};  ///< clock skew allowed for exp, nbf and iat
    std::size_t max_bytes = 8192;     ///< longer tokens are refused unread
    bool require_exp = true;          ///< a token without `exp` is refused
};

/// Why a token was refused.
enum class JwtError {
    none,
    too_large,
    malformed,         ///< not three base64url parts of JSON objects
    bad_algorithm,     ///< `alg` missing, "none", symmetric, or not the key's
    untrusted_header,  ///< jku, x5u, jwk or x5c present
    critical_header,   ///< crit present
    unknown_key,       ///< no key with this kid (a refresh of the key set may find it)
    bad_signature,
    wrong_type,
    wrong_issuer,
    wrong_audience,
    expired,
    not_yet_valid,
    missing_claim,
};

/// The name of an error ("expired", "bad_signature"...).
std::string_view to_string(JwtError e) noexcept;

/// A verified token, or why it is not one.
struct Verified {
    JwtError error = JwtError::none;
    std::string detail;          ///< for logs and `error_description`; never contains the token
    std::string kid;             ///< the header's kid (also set for unknown_key)
    boost::json::object header;  ///< set when the token verified
    boost::json::object claims;  ///< set when the token verified
    explicit operator bool() const noexcept { return error == JwtError::none; }
};

/// Verifies tokens against a policy and a key set; see the file comment.
class JwtVerifier {
  public:
    explicit JwtVerifier(VerifyPolicy policy, core::Clock& clock = core::Clock::real());
    /// Checks `token` completely: form, header rules, signature with `keys`, then claims.
    Verified verify(std::string_view token, const KeySet& keys) const;
    const VerifyPolicy& policy() const noexcept { return policy_; }

  private:
    VerifyPolicy policy_;
    core::Clock& clock_;
};

/// The `kid` of a token's header without verifying anything (to pick which key set to refresh);
/// empty if the header cannot be read.
std::string peek_kid(std::string_view token);

}  // namespace plexus::security
