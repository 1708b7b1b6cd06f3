// The identity server's durable state: the database and its schema, signing keys (sealed at
// rest), clients, the revocation log, and what a fresh data directory starts with.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "plexus/core/files.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"
#include "server_impl.hpp"

namespace plexus::identity {

namespace {

const std::vector<std::string> kSchema = {
    "CREATE TABLE signing_keys(kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_pem TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, retired_at INTEGER);"
    "CREATE TABLE clients(client_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL,"
    " scopes TEXT NOT NULL, token_kind TEXT NOT NULL, access_ttl_s INTEGER NOT NULL, created_at INTEGER NOT "
    "NULL);"
    "CREATE TABLE opaque_tokens(token_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " scope TEXT NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL "
    "DEFAULT 0);"
    "CREATE TABLE revoked_jti(jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);",
    // Revocations in order, for gateways that watch them (GET /revocations?since=N).
    "CREATE TABLE revocation_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, jti TEXT NOT NULL UNIQUE,"
    " expires_at INTEGER NOT NULL);"
    "INSERT INTO revocation_log(jti, expires_at) SELECT jti, expires_at FROM revoked_jti;",
    // A key may be published before it signs (active = 0: the next key).
    "ALTER TABLE signing_keys ADD COLUMN active INTEGER NOT NULL DEFAULT 1;",
    // Users, the authorization code grant, refresh token families, API keys.
    "ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN confidential INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE users(user_id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " password_hash TEXT NOT NULL, roles TEXT NOT NULL, scopes TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE auth_codes(code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL,"
    " redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, challenge TEXT NOT NULL, nonce TEXT NOT NULL,"
    " auth_time INTEGER NOT NULL, expires_at INTEGER NOT NULL, family TEXT NOT NULL, used INTEGER NOT NULL"
    " DEFAULT 0);"
    "CREATE TABLE refresh_families(family TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE refresh_tokens(token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, scope TEXT NOT NULL,"
    " auth_time INTEGER NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used INTEGER NOT"
    " NULL DEFAULT 0);"
    "CREATE TABLE family_tokens(family TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL);"
    "CREATE INDEX family_tokens_by_family ON family_tokens(family);"
    "ALTER TABLE opaque_tokens ADD COLUMN roles TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE opaque_tokens ADD COLUMN family TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE api_keys(key_id TEXT PRIMARY KEY, name TEXT NOT NULL, subject TEXT NOT NULL,"
    " secret_hash TEXT NOT NULL, scopes TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT"
    " NULL);",
    // Opaque tokens get an id, published when they are revoked (their hash never is).
    "ALTER TABLE opaque_tokens ADD COLUMN jti TEXT NOT NULL DEFAULT '';",
    // A deleted client's tokens: every one issued at or before `issued_before`.
    "ALTER TABLE revocation_log ADD COLUMN client_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE revocation_log ADD COLUMN issued_before INTEGER NOT NULL DEFAULT 0;"};

// Where a redirect URI may point: https anywhere, http only on loopback (RFC 8252 §7.3,
// OAuth 2.1 §2.3.1); absolute, no fragment.
bool valid_redirect_uri(std::string_view uri) {
    if (uri.find('#') != std::string_view::npos || uri.size() > 2000) return false;
    if (uri.starts_with("https://")) return uri.size() > 8;
    if (!uri.starts_with("http://")) return false;
    auto rest = uri.substr(7);
    for (std::string_view host : {"127.0.0.1", "[::1]", "localhost"}) {
        if (rest.starts_with(host) && (rest.size() == host.size() || rest[host.size()] == ':' ||
                                       rest[host.size()] == '/' || rest[host.size()] == '?'))
            return true;
    }
    return false;
}

Settings checked(Settings s) {
    if (s.data_dir.empty()) throw std::runtime_error("the identity server needs a data directory");
    return s;
}

}  // namespace

std::vector<std::string> split_scopes(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        auto sp = text.find(' ');
        if (sp != 0) out.emplace_back(text.substr(0, sp));
        if (sp == std::string_view::npos) break;
        text.remove_prefix(sp + 1);
    }
    return out;
}

std::string join_scopes(const std::vector<std::string>& scopes) {
    std::string out;
    for (const auto& s : scopes) out += (out.empty() ? "" : " ") + s;
    return out;
}

bool has_scope(const std::vector<std::string>& scopes, std::string_view scope) {
    return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

bool valid_scope(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
    });
}

void check_scopes(const std::vector<std::string>& scopes, std::string_view field) {
    for (const auto& s : scopes) {
        if (!valid_scope(s))
            throw std::invalid_argument(std::string(field) + ": '" + s + "' is not a scope (RFC 6749 3.3)");
    }
}

bool valid_identifier(std::string_view s) {
    return !s.empty() && s.size() <= kMaxNameLength && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

void oauth_error(Response& res, int status, std::string_view error, std::string_view description) {
    res.json(status, json::serialize(json::object{{"error", error}, {"error_description", description}}));
    res.headers.set("Cache-Control", "no-store");
    if (status == 401) res.headers.set("WWW-Authenticate", R"(Basic realm="plexus")");
}

Server::Impl::Impl(Settings s, telemetry::Registry& metrics, core::Clock& c)
    : settings(checked(std::move(s))),
      clock(c),
      audit(settings.data_dir + "/audit.log", c),
      throttle(c),
      issued(metrics.counter("plexus_identity_tokens_issued_total",
                             "Access tokens issued, by grant and kind.", {"grant", "kind"})),
      refused(metrics.counter("plexus_identity_token_errors_total",
                              "Token requests refused, by OAuth error code.", {"error"})),
      logins(metrics.counter("plexus_identity_logins_total", "Password logins, by result.", {"result"})) {
    issuer = settings.issuer.empty() ? "http://" + settings.listen : settings.issuer;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    auto path = settings.data_dir + "/identity.db";
    auto opened = store::Database::open(path);
    if (!opened) throw std::runtime_error("cannot open " + path + ": " + opened.error().message());
    ::chmod(path.c_str(), 0600);  // it holds hashes and sealed private keys
    db.emplace(std::move(*opened));
    if (auto v = db->migrate(kSchema); !v) throw std::runtime_error(path + ": " + v.error().message());
    load_master_key();
    load_keys();
    load_clients();
    load_revoked();
    build_discovery();
    for (const auto& p : settings.provision) provision(p);
}

std::int64_t Server::Impl::now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock.wall().time_since_epoch()).count();
}

// ------------------------------------------------------------ signing keys

// The key that seals private keys in the database, from <data_dir>/master.key (created on the
// first start). Keys stored before sealing existed are sealed now.
void Server::Impl::load_master_key() {
    auto file = settings.data_dir + "/master.key";
    if (!std::filesystem::exists(file)) {
        core::write_file_atomically(file, security::random_token(security::kSealKeyBytes) + "\n", 0600);
        telemetry::info("master key created", {{"file", file}});
    }
    std::ifstream in(file);
    std::string text;
    std::getline(in, text);
    auto key = security::base64url_decode(text);
    if (!key || key->size() != security::kSealKeyBytes)
        throw std::runtime_error(file + ": not a master key (43 base64url characters)");
    master_key = std::move(*key);
    auto plain = db->query("SELECT kid, private_pem FROM signing_keys WHERE private_pem LIKE '-----BEGIN%'");
    if (!plain) throw std::runtime_error("cannot read signing keys: " + plain.error().message());
    for (const auto& r : *plain) {
        db->execute("UPDATE signing_keys SET private_pem = ? WHERE kid = ?",
                    security::seal(master_key, r.get<std::string>("private_pem")), r.get<std::string>("kid"));
    }
}

// The published keys: the one signing now (active), the next one (published ahead of its use,
// so every verifier that fetched the JWKS since the last rotation already knows it), and
// retired ones whose tokens may still live.
void Server::Impl::load_keys() {
    auto rows = db->query(
        "SELECT kid, alg, private_pem, created_at, retired_at, active FROM signing_keys ORDER BY created_at");
    if (!rows) throw std::runtime_error("cannot read signing keys: " + rows.error().message());
    std::optional<security::Key> signing;
    bool has_next = false;
    security::KeySet published;
    const auto oldest_valid = now() - max_ttl().count();
    for (const auto& r : *rows) {
        auto kid = r.get<std::string>("kid");
        auto alg = security::parse_algorithm(r.get<std::string>("alg"));
        auto retired = r.at("retired_at");
        bool live = retired.type() == store::ValueType::null;
        if (!live && retired.as<std::int64_t>() < oldest_valid) continue;  // its tokens have all expired
        auto pem = security::unseal(master_key, r.get<std::string>("private_pem"));
        if (!pem)
            throw std::runtime_error("signing key " + kid + " cannot be unsealed: is " + settings.data_dir +
                                     "/master.key the one it was sealed with?");
        auto key = alg ? security::Key::from_private_pem(*pem, *alg, kid) : std::nullopt;
        if (!key) throw std::runtime_error("signing key " + kid + " cannot be read");
        published.add(*key);
        if (live && r.get<std::int64_t>("active") != 0) signing = *key;
        if (live && r.get<std::int64_t>("active") == 0) has_next = true;
    }
    if (!signing) {
        signing = create_key(true);
        published.add(*signing);
    }
    if (!has_next) published.add(create_key(false));
    auto next = std::make_shared<const Keys>(Keys{*signing, std::move(published)});
    std::lock_guard lock(mutex);
    keys = std::move(next);
}

// A new key, stored sealed; `active`: it signs from now on, else it is published as the next one.
security::Key Server::Impl::create_key(bool active) {
    auto key = security::Key::generate(settings.algorithm,
                                       "k" + std::to_string(now()) + "-" + security::random_token(4));
    auto done = db->execute(
        "INSERT INTO signing_keys(kid, alg, private_pem, created_at, active) VALUES (?, ?, ?, ?, ?)",
        key.kid(), security::to_string(key.algorithm()), security::seal(master_key, key.private_pem()), now(),
        active ? 1 : 0);
    if (!done) throw std::runtime_error("cannot store a signing key: " + done.error().message());
    telemetry::info(active ? "signing key created" : "next signing key published",
                    {{"kid", key.kid()}, {"alg", security::to_string(key.algorithm())}});
    return key;
}

std::chrono::seconds Server::Impl::max_ttl() const {
    auto longest = settings.access_ttl;
    std::lock_guard lock(mutex);
    if (clients) {
        for (const auto& [id, c] : *clients) longest = std::max(longest, c.info.access_ttl);
    }
    return longest;
}

std::string Server::Impl::rotate() {
    std::lock_guard db_lock(db_mutex);
    // The next key (published since the last rotation) signs; the current one retires.
    auto done =
        db->execute("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND active = 1", now());
    if (done)
        done = db->execute("UPDATE signing_keys SET active = 1 WHERE retired_at IS NULL AND active = 0");
    if (!done) throw std::runtime_error("cannot rotate keys: " + done.error().message());
    load_keys();
    auto kid = snapshot_keys()->signing.kid();
    telemetry::info("signing keys rotated", {{"kid", kid}});
    return kid;
}

// ------------------------------------------------------------ clients

void Server::Impl::load_clients() {
    auto rows = db->query(
        "SELECT client_id, name, secret_hash, scopes, token_kind, access_ttl_s, redirect_uris, confidential"
        " FROM clients");
    if (!rows) throw std::runtime_error("cannot read clients: " + rows.error().message());
    auto map = std::make_shared<ClientMap>();
    for (const auto& r : *rows) {
        Client c;
        c.info.client_id = r.get<std::string>("client_id");
        c.info.name = r.get<std::string>("name");
        c.info.scopes = split_scopes(r.get<std::string>("scopes"));
        c.info.token_kind = r.get<std::string>("token_kind");
        c.info.access_ttl = std::chrono::seconds(r.get<std::int64_t>("access_ttl_s"));
        c.info.redirect_uris = split_scopes(r.get<std::string>("redirect_uris"));
        c.info.confidential = r.get<std::int64_t>("confidential") != 0;
        c.secret_hash = r.get<std::string>("secret_hash");
        map->emplace(c.info.client_id, std::move(c));
    }
    bool fresh = map->empty();
    {
        std::lock_guard lock(mutex);
        clients = std::move(map);
    }
    if (fresh) bootstrap();
}

// A fresh data directory: the first admin client, the first admin user and the public client
// of `plexus login`; the one-time credentials go to a 0600 file, never to the log.
void Server::Impl::bootstrap() {
    ClientInfo admin_client;
    admin_client.client_id = std::string(kAdminClient);
    admin_client.name = "first administrator";
    admin_client.scopes = {std::string(kAdminScope)};
    auto [created, secret] = create_client(admin_client);

    ClientInfo cli;
    cli.client_id = std::string(kCliClient);
    cli.name = "plexus command line";
    cli.scopes = {"openid", "profile", "offline_access", std::string(kAnyScope)};
    cli.redirect_uris = {"http://127.0.0.1/callback"};
    cli.confidential = false;
    create_client(cli);

    UserInfo admin_user;
    admin_user.username = "admin";
    admin_user.roles = {"admin"};
    admin_user.scopes = {std::string(kAdminScope)};
    auto [user, password] = create_user(admin_user, {});

    admin_file = settings.data_dir + "/admin-credentials.json";
    core::write_file_atomically(admin_file,
                                json::serialize(json::object{{"client_id", created.client_id},
                                                             {"client_secret", secret},
                                                             {"token_endpoint", issuer + "/token"},
                                                             {"scope", kAdminScope},
                                                             {"username", user.username},
                                                             {"password", password},
                                                             {"issuer", issuer}}) +
                                    "\n",
                                0600);
    telemetry::info("first admin client and user created; their one-time credentials are in the file",
                    {{"client_id", created.client_id}, {"username", user.username}, {"file", admin_file}});
}

std::pair<ClientInfo, std::string> Server::Impl::create_client(ClientInfo info) {
    if (info.client_id.empty()) info.client_id = "c-" + security::random_token(12);
    if (!valid_identifier(info.client_id))
        throw std::invalid_argument("client_id: letters, digits, '-', '_' and '.' only, at most 200");
    if (info.name.empty() || info.name.size() > kMaxNameLength)
        throw std::invalid_argument("name: required, at most 200 characters");
    check_scopes(info.scopes, "scopes");
    if (info.token_kind != "jwt" && info.token_kind != "opaque")
        throw std::invalid_argument("token_kind: jwt or opaque");
    if (info.access_ttl.count() < 0 || info.access_ttl > std::chrono::hours(24))
        throw std::invalid_argument("access_ttl_s: from 0 (the server's) to 86400");
    for (const auto& uri : info.redirect_uris) {
        if (!valid_redirect_uri(uri))
            throw std::invalid_argument("redirect_uris: '" + uri +
                                        "' must be an https URL, or http on 127.0.0.1, [::1] or localhost, "
                                        "without a fragment");
    }
    if (!info.confidential && info.redirect_uris.empty())
        throw std::invalid_argument("redirect_uris: a public client needs at least one");
    std::string secret = info.confidential ? security::random_token() : std::string();
    std::string hash = info.confidential ? security::sha256_hex(secret) : std::string();
    std::lock_guard db_lock(db_mutex);
    auto done = db->execute(
        "INSERT INTO clients(client_id, name, secret_hash, scopes, token_kind, access_ttl_s, created_at,"
        " redirect_uris, confidential) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        info.client_id, info.name, hash, join_scopes(info.scopes), info.token_kind,
        static_cast<std::int64_t>(info.access_ttl.count()), now(), join_scopes(info.redirect_uris),
        info.confidential ? 1 : 0);
    if (!done) {
        if (done.error() == store::errc::constraint)
            throw std::invalid_argument("client_id: '" + info.client_id + "' exists already");
        throw std::runtime_error("cannot store the client: " + done.error().message());
    }
    auto next = std::make_shared<ClientMap>(*snapshot_clients());
    (*next)[info.client_id] = Client{info, hash};
    {
        std::lock_guard lock(mutex);
        clients = std::move(next);
    }
    return {info, secret};
}

// A workload's client, kept as `p` says: the file's credentials stay valid while they match the
// client, else the client is made anew (with a new secret) and the file rewritten.
void Server::Impl::provision(const Provisioned& p) {
    auto file = core::read_json_object(p.file);
    auto text = [&](std::string_view key) {
        const auto* v = file ? file->if_contains(key) : nullptr;
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    auto clients_now = snapshot_clients();
    auto it = clients_now->find(p.name);
    if (it != clients_now->end() && text("client_id") == p.name && it->second.info.confidential &&
        it->second.info.scopes == p.scopes &&
        security::constant_time_equal(security::sha256_hex(text("client_secret")), it->second.secret_hash))
        return;
    if (it != clients_now->end()) delete_client(p.name);
    ClientInfo info;
    info.client_id = p.name;
    info.name = "workload " + p.name;
    info.scopes = p.scopes;
    auto [created, secret] = create_client(info);
    std::filesystem::create_directories(std::filesystem::path(p.file).parent_path());
    core::write_file_atomically(p.file,
                                json::serialize(json::object{{"client_id", created.client_id},
                                                             {"client_secret", secret},
                                                             {"issuer", issuer},
                                                             {"token_endpoint", issuer + "/token"}}) +
                                    "\n",
                                0600);
    telemetry::info("workload client provisioned", {{"client_id", created.client_id}, {"file", p.file}});
}

bool Server::Impl::delete_client(const std::string& id) {
    std::lock_guard db_lock(db_mutex);
    auto ttl = db->query("SELECT access_ttl_s FROM clients WHERE client_id = ?", id);
    auto done = db->execute("DELETE FROM clients WHERE client_id = ?", id);
    if (!done) throw std::runtime_error("cannot delete the client: " + done.error().message());
    // Its JWTs carry no record here: revoke them all by client, until the last could expire.
    if (ttl && !ttl->empty()) revoke_client(id, now() + (*ttl)[0].get<std::int64_t>(0));
    revoke_opaque("client_id", id);
    db->execute("UPDATE opaque_tokens SET revoked = 1 WHERE client_id = ?", id);
    auto families = db->query("SELECT family FROM refresh_families WHERE client_id = ? AND revoked = 0", id);
    if (families) {
        for (const auto& f : *families) revoke_family(f.get<std::string>("family"), "client deleted");
    }
    auto next = std::make_shared<ClientMap>(*snapshot_clients());
    next->erase(id);
    std::lock_guard lock(mutex);
    clients = std::move(next);
    return *done > 0;
}

// ------------------------------------------------------------ revocations

void Server::Impl::load_revoked() {
    auto rows = db->query(
        "SELECT seq, jti, expires_at, client_id, issued_before FROM revocation_log WHERE expires_at >= ? "
        "ORDER BY seq",
        now());
    if (!rows) throw std::runtime_error("cannot read revocations: " + rows.error().message());
    auto log = std::make_shared<std::vector<Revocation>>();
    std::vector<auth::Revocation> known;
    for (const auto& r : *rows) {
        log->push_back({r.get<std::int64_t>("seq"), r.get<std::string>("jti"),
                        r.get<std::int64_t>("expires_at"), r.get<std::string>("client_id"),
                        r.get<std::int64_t>("issued_before")});
        const auto& e = log->back();
        known.push_back({e.jti, e.expires_at, e.client_id, e.issued_before});
    }
    revoked.add(known, 0, now());
    std::lock_guard lock(mutex);
    revocation_log = std::move(log);
}

void Server::Impl::revoke_jti(const std::string& jti, std::int64_t expires_at) {
    db->execute("INSERT OR IGNORE INTO revoked_jti(jti, expires_at) VALUES (?, ?)", jti, expires_at);
    auto row = db->query("INSERT OR IGNORE INTO revocation_log(jti, expires_at) VALUES (?, ?) RETURNING seq",
                         jti, expires_at);
    if (!row || row->empty()) return;  // revoked before
    auto seq = (*row)[0].get<std::int64_t>(0);
    revoked.add({{.jti = jti, .expires_at = expires_at}}, 0, now());
    {
        std::lock_guard lock(mutex);
        auto log = std::make_shared<std::vector<Revocation>>(*revocation_log);
        log->push_back({seq, jti, expires_at, {}, 0});
        revocation_log = std::move(log);
    }
    revocations_changed.notify_all();
}

void Server::Impl::revoke_client(const std::string& id, std::int64_t expires_at) {
    const auto t = now();
    // The marker is unique per deletion; gateways match by client_id and issued_before.
    const auto marker = "client:" + id + "@" + std::to_string(t);
    auto row = db->query(
        "INSERT OR IGNORE INTO revocation_log(jti, expires_at, client_id, issued_before) VALUES (?, ?, ?, ?) "
        "RETURNING seq",
        marker, expires_at, id, t);
    if (!row || row->empty()) return;
    revoked.add({{.jti = marker, .expires_at = expires_at, .client_id = id, .issued_before = t}}, 0, now());
    {
        std::lock_guard lock(mutex);
        auto log = std::make_shared<std::vector<Revocation>>(*revocation_log);
        log->push_back({(*row)[0].get<std::int64_t>(0), marker, expires_at, id, t});
        revocation_log = std::move(log);
    }
    revocations_changed.notify_all();
}

void Server::Impl::revoke_family(const std::string& family, std::string_view why) {
    db->execute("UPDATE refresh_families SET revoked = 1 WHERE family = ?", family);
    revoke_opaque("family", family);
    db->execute("UPDATE opaque_tokens SET revoked = 1 WHERE family = ?", family);
    auto jtis = db->query("SELECT jti, expires_at FROM family_tokens WHERE family = ? AND expires_at >= ?",
                          family, now());
    if (jtis) {
        for (const auto& r : *jtis) revoke_jti(r.get<std::string>("jti"), r.get<std::int64_t>("expires_at"));
    }
    telemetry::warn("refresh token family revoked", {{"family", family}, {"reason", why}});
}

void Server::Impl::revoke_opaque(std::string_view column, const std::string& value) {
    // `column` is one of ours, never input.
    auto rows = db->query("SELECT jti, expires_at FROM opaque_tokens WHERE " + std::string(column) +
                              " = ? AND revoked = 0 AND jti != '' AND expires_at >= ?",
                          value, now());
    if (!rows) return;
    for (const auto& r : *rows) revoke_jti(r.get<std::string>("jti"), r.get<std::int64_t>("expires_at"));
}

std::shared_ptr<const ClientMap> Server::Impl::snapshot_clients() const {
    std::lock_guard lock(mutex);
    return clients;
}
std::shared_ptr<const Keys> Server::Impl::snapshot_keys() const {
    std::lock_guard lock(mutex);
    return keys;
}
std::shared_ptr<const std::vector<Revocation>> Server::Impl::snapshot_log() const {
    std::lock_guard lock(mutex);
    return revocation_log;
}

void Server::Impl::build_discovery() {
    auto methods = json::array{"client_secret_basic", "client_secret_post"};
    auto with_none = json::array{"client_secret_basic", "client_secret_post", "none"};
    auto alg = json::array{security::to_string(settings.algorithm)};
    json::object d{
        {"issuer", issuer},
        {"authorization_endpoint", issuer + "/authorize"},
        {"token_endpoint", issuer + "/token"},
        {"userinfo_endpoint", issuer + "/userinfo"},
        {"jwks_uri", issuer + "/jwks"},
        {"introspection_endpoint", issuer + "/introspect"},
        {"revocation_endpoint", issuer + "/revoke"},
        {"response_types_supported", json::array{"code"}},
        {"response_modes_supported", json::array{"query"}},
        {"grant_types_supported", json::array{"authorization_code", "client_credentials", "refresh_token"}},
        {"code_challenge_methods_supported", json::array{"S256"}},
        {"subject_types_supported", json::array{"public"}},
        {"token_endpoint_auth_methods_supported", with_none},
        {"introspection_endpoint_auth_methods_supported", methods},
        {"revocation_endpoint_auth_methods_supported", with_none},
        {"scopes_supported", json::array{"openid", "profile", "offline_access", kAdminScope}},
        {"claims_supported",
         json::array{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "roles"}},
        {"id_token_signing_alg_values_supported", alg},
        {"access_token_signing_alg_values_supported", alg},
        {"authorization_response_iss_parameter_supported", true}};
    discovery_json = json::serialize(d);
}

}  // namespace plexus::identity
