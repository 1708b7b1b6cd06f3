// Users (passwords hashed with argon2id) and API keys ("pxk_<id>.<secret>", the secret stored as
// its SHA-256). Everything here is blocking: call it on the blocking pool.

#include <algorithm>

#include "plexus/security/passwords.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"
#include "server_impl.hpp"

namespace plexus::identity {

namespace {

UserInfo user_from(const store::Row& r) {
    UserInfo u;
    u.user_id = r.get<std::string>("user_id");
    u.username = r.get<std::string>("username");
    u.roles = split_scopes(r.get<std::string>("roles"));
    u.scopes = split_scopes(r.get<std::string>("scopes"));
    return u;
}

ApiKeyInfo api_key_from(const store::Row& r) {
    ApiKeyInfo k;
    k.key_id = r.get<std::string>("key_id");
    k.name = r.get<std::string>("name");
    k.subject = r.get<std::string>("subject");
    k.scopes = split_scopes(r.get<std::string>("scopes"));
    k.created_at = r.get<std::int64_t>("created_at");
    k.expires_at = r.get<std::int64_t>("expires_at");
    return k;
}

constexpr const char* kUserColumns = "user_id, username, roles, scopes";
constexpr const char* kApiKeyColumns = "key_id, name, subject, scopes, created_at, expires_at";

}  // namespace

// ------------------------------------------------------------ users

std::pair<UserInfo, std::string> Server::Impl::create_user(UserInfo info, std::string password) {
    if (!valid_identifier(info.username) || info.username.size() > 64)
        throw std::invalid_argument("username: letters, digits, '-', '_' and '.' only, 1 to 64");
    for (const auto& role : info.roles) {
        if (!valid_identifier(role)) throw std::invalid_argument("roles: '" + role + "' is not a role name");
    }
    check_scopes(info.scopes, "scopes");
    if (password.empty()) password = security::random_token(15);
    if (auto problem = security::password_problem(password); !problem.empty())
        throw std::invalid_argument("password: " + problem);
    info.user_id = "u-" + security::random_token(12);
    auto hash = security::hash_password(password);
    std::lock_guard db_lock(db_mutex);
    auto done = db->execute(
        "INSERT INTO users(user_id, username, password_hash, roles, scopes, created_at) VALUES (?, ?, ?, ?, "
        "?, ?)",
        info.user_id, info.username, hash, join_scopes(info.roles), join_scopes(info.scopes), now());
    if (!done) {
        if (done.error() == store::errc::constraint)
            throw std::invalid_argument("username: '" + info.username + "' exists already");
        throw std::runtime_error("cannot store the user: " + done.error().message());
    }
    return {info, password};
}

std::vector<UserInfo> Server::Impl::list_users() {
    std::lock_guard db_lock(db_mutex);
    auto rows = db->query(std::string("SELECT ") + kUserColumns + " FROM users ORDER BY username");
    if (!rows) throw std::runtime_error("cannot read users: " + rows.error().message());
    std::vector<UserInfo> out;
    for (const auto& r : *rows) out.push_back(user_from(r));
    return out;
}

std::optional<UserInfo> Server::Impl::find_user(const std::string& user_id) {
    std::lock_guard db_lock(db_mutex);
    auto row =
        db->query_one(std::string("SELECT ") + kUserColumns + " FROM users WHERE user_id = ?", user_id);
    if (!row) return std::nullopt;
    return user_from(*row);
}

std::optional<UserInfo> Server::Impl::check_password(const std::string& username,
                                                     const std::string& password) {
    std::optional<store::Row> row;
    {
        std::lock_guard db_lock(db_mutex);
        auto r = db->query_one(
            std::string("SELECT ") + kUserColumns + ", password_hash FROM users WHERE username = ?",
            username);
        if (r) row = std::move(*r);
    }
    // An unknown user costs the same hash as a wrong password, so timing does not tell which exist.
    const auto& stored = row ? row->get<std::string>("password_hash") : security::decoy_password_hash();
    bool ok = security::verify_password(stored, password);
    if (!row || !ok) return std::nullopt;
    return user_from(*row);
}

bool Server::Impl::delete_user(const std::string& user_id) {
    std::lock_guard db_lock(db_mutex);
    auto done = db->execute("DELETE FROM users WHERE user_id = ?", user_id);
    if (!done) throw std::runtime_error("cannot delete the user: " + done.error().message());
    if (*done == 0) return false;
    auto families =
        db->query("SELECT family FROM refresh_families WHERE user_id = ? AND revoked = 0", user_id);
    if (families) {
        for (const auto& f : *families) revoke_family(f.get<std::string>("family"), "user deleted");
    }
    return true;
}

std::optional<std::string> Server::Impl::set_password(const std::string& user_id, std::string password) {
    if (password.empty()) password = security::random_token(15);
    if (auto problem = security::password_problem(password); !problem.empty())
        throw std::invalid_argument("password: " + problem);
    auto hash = security::hash_password(password);
    std::lock_guard db_lock(db_mutex);
    auto done = db->execute("UPDATE users SET password_hash = ? WHERE user_id = ?", hash, user_id);
    if (!done) throw std::runtime_error("cannot store the password: " + done.error().message());
    if (*done == 0) return std::nullopt;
    // A new password ends every session the old one started.
    auto families =
        db->query("SELECT family FROM refresh_families WHERE user_id = ? AND revoked = 0", user_id);
    if (families) {
        for (const auto& f : *families) revoke_family(f.get<std::string>("family"), "password changed");
    }
    return password;
}

// ------------------------------------------------------------ API keys

std::pair<ApiKeyInfo, std::string> Server::Impl::create_api_key(ApiKeyInfo info) {
    if (info.name.empty() || info.name.size() > kMaxNameLength)
        throw std::invalid_argument("name: required, at most 200 characters");
    if (info.subject.empty()) {
        // The name, as an identifier: "stock importer" acts as "stock-importer".
        for (char c : info.name) info.subject.push_back(valid_identifier(std::string_view(&c, 1)) ? c : '-');
    }
    if (!valid_identifier(info.subject))
        throw std::invalid_argument("subject: letters, digits, '-', '_' and '.' only, at most 200");
    check_scopes(info.scopes, "scopes");
    if (info.expires_at < 0 || (info.expires_at > 0 && info.expires_at <= now()))
        throw std::invalid_argument("expires_at: a time in the future, or 0 for never");
    info.key_id = std::string(kApiKeyPrefix) + security::random_token(9);
    info.created_at = now();
    auto secret = security::random_token();
    std::lock_guard db_lock(db_mutex);
    auto done = db->execute(
        "INSERT INTO api_keys(key_id, name, subject, secret_hash, scopes, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        info.key_id, info.name, info.subject, security::sha256_hex(secret), join_scopes(info.scopes),
        info.created_at, info.expires_at);
    if (!done) throw std::runtime_error("cannot store the API key: " + done.error().message());
    return {info, info.key_id + "." + secret};
}

std::vector<ApiKeyInfo> Server::Impl::list_api_keys() {
    std::lock_guard db_lock(db_mutex);
    auto rows = db->query(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys ORDER BY created_at");
    if (!rows) throw std::runtime_error("cannot read API keys: " + rows.error().message());
    std::vector<ApiKeyInfo> out;
    for (const auto& r : *rows) out.push_back(api_key_from(r));
    return out;
}

bool Server::Impl::delete_api_key(const std::string& key_id) {
    std::lock_guard db_lock(db_mutex);
    auto done = db->execute("DELETE FROM api_keys WHERE key_id = ?", key_id);
    if (!done) throw std::runtime_error("cannot delete the API key: " + done.error().message());
    if (*done == 0) return false;
    // Published like a revoked token id, so gateways that cache the key's check drop it at once;
    // a day outlives any such cache.
    revoke_jti(key_id, now() + 86400);
    return true;
}

std::optional<std::pair<ApiKeyInfo, std::string>> Server::Impl::rotate_api_key(const std::string& key_id,
                                                                               std::chrono::seconds grace) {
    std::optional<ApiKeyInfo> old;
    {
        std::lock_guard db_lock(db_mutex);
        auto row = db->query_one(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE key_id = ?",
                                 key_id);
        if (!row) return std::nullopt;
        old = api_key_from(*row);
    }
    ApiKeyInfo next = *old;
    if (next.expires_at != 0 && next.expires_at <= now()) next.expires_at = 0;
    auto created = create_api_key(next);
    // The old key lives on for `grace` (never longer than it would have), so callers can switch.
    auto ends = now() + grace.count();
    if (old->expires_at != 0) ends = std::min(ends, old->expires_at);
    std::lock_guard db_lock(db_mutex);
    db->execute("UPDATE api_keys SET expires_at = ? WHERE key_id = ?", std::max<std::int64_t>(ends, 1),
                key_id);
    return created;
}

TokenFacts Server::Impl::check_api_key(std::string_view key) {
    TokenFacts f;
    auto dot = key.find('.');
    if (!key.starts_with(kApiKeyPrefix) || dot == std::string_view::npos || dot > 64) return f;
    auto id = std::string(key.substr(0, dot));
    std::optional<store::Row> row;
    {
        std::lock_guard db_lock(db_mutex);
        auto r = db->query_one(
            std::string("SELECT ") + kApiKeyColumns + ", secret_hash FROM api_keys WHERE key_id = ?", id);
        if (r) row = std::move(*r);
    }
    auto presented = security::sha256_hex(key.substr(dot + 1));
    bool ok = security::constant_time_equal(
        presented, row ? row->get<std::string>("secret_hash") : std::string(64, '0'));
    if (!row || !ok) return f;
    auto info = api_key_from(*row);
    if (info.expires_at != 0 && info.expires_at <= now()) return f;
    f.active = true;
    f.kind = "api_key";
    f.client_id = info.key_id;
    f.jti = info.key_id;  // deleting the key publishes its id on the revocation watch
    f.subject = info.subject;
    f.scope = join_scopes(info.scopes);
    f.issued_at = info.created_at;
    f.expires_at = info.expires_at;
    return f;
}

}  // namespace plexus::identity
