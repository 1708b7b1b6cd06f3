#include "plexus/security/passwords.hpp"

#include <sodium.h>

#include <stdexcept>

#include "plexus/security/secrets.hpp"

namespace plexus::security {

namespace {

void init_sodium() {
    static const int ready = sodium_init();
    if (ready < 0) throw std::runtime_error("libsodium cannot initialise");
}

}  // namespace

std::string password_problem(std::string_view password) {
    if (password.size() < kMinPasswordLength)
        return "a password needs at least " + std::to_string(kMinPasswordLength) + " characters";
    if (password.size() > kMaxPasswordLength)
        return "a password has at most " + std::to_string(kMaxPasswordLength) + " characters";
    return {};
}

std::string hash_password(std::string_view password) {
    init_sodium();
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
        throw std::runtime_error("argon2id ran out of memory");
    return out;
}

bool verify_password(const std::string& stored, std::string_view password) noexcept {
    try {
        init_sodium();
    } catch (...) {
        return false;
    }
    if (stored.size() >= crypto_pwhash_STRBYTES || !stored.starts_with("$argon2id$")) return false;
    return crypto_pwhash_str_verify(stored.c_str(), password.data(), password.size()) == 0;
}

const std::string& decoy_password_hash() {
    static const std::string decoy = hash_password(random_token());
    return decoy;
}

}  // namespace plexus::security
