#pragma once
/// Signing keys and key sets, as JSON Web Keys (RFC 7517): what the identity server signs tokens
/// with and publishes at its JWKS endpoint, and what gateways and services verify them against.
///
///     auto key = security::Key::generate(security::Algorithm::es256, "2026-12-key-1");
///     auto jws = key.sign(signing_input);             // JWS signature bytes (RFC 7515/7518)
///     security::KeySet keys;
///     keys.add(key);
///     auto jwks = keys.to_json();                     // public halves only
///
/// Only asymmetric algorithms exist here: ES256 (P-256), RS256 (RSA, 2048 bits or more) and EdDSA
/// (Ed25519). Each key is bound to exactly one algorithm (its JWK `alg`), so a token can never
/// choose how its signature is checked (RFC 8725 §3.1: no `none`, no HS/RS confusion). Keys are
/// immutable and cheap to copy (they share the OpenSSL key); sign and verify are thread-safe.

#include <boost/json/fwd.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::security {

/// The JWS algorithms Plexus signs and verifies with.
enum class Algorithm { es256, rs256, eddsa };

/// The JWS name ("ES256", "RS256", "EdDSA").
std::string_view to_string(Algorithm alg) noexcept;
/// The algorithm of a JWS `alg` name; nullopt for every other name ("none", "HS256"...).
std::optional<Algorithm> parse_algorithm(std::string_view name) noexcept;

/// base64url without padding (RFC 7515 §2).
std::string base64url_encode(std::string_view bytes);
/// Decodes base64url without padding; nullopt for any other character, padding or a length that
/// cannot be base64 (strict: one text, one meaning).
std::optional<std::string> base64url_decode(std::string_view text);

/// An asymmetric key bound to one algorithm, with its key id; public, or a private key (which
/// also verifies).
class Key {
  public:
    /// A new private key for `alg` (RSA: 2048 bits). Throws std::runtime_error if OpenSSL fails.
    static Key generate(Algorithm alg, std::string kid);
    /// A public key from a JWK object: `kty` EC (crv P-256), RSA (≥ 2048 bits) or OKP (crv
    /// Ed25519), `kid` and `alg` required and consistent with the key type; `use`, when present,
    /// must be "sig". Private members (`d`...) are refused: a JWKS never carries them. nullopt
    /// with `why` set otherwise.
    static std::optional<Key> from_jwk(const boost::json::object& jwk, std::string* why = nullptr);
    /// A private key from PKCS#8 PEM (as private_pem() writes it). nullopt if it does not parse or
    /// does not fit `alg`.
    static std::optional<Key> from_private_pem(std::string_view pem, Algorithm alg, std::string kid);

    const std::string& kid() const noexcept { return kid_; }
    Algorithm algorithm() const noexcept { return alg_; }
    bool has_private() const noexcept { return private_; }

    /// The public JWK: kty, crv/x/y or n/e, kid, alg, use "sig".
    boost::json::object public_jwk() const;
    /// The private key as PKCS#8 PEM, for storing at rest (keep the file 0600). Throws
    /// std::logic_error for a public key.
    std::string private_pem() const;

    /// The JWS signature of `signing_input` (ES256: 64 bytes R||S). Throws std::logic_error for
    /// a public key, std::runtime_error if OpenSSL fails.
    std::string sign(std::string_view signing_input) const;
    /// Whether `signature` is this key's JWS signature of `signing_input`. Never throws.
    bool verify(std::string_view signing_input, std::string_view signature) const noexcept;

  private:
    struct Evp;
    Key(std::shared_ptr<Evp> pkey, Algorithm alg, std::string kid, bool is_private);
    std::shared_ptr<Evp> pkey_;
    Algorithm alg_;
    std::string kid_;
    bool private_ = false;
};

/// A set of keys by kid (a JWKS). Immutable once shared; copy it to change it.
class KeySet {
  public:
    /// Parses a JWKS document (`{"keys": [...]}`). Keys that Plexus cannot use (another kty or
    /// alg, encryption keys) are skipped and named in `skipped`; a malformed document or a key
    /// without kid is an error (nullopt, `why` set). Duplicate kids are an error.
    static std::optional<KeySet> from_json(std::string_view jwks, std::string* why = nullptr,
                                           std::vector<std::string>* skipped = nullptr);

    /// Adds `key` (its public half is what to_json publishes). Throws std::invalid_argument for a
    /// kid already present.
    void add(Key key);
    /// The key with this kid, or nullptr.
    const Key* find(std::string_view kid) const noexcept;
    const std::vector<Key>& keys() const noexcept { return keys_; }
    bool empty() const noexcept { return keys_.empty(); }
    /// The JWKS document of the public keys.
    std::string to_json() const;

  private:
    std::vector<Key> keys_;
};

}  // namespace plexus::security
