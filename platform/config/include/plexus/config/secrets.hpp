#pragma once
/// Secret values in configuration documents. A string written as `{cipher}PLAINTEXT` is
/// encrypted before it is stored (AES-256-GCM, bound to its application so a ciphertext copied
/// into another application's document does not decrypt) and kept as `{cipher}a1:...`. A
/// document that comes back with such a ciphertext unchanged (read, edited, written again) keeps
/// it; one that does not decrypt under the server's key for that application is refused.
///
/// The key is 32 bytes, from a file or the environment (never from the database): 64 hex digits
/// or 43 base64url characters, surrounding whitespace ignored. Without a key, documents with
/// secrets can be neither written nor read decrypted. Thread-safe (immutable after construction).

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace plexus::config {

inline constexpr std::string_view kCipherPrefix = "{cipher}";
/// What a secret reads as for a caller who may not see it, and in history and diffs.
inline constexpr std::string_view kMasked = "******";

class SecretBox {
  public:
    /// A box without a key.
    SecretBox() = default;
    /// A box with `key` (32 raw bytes); throws std::invalid_argument otherwise.
    explicit SecretBox(std::string key);
    /// The key in `text` (hex or base64url, see above); nullopt with `why` when malformed.
    static std::optional<SecretBox> from_text(std::string_view text, std::string& why);
    /// The key in the file `path`; nullopt with `why` naming the file when it cannot be read or
    /// does not hold a key.
    static std::optional<SecretBox> from_file(const std::string& path, std::string& why);
    /// Writes a new random key to `path` (mode 0600) unless the file exists; throws
    /// std::runtime_error naming the file when it cannot be written.
    static void create_key_file(const std::string& path);

    bool has_key() const noexcept { return !key_.empty(); }

    /// Whether `v` is a secret (a string starting with `{cipher}`).
    static bool is_secret(const boost::json::value& v) noexcept;
    /// Encrypts every `{cipher}PLAINTEXT` string of `doc` (written for `app`) in place; false with
    /// `why` (naming the key, never the value) when there is no key or a ciphertext does not
    /// decrypt.
    bool seal(boost::json::object& doc, const std::string& app, std::string& why) const;
    /// The plaintext of one stored secret; nullopt when it does not decrypt.
    std::optional<std::string> open(std::string_view stored, const std::string& app) const;
    /// Replaces every secret of `doc` with its plaintext (one that does not decrypt becomes
    /// kMasked).
    void open_all(boost::json::object& doc, const std::string& app) const;
    /// Replaces every secret of `doc` with kMasked.
    static void mask_all(boost::json::object& doc);
    /// Whether two stored values are the same: secrets by their plaintext.
    bool same(const boost::json::value& a, const boost::json::value& b, const std::string& app) const;

  private:
    std::string key_;
};

}  // namespace plexus::config
