// JWKs and JWTs: keys of each algorithm round-trip through JWK and PEM, and the verifier refuses
// every token RFC 8725 says to refuse, with a driven clock.

#include "plexus/security/jwt.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "plexus/security/jwk.hpp"

using namespace plexus;
using namespace std::chrono_literals;
namespace json = boost::json;
using security::Algorithm;
using security::JwtError;
using security::Key;
using security::KeySet;

namespace {

TEST(Base64Url, RoundTripsAndIsStrict) {
    for (std::string s :
         {std::string(), std::string("f"), std::string("fo"), std::string("foo"), std::string("foob"),
          std::string("fooba"), std::string("foobar"), std::string("\xff\xfe\x00\x01", 4)}) {
        auto enc = security::base64url_encode(s);
        EXPECT_EQ(enc.find_first_of("+/="), std::string::npos) << enc;
        EXPECT_EQ(security::base64url_decode(enc), s);
    }
    EXPECT_EQ(security::base64url_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(security::base64url_encode("\xfb\xff"), "-_8");
    EXPECT_FALSE(security::base64url_decode("Zm9v="));  // padding
    EXPECT_FALSE(security::base64url_decode("Zm+v"));   // the other alphabet
    EXPECT_FALSE(security::base64url_decode("Z"));      // no length is 1 mod 4
    EXPECT_FALSE(security::base64url_decode("Zh"));     // leftover bits set: "Zg" is the one text for "f"
    EXPECT_TRUE(security::base64url_decode("Zg"));
}

class KeyTest : public ::testing::TestWithParam<Algorithm> {};

TEST_P(KeyTest, SignsVerifiesAndRoundTripsThroughJwkAndPem) {
    auto key = Key::generate(GetParam(), "k1");
    EXPECT_TRUE(key.has_private());
    auto sig = key.sign("payload");
    if (GetParam() == Algorithm::es256) EXPECT_EQ(sig.size(), 64u);  // R||S, not DER
    EXPECT_TRUE(key.verify("payload", sig));
    EXPECT_FALSE(key.verify("payloaD", sig));

    std::string why;
    auto pub = Key::from_jwk(key.public_jwk(), &why);
    ASSERT_TRUE(pub) << why;
    EXPECT_FALSE(pub->has_private());
    EXPECT_EQ(pub->kid(), "k1");
    EXPECT_EQ(pub->algorithm(), GetParam());
    EXPECT_TRUE(pub->verify("payload", sig));
    EXPECT_THROW(pub->sign("x"), std::logic_error);
    EXPECT_EQ(json::serialize(pub->public_jwk()), json::serialize(key.public_jwk()));

    auto again = Key::from_private_pem(key.private_pem(), GetParam(), "k1");
    ASSERT_TRUE(again);
    EXPECT_TRUE(key.verify("x", again->sign("x")));
    auto other = GetParam() == Algorithm::eddsa ? Algorithm::es256 : Algorithm::eddsa;
    EXPECT_FALSE(Key::from_private_pem(key.private_pem(), other, "k1"));  // the PEM is not that kind of key
}

INSTANTIATE_TEST_SUITE_P(EveryAlgorithm, KeyTest,
                         ::testing::Values(Algorithm::es256, Algorithm::rs256, Algorithm::eddsa),
                         [](const auto& info) { return std::string(security::to_string(info.param)); });

TEST(Jwk, RefusesKeysThatDoNotFitTheirAlgorithmOrCarryPrivateParts) {
    auto ec = Key::generate(Algorithm::es256, "ec").public_jwk();
    std::string why;
    auto with = [](json::object o, std::string_view k, json::value v) {
        o[k] = std::move(v);
        return o;
    };
    EXPECT_FALSE(Key::from_jwk(with(ec, "alg", "RS256"), &why));
    EXPECT_NE(why.find("does not go with"), std::string::npos) << why;
    EXPECT_FALSE(Key::from_jwk(with(ec, "alg", "none"), &why));
    EXPECT_FALSE(Key::from_jwk(with(ec, "alg", "HS256"), &why));
    EXPECT_FALSE(Key::from_jwk(with(ec, "use", "enc"), &why));
    EXPECT_FALSE(Key::from_jwk(with(ec, "d", "AAAA"), &why));
    EXPECT_NE(why.find("private"), std::string::npos) << why;
    EXPECT_FALSE(Key::from_jwk(with(ec, "crv", "P-384"), &why));
    EXPECT_FALSE(Key::from_jwk(with(ec, "x", "AAAA"), &why));
    // A point not on the curve.
    EXPECT_FALSE(
        Key::from_jwk(with(ec, "y", json::value(security::base64url_encode(std::string(32, '\x01')))), &why));
    auto no_kid = ec;
    no_kid.erase("kid");
    EXPECT_FALSE(Key::from_jwk(no_kid, &why));
}

TEST(KeySet, ParsesAJwksSkippingKeysItCannotUse) {
    KeySet mine;
    mine.add(Key::generate(Algorithm::es256, "a"));
    mine.add(Key::generate(Algorithm::eddsa, "b"));
    EXPECT_THROW(mine.add(Key::generate(Algorithm::es256, "a")), std::invalid_argument);
    auto doc = json::parse(mine.to_json()).as_object();
    doc["keys"].as_array().push_back(
        json::object{{"kty", "oct"}, {"kid", "c"}, {"alg", "HS256"}, {"k", "c2VjcmV0"}});
    std::string why;
    std::vector<std::string> skipped;
    auto set = KeySet::from_json(json::serialize(doc), &why, &skipped);
    ASSERT_TRUE(set) << why;
    EXPECT_EQ(set->keys().size(), 2u);
    EXPECT_NE(set->find("a"), nullptr);
    EXPECT_EQ(set->find("c"), nullptr);
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_NE(skipped[0].find("HS256"), std::string::npos);
    EXPECT_EQ(set->to_json().find("\"d\""), std::string::npos);  // public halves only

    EXPECT_FALSE(KeySet::from_json("[]", &why));
    EXPECT_FALSE(KeySet::from_json(R"({"keys":[{"kty":"EC"}]})", &why));
    auto twice = doc;
    twice["keys"].as_array().push_back(twice["keys"].as_array()[0]);
    EXPECT_FALSE(KeySet::from_json(json::serialize(twice), &why));
    EXPECT_NE(why.find("two JWKS keys"), std::string::npos);
}

class JwtTest : public ::testing::Test {
  protected:
    void SetUp() override {
        keys_.add(signer_);
        keys_.add(rsa_);
    }
    double now() const { return std::chrono::duration<double>(clock_.wall().time_since_epoch()).count(); }
    json::object claims(double lifetime = 300) const {
        return {{"iss", "https://id.example"},
                {"aud", "shop"},
                {"sub", "user-1"},
                {"iat", static_cast<std::int64_t>(now())},
                {"exp", static_cast<std::int64_t>(now() + lifetime)}};
    }
    security::Verified verify(const std::string& token) const { return verifier_.verify(token, keys_); }
    // A token with a header and claims of our choosing, signed by `key`.
    static std::string forge(const json::object& header, const json::object& claims, const Key& key) {
        auto input = security::base64url_encode(json::serialize(header)) + "." +
                     security::base64url_encode(json::serialize(claims));
        return input + "." + security::base64url_encode(key.sign(input));
    }

    core::ManualClock clock_{core::SteadyTime{} + std::chrono::hours(24 * 365 * 50)};
    Key signer_ = Key::generate(Algorithm::es256, "es");
    Key rsa_ = Key::generate(Algorithm::rs256, "rs");
    KeySet keys_;
    security::JwtVerifier verifier_{{.issuer = "https://id.example", .audiences = {"shop", "admin"}}, clock_};
};

TEST_F(JwtTest, AcceptsAWellFormedToken) {
    auto v = verify(security::sign_jwt(signer_, claims()));
    ASSERT_TRUE(v) << v.detail;
    EXPECT_EQ(v.claims.at("sub").as_string(), "user-1");
    EXPECT_EQ(v.kid, "es");
    auto list_aud = claims();
    list_aud["aud"] = json::array{"other", "admin"};
    EXPECT_TRUE(verify(security::sign_jwt(rsa_, list_aud)));
    EXPECT_EQ(security::peek_kid(security::sign_jwt(rsa_, list_aud)), "rs");
}

TEST_F(JwtTest, ChecksTimeWithBoundedSkew) {
    auto token = security::sign_jwt(signer_, claims(60));
    clock_.advance(60s + 30s);  // at the end of the leeway
    EXPECT_TRUE(verify(token));
    clock_.advance(2s);
    auto v = verify(token);
    EXPECT_EQ(v.error, JwtError::expired);
    EXPECT_EQ(v.detail, "the token expired 32 s ago");

    auto early = claims();
    early["nbf"] = static_cast<std::int64_t>(now() + 120);
    EXPECT_EQ(verify(security::sign_jwt(signer_, early)).error, JwtError::not_yet_valid);
    auto future = claims();
    future["iat"] = static_cast<std::int64_t>(now() + 3600);
    EXPECT_EQ(verify(security::sign_jwt(signer_, future)).error, JwtError::not_yet_valid);
    auto no_exp = claims();
    no_exp.erase("exp");
    EXPECT_EQ(verify(security::sign_jwt(signer_, no_exp)).error, JwtError::missing_claim);
    auto text_exp = claims();
    text_exp["exp"] = "tomorrow";
    EXPECT_EQ(verify(security::sign_jwt(signer_, text_exp)).error, JwtError::malformed);
}

TEST_F(JwtTest, NamesHowFarOffAnAbsurdDateIsWithinRange) {
    // exp -1e300 and nbf 1e300 are finite numbers; their distance to now used to be converted to
    // long long out of range (undefined behaviour).
    auto past = claims();
    past["exp"] = -1e300;
    auto v = verify(forge({{"alg", "ES256"}, {"kid", "es"}, {"typ", "at+jwt"}}, past, signer_));
    EXPECT_EQ(v.error, JwtError::expired);
    EXPECT_EQ(v.detail, "the token expired 1000000000000000 s ago");
    auto future = claims();
    future["nbf"] = 1e300;
    v = verify(forge({{"alg", "ES256"}, {"kid", "es"}, {"typ", "at+jwt"}}, future, signer_));
    EXPECT_EQ(v.error, JwtError::not_yet_valid);
    EXPECT_EQ(v.detail, "the token is valid only in 1000000000000000 s");
}

TEST_F(JwtTest, ChecksIssuerAudienceAndType) {
    auto c = claims();
    c["iss"] = "https://evil.example";
    EXPECT_EQ(verify(security::sign_jwt(signer_, c)).error, JwtError::wrong_issuer);
    c = claims();
    c["aud"] = json::array{"billing"};
    EXPECT_EQ(verify(security::sign_jwt(signer_, c)).error, JwtError::wrong_audience);
    c.erase("aud");
    EXPECT_EQ(verify(security::sign_jwt(signer_, c)).error, JwtError::wrong_audience);
    // An ID token (typ JWT) is not an access token.
    EXPECT_EQ(verify(security::sign_jwt(signer_, claims(), "JWT")).error, JwtError::wrong_type);
    EXPECT_EQ(verify(security::sign_jwt(signer_, claims(), "")).error, JwtError::wrong_type);
    EXPECT_TRUE(verify(security::sign_jwt(signer_, claims(), "application/AT+JWT")));
}

TEST_F(JwtTest, RefusesTheAttacksOfRfc8725) {
    auto header = [&](const Key& k) {
        return json::object{{"alg", security::to_string(k.algorithm())}, {"kid", k.kid()}, {"typ", "at+jwt"}};
    };
    // alg none with no signature.
    auto none = header(signer_);
    none["alg"] = "none";
    auto input = security::base64url_encode(json::serialize(none)) + "." +
                 security::base64url_encode(json::serialize(claims()));
    EXPECT_EQ(verify(input + ".").error, JwtError::bad_algorithm);
    // HS256 keyed with the RSA public key (the HS/RS confusion): refused before any MAC is computed.
    auto hs = header(rsa_);
    hs["alg"] = "HS256";
    EXPECT_EQ(verify(forge(hs, claims(), rsa_)).error, JwtError::bad_algorithm);
    // An algorithm other than the key's own.
    auto swapped = header(signer_);
    swapped["alg"] = "RS256";
    EXPECT_EQ(verify(forge(swapped, claims(), rsa_)).error, JwtError::bad_algorithm);
    // Keys the token brings itself, by value or by reference.
    auto attacker = Key::generate(Algorithm::es256, "es");
    for (auto name : {"jwk", "jku", "x5u", "x5c"}) {
        auto h = header(attacker);
        h[name] = name == std::string_view("jwk") ? json::value(attacker.public_jwk())
                                                  : json::value("https://evil.example/k");
        EXPECT_EQ(verify(forge(h, claims(), attacker)).error, JwtError::untrusted_header) << name;
    }
    // A key that merely reuses a trusted kid.
    EXPECT_EQ(verify(forge(header(attacker), claims(), attacker)).error, JwtError::bad_signature);
    // crit extensions are not understood.
    auto crit = header(signer_);
    crit["crit"] = json::array{"exp"};
    EXPECT_EQ(verify(forge(crit, claims(), signer_)).error, JwtError::critical_header);
    // Unknown kid, no kid.
    auto unknown = header(signer_);
    unknown["kid"] = "nope";
    auto v = verify(forge(unknown, claims(), signer_));
    EXPECT_EQ(v.error, JwtError::unknown_key);
    EXPECT_EQ(v.kid, "nope");
    auto no_kid = header(signer_);
    no_kid.erase("kid");
    EXPECT_EQ(verify(forge(no_kid, claims(), signer_)).error, JwtError::unknown_key);
    // Of two alg members the last counts, so "none" cannot hide behind a good one.
    auto dup_input = security::base64url_encode(R"({"alg":"ES256","kid":"es","typ":"at+jwt","alg":"none"})") +
                     "." + security::base64url_encode(json::serialize(claims()));
    EXPECT_EQ(verify(dup_input + "." + security::base64url_encode(signer_.sign(dup_input))).error,
              JwtError::bad_algorithm);
}

TEST_F(JwtTest, RefusesTamperingAndMalformedTokens) {
    auto token = security::sign_jwt(signer_, claims());
    auto dot = token.find('.');
    auto dot2 = token.find('.', dot + 1);
    // Claims changed after signing.
    auto c = claims();
    c["sub"] = "admin";
    auto tampered =
        token.substr(0, dot + 1) + security::base64url_encode(json::serialize(c)) + token.substr(dot2);
    EXPECT_EQ(verify(tampered).error, JwtError::bad_signature);
    // One character of the signature changed.
    auto flipped = token;
    flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
    EXPECT_NE(verify(flipped).error, JwtError::none);
    for (std::string bad : {std::string("abc"), std::string("a.b"), std::string("a.b.c.d"), token + ".",
                            std::string("!!.") + token.substr(dot + 1), std::string("e30.e30.")}) {
        auto r = verify(bad);
        EXPECT_NE(r.error, JwtError::none) << bad;
    }
    EXPECT_EQ(verify("x.y.z").error, JwtError::malformed);
    EXPECT_EQ(verify(std::string(9000, 'a')).error, JwtError::too_large);
}

}  // namespace
