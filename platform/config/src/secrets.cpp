#include "plexus/config/secrets.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "plexus/core/files.hpp"
#include "plexus/security/jwk.hpp"
#include "plexus/security/secrets.hpp"

namespace plexus::config {

namespace json = boost::json;

namespace {

constexpr std::string_view kCiphertextTag = "a1:";

std::optional<std::string> from_hex(std::string_view s) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (s.size() % 2) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < s.size(); i += 2) {
        int hi = nibble(s[i]), lo = nibble(s[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
    }
    return out;
}

// Calls `fn` on every string leaf of `v` (in maps and lists).
template <class Fn>
void each_string(json::value& v, Fn&& fn) {
    if (v.is_string()) {
        fn(v);
    } else if (v.is_object()) {
        for (auto& kv : v.get_object()) each_string(kv.value(), fn);
    } else if (v.is_array()) {
        for (auto& item : v.get_array()) each_string(item, fn);
    }
}

}  // namespace

SecretBox::SecretBox(std::string key) : key_(std::move(key)) {
    if (key_.size() != security::kAesKeyBytes) throw std::invalid_argument("a secrets key has 32 bytes");
}

std::optional<SecretBox> SecretBox::from_text(std::string_view text, std::string& why) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    std::optional<std::string> key;
    if (text.size() == 2 * security::kAesKeyBytes) key = from_hex(text);
    if (!key) key = security::base64url_decode(text);
    if (!key || key->size() != security::kAesKeyBytes) {
        why = "a secrets key is 32 bytes written as 64 hex digits or 43 base64url characters";
        return std::nullopt;
    }
    return SecretBox(std::move(*key));
}

std::optional<SecretBox> SecretBox::from_file(const std::string& path, std::string& why) {
    auto text = core::read_text_file(path, &why);
    if (!text) return std::nullopt;
    auto box = from_text(*text, why);
    if (!box) why = path + ": " + why;
    return box;
}

void SecretBox::create_key_file(const std::string& path) {
    if (std::filesystem::exists(path)) return;
    auto raw = security::base64url_decode(security::random_token(security::kAesKeyBytes));
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : *raw) hex += kHex[c >> 4], hex += kHex[c & 15];
    core::write_file_atomically(path, hex + "\n", 0600);
}

bool SecretBox::is_secret(const json::value& v) noexcept {
    return v.is_string() && std::string_view(v.get_string()).starts_with(kCipherPrefix);
}

bool SecretBox::seal(json::object& doc, const std::string& app, std::string& why) const {
    bool ok = true;
    for (auto& kv : doc) {
        each_string(kv.value(), [&](json::value& v) {
            if (!ok || !is_secret(v)) return;
            std::string_view body = v.get_string();
            body.remove_prefix(kCipherPrefix.size());
            if (!has_key()) {
                why = "a {cipher} value needs the server's secrets key, and none is configured";
                ok = false;
            } else if (body.starts_with(kCiphertextTag)) {
                if (!security::aes_gcm_decrypt(key_, body, app)) {
                    why =
                        "a {cipher}a1: value does not decrypt: it was made with another key, for another "
                        "application, or altered";
                    ok = false;
                }
            } else {
                v = std::string(kCipherPrefix) + security::aes_gcm_encrypt(key_, body, app);
            }
        });
        if (!ok) {
            why = std::string(kv.key()) + ": " + why;
            return false;
        }
    }
    return true;
}

std::optional<std::string> SecretBox::open(std::string_view stored, const std::string& app) const {
    if (!has_key() || !stored.starts_with(kCipherPrefix)) return std::nullopt;
    return security::aes_gcm_decrypt(key_, stored.substr(kCipherPrefix.size()), app);
}

void SecretBox::open_all(json::object& doc, const std::string& app) const {
    for (auto& kv : doc) {
        each_string(kv.value(), [&](json::value& v) {
            if (!is_secret(v)) return;
            auto plain = open(v.get_string(), app);
            v = plain ? json::string(*plain) : json::string(kMasked);
        });
    }
}

void SecretBox::mask_all(json::object& doc) {
    for (auto& kv : doc) {
        each_string(kv.value(), [](json::value& v) {
            if (is_secret(v)) v = json::string(kMasked);
        });
    }
}

bool SecretBox::same(const json::value& a, const json::value& b, const std::string& app) const {
    if (is_secret(a) && is_secret(b)) {
        auto pa = open(a.get_string(), app), pb = open(b.get_string(), app);
        return pa && pb ? *pa == *pb : a == b;
    }
    return a == b;
}

}  // namespace plexus::config
