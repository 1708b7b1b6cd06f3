#include "plexus/security/secrets.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <stdexcept>

#include "plexus/security/jwk.hpp"

namespace plexus::security {

std::string random_token(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
        throw std::runtime_error("the random number generator failed");
    return base64url_encode(raw);
}

std::string sha256(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string sha256_hex(std::string_view data) {
    static constexpr char kHex[] = "0123456789abcdef";
    auto digest = sha256(data);
    std::string out;
    out.reserve(2 * digest.size());
    for (unsigned char c : digest) {
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

namespace {

constexpr std::string_view kSealTag = "sbox1:";
constexpr std::string_view kGcmTag = "a1:";
constexpr std::size_t kGcmNonce = 12, kGcmTagBytes = 16;

struct CipherCtx {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

std::string seal(std::string_view key, std::string_view plaintext) {
    if (key.size() != crypto_secretbox_KEYBYTES) throw std::invalid_argument("a seal key has 32 bytes");
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
    std::string box(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
    auto* out = reinterpret_cast<unsigned char*>(box.data());
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES,
                          reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(), out,
                          reinterpret_cast<const unsigned char*>(key.data()));
    return std::string(kSealTag) + base64url_encode(box);
}

std::optional<std::string> unseal(std::string_view key, std::string_view sealed) {
    if (key.size() != crypto_secretbox_KEYBYTES || !sealed.starts_with(kSealTag)) return std::nullopt;
    if (sodium_init() < 0) return std::nullopt;
    auto box = base64url_decode(sealed.substr(kSealTag.size()));
    if (!box || box->size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) return std::nullopt;
    const auto* in = reinterpret_cast<const unsigned char*>(box->data());
    std::string plain(box->size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
    if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                   in + crypto_secretbox_NONCEBYTES,
                                   box->size() - crypto_secretbox_NONCEBYTES, in,
                                   reinterpret_cast<const unsigned char*>(key.data())) != 0)
        return std::nullopt;
    return plain;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace plexus::security

namespace plexus::security {

std::string aes_gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view context) {
    if (key.size() != kAesKeyBytes) throw std::invalid_argument("an AES-256 key has 32 bytes");
    std::string box(kGcmNonce + plaintext.size() + kGcmTagBytes, '\0');
    auto* out = reinterpret_cast<unsigned char*>(box.data());
    if (RAND_bytes(out, kGcmNonce) != 1) throw std::runtime_error("the random number generator failed");
    CipherCtx c;
    int len = 0;
    bool ok =
        c.ctx && EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kGcmNonce, nullptr) == 1 &&
        EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, bytes(key), out) == 1 &&
        EVP_EncryptUpdate(c.ctx, nullptr, &len, bytes(context), static_cast<int>(context.size())) == 1 &&
        EVP_EncryptUpdate(c.ctx, out + kGcmNonce, &len, bytes(plaintext),
                          static_cast<int>(plaintext.size())) == 1 &&
        EVP_EncryptFinal_ex(c.ctx, out + kGcmNonce + len, &len) == 1 &&
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kGcmTagBytes, out + kGcmNonce + plaintext.size()) ==
            1;
    if (!ok) throw std::runtime_error("AES-256-GCM encryption failed");
    return std::string(kGcmTag) + base64url_encode(box);
}

std::optional<std::string> aes_gcm_decrypt(std::string_view key, std::string_view sealed,
                                           std::string_view context) {
    if (key.size() != kAesKeyBytes || !sealed.starts_with(kGcmTag)) return std::nullopt;
    auto box = base64url_decode(sealed.substr(kGcmTag.size()));
    if (!box || box->size() < kGcmNonce + kGcmTagBytes) return std::nullopt;
    const auto* in = bytes(*box);
    const std::size_t n = box->size() - kGcmNonce - kGcmTagBytes;
    std::string plain(n, '\0');
    auto* out = reinterpret_cast<unsigned char*>(plain.data());
    CipherCtx c;
    int len = 0;
    std::string tag = box->substr(kGcmNonce + n);
    bool ok =
        c.ctx && EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kGcmNonce, nullptr) == 1 &&
        EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, bytes(key), in) == 1 &&
        EVP_DecryptUpdate(c.ctx, nullptr, &len, bytes(context), static_cast<int>(context.size())) == 1 &&
        EVP_DecryptUpdate(c.ctx, out, &len, in + kGcmNonce, static_cast<int>(n)) == 1 &&
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kGcmTagBytes, tag.data()) == 1 &&
        EVP_DecryptFinal_ex(c.ctx, out + len, &len) == 1;
    if (!ok) return std::nullopt;
    return plain;
}

}  // namespace plexus::security
