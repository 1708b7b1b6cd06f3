#pragma once
/// The identity server: an OAuth 2.0 authorization server (RFC 6749) that issues access tokens to
/// clients, as JWTs (RFC 9068 profile, signed with keys it rotates) or as opaque tokens whose
/// claims stay on the server, and lets resource servers check them.
///
///   GET  /.well-known/openid-configuration   discovery (RFC 8414 / OpenID Connect Discovery)
///   GET  /jwks                               the public signing keys (RFC 7517)
///   POST /token                              grant_type=client_credentials (client_secret_basic
///                                            or client_secret_post); scope optional
///   POST /introspect                         RFC 7662; the caller authenticates as a client
///   POST /revoke                             RFC 7009; a client revokes its own tokens
///   GET  /revocations?since=N[&wait=30s]     revoked JWT ids after N (not yet expired), as
///                                            {"index": M, "revoked": [{"jti", "exp"}]}; with
///                                            wait, a long poll answered as soon as one comes
///                                            (how gateways learn of revocations within a second)
///   GET  /admin/clients, POST /admin/clients, DELETE /admin/clients/{id}
///   POST /admin/keys/rotate                  admin API: a Bearer token with scope plexus:admin
///   GET  /health/live, /health/ready, /metrics
///
/// OAuth endpoints answer errors as RFC 6749 §5.2 says (`{"error": "invalid_client", ...}`, 401
/// with `WWW-Authenticate: Basic` for a failed client authentication); the admin API answers
/// problem+json (401 with `WWW-Authenticate: Bearer error="invalid_token"`, 403
/// `insufficient_scope`, RFC 6750). Token answers carry `Cache-Control: no-store`.
///
/// On a data directory without clients, the server creates the first admin client
/// (`plexus-admin`, scope `plexus:admin`) and writes its one-time credentials to
/// `<data_dir>/admin-credentials.json` (mode 0600); they are never logged. Signing keys live in
/// the SQLite database (`<data_dir>/identity.db`, mode 0600, PKCS#8 PEM); after a rotation the
/// old key stays in the JWKS until every token it signed has expired.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/net/router.hpp"
#include "plexus/security/jwk.hpp"

namespace plexus::telemetry {
class Registry;
}

namespace plexus::identity {

/// How the identity server runs. Plain data.
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
};

/// A client as the admin API shows it (never its secret).
struct ClientInfo {
    std::string client_id;
    std::string name;
    std::vector<std::string> scopes;     ///< what it may ask for
    std::string token_kind = "jwt";      ///< "jwt" or "opaque"
    std::chrono::seconds access_ttl{0};  ///< 0: the server's
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
