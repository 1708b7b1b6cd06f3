// The token side of libs/security: JwtVerifier::verify and peek_kid on arbitrary compact JWS
// strings, base64url, Key::from_jwk and KeySet::from_json on arbitrary JSON. The first byte picks
// what the rest of the input is:
//   0  a compact token, verified against a fixed key set (ES256, RS256 and EdDSA keys made once
//      per process) by a strict and a lenient verifier;
//   1  base64url text: what decodes must encode back to the same text;
//   2  a JWK or a JWKS document: keys that load must publish a JWK that loads again, and the
//      loaded set is used to verify a token of the fixed set;
//   3  "<header JSON>\n<claims JSON>", signed with the fixed key the header's kid names (when
//      it names one), so that the checks after the signature (typ, exp, nbf, iat, iss, aud)
//      see arbitrary JSON too.

#include "plexus/security/jwt.hpp"

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "plexus/core/clock.hpp"
#include "plexus/security/jwk.hpp"

namespace {

namespace json = boost::json;
namespace security = plexus::security;

[[noreturn]] void broken(const char* what, int line) {
    std::fprintf(stderr, "fuzz_jwt:%d: invariant broken: %s\n", line, what);
    std::abort();
}
#define CHECK(cond)                           \
    do {                                      \
        if (!(cond)) broken(#cond, __LINE__); \
    } while (0)

// 2025-06-15, so that seeds with exp in 2030 are valid and ones in 2020 have expired.
constexpr std::chrono::seconds kNow{1'750'000'000};

// No issuer, audience or type demanded, no exp required, a minute of clock skew.
security::VerifyPolicy lenient_policy() {
    security::VerifyPolicy p;
    p.typ.clear();
    p.leeway = std::chrono::seconds{60};
    p.require_exp = false;
    return p;
}

struct Fixture {
    plexus::core::ManualClock clock{plexus::core::SteadyTime{} + kNow};
    security::Key es = security::Key::generate(security::Algorithm::es256, "es");
    security::Key rs = security::Key::generate(security::Algorithm::rs256, "rs");
    security::Key ed = security::Key::generate(security::Algorithm::eddsa, "ed");
    security::KeySet keys;
    security::JwtVerifier strict{{.issuer = "https://id.test", .audiences = {"shop", "admin"}}, clock};
    security::JwtVerifier lenient{lenient_policy(), clock};
    std::string es_token;

    Fixture() {
        keys.add(es);
        keys.add(rs);
        keys.add(ed);
        es_token =
            security::sign_jwt(es, {{"iss", "https://id.test"}, {"aud", "shop"}, {"exp", 1'900'000'000}});
    }
    const security::Key* signer(std::string_view kid) const { return keys.find(kid); }
};

const Fixture& fixture() {
    static const Fixture f;
    return f;
}

void check_verified(const security::Verified& v, std::string_view token) {
    if (!v) {
        CHECK(!v.detail.empty());
        CHECK(v.header.empty() && v.claims.empty());
        return;
    }
    CHECK(!v.kid.empty());
    CHECK(fixture().keys.find(v.kid) != nullptr);
    CHECK(security::peek_kid(token) == v.kid);
}

void verify_token(std::string_view token) {
    const auto& f = fixture();
    auto a = f.strict.verify(token, f.keys);
    check_verified(a, token);
    auto b = f.lenient.verify(token, f.keys);
    check_verified(b, token);
    // The strict policy only adds checks.
    if (a) CHECK(b);
    (void)security::peek_kid(token);
}

void base64url(std::string_view text) {
    auto bytes = security::base64url_decode(text);
    if (bytes) CHECK(security::base64url_encode(*bytes) == text);
    auto back = security::base64url_decode(security::base64url_encode(text));
    CHECK(back && *back == text);
}

void keys_from_json(std::string_view text) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (!ec && doc.is_object()) {
        std::string why;
        auto key = security::Key::from_jwk(doc.as_object(), &why);
        if (key) {
            CHECK(!key->has_private());
            auto again = security::Key::from_jwk(key->public_jwk());
            CHECK(again && again->kid() == key->kid() && again->algorithm() == key->algorithm());
            CHECK(!key->verify("input", "signature"));
        } else {
            CHECK(!why.empty());
        }
    }
    std::string why;
    std::vector<std::string> skipped;
    auto set = security::KeySet::from_json(text, &why, &skipped);
    if (!set) {
        CHECK(!why.empty());
        return;
    }
    auto again = security::KeySet::from_json(set->to_json());
    CHECK(again && again->keys().size() == set->keys().size());
    // A key set that is not the fixed one must not accept the fixed one's token, unless it holds
    // the very same public key.
    const auto& f = fixture();
    auto v = f.strict.verify(f.es_token, *set);
    if (v) {
        const auto* k = set->find("es");
        CHECK(k && json::serialize(k->public_jwk()) == json::serialize(f.es.public_jwk()));
    }
}

void signed_token(std::string_view text) {
    auto nl = text.find('\n');
    if (nl == std::string_view::npos) return;
    auto header = text.substr(0, nl), claims = text.substr(nl + 1);
    auto input = security::base64url_encode(header) + "." + security::base64url_encode(claims);
    // Sign only for a header that names a fixed key: other tokens stop before the signature.
    boost::system::error_code ec;
    auto h = json::parse(header, ec);
    const security::Key* key = nullptr;
    if (!ec && h.is_object()) {
        if (const auto* kid = h.as_object().if_contains("kid"); kid && kid->is_string())
            key = fixture().signer(kid->as_string());
    }
    std::string token =
        input + "." + (key ? security::base64url_encode(key->sign(input)) : std::string("AA"));
    verify_token(token);
    const auto& f = fixture();
    if (auto v = f.lenient.verify(token, f.keys)) {
        CHECK(key);
        CHECK(json::serialize(v.claims) == json::serialize(json::parse(claims)));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(bytes) + 1, size - 1);
    switch (bytes[0] % 4) {
        case 0:
            verify_token(rest);
            break;
        case 1:
            base64url(rest);
            break;
        case 2:
            keys_from_json(rest);
            break;
        case 3:
            signed_token(rest);
            break;
    }
    return 0;
}
