#include "plexus/identity/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "plexus/core/duration.hpp"
#include "plexus/discovery/registry_client.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/serving/probes.hpp"
#include "plexus/store/database.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::identity {

namespace json = boost::json;
using net::Request;
using net::Response;
using net::Task;

namespace {

constexpr std::string_view kAdminScope = "plexus:admin";
constexpr std::string_view kAdminClient = "plexus-admin";
constexpr std::string_view kOpaquePrefix = "pxo_";
constexpr std::size_t kMaxNameLength = 200;

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
    "ALTER TABLE signing_keys ADD COLUMN active INTEGER NOT NULL DEFAULT 1;"};

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

// RFC 6749 §A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
bool valid_scope(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
    });
}

struct Client {
    ClientInfo info;
    std::string secret_hash;
};

// The signing key and the published set, swapped whole on rotation.
struct Keys {
    security::Key signing;
    security::KeySet published;
};

// The answer of an OAuth endpoint's error (RFC 6749 §5.2).
void oauth_error(Response& res, int status, std::string_view error, std::string_view description) {
    res.json(status, json::serialize(json::object{{"error", error}, {"error_description", description}}));
    res.headers.set("Cache-Control", "no-store");
    if (status == 401) res.headers.set("WWW-Authenticate", R"(Basic realm="plexus")");
}

// Standard base64 (with padding) as in HTTP Basic credentials.
std::optional<std::string> base64_decode(std::string_view text) {
    std::string url(text);
    while (!url.empty() && url.back() == '=') url.pop_back();
    for (auto& c : url) {
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
        else if (c == '-' || c == '_')
            return std::nullopt;
    }
    return security::base64url_decode(url);
}

std::int64_t seconds_since_epoch(core::Clock& clock) {
    return std::chrono::duration_cast<std::chrono::seconds>(clock.wall().time_since_epoch()).count();
}

}  // namespace

struct Server::Impl {
    Settings settings;
    core::Clock& clock;
    std::string issuer;
    std::string admin_file;
    std::string discovery_json;

    std::mutex db_mutex;  // the connection is used from the blocking pool, one call at a time
    std::optional<store::Database> db;

    mutable std::mutex mutex;  // guards the three below; held only to copy or swap a pointer
    std::shared_ptr<const std::map<std::string, Client, std::less<>>> clients;
    std::shared_ptr<const Keys> keys;
    std::shared_ptr<const std::set<std::string, std::less<>>> revoked_jtis;
    // The revocation log (ordered by seq) that GET /revocations serves; guarded by `mutex`.
    struct Revocation {
        std::int64_t seq;
        std::string jti;
        std::int64_t expires_at;
    };
    std::shared_ptr<const std::vector<Revocation>> revocation_log;
    net::Signal revocations_changed;
    std::atomic<bool> stopping{false};

    telemetry::CounterFamily& issued;
    telemetry::CounterFamily& refused;

    Impl(Settings s, telemetry::Registry& metrics, core::Clock& c)
        : settings(std::move(s)),
          clock(c),
          issued(metrics.counter("plexus_identity_tokens_issued_total",
                                 "Access tokens issued, by grant and kind.", {"grant", "kind"})),
          refused(metrics.counter("plexus_identity_token_errors_total",
                                  "Token requests refused, by OAuth error code.", {"error"})) {
        if (settings.data_dir.empty()) throw std::runtime_error("the identity server needs a data directory");
        issuer = settings.issuer.empty() ? "http://" + settings.listen : settings.issuer;
        while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
        std::filesystem::create_directories(settings.data_dir);
        auto path = settings.data_dir + "/identity.db";
        auto opened = store::Database::open(path);
        if (!opened) throw std::runtime_error("cannot open " + path + ": " + opened.error().message());
        ::chmod(path.c_str(), 0600);  // it holds private keys
        db.emplace(std::move(*opened));
        if (auto v = db->migrate(kSchema); !v) throw std::runtime_error(path + ": " + v.error().message());
        load_keys();
        load_clients();
        load_revoked();
        build_discovery();
    }

    std::int64_t now() const { return seconds_since_epoch(clock); }

    // ------------------------------------------------------------ state

    // The published keys: the one signing now (active), the next one (published ahead of its use,
    // so every verifier that fetched the JWKS since the last rotation already knows it), and
    // retired ones whose tokens may still live.
    void load_keys() {
        auto rows = db->query(
            "SELECT kid, alg, private_pem, created_at, retired_at, active FROM signing_keys ORDER BY "
            "created_at");
        if (!rows) throw std::runtime_error("cannot read signing keys: " + rows.error().message());
        std::optional<security::Key> signing;
        bool has_next = false;
        security::KeySet published;
        const auto oldest_valid = now() - max_ttl().count();
        for (const auto& r : *rows) {
            auto alg = security::parse_algorithm(r.get<std::string>("alg"));
            auto retired = r.at("retired_at");
            bool live = retired.type() == store::ValueType::null;
            if (!live && retired.as<std::int64_t>() < oldest_valid) continue;  // its tokens have all expired
            auto key = alg ? security::Key::from_private_pem(r.get<std::string>("private_pem"), *alg,
                                                             r.get<std::string>("kid"))
                           : std::nullopt;
            if (!key)
                throw std::runtime_error("signing key " + r.get<std::string>("kid") + " cannot be read");
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

    // A new key, stored; `active`: it signs from now on, else it is published as the next one.
    security::Key create_key(bool active) {
        auto key = security::Key::generate(settings.algorithm,
                                           "k" + std::to_string(now()) + "-" + security::random_token(4));
        auto done = db->execute(
            "INSERT INTO signing_keys(kid, alg, private_pem, created_at, active) VALUES (?, ?, ?, ?, ?)",
            key.kid(), security::to_string(key.algorithm()), key.private_pem(), now(), active ? 1 : 0);
        if (!done) throw std::runtime_error("cannot store a signing key: " + done.error().message());
        telemetry::info(active ? "signing key created" : "next signing key published",
                        {{"kid", key.kid()}, {"alg", security::to_string(key.algorithm())}});
        return key;
    }

    std::chrono::seconds max_ttl() const {
        auto longest = settings.access_ttl;
        std::lock_guard lock(mutex);
        if (clients) {
            for (const auto& [id, c] : *clients) longest = std::max(longest, c.info.access_ttl);
        }
        return longest;
    }

    void load_clients() {
        auto rows =
            db->query("SELECT client_id, name, secret_hash, scopes, token_kind, access_ttl_s FROM clients");
        if (!rows) throw std::runtime_error("cannot read clients: " + rows.error().message());
        auto map = std::make_shared<std::map<std::string, Client, std::less<>>>();
        for (const auto& r : *rows) {
            Client c;
            c.info.client_id = r.get<std::string>("client_id");
            c.info.name = r.get<std::string>("name");
            c.info.scopes = split_scopes(r.get<std::string>("scopes"));
            c.info.token_kind = r.get<std::string>("token_kind");
            c.info.access_ttl = std::chrono::seconds(r.get<std::int64_t>("access_ttl_s"));
            c.secret_hash = r.get<std::string>("secret_hash");
            map->emplace(c.info.client_id, std::move(c));
        }
        bool fresh = map->empty();
        {
            std::lock_guard lock(mutex);
            clients = std::move(map);
        }
        if (fresh) bootstrap_admin();
    }

    void load_revoked() {
        auto rows = db->query(
            "SELECT seq, jti, expires_at FROM revocation_log WHERE expires_at >= ? ORDER BY seq", now());
        if (!rows) throw std::runtime_error("cannot read revocations: " + rows.error().message());
        auto set = std::make_shared<std::set<std::string, std::less<>>>();
        auto log = std::make_shared<std::vector<Revocation>>();
        for (const auto& r : *rows) {
            set->insert(r.get<std::string>("jti"));
            log->push_back(
                {r.get<std::int64_t>("seq"), r.get<std::string>("jti"), r.get<std::int64_t>("expires_at")});
        }
        std::lock_guard lock(mutex);
        revoked_jtis = std::move(set);
        revocation_log = std::move(log);
    }

    std::shared_ptr<const std::vector<Revocation>> snapshot_log() const {
        std::lock_guard lock(mutex);
        return revocation_log;
    }

    // Records that the JWT `jti` (valid until `expires_at`) is revoked, and wakes the watchers.
    // Blocking; the caller holds db_mutex.
    void revoke_jti(const std::string& jti, std::int64_t expires_at) {
        db->execute("INSERT OR IGNORE INTO revoked_jti(jti, expires_at) VALUES (?, ?)", jti, expires_at);
        auto row =
            db->query("INSERT OR IGNORE INTO revocation_log(jti, expires_at) VALUES (?, ?) RETURNING seq",
                      jti, expires_at);
        if (!row || row->empty()) return;  // revoked before
        auto seq = (*row)[0].get<std::int64_t>(0);
        {
            std::lock_guard lock(mutex);
            auto set = std::make_shared<std::set<std::string, std::less<>>>(*revoked_jtis);
            set->insert(jti);
            auto log = std::make_shared<std::vector<Revocation>>(*revocation_log);
            log->push_back({seq, jti, expires_at});
            revoked_jtis = std::move(set);
            revocation_log = std::move(log);
        }
        revocations_changed.notify_all();
    }

    // GET /revocations?since=N[&wait=30s]: the JWT revocations after N that have not expired, at
    // once if there are any, else when one comes or `wait` (at most 60 s) ends.
    Task<void> revocations(Request& req, Response& res) {
        std::int64_t since = 0;
        if (auto v = req.query_param("since")) {
            auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), since);
            if (ec != std::errc{} || end != v->data() + v->size() || since < 0)
                co_return res.problem(400, "Bad Request", "since must be a non-negative integer", req.path());
        }
        auto wait = std::chrono::milliseconds(0);
        if (auto w = req.query_param("wait")) {
            auto d = core::parse_duration(*w);
            if (!d || d->count() < 0)
                co_return res.problem(400, "Bad Request", "wait must be a duration such as 30s", req.path());
            wait = std::min(*d, std::chrono::milliseconds(60'000));
        }
        auto deadline = std::chrono::steady_clock::now() + wait;
        while (true) {
            auto seen = revocations_changed.epoch();
            auto log = snapshot_log();
            if (stopping.load() || (!log->empty() && log->back().seq > since)) break;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            co_await revocations_changed.wait(left, seen);
        }
        auto log = snapshot_log();
        auto t = now();
        json::array list;
        std::int64_t index = since;
        for (const auto& r : *log) {
            index = std::max(index, r.seq);
            if (r.seq > since && r.expires_at >= t)
                list.push_back(json::object{{"jti", r.jti}, {"exp", r.expires_at}});
        }
        res.json(200, json::serialize(json::object{{"index", index}, {"revoked", std::move(list)}}));
        res.headers.set("Cache-Control", "no-store");
    }

    // The first admin client, its credentials in a 0600 file (never in the log).
    void bootstrap_admin() {
        ClientInfo info;
        info.client_id = std::string(kAdminClient);
        info.name = "first administrator";
        info.scopes = {std::string(kAdminScope)};
        auto [created, secret] = create_client(info);
        admin_file = settings.data_dir + "/admin-credentials.json";
        auto tmp = admin_file + ".tmp";
        {
            int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0) throw std::runtime_error("cannot write " + tmp);
            auto text = json::serialize(json::object{{"client_id", created.client_id},
                                                     {"client_secret", secret},
                                                     {"token_endpoint", issuer + "/token"},
                                                     {"scope", kAdminScope}}) +
                        "\n";
            bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
            ::fsync(fd);
            ::close(fd);
            if (!ok) throw std::runtime_error("cannot write " + tmp);
        }
        std::filesystem::rename(tmp, admin_file);
        telemetry::info("first admin client created; its one-time credentials are in the file",
                        {{"client_id", created.client_id}, {"file", admin_file}});
    }

    std::pair<ClientInfo, std::string> create_client(ClientInfo info) {
        if (info.client_id.empty()) info.client_id = "c-" + security::random_token(12);
        if (info.client_id.size() > kMaxNameLength ||
            !std::all_of(info.client_id.begin(), info.client_id.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
            }))
            throw std::invalid_argument("client_id: letters, digits, '-', '_' and '.' only, at most 200");
        if (info.name.empty() || info.name.size() > kMaxNameLength)
            throw std::invalid_argument("name: required, at most 200 characters");
        for (const auto& s : info.scopes) {
            if (!valid_scope(s))
                throw std::invalid_argument("scopes: '" + s + "' is not a scope (RFC 6749 3.3)");
        }
        if (info.token_kind != "jwt" && info.token_kind != "opaque")
            throw std::invalid_argument("token_kind: jwt or opaque");
        if (info.access_ttl.count() < 0 || info.access_ttl > std::chrono::hours(24))
            throw std::invalid_argument("access_ttl_s: from 0 (the server's) to 86400");
        auto secret = security::random_token();
        std::lock_guard db_lock(db_mutex);
        auto done = db->execute(
            "INSERT INTO clients(client_id, name, secret_hash, scopes, token_kind, access_ttl_s, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            info.client_id, info.name, security::sha256_hex(secret), join_scopes(info.scopes),
            info.token_kind, static_cast<std::int64_t>(info.access_ttl.count()), now());
        if (!done) {
            if (done.error() == store::errc::constraint)
                throw std::invalid_argument("client_id: '" + info.client_id + "' exists already");
            throw std::runtime_error("cannot store the client: " + done.error().message());
        }
        auto next = std::make_shared<std::map<std::string, Client, std::less<>>>(*snapshot_clients());
        (*next)[info.client_id] = Client{info, security::sha256_hex(secret)};
        {
            std::lock_guard lock(mutex);
            clients = std::move(next);
        }
        return {info, secret};
    }

    bool delete_client(const std::string& id) {
        std::lock_guard db_lock(db_mutex);
        auto done = db->execute("DELETE FROM clients WHERE client_id = ?", id);
        if (!done) throw std::runtime_error("cannot delete the client: " + done.error().message());
        db->execute("UPDATE opaque_tokens SET revoked = 1 WHERE client_id = ?", id);
        auto next = std::make_shared<std::map<std::string, Client, std::less<>>>(*snapshot_clients());
        next->erase(id);
        std::lock_guard lock(mutex);
        clients = std::move(next);
        return *done > 0;
    }

    std::string rotate() {
        std::lock_guard db_lock(db_mutex);
        // The next key (published since the last rotation) signs; the current one retires.
        auto done = db->execute(
            "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND active = 1", now());
        if (done)
            done = db->execute("UPDATE signing_keys SET active = 1 WHERE retired_at IS NULL AND active = 0");
        if (!done) throw std::runtime_error("cannot rotate keys: " + done.error().message());
        load_keys();
        auto kid = snapshot_keys()->signing.kid();
        telemetry::info("signing keys rotated", {{"kid", kid}});
        return kid;
    }

    std::shared_ptr<const std::map<std::string, Client, std::less<>>> snapshot_clients() const {
        std::lock_guard lock(mutex);
        return clients;
    }
    std::shared_ptr<const Keys> snapshot_keys() const {
        std::lock_guard lock(mutex);
        return keys;
    }
    std::shared_ptr<const std::set<std::string, std::less<>>> snapshot_revoked() const {
        std::lock_guard lock(mutex);
        return revoked_jtis;
    }

    void build_discovery() {
        json::object d{{"issuer", issuer},
                       {"token_endpoint", issuer + "/token"},
                       {"jwks_uri", issuer + "/jwks"},
                       {"introspection_endpoint", issuer + "/introspect"},
                       {"revocation_endpoint", issuer + "/revoke"},
                       {"grant_types_supported", json::array{"client_credentials"}},
                       {"token_endpoint_auth_methods_supported",
                        json::array{"client_secret_basic", "client_secret_post"}},
                       {"introspection_endpoint_auth_methods_supported",
                        json::array{"client_secret_basic", "client_secret_post"}},
                       {"revocation_endpoint_auth_methods_supported",
                        json::array{"client_secret_basic", "client_secret_post"}},
                       {"scopes_supported", json::array{kAdminScope}},
                       {"access_token_signing_alg_values_supported",
                        json::array{security::to_string(settings.algorithm)}}};
        discovery_json = json::serialize(d);
    }

    // ------------------------------------------------------------ client authentication

    // The client a token-endpoint request authenticates as (RFC 6749 §2.3.1), or an error
    // answered in `res`. `form` loses client_id/client_secret.
    const Client* authenticate(const Request& req, std::map<std::string, std::string>& form, Response& res,
                               const std::map<std::string, Client, std::less<>>& all) {
        std::string id, secret;
        auto basic = req.headers.get("Authorization");
        bool in_body = form.count("client_secret") > 0;
        if (basic && in_body) {
            oauth_error(res, 400, "invalid_request", "use one client authentication method, not two");
            return nullptr;
        }
        if (basic) {
            if (basic->size() < 6 || !net::iequals(basic->substr(0, 6), "Basic ")) {
                oauth_error(res, 401, "invalid_client", "client authentication must be HTTP Basic");
                return nullptr;
            }
            auto decoded = base64_decode(basic->substr(6));
            auto colon = decoded ? decoded->find(':') : std::string::npos;
            auto user = decoded && colon != std::string::npos ? net::percent_decode(decoded->substr(0, colon))
                                                              : std::nullopt;
            auto pass = decoded && colon != std::string::npos
                            ? net::percent_decode(decoded->substr(colon + 1))
                            : std::nullopt;
            if (!user || !pass) {
                oauth_error(res, 401, "invalid_client", "malformed Basic credentials");
                return nullptr;
            }
            id = std::move(*user);
            secret = std::move(*pass);
        } else if (in_body) {
            id = form["client_id"];
            secret = form["client_secret"];
        } else {
            oauth_error(res, 401, "invalid_client", "the client must authenticate");
            return nullptr;
        }
        form.erase("client_id");
        form.erase("client_secret");
        auto it = all.find(id);
        // The hash is compared even for an unknown id, so timing does not tell which ids exist.
        auto presented = security::sha256_hex(secret);
        bool ok = security::constant_time_equal(
            presented, it != all.end() ? it->second.secret_hash : std::string(64, '0'));
        if (it == all.end() || !ok) {
            refused.labels({"invalid_client"}).inc();
            oauth_error(res, 401, "invalid_client", "unknown client or wrong secret");
            return nullptr;
        }
        return &it->second;
    }

    // The form of an OAuth POST, or an error answered in `res`. Each parameter at most once.
    std::optional<std::map<std::string, std::string>> read_form(const Request& req, Response& res) {
        auto type = req.headers.get("Content-Type").value_or("");
        if (type.substr(0, type.find(';')) != "application/x-www-form-urlencoded") {
            oauth_error(res, 400, "invalid_request", "the body must be application/x-www-form-urlencoded");
            return std::nullopt;
        }
        auto fields = net::parse_form(req.body);
        if (!fields) {
            oauth_error(res, 400, "invalid_request", "the form has a malformed escape");
            return std::nullopt;
        }
        std::map<std::string, std::string> form;
        for (auto& [k, v] : *fields) {
            if (!form.emplace(k, v).second) {
                oauth_error(res, 400, "invalid_request", "parameter " + k + " appears more than once");
                return std::nullopt;
            }
        }
        return form;
    }

    // A form POST from an authenticated client: the form (without the client's credentials)
    // and the client, kept alive by the snapshot it came from.
    struct ClientCall {
        std::map<std::string, std::string> form;
        std::shared_ptr<const std::map<std::string, Client, std::less<>>> clients;
        const Client* client = nullptr;
    };

    // Reads the form and authenticates the client; nullopt once the error is answered in `res`.
    std::optional<ClientCall> client_call(const Request& req, Response& res) {
        auto form = read_form(req, res);
        if (!form) return std::nullopt;
        ClientCall call{std::move(*form), snapshot_clients()};
        call.client = authenticate(req, call.form, res, *call.clients);
        if (!call.client) return std::nullopt;
        return call;
    }

    // ------------------------------------------------------------ tokens

    // What a token says, for introspection and the admin API.
    struct TokenFacts {
        bool active = false;
        std::string client_id, subject, scope, jti;
        std::int64_t issued_at = 0, expires_at = 0;
    };

    Task<TokenFacts> inspect(std::string token) {
        TokenFacts f;
        if (token.starts_with(kOpaquePrefix)) {
            auto hash = security::sha256_hex(token);
            auto row = co_await net::offload([this, hash]() -> std::optional<store::Row> {
                std::lock_guard lock(db_mutex);
                auto r = db->query_one(
                    "SELECT client_id, subject, scope, issued_at, expires_at, revoked FROM"
                    " opaque_tokens WHERE token_hash = ?",
                    hash);
                if (!r) return std::nullopt;
                return std::move(*r);
            });
            if (!row || row->get<std::int64_t>("revoked") != 0 ||
                row->get<std::int64_t>("expires_at") < now())
                co_return f;
            f.active = true;
            f.client_id = row->get<std::string>("client_id");
            f.subject = row->get<std::string>("subject");
            f.scope = row->get<std::string>("scope");
            f.issued_at = row->get<std::int64_t>("issued_at");
            f.expires_at = row->get<std::int64_t>("expires_at");
            co_return f;
        }
        security::JwtVerifier verifier({.issuer = issuer, .audiences = {settings.audience}}, clock);
        auto v = verifier.verify(token, snapshot_keys()->published);
        if (!v) co_return f;
        auto str = [&](std::string_view k) {
            const auto* x = v.claims.if_contains(k);
            return x && x->is_string() ? std::string(x->as_string()) : std::string();
        };
        f.jti = str("jti");
        if (f.jti.empty() || snapshot_revoked()->count(f.jti)) co_return f;
        f.active = true;
        f.client_id = str("client_id");
        f.subject = str("sub");
        f.scope = str("scope");
        auto number = [&](std::string_view k) {
            const auto* x = v.claims.if_contains(k);
            return x && x->is_number() ? x->to_number<std::int64_t>() : std::int64_t{0};
        };
        f.issued_at = number("iat");
        f.expires_at = number("exp");
        co_return f;
    }

    Task<void> token(Request& req, Response& res) {
        auto call = client_call(req, res);
        if (!call) co_return;
        auto* form = &call->form;
        const Client* client = call->client;
        auto grant = form->find("grant_type");
        if (grant == form->end())
            co_return oauth_error(res, 400, "invalid_request", "grant_type is required");
        if (grant->second != "client_credentials") {
            refused.labels({"unsupported_grant_type"}).inc();
            co_return oauth_error(res, 400, "unsupported_grant_type",
                                  "grant_type " + grant->second + " is not supported");
        }
        std::vector<std::string> scopes = client->info.scopes;
        if (auto s = form->find("scope"); s != form->end()) {
            scopes = split_scopes(s->second);
            for (const auto& one : scopes) {
                if (std::find(client->info.scopes.begin(), client->info.scopes.end(), one) ==
                    client->info.scopes.end()) {
                    refused.labels({"invalid_scope"}).inc();
                    co_return oauth_error(res, 400, "invalid_scope",
                                          "the client may not ask for scope " + one);
                }
            }
        }
        auto ttl = client->info.access_ttl.count() > 0 ? client->info.access_ttl : settings.access_ttl;
        auto issued_at = now();
        std::string token;
        const auto scope = join_scopes(scopes);
        if (client->info.token_kind == "opaque") {
            token = std::string(kOpaquePrefix) + security::random_token();
            auto hash = security::sha256_hex(token);
            auto id = client->info.client_id;
            auto expires = issued_at + ttl.count();
            co_await net::offload([this, hash, id, scope, issued_at, expires] {
                std::lock_guard lock(db_mutex);
                auto done = db->execute(
                    "INSERT INTO opaque_tokens(token_hash, client_id, subject, scope, issued_at,"
                    " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                    hash, id, id, scope, issued_at, expires);
                if (!done) throw std::runtime_error("cannot store a token: " + done.error().message());
            });
        } else {
            json::object claims{{"iss", issuer},
                                {"sub", client->info.client_id},
                                {"aud", settings.audience},
                                {"client_id", client->info.client_id},
                                {"iat", issued_at},
                                {"nbf", issued_at},
                                {"exp", issued_at + ttl.count()},
                                {"jti", security::random_token(16)}};
            if (!scope.empty()) claims["scope"] = scope;
            token = security::sign_jwt(snapshot_keys()->signing, claims);
        }
        issued.labels({"client_credentials", client->info.token_kind}).inc();
        json::object body{{"access_token", token}, {"token_type", "Bearer"}, {"expires_in", ttl.count()}};
        if (!scope.empty()) body["scope"] = scope;
        res.json(200, json::serialize(body));
        res.headers.set("Cache-Control", "no-store");
        res.headers.set("Pragma", "no-cache");
    }

    Task<void> introspect(Request& req, Response& res) {
        auto call = client_call(req, res);
        if (!call) co_return;
        auto* form = &call->form;
        auto t = form->find("token");
        if (t == form->end()) co_return oauth_error(res, 400, "invalid_request", "token is required");
        auto f = co_await inspect(t->second);
        json::object body{{"active", f.active}};
        if (f.active) {
            body["scope"] = f.scope;
            body["client_id"] = f.client_id;
            body["sub"] = f.subject;
            body["iss"] = issuer;
            body["aud"] = settings.audience;
            body["iat"] = f.issued_at;
            body["exp"] = f.expires_at;
            body["token_type"] = "Bearer";
        }
        res.json(200, json::serialize(body));
        res.headers.set("Cache-Control", "no-store");
    }

    Task<void> revoke(Request& req, Response& res) {
        auto call = client_call(req, res);
        if (!call) co_return;
        auto* form = &call->form;
        const Client* client = call->client;
        auto t = form->find("token");
        if (t == form->end()) co_return oauth_error(res, 400, "invalid_request", "token is required");
        // RFC 7009 §2.2: an unknown or someone else's token also gets 200; only the owner revokes.
        auto f = co_await inspect(t->second);
        if (f.active && f.client_id == client->info.client_id) {
            auto token = t->second;
            co_await net::offload([this, token, f] {
                std::lock_guard lock(db_mutex);
                if (token.starts_with(kOpaquePrefix)) {
                    db->execute("UPDATE opaque_tokens SET revoked = 1 WHERE token_hash = ?",
                                security::sha256_hex(token));
                } else {
                    revoke_jti(f.jti, f.expires_at);
                }
            });
            telemetry::info("token revoked", {{"client_id", client->info.client_id}});
        }
        res.status = 200;
        res.headers.set("Cache-Control", "no-store");
    }

    // ------------------------------------------------------------ admin API

    // Whether the request carries an active token with scope plexus:admin; answers 401/403 if not.
    Task<bool> admin_allowed(const Request& req, Response& res) {
        auto auth = req.headers.get("Authorization").value_or("");
        if (auth.size() < 8 || !net::iequals(auth.substr(0, 7), "Bearer ")) {
            res.problem(401, "Unauthorized", "the admin API needs a Bearer token with scope plexus:admin",
                        req.path());
            res.headers.set("WWW-Authenticate", R"(Bearer realm="plexus")");
            co_return false;
        }
        auto f = co_await inspect(std::string(auth.substr(7)));
        if (!f.active) {
            res.problem(401, "Unauthorized", "the token is not active", req.path());
            res.headers.set("WWW-Authenticate", R"(Bearer realm="plexus", error="invalid_token")");
            co_return false;
        }
        auto scopes = split_scopes(f.scope);
        if (std::find(scopes.begin(), scopes.end(), kAdminScope) == scopes.end()) {
            res.problem(403, "Forbidden", "the token lacks scope plexus:admin", req.path());
            res.headers.set("WWW-Authenticate",
                            R"(Bearer realm="plexus", error="insufficient_scope", scope="plexus:admin")");
            co_return false;
        }
        telemetry::info("admin action",
                        {{"actor", f.client_id}, {"method", req.method}, {"path", req.path()}});
        co_return true;
    }

    static json::object client_json(const ClientInfo& c) {
        json::array scopes;
        for (const auto& s : c.scopes) scopes.emplace_back(s);
        return {{"client_id", c.client_id},
                {"name", c.name},
                {"scopes", std::move(scopes)},
                {"token_kind", c.token_kind},
                {"access_ttl_s", c.access_ttl.count()}};
    }
};

Server::Server(Settings settings, telemetry::Registry& metrics, core::Clock& clock)
    : impl_(std::make_shared<Impl>(std::move(settings), metrics, clock)) {}

Server::~Server() { stop_watches(); }

void Server::stop_watches() {
    impl_->stopping.store(true);
    impl_->revocations_changed.notify_all();
}

const std::string& Server::issuer() const noexcept { return impl_->issuer; }
security::KeySet Server::public_keys() const { return impl_->snapshot_keys()->published; }
const std::string& Server::admin_credentials_file() const noexcept { return impl_->admin_file; }
std::pair<ClientInfo, std::string> Server::create_client(ClientInfo info) {
    return impl_->create_client(std::move(info));
}
std::string Server::rotate_keys() { return impl_->rotate(); }

void Server::add_routes(net::Router& router) {
    auto impl = impl_;
    router.add("GET", "/.well-known/openid-configuration", [impl](Request&, Response& res) -> Task<void> {
        res.json(200, impl->discovery_json);
        co_return;
    });
    router.add("GET", "/.well-known/oauth-authorization-server",
               [impl](Request&, Response& res) -> Task<void> {
                   res.json(200, impl->discovery_json);
                   co_return;
               });
    router.add("GET", "/jwks", [impl](Request&, Response& res) -> Task<void> {
        res.json(200, impl->snapshot_keys()->published.to_json());
        res.headers.set("Cache-Control", "max-age=60");
        co_return;
    });
    router.add(
        "POST", "/token", [impl](Request& req, Response& res) { return impl->token(req, res); }, 16 * 1024);
    router.add(
        "POST", "/introspect", [impl](Request& req, Response& res) { return impl->introspect(req, res); },
        16 * 1024);
    router.add(
        "POST", "/revoke", [impl](Request& req, Response& res) { return impl->revoke(req, res); }, 16 * 1024);

    router.add("GET", "/revocations",
               [impl](Request& req, Response& res) { return impl->revocations(req, res); });
    router.add("GET", "/admin/clients", [impl](Request& req, Response& res) -> Task<void> {
        if (!co_await impl->admin_allowed(req, res)) co_return;
        json::array list;
        for (const auto& [id, c] : *impl->snapshot_clients()) list.push_back(Impl::client_json(c.info));
        res.json(200, json::serialize(json::object{{"clients", std::move(list)}}));
    });
    router.add(
        "POST", "/admin/clients",
        [impl](Request& req, Response& res) -> Task<void> {
            if (!co_await impl->admin_allowed(req, res)) co_return;
            boost::system::error_code ec;
            auto doc = json::parse(req.body, ec);
            if (ec || !doc.is_object())
                co_return res.problem(400, "Bad Request", "the body must be a JSON object", req.path());
            ClientInfo info;
            std::string problem;
            try {
                const auto& o = doc.as_object();
                for (const auto& [k, v] : o) {
                    if (k == "client_id")
                        info.client_id = std::string(v.as_string());
                    else if (k == "name")
                        info.name = std::string(v.as_string());
                    else if (k == "token_kind")
                        info.token_kind = std::string(v.as_string());
                    else if (k == "access_ttl_s")
                        info.access_ttl = std::chrono::seconds(v.to_number<std::int64_t>());
                    else if (k == "scopes")
                        for (const auto& s : v.as_array()) info.scopes.emplace_back(s.as_string());
                    else
                        problem = std::string(k) + ": unknown field";
                }
            } catch (const std::exception&) {
                problem = "a field has the wrong type";
            }
            if (!problem.empty()) co_return res.problem(400, "Bad Request", problem, req.path());
            try {
                auto [created, secret] =
                    co_await net::offload([impl, info] { return impl->create_client(info); });
                auto body = Impl::client_json(created);
                body["client_secret"] = secret;  // shown once
                res.json(201, json::serialize(body));
                res.headers.set("Cache-Control", "no-store");
            } catch (const std::invalid_argument& e) {
                res.problem(400, "Bad Request", e.what(), req.path());
            }
        },
        16 * 1024);
    router.add("DELETE", "/admin/clients/{id}", [impl](Request& req, Response& res) -> Task<void> {
        if (!co_await impl->admin_allowed(req, res)) co_return;
        std::string id(req.param("id"));
        if (id == kAdminClient)
            co_return res.problem(409, "Conflict", "the first admin client cannot be deleted", req.path());
        bool gone = co_await net::offload([impl, id] { return impl->delete_client(id); });
        if (!gone) co_return res.problem(404, "Not Found", "no client " + id, req.path());
        res.status = 204;
    });
    router.add("POST", "/admin/keys/rotate", [impl](Request& req, Response& res) -> Task<void> {
        if (!co_await impl->admin_allowed(req, res)) co_return;
        auto kid = co_await net::offload([impl] { return impl->rotate(); });
        res.json(200, json::serialize(json::object{{"kid", kid}}));
    });
}

int run(const Settings& settings) {
    auto listen = net::parse_listen_address(settings.listen);
    if (!listen) {
        telemetry::error("--listen must be host:port", {{"listen", settings.listen}});
        return 2;
    }
    if (settings.data_dir.empty()) {
        telemetry::error("--data-dir is required");
        return 2;
    }
    std::optional<net::Endpoint> registry;
    if (!settings.registry.empty()) {
        registry = net::parse_endpoint(settings.registry);
        if (!registry) {
            telemetry::error("--registry must be http://host:port", {{"registry", settings.registry}});
            return 2;
        }
    }
    auto& metrics = telemetry::default_registry();
    std::unique_ptr<Server> server;
    try {
        server = std::make_unique<Server>(settings, metrics);
    } catch (const std::exception& e) {
        telemetry::error("cannot start the identity server", {{"error", e.what()}});
        return 1;
    }
    net::Runtime runtime(settings.threads);
    net::Router router;
    server->add_routes(router);
    serving::add_probe_routes(router, metrics);
    net::ServerSettings ss;
    ss.address = listen->host;
    ss.port = listen->port;
    net::Server http(runtime, ss, router.handler(), router.body_limit_fn());
    try {
        http.start();
    } catch (const std::exception& e) {
        telemetry::error("cannot listen", {{"listen", settings.listen}, {"error", e.what()}});
        return 1;
    }
    auto stop = std::make_shared<std::atomic<bool>>(false);
    discovery::InstanceInfo self;
    if (registry) {
        self.service = "identity";
        self.id = "identity-" + std::to_string(::getpid());
        self.address = listen->host == "0.0.0.0" ? "127.0.0.1" : listen->host;
        self.port = http.port();
        self.ttl = std::chrono::seconds(5);
        discovery::HealthCheck check;
        check.http = "/health/ready";
        check.interval = std::chrono::seconds(1);
        check.timeout = std::chrono::milliseconds(500);
        self.check = check;
        net::spawn(runtime.executor(0),
                   discovery::keep_registered(discovery::RegistryClient(*registry), self,
                                              std::chrono::seconds(1), stop),
                   "registration");
    }
    // SIGTERM: leave discovery first, then drain.
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        if (stop->exchange(true)) return;
        telemetry::info("shutting down", {{"signal", sig}});
        server->stop_watches();  // long polls answer now, so the drain does not wait for them
        net::spawn(
            runtime.executor(0),
            [](std::optional<net::Endpoint> registry, discovery::InstanceInfo self, net::Server* http,
               net::Runtime* runtime) -> Task<void> {
                if (registry) {
                    if (auto ec =
                            co_await discovery::RegistryClient(*registry).deregister(self.service, self.id))
                        telemetry::warn("deregistration failed", {{"error", ec.message()}});
                }
                http->shutdown([runtime] { runtime->stop(); });
            }(registry, self, &http, &runtime),
            "shutdown");
    });
    telemetry::info("identity listening", {{"address", listen->host},
                                           {"port", http.port()},
                                           {"issuer", server->issuer()},
                                           {"admin_credentials", server->admin_credentials_file()}});
    runtime.run();
    return 0;
}

}  // namespace plexus::identity
