// Password hashing (argon2id strings that verify the right password only, with fresh salts) and
// sealed secrets (encrypted at rest, refused when altered or opened with another key).

#include "plexus/security/secrets.hpp"

#include <gtest/gtest.h>

#include "plexus/security/passwords.hpp"

using namespace plexus::security;

TEST(Passwords, Argon2idHashesVerifyOnlyTheirPassword) {
    auto stored = hash_password("correct horse battery");
    EXPECT_TRUE(stored.starts_with("$argon2id$v=19$")) << stored;
    EXPECT_TRUE(verify_password(stored, "correct horse battery"));
    EXPECT_FALSE(verify_password(stored, "correct horse batterY"));
    EXPECT_FALSE(verify_password(stored, ""));
    // A fresh salt each time: the same password never hashes to the same string.
    EXPECT_NE(stored, hash_password("correct horse battery"));
}

TEST(Passwords, MalformedStoredHashesMatchNothing) {
    EXPECT_FALSE(verify_password("", "x"));
    EXPECT_FALSE(verify_password("plain text password", "plain text password"));
    EXPECT_FALSE(verify_password("$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA", "x"));
    EXPECT_FALSE(verify_password(std::string(500, '$'), "x"));
    EXPECT_FALSE(verify_password(decoy_password_hash(), "anything at all"));
}

TEST(Passwords, LengthRules) {
    EXPECT_NE(password_problem("short"), "");
    EXPECT_EQ(password_problem("ten chars!"), "");
    EXPECT_NE(password_problem(std::string(kMaxPasswordLength + 1, 'a')), "");
}

TEST(Sealed, RoundTripsAndRefusesAlteredBoxesAndOtherKeys) {
    auto key = std::string(kSealKeyBytes, 'k');
    auto box = seal(key, "-----BEGIN PRIVATE KEY-----");
    EXPECT_TRUE(box.starts_with("sbox1:"));
    EXPECT_EQ(box.find("PRIVATE"), std::string::npos);
    EXPECT_EQ(unseal(key, box), "-----BEGIN PRIVATE KEY-----");
    EXPECT_NE(seal(key, "same"), seal(key, "same"));  // a fresh nonce each time
    EXPECT_FALSE(unseal(std::string(kSealKeyBytes, 'x'), box));
    auto altered = box;
    altered[10] = altered[10] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(unseal(key, altered));
    EXPECT_FALSE(unseal(key, "sbox1:"));
    EXPECT_FALSE(unseal(key, "plain text"));
    EXPECT_FALSE(unseal("short", box));
    EXPECT_THROW(seal("short", "x"), std::invalid_argument);
    EXPECT_EQ(unseal(key, seal(key, "")), "");
}

TEST(AesGcm, RoundTripsBoundToItsContextAndRefusesAlterations) {
    auto key = std::string(kAesKeyBytes, 'k');
    auto box = aes_gcm_encrypt(key, "postgres://shop:s3cret@db/shop", "catalog");
    EXPECT_TRUE(box.starts_with("a1:"));
    EXPECT_EQ(box.find("s3cret"), std::string::npos);
    EXPECT_EQ(aes_gcm_decrypt(key, box, "catalog"), "postgres://shop:s3cret@db/shop");
    EXPECT_NE(aes_gcm_encrypt(key, "same", "a"), aes_gcm_encrypt(key, "same", "a"));  // fresh nonces
    // Another context (another application's document), another key, or any altered byte: refused.
    EXPECT_FALSE(aes_gcm_decrypt(key, box, "inventory"));
    EXPECT_FALSE(aes_gcm_decrypt(std::string(kAesKeyBytes, 'x'), box, "catalog"));
    for (std::size_t i = 3; i < box.size(); i += 7) {
        auto altered = box;
        altered[i] = altered[i] == 'A' ? 'B' : 'A';
        EXPECT_FALSE(aes_gcm_decrypt(key, altered, "catalog")) << i;
    }
    EXPECT_FALSE(aes_gcm_decrypt(key, box.substr(0, box.size() - 4), "catalog"));
    EXPECT_FALSE(aes_gcm_decrypt(key, "a1:", "catalog"));
    EXPECT_FALSE(aes_gcm_decrypt(key, "sbox1:AAAA", "catalog"));
    EXPECT_THROW(aes_gcm_encrypt("short", "x", ""), std::invalid_argument);
    EXPECT_EQ(aes_gcm_decrypt(key, aes_gcm_encrypt(key, "", "c"), "c"), "");
}
