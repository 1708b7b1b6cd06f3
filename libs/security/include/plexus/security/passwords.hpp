#pragma once
/// Passwords, stored as argon2id hashes (RFC 9106) in libsodium's self-describing string form
/// ("$argon2id$v=19$m=65536,t=2,p=1$salt$hash"), so parameters can grow without a migration.
/// Hashing costs about 64 MiB and tens of milliseconds on purpose: call it on the blocking pool.
///
///     auto stored = security::hash_password(password);          // on sign-up
///     if (security::verify_password(stored, attempt)) ...       // on login

#include <string>
#include <string_view>

namespace plexus::security {

/// The shortest and longest password accepted (bytes).
inline constexpr std::size_t kMinPasswordLength = 10;
inline constexpr std::size_t kMaxPasswordLength = 256;

/// Why `password` is not acceptable, or empty if it is.
std::string password_problem(std::string_view password);

/// The argon2id hash of `password` with a fresh random salt. Throws std::runtime_error when the
/// memory it needs cannot be had.
std::string hash_password(std::string_view password);

/// Whether `password` matches `stored`. A malformed `stored` matches nothing.
bool verify_password(const std::string& stored, std::string_view password) noexcept;

/// A stored hash of a random password, to verify against when the user does not exist, so an
/// answer takes as long for an unknown user as for a wrong password.
const std::string& decoy_password_hash();

}  // namespace plexus::security
