#pragma once
/// The identity server: an OAuth 2.0 authorization server (RFC 6749, with the OAuth 2.1 rules:
/// PKCE S256 for every authorization code, no implicit grant, refresh tokens rotated) and an
/// OpenID Connect provider. It issues access tokens as JWTs (RFC 9068 profile, signed with keys
/// it rotates) or as opaque tokens whose claims stay on the server, and lets resource servers
/// check them.
///
///   GET  /.well-known/openid-configuration   discovery (RFC 8414 / OpenID Connect Discovery)
///   GET  /jwks                               the public signing keys (RFC 7517)
///   GET  /authorize                          the login page of the authorization code grant
///   POST /authorize                          the login form: a 303 to the client's redirect_uri
///                                            with code, state and iss (RFC 9207)
///   POST /token                              grant_type client_credentials, authorization_code
///                                            (PKCE S256 required) or refresh_token (rotated; a
///                                            reused one revokes its whole family); client auth
///                                            client_secret_basic, client_secret_post, or none
///                                            for public clients
///   GET  /userinfo                           OIDC userinfo for a user's access token
///   POST /introspect                         RFC 7662 (access tokens, opaque tokens, API keys);
///                                            the caller authenticates as a confidential client
///   POST /revoke                             RFC 7009; a client revokes its own tokens (a refresh
///                                            token takes its family and their access tokens)
///   GET  /revocations?since=N[&wait=30s]     revoked JWT ids after N (not yet expired), as
///                                            {"index": M, "revoked": [{"jti", "exp"}]}; with
///                                            wait, a long poll answered as soon as one comes
///                                            (how gateways learn of revocations within a second)
///   /admin/clients, /admin/users, /admin/api-keys, POST /admin/keys/rotate
///                                            admin API: a Bearer token with scope plexus:admin;
///                                            every call is written to <data_dir>/audit.log
///   GET  /health/live, /health/ready, /metrics
///
/// OAuth endpoints answer errors as RFC 6749 §5.2 says (`{"error": "invalid_client", ...}`, 401
/// with `WWW-Authenticate: Basic` for a failed client authentication); the admin API answers
/// problem+json (401 with `WWW-Authenticate: Bearer error="invalid_token"`, 403
/// `insufficient_scope`, RFC 6750). Token answers carry `Cache-Control: no-store`.
///
/// Users log in with a password (argon2id); failures back off per user and per address. On a
/// data directory without clients, the server creates the first admin client (`plexus-admin`,
/// scope `plexus:admin`), the first admin user (`admin`, role admin, scope plexus:admin) and the
/// public client of the `plexus login` command (`plexus-cli`), and writes the one-time
/// credentials to `<data_dir>/admin-credentials.json` (mode 0600); they are never logged.
/// Signing keys live in the SQLite database (`<data_dir>/identity.db`, mode 0600), encrypted
/// with the key in `<data_dir>/master.key` (mode 0600; keep it apart from backups of the
/// database); after a rotation the old key stays in the JWKS until every token it signed has
/// expired.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/net/router.hpp"
#include "plexus/security/jwk.hpp"

namespace plexus::telemetry {
class Registry;
}

namespace plexus::identity {

/// How the identity server runs. Plain data.
/// A workload (the gateway, a service) that gets a confidential client of its own: client
/// `name` with `scopes`, its credentials kept in `file` (0600) for the workload to read.
struct Provisioned {
    std::string name;
    std::vector<std::string> scopes;
    std::string file;
};

/// "NAME=FILE" or "NAME:SCOPE,SCOPE=FILE" (the --provision flag); nullopt with `why` otherwise.
std::optional<Provisioned> parse_provisioned(std::string_view spec, std::string& why);

struct Settings {
    std::string listen = "127.0.0.1:8600";
    /// Where the database and the first admin's credentials live; required.
    std::string data_dir;
    /// The issuer URL as clients reach it (through the gateway, say "http://127.0.0.1:8080/auth");
    /// empty: "http://<listen>". Every endpoint URL in the discovery document starts with it.
    std::string issuer;
    /// The `aud` of access tokens.
    std::string audience = "plexus";
    /// Access token lifetime unless a client says otherwise.
    std::chrono::seconds access_ttl{600};
    /// The algorithm of new signing keys.
    security::Algorithm algorithm = security::Algorithm::es256;
    /// http://host:port of the registry to register with as service "identity" (so the gateway
    /// finds it); empty: not registered.
    std::string registry;
    std::size_t threads = 1;
    /// Refresh token lifetime; each use rotates it and starts a new lifetime.
    std::chrono::seconds refresh_ttl{14 * 24 * 3600};
    /// Authorization code lifetime.
    std::chrono::seconds code_ttl{60};
    /// Peers whose X-Forwarded-For names the client address (the gateway); login backoff per
    /// address uses it.
    std::vector<std::string> trusted_proxies{"127.0.0.1", "::1"};
    /// Workload clients kept provisioned at every start: created (or made anew when their file
    /// is missing or stale) with their credentials written to their files.
    std::vector<Provisioned> provision;
};

/// Reads the keys of Settings present in `r` — listen, data_dir, issuer, audience, registry,
/// access_ttl, refresh_ttl, code_ttl (durations), algorithm (ES256, RS256, EdDSA), threads,
/// trusted_proxies, provision (a list of {name, scopes, file}) — the same loader for a settings
/// file and the config server. Throws core::SettingsError naming the key.
void read_settings(core::SettingsReader& r, Settings& s);

/// A client as the admin API shows it (never its secret).
struct ClientInfo {
    std::string client_id;
    std::string name;
    std::vector<std::string> scopes;     ///< what it may ask for
    std::string token_kind = "jwt";      ///< "jwt" or "opaque"
    std::chrono::seconds access_ttl{0};  ///< 0: the server's
    /// Where the authorization code grant may send users back (exact match; a loopback
    /// `http://127.0.0.1/...` matches any port, RFC 8252 §7.3). Empty: no authorization code grant.
    std::vector<std::string> redirect_uris{};
    /// false: a public client (a CLI, a single-page app) with no secret; it may only use the
    /// authorization code grant (with PKCE) and refresh tokens.
    bool confidential = true;
};

/// A user as the admin API shows it (never the password).
struct UserInfo {
    std::string user_id;  ///< the `sub` of its tokens
    std::string username;
    std::vector<std::string> roles;
    std::vector<std::string> scopes;  ///< what its tokens may carry
};

/// An API key as the admin API shows it (never its secret).
struct ApiKeyInfo {
    std::string key_id;  ///< the part before the dot: "pxk_..."
    std::string name;
    std::string subject;  ///< whom calls with it act as (the `sub` it introspects to)
    std::vector<std::string> scopes;
    std::int64_t created_at = 0;
    std::int64_t expires_at = 0;  ///< seconds since the epoch; 0: never
};

/// The identity server's state and HTTP API. Blocking SQLite work runs on the blocking pool;
/// issuing a JWT to a known client touches no database. Thread-safe.
class Server {
  public:
    /// Opens (or creates) the database under `settings.data_dir`, creates the first signing key
    /// and the first admin client when there are none. Throws std::runtime_error naming the file
    /// when the database cannot be opened.
    explicit Server(Settings settings, telemetry::Registry& metrics,
                    core::Clock& clock = core::Clock::real());
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Adds the routes above (not the health and metrics ones) to `router`.
    void add_routes(net::Router& router);

    /// The issuer URL.
    const std::string& issuer() const noexcept;
    /// The public keys now published (current and still-valid retired ones).
    security::KeySet public_keys() const;
    /// Where the first admin's credentials were written (empty if this data dir already had clients).
    const std::string& admin_credentials_file() const noexcept;

    /// Creates a client; returns its info and its secret (shown once). Throws
    /// std::invalid_argument for bad fields. Blocking.
    std::pair<ClientInfo, std::string> create_client(ClientInfo info);
    /// Creates a user with `password` (empty: a generated one); returns it and the password.
    /// Throws std::invalid_argument for bad fields. Blocking (the password hash is slow).
    std::pair<UserInfo, std::string> create_user(UserInfo info, std::string password);
    /// Creates an API key; returns its info and the key itself (shown once). Throws
    /// std::invalid_argument for bad fields. Blocking.
    std::pair<ApiKeyInfo, std::string> create_api_key(ApiKeyInfo info);
    /// Answers every pending and future /revocations long poll at once (at shutdown).
    void stop_watches();
    /// Makes a new key the signing key; the old one stays published until its tokens expire.
    /// Returns the new kid. Blocking.
    std::string rotate_keys();

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// Runs the identity daemon until SIGTERM/SIGINT; returns the process exit code (2 for bad
/// settings, 1 when it cannot start).
int run(const Settings& settings);

}  // namespace plexus::identity
