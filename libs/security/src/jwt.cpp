#include "plexus/security/jwt.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

namespace plexus::security {

namespace json = boost::json;

namespace {

struct Parts {
    std::string_view header, payload, signature;  // base64url texts
};

std::optional<Parts> split(std::string_view token) {
    auto a = token.find('.');
    if (a == std::string_view::npos) return std::nullopt;
    auto b = token.find('.', a + 1);
    if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) return std::nullopt;
    return Parts{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

std::optional<json::object> decode_object(std::string_view b64) {
    auto bytes = base64url_decode(b64);
    if (!bytes) return std::nullopt;
    boost::system::error_code ec;
    // Of duplicate member names the lexically last counts, as RFC 7515 §5.2 allows (and as
    // ECMAScript's JSON.parse does), so every verifier reads one header the same way.
    auto v = json::parse(*bytes, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

Verified refuse(JwtError e, std::string detail, std::string kid = {}) {
    Verified v;
    v.error = e;
    v.detail = std::move(detail);
    v.kid = std::move(kid);
    return v;
}

// A NumericDate claim (RFC 7519 §2) in seconds, if present and a number.
std::optional<double> numeric_date(const json::object& claims, std::string_view name, bool& malformed) {
    const auto* v = claims.if_contains(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
        malformed = true;
        return std::nullopt;
    }
    auto d = v->to_number<double>();
    if (!std::isfinite(d)) {
        malformed = true;
        return std::nullopt;
    }
    return d;
}

bool typ_matches(std::string_view got, std::string_view want) {
    // RFC 7515 §4.1.9: "application/" may be left out; media types compare case-insensitively.
    auto strip = [](std::string_view t) {
        if (t.size() > 12 && std::equal(t.begin(), t.begin() + 12, "application/", [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == b;
            }))
            t.remove_prefix(12);
        return t;
    };
    got = strip(got);
    want = strip(want);
    return got.size() == want.size() && std::equal(got.begin(), got.end(), want.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

// A NumericDate may be any finite JSON number (exp -1e300 is one), so the difference to now is
// capped before it becomes an integer: converting a double beyond long long's range is undefined.
std::string seconds_text(double s) {
    constexpr double kCap = 1e15;  // some 30 million years
    return std::to_string(static_cast<long long>(std::ceil(std::clamp(s, -kCap, kCap)))) + " s";
}

}  // namespace

std::string_view to_string(JwtError e) noexcept {
    switch (e) {
        case JwtError::none:
            return "none";
        case JwtError::too_large:
            return "too_large";
        case JwtError::malformed:
            return "malformed";
        case JwtError::bad_algorithm:
            return "bad_algorithm";
        case JwtError::untrusted_header:
            return "untrusted_header";
        case JwtError::critical_header:
            return "critical_header";
        case JwtError::unknown_key:
            return "unknown_key";
        case JwtError::bad_signature:
            return "bad_signature";
        case JwtError::wrong_type:
            return "wrong_type";
        case JwtError::wrong_issuer:
            return "wrong_issuer";
        case JwtError::wrong_audience:
            return "wrong_audience";
        case JwtError::expired:
            return "expired";
        case JwtError::not_yet_valid:
            return "not_yet_valid";
        case JwtError::missing_claim:
            return "missing_claim";
    }
    return "?";
}

std::string sign_jwt(const Key& key, const json::object& claims, std::string_view typ) {
    json::object header{{"alg", to_string(key.algorithm())}, {"kid", key.kid()}};
    if (!typ.empty()) header["typ"] = typ;
    auto input = base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(claims));
    auto signature = key.sign(input);
    return input + "." + base64url_encode(signature);
}

std::string peek_kid(std::string_view token) {
    auto parts = split(token);
    if (!parts) return {};
    auto header = decode_object(parts->header);
    if (!header) return {};
    const auto* kid = header->if_contains("kid");
    return kid && kid->is_string() ? std::string(kid->as_string()) : std::string();
}

JwtVerifier::JwtVerifier(VerifyPolicy policy, core::Clock& clock)
    : policy_(std::move(policy)), clock_(clock) {}

Verified JwtVerifier::verify(std::string_view token, const KeySet& keys) const {
    if (token.size() > policy_.max_bytes)
        return refuse(JwtError::too_large,
                      "the token is longer than " + std::to_string(policy_.max_bytes) + " bytes");
    auto parts = split(token);
    if (!parts) return refuse(JwtError::malformed, "a JWT has three dot-separated parts");
    auto header = decode_object(parts->header);
    if (!header) return refuse(JwtError::malformed, "the header is not base64url JSON");

    // Header rules first: nothing the token says about keys or algorithms is trusted.
    for (auto name : {"jku", "x5u", "jwk", "x5c"}) {
        if (header->contains(name))
            return refuse(JwtError::untrusted_header, std::string("the header names its own key (") + name +
                                                          "); keys come from the key set");
    }
    if (header->contains("crit")) return refuse(JwtError::critical_header, "the header has crit extensions");
    const auto* alg_v = header->if_contains("alg");
    if (!alg_v || !alg_v->is_string()) return refuse(JwtError::bad_algorithm, "the header has no alg");
    auto alg = parse_algorithm(alg_v->as_string());
    if (!alg)
        return refuse(JwtError::bad_algorithm,
                      "alg " + std::string(alg_v->as_string()) + " is not accepted (ES256, RS256, EdDSA)");
    const auto* kid_v = header->if_contains("kid");
    if (!kid_v || !kid_v->is_string() || kid_v->as_string().empty())
        return refuse(JwtError::unknown_key, "the header has no kid");
    std::string kid(kid_v->as_string());
    if (!policy_.typ.empty()) {
        const auto* typ = header->if_contains("typ");
        if (!typ || !typ->is_string() || !typ_matches(typ->as_string(), policy_.typ))
            return refuse(JwtError::wrong_type, "the token is not of type " + policy_.typ, kid);
    }

    const Key* key = keys.find(kid);
    if (!key) return refuse(JwtError::unknown_key, "no key has kid " + kid, kid);
    if (key->algorithm() != *alg)
        return refuse(JwtError::bad_algorithm,
                      "key " + kid + " is for " + std::string(to_string(key->algorithm())) + ", not " +
                          std::string(alg_v->as_string()),
                      kid);
    auto signature = base64url_decode(parts->signature);
    if (!signature) return refuse(JwtError::malformed, "the signature is not base64url", kid);
    auto signing_input = token.substr(0, parts->header.size() + 1 + parts->payload.size());
    if (!key->verify(signing_input, *signature))
        return refuse(JwtError::bad_signature, "the signature does not verify with key " + kid, kid);

    auto claims = decode_object(parts->payload);
    if (!claims) return refuse(JwtError::malformed, "the claims are not base64url JSON", kid);

    const double now = std::chrono::duration<double>(clock_.wall().time_since_epoch()).count();
    const double leeway = static_cast<double>(policy_.leeway.count());
    bool bad_date = false;
    auto exp = numeric_date(*claims, "exp", bad_date);
    auto nbf = numeric_date(*claims, "nbf", bad_date);
    auto iat = numeric_date(*claims, "iat", bad_date);
    if (bad_date) return refuse(JwtError::malformed, "exp, nbf and iat must be numbers", kid);
    if (!exp && policy_.require_exp) return refuse(JwtError::missing_claim, "the token has no exp", kid);
    if (exp && now > *exp + leeway)
        return refuse(JwtError::expired, "the token expired " + seconds_text(now - *exp) + " ago", kid);
    if (nbf && now + leeway < *nbf)
        return refuse(JwtError::not_yet_valid, "the token is valid only in " + seconds_text(*nbf - now), kid);
    if (iat && now + leeway < *iat)
        return refuse(JwtError::not_yet_valid, "the token was issued in the future", kid);

    if (!policy_.issuer.empty()) {
        const auto* iss = claims->if_contains("iss");
        if (!iss || !iss->is_string() || iss->as_string() != policy_.issuer)
            return refuse(JwtError::wrong_issuer, "the token was not issued by " + policy_.issuer, kid);
    }
    if (!policy_.audiences.empty()) {
        const auto* aud = claims->if_contains("aud");
        auto accepted = [&](const json::value& v) {
            return v.is_string() && std::find(policy_.audiences.begin(), policy_.audiences.end(),
                                              std::string_view(v.as_string())) != policy_.audiences.end();
        };
        bool ok = false;
        if (aud && aud->is_array()) {
            const auto& list = aud->as_array();
            ok = std::any_of(list.begin(), list.end(), accepted);
        } else if (aud) {
            ok = accepted(*aud);
        }
        if (!ok) return refuse(JwtError::wrong_audience, "the token is not meant for this audience", kid);
    }

    Verified v;
    v.kid = std::move(kid);
    v.header = std::move(*header);
    v.claims = std::move(*claims);
    return v;
}

}  // namespace plexus::security
