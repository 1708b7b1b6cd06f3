#pragma once
/// Secrets that are not passwords: client secrets, opaque tokens, API keys. They are 256 bits
/// from the system's CSPRNG, so a fast hash (SHA-256) is what they are stored as; a slow password
/// KDF would only cost throughput (RFC 6749 §10.10 asks for hard-to-guess values, not a KDF).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace plexus::security {

/// `bytes` random bytes from OpenSSL's CSPRNG, base64url without padding (32 bytes: 43
/// characters). Throws std::runtime_error if the CSPRNG fails.
std::string random_token(std::size_t bytes = 32);
/// The SHA-256 digest of `data`, 32 raw bytes.
std::string sha256(std::string_view data);

/// The SHA-256 digest of `data`, lowercase hex (64 characters).
std::string sha256_hex(std::string_view data);
/// The size of a key for seal() and unseal().
inline constexpr std::size_t kSealKeyBytes = 32;

/// `plaintext` encrypted and authenticated with `key` (XSalsa20-Poly1305, a fresh random
/// nonce), as "sbox1:" + base64url(nonce || ciphertext). Throws std::invalid_argument for a key
/// of the wrong size.
std::string seal(std::string_view key, std::string_view plaintext);

/// The plaintext of a seal() result, or nullopt if it is malformed, was sealed with another key
/// or was altered.
std::optional<std::string> unseal(std::string_view key, std::string_view sealed);

/// The size of a key for aes_gcm_encrypt() and aes_gcm_decrypt().
inline constexpr std::size_t kAesKeyBytes = 32;

/// `plaintext` encrypted and authenticated with AES-256-GCM under `key` (a fresh random 96-bit
/// nonce, a 128-bit tag), bound to `context` (additional authenticated data: the ciphertext
/// decrypts only with the same context), as "a1:" + base64url(nonce || ciphertext || tag).
/// Throws std::invalid_argument for a key of the wrong size, std::runtime_error if OpenSSL fails.
std::string aes_gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view context);

/// The plaintext of an aes_gcm_encrypt() result, or nullopt if it is malformed, was made with
/// another key or context, or was altered.
std::optional<std::string> aes_gcm_decrypt(std::string_view key, std::string_view sealed,
                                           std::string_view context);

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace plexus::security
