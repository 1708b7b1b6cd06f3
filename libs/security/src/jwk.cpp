#include "plexus/security/jwk.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <array>
#include <boost/json.hpp>
#include <set>
#include <stdexcept>

#include "plexus/core/base64.hpp"

namespace plexus::security {

namespace json = boost::json;

struct Key::Evp {
    EVP_PKEY* pkey;
    explicit Evp(EVP_PKEY* p) : pkey(p) {}
    ~Evp() { EVP_PKEY_free(pkey); }
    Evp(const Evp&) = delete;
    Evp& operator=(const Evp&) = delete;
};

namespace {

constexpr std::size_t kP256Coordinate = 32;
constexpr int kMinRsaBits = 2048;

template <class T, void (*Free)(T*)>
struct Owned {
    T* p = nullptr;
    Owned() = default;
    explicit Owned(T* q) : p(q) {}
    ~Owned() {
        if (p) Free(p);
    }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    T* release() { return std::exchange(p, nullptr); }
};
using Bignum = Owned<BIGNUM, BN_free>;
using ParamBuild = Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = Owned<OSSL_PARAM, OSSL_PARAM_free>;
using PkeyCtx = Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = Owned<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bio = Owned<BIO, BIO_free_all>;
using EcdsaSig = Owned<ECDSA_SIG, ECDSA_SIG_free>;

bool fail(std::string* why, std::string text) {
    if (why) *why = std::move(text);
    return false;
}

std::string big_endian(const BIGNUM* n) {
    std::string out(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
    BN_bn2bin(n, reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

std::string string_member(const json::object& o, std::string_view name) {
    if (const auto* v = o.if_contains(name); v && v->is_string()) return std::string(v->as_string());
    return {};
}

// Builds an EVP_PKEY of `type` ("EC", "RSA") from parameters.
EVP_PKEY* from_params(const char* type, OSSL_PARAM* params) {
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* pkey = nullptr;
    if (!ctx.p || EVP_PKEY_fromdata_init(ctx.p) <= 0 ||
        EVP_PKEY_fromdata(ctx.p, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        return nullptr;
    return pkey;
}

bool key_fits(EVP_PKEY* pkey, Algorithm alg) {
    switch (alg) {
        case Algorithm::es256: {
            if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) return false;
            char group[32] = {};
            std::size_t len = 0;
            return EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                                  &len) &&
                   std::string_view(group, len) == "prime256v1";
        }
        case Algorithm::rs256:
            return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) >= kMinRsaBits;
        case Algorithm::eddsa:
            return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
    }
    return false;
}

const EVP_MD* digest_of(Algorithm alg) { return alg == Algorithm::eddsa ? nullptr : EVP_sha256(); }

}  // namespace

std::string_view to_string(Algorithm alg) noexcept {
    switch (alg) {
        case Algorithm::es256:
            return "ES256";
        case Algorithm::rs256:
            return "RS256";
        case Algorithm::eddsa:
            return "EdDSA";
    }
    return "?";
}

std::optional<Algorithm> parse_algorithm(std::string_view name) noexcept {
    if (name == "ES256") return Algorithm::es256;
    if (name == "RS256") return Algorithm::rs256;
    if (name == "EdDSA") return Algorithm::eddsa;
    return std::nullopt;
}

std::string base64url_encode(std::string_view bytes) { return core::base64_encode(bytes, core::Base64::url); }

std::optional<std::string> base64url_decode(std::string_view text) {
    return core::base64_decode(text, core::Base64::url);
}

Key::Key(std::shared_ptr<Evp> pkey, Algorithm alg, std::string kid, bool is_private)
    : pkey_(std::move(pkey)), alg_(alg), kid_(std::move(kid)), private_(is_private) {}

Key Key::generate(Algorithm alg, std::string kid) {
    EVP_PKEY* pkey = nullptr;
    switch (alg) {
        case Algorithm::es256:
            pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
            break;
        case Algorithm::rs256:
            pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(kMinRsaBits));
            break;
        case Algorithm::eddsa:
            pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
            break;
    }
    if (!pkey) throw std::runtime_error("cannot generate a " + std::string(to_string(alg)) + " key");
    return Key(std::make_shared<Evp>(pkey), alg, std::move(kid), true);
}

std::optional<Key> Key::from_jwk(const json::object& jwk, std::string* why) {
    auto kty = string_member(jwk, "kty");
    auto kid = string_member(jwk, "kid");
    auto alg_name = string_member(jwk, "alg");
    if (kid.empty()) return fail(why, "a key without kid"), std::nullopt;
    auto alg = parse_algorithm(alg_name);
    if (!alg)
        return fail(why, "key " + kid + ": alg '" + alg_name + "' is not ES256, RS256 or EdDSA"),
               std::nullopt;
    if (auto use = string_member(jwk, "use"); jwk.contains("use") && use != "sig")
        return fail(why, "key " + kid + ": use is not sig"), std::nullopt;
    for (auto priv : {"d", "p", "q", "dp", "dq", "qi"}) {
        if (jwk.contains(priv))
            return fail(why, "key " + kid + ": a published key must not hold private parts"), std::nullopt;
    }

    EVP_PKEY* pkey = nullptr;
    if (kty == "EC" && *alg == Algorithm::es256) {
        if (string_member(jwk, "crv") != "P-256")
            return fail(why, "key " + kid + ": ES256 needs crv P-256"), std::nullopt;
        auto x = base64url_decode(string_member(jwk, "x"));
        auto y = base64url_decode(string_member(jwk, "y"));
        if (!x || !y || x->size() != kP256Coordinate || y->size() != kP256Coordinate)
            return fail(why, "key " + kid + ": x and y must be 32-byte base64url coordinates"), std::nullopt;
        std::string point = "\x04" + *x + *y;
        ParamBuild bld(OSSL_PARAM_BLD_new());
        OSSL_PARAM_BLD_push_utf8_string(bld.p, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
        OSSL_PARAM_BLD_push_octet_string(bld.p, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
        Params params(OSSL_PARAM_BLD_to_param(bld.p));
        pkey = params.p ? from_params("EC", params.p) : nullptr;
    } else if (kty == "RSA" && *alg == Algorithm::rs256) {
        auto n = base64url_decode(string_member(jwk, "n"));
        auto e = base64url_decode(string_member(jwk, "e"));
        if (!n || !e || n->empty() || e->empty())
            return fail(why, "key " + kid + ": n and e must be base64url"), std::nullopt;
        Bignum bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()),
                              nullptr));
        Bignum bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()),
                              nullptr));
        ParamBuild bld(OSSL_PARAM_BLD_new());
        OSSL_PARAM_BLD_push_BN(bld.p, OSSL_PKEY_PARAM_RSA_N, bn_n.p);
        OSSL_PARAM_BLD_push_BN(bld.p, OSSL_PKEY_PARAM_RSA_E, bn_e.p);
        Params params(OSSL_PARAM_BLD_to_param(bld.p));
        pkey = params.p ? from_params("RSA", params.p) : nullptr;
    } else if (kty == "OKP" && *alg == Algorithm::eddsa) {
        if (string_member(jwk, "crv") != "Ed25519")
            return fail(why, "key " + kid + ": EdDSA needs crv Ed25519"), std::nullopt;
        auto x = base64url_decode(string_member(jwk, "x"));
        if (!x || x->size() != 32)
            return fail(why, "key " + kid + ": x must be a 32-byte base64url key"), std::nullopt;
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                           reinterpret_cast<const unsigned char*>(x->data()), x->size());
    } else {
        return fail(why, "key " + kid + ": kty '" + kty + "' does not go with alg " + alg_name), std::nullopt;
    }
    if (!pkey) return fail(why, "key " + kid + ": not a valid public key"), std::nullopt;
    auto owned = std::make_shared<Evp>(pkey);
    if (!key_fits(pkey, *alg)) {
        return fail(why, "key " + kid + ": unusable for " + alg_name + " (RSA keys need 2048 bits or more)"),
               std::nullopt;
    }
    return Key(std::move(owned), *alg, std::move(kid), false);
}

std::optional<Key> Key::from_private_pem(std::string_view pem, Algorithm alg, std::string kid) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio.p) return std::nullopt;
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.p, nullptr, nullptr, nullptr);
    if (!pkey) return std::nullopt;
    auto owned = std::make_shared<Evp>(pkey);
    if (!key_fits(pkey, alg)) return std::nullopt;
    return Key(std::move(owned), alg, std::move(kid), true);
}

json::object Key::public_jwk() const {
    json::object o;
    EVP_PKEY* pkey = pkey_->pkey;
    switch (alg_) {
        case Algorithm::es256: {
            std::array<unsigned char, 1 + 2 * kP256Coordinate> point{};
            std::size_t len = 0;
            EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(),
                                            point.size(), &len);
            std::string_view raw(reinterpret_cast<const char*>(point.data()), len);
            o["kty"] = "EC";
            o["crv"] = "P-256";
            o["x"] = base64url_encode(raw.substr(1, kP256Coordinate));
            o["y"] = base64url_encode(raw.substr(1 + kP256Coordinate, kP256Coordinate));
            break;
        }
        case Algorithm::rs256: {
            BIGNUM* n = nullptr;
            BIGNUM* e = nullptr;
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n);
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e);
            Bignum on(n), oe(e);
            o["kty"] = "RSA";
            o["n"] = base64url_encode(big_endian(n));
            o["e"] = base64url_encode(big_endian(e));
            break;
        }
        case Algorithm::eddsa: {
            std::array<unsigned char, 32> raw{};
            std::size_t len = raw.size();
            EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len);
            o["kty"] = "OKP";
            o["crv"] = "Ed25519";
            o["x"] = base64url_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), len));
            break;
        }
    }
    o["kid"] = kid_;
    o["alg"] = to_string(alg_);
    o["use"] = "sig";
    return o;
}

std::string Key::private_pem() const {
    if (!private_) throw std::logic_error("key " + kid_ + " is a public key");
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio.p || !PEM_write_bio_PrivateKey(bio.p, pkey_->pkey, nullptr, nullptr, 0, nullptr, nullptr))
        throw std::runtime_error("cannot write key " + kid_);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.p, &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string Key::sign(std::string_view input) const {
    if (!private_) throw std::logic_error("key " + kid_ + " is a public key and cannot sign");
    MdCtx ctx(EVP_MD_CTX_new());
    std::size_t len = 0;
    if (!ctx.p || EVP_DigestSignInit(ctx.p, nullptr, digest_of(alg_), nullptr, pkey_->pkey) <= 0 ||
        EVP_DigestSign(ctx.p, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) <= 0)
        throw std::runtime_error("cannot sign with key " + kid_);
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.p, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) <= 0)
        throw std::runtime_error("cannot sign with key " + kid_);
    sig.resize(len);
    if (alg_ != Algorithm::es256) return sig;
    // OpenSSL writes ECDSA signatures in DER; JWS wants R||S, each 32 bytes (RFC 7518 §3.4).
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    EcdsaSig ecdsa(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (!ecdsa.p) throw std::runtime_error("cannot sign with key " + kid_);
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(ecdsa.p, &r, &s);
    std::string raw(2 * kP256Coordinate, '\0');
    BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), kP256Coordinate);
    BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + kP256Coordinate, kP256Coordinate);
    return raw;
}

bool Key::verify(std::string_view input, std::string_view signature) const noexcept {
    std::string der;
    if (alg_ == Algorithm::es256) {
        if (signature.size() != 2 * kP256Coordinate) return false;
        EcdsaSig ecdsa(ECDSA_SIG_new());
        const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
        BIGNUM* r = BN_bin2bn(raw, kP256Coordinate, nullptr);
        BIGNUM* s = BN_bin2bn(raw + kP256Coordinate, kP256Coordinate, nullptr);
        if (!ecdsa.p || !r || !s || !ECDSA_SIG_set0(ecdsa.p, r, s)) {
            BN_free(r);
            BN_free(s);
            return false;
        }
        unsigned char* out = nullptr;
        int len = i2d_ECDSA_SIG(ecdsa.p, &out);
        if (len <= 0) return false;
        der.assign(reinterpret_cast<const char*>(out), static_cast<std::size_t>(len));
        OPENSSL_free(out);
        signature = der;
    }
    MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx.p || EVP_DigestVerifyInit(ctx.p, nullptr, digest_of(alg_), nullptr, pkey_->pkey) <= 0)
        return false;
    return EVP_DigestVerify(ctx.p, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

std::optional<KeySet> KeySet::from_json(std::string_view text, std::string* why,
                                        std::vector<std::string>* skipped) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec || !doc.is_object()) return fail(why, "the JWKS is not a JSON object"), std::nullopt;
    const auto* keys = doc.as_object().if_contains("keys");
    if (!keys || !keys->is_array()) return fail(why, "the JWKS has no \"keys\" array"), std::nullopt;
    KeySet set;
    std::set<std::string> kids;
    for (const auto& k : keys->as_array()) {
        if (!k.is_object()) return fail(why, "a JWKS entry is not an object"), std::nullopt;
        const auto& o = k.as_object();
        auto kid = string_member(o, "kid");
        if (kid.empty()) return fail(why, "a JWKS key has no kid"), std::nullopt;
        if (!kids.insert(kid).second) return fail(why, "two JWKS keys have kid " + kid), std::nullopt;
        std::string reason;
        auto key = Key::from_jwk(o, &reason);
        if (!key) {
            if (skipped) skipped->push_back(reason);
            continue;
        }
        set.keys_.push_back(std::move(*key));
    }
    return set;
}

void KeySet::add(Key key) {
    if (find(key.kid()))
        throw std::invalid_argument("a key with kid " + key.kid() + " is already in the set");
    keys_.push_back(std::move(key));
}

const Key* KeySet::find(std::string_view kid) const noexcept {
    for (const auto& k : keys_) {
        if (k.kid() == kid) return &k;
    }
    return nullptr;
}

std::string KeySet::to_json() const {
    json::array keys;
    for (const auto& k : keys_) keys.push_back(k.public_jwk());
    return json::serialize(json::object{{"keys", std::move(keys)}});
}

}  // namespace plexus::security
