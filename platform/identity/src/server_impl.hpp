#pragma once
// The identity server's state, shared by the files that implement it:
//   state.cpp      database, signing keys, clients, revocations, first start
//   accounts.cpp   users and API keys
//   oauth.cpp      the token endpoint's grants, introspection, revocation, userinfo
//   authorize.cpp  the authorization endpoint and its login page
//   admin.cpp      the admin API and its audit log
//   identity.cpp   the public facade, the routes and the daemon

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "audit_log.hpp"
#include "login_throttle.hpp"
#include "plexus/auth/revoked_tokens.hpp"
#include "plexus/identity/identity.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/net/task.hpp"
#include "plexus/store/database.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::identity {

namespace json = boost::json;
using net::Request;
using net::Response;
using net::Task;

inline constexpr std::string_view kAdminScope = "plexus:admin";
inline constexpr std::string_view kAdminClient = "plexus-admin";
inline constexpr std::string_view kCliClient = "plexus-cli";
inline constexpr std::string_view kOpaquePrefix = "pxo_";
inline constexpr std::string_view kRefreshPrefix = "pxr_";
inline constexpr std::string_view kApiKeyPrefix = "pxk_";
/// A client whose scopes hold this may ask for any scope its users hold (user grants only).
inline constexpr std::string_view kAnyScope = "*";
inline constexpr std::size_t kMaxNameLength = 200;

std::vector<std::string> split_scopes(std::string_view text);
std::string join_scopes(const std::vector<std::string>& scopes);
bool has_scope(const std::vector<std::string>& scopes, std::string_view scope);
/// RFC 6749 §A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
bool valid_scope(std::string_view s);
/// Throws std::invalid_argument naming `field` unless every entry is a scope.
void check_scopes(const std::vector<std::string>& scopes, std::string_view field);
/// Letters, digits, '-', '_' and '.', 1 to 200 of them.
bool valid_identifier(std::string_view s);
/// The answer of an OAuth endpoint's error (RFC 6749 §5.2).
void oauth_error(Response& res, int status, std::string_view error, std::string_view description);
/// The scopes a user's grant through `client` gets: `requested` (empty: all the client may ask
/// for and the user holds). openid, profile and offline_access need only the client's consent;
/// other scopes also need the user to hold them. nullopt with `why` if one is not allowed.
std::optional<std::vector<std::string>> user_scopes(const ClientInfo& client, const UserInfo& user,
                                                    const std::vector<std::string>& requested,
                                                    std::string& why);
/// An RFC 6750 answer as problem+json: 401 or 403 with `WWW-Authenticate: Bearer` and its
/// error and scope (each left out when empty).
void bearer_error(Response& res, int status, std::string_view error, const std::string& detail,
                  std::string_view path, std::string_view scope);

struct Client {
    ClientInfo info;
    std::string secret_hash;  ///< empty for a public client
};
using ClientMap = std::map<std::string, Client, std::less<>>;

// The signing key and the published set, swapped whole on rotation.
struct Keys {
    security::Key signing;
    security::KeySet published;
};

struct Revocation {
    std::int64_t seq;
    std::string jti;
    std::int64_t expires_at;
    std::string client_id;           ///< set: every token of this client issued at or before
    std::int64_t issued_before = 0;  ///< issued_before (the client was deleted)
};

/// What a token says, for introspection, userinfo and the admin API.
struct TokenFacts {
    bool active = false;
    std::string kind;  ///< "jwt", "opaque" or "api_key"
    std::string client_id, subject, scope, jti, family;
    std::vector<std::string> roles;
    std::int64_t issued_at = 0, expires_at = 0;
};

/// Whom tokens are issued for and what they may do: a client for itself (client credentials) or
/// a user through a client (authorization code, refresh token).
struct Grant {
    std::string grant_type;
    std::string subject;  ///< a user_id, or the client_id
    bool user = false;
    std::vector<std::string> roles;
    std::string scope;
    std::int64_t auth_time = 0;
    std::string nonce;
    std::string family;  ///< the refresh token family; empty: no refresh token
};

struct Server::Impl {
    Settings settings;
    core::Clock& clock;
    std::string issuer;
    std::string admin_file;
    std::string discovery_json;
    AuditLog audit;
    LoginThrottle throttle;

    std::mutex db_mutex;  // the connection is used from the blocking pool, one call at a time
    std::optional<store::Database> db;
    std::string master_key;  // encrypts private keys at rest

    mutable std::mutex mutex;  // guards the three below; held only to copy or swap a pointer
    std::shared_ptr<const ClientMap> clients;
    std::shared_ptr<const Keys> keys;
    std::shared_ptr<const std::vector<Revocation>> revocation_log;
    auth::RevokedTokens revoked;  // what the log says, for this server's own checks (the gateways' rule)
    net::Signal revocations_changed;
    std::atomic<bool> stopping{false};

    telemetry::CounterFamily& issued;
    telemetry::CounterFamily& refused;
    telemetry::CounterFamily& logins;

    Impl(Settings s, telemetry::Registry& metrics, core::Clock& c);

    std::int64_t now() const;

    // ---- state.cpp
    void load_master_key();
    void load_keys();
    security::Key create_key(bool active);
    std::chrono::seconds max_ttl() const;
    void load_clients();
    void load_revoked();
    void bootstrap();
    void provision(const Provisioned& p);
    std::pair<ClientInfo, std::string> create_client(ClientInfo info);
    bool delete_client(const std::string& id);
    std::string rotate();
    /// Records that the JWT `jti` is revoked and wakes the watchers; the caller holds db_mutex.
    void revoke_jti(const std::string& jti, std::int64_t expires_at);
    // Every token client `id` was issued until now; db_mutex held. `expires_at`: when they have
    // all expired.
    void revoke_client(const std::string& id, std::int64_t expires_at);
    /// Revokes a refresh token family, its access tokens and opaque tokens; holds db_mutex.
    void revoke_family(const std::string& family, std::string_view why);
    /// Publishes the ids of the live opaque tokens whose `column` ("family", "client_id",
    /// "token_hash") is `value`, as revoke_jti does; holds db_mutex.
    void revoke_opaque(std::string_view column, const std::string& value);
    std::shared_ptr<const ClientMap> snapshot_clients() const;
    std::shared_ptr<const Keys> snapshot_keys() const;
    std::shared_ptr<const std::vector<Revocation>> snapshot_log() const;
    void build_discovery();

    // ---- accounts.cpp (blocking: call on the blocking pool)
    std::pair<UserInfo, std::string> create_user(UserInfo info, std::string password);
    std::vector<UserInfo> list_users();
    std::optional<UserInfo> find_user(const std::string& user_id);
    /// The user whose password this is, or nullopt (wrong password, unknown user: same time).
    std::optional<UserInfo> check_password(const std::string& username, const std::string& password);
    bool delete_user(const std::string& user_id);
    /// Sets a new password (empty: generated) and revokes the user's refresh tokens.
    std::optional<std::string> set_password(const std::string& user_id, std::string password);
    std::pair<ApiKeyInfo, std::string> create_api_key(ApiKeyInfo info);
    std::vector<ApiKeyInfo> list_api_keys();
    bool delete_api_key(const std::string& key_id);
    /// A new key with the old one's name, subject and scopes; the old one expires after `grace`.
    std::optional<std::pair<ApiKeyInfo, std::string>> rotate_api_key(const std::string& key_id,
                                                                     std::chrono::seconds grace);
    TokenFacts check_api_key(std::string_view key);

    // ---- oauth.cpp
    std::optional<std::map<std::string, std::string>> read_form(const Request& req, Response& res);
    struct ClientCall {
        std::map<std::string, std::string> form;
        std::shared_ptr<const ClientMap> clients;
        const Client* client = nullptr;
    };
    std::optional<ClientCall> client_call(const Request& req, Response& res);
    const Client* authenticate(const Request& req, std::map<std::string, std::string>& form, Response& res,
                               const ClientMap& all);
    Task<TokenFacts> inspect(std::string token);
    Task<void> token(Request& req, Response& res);
    Task<void> grant_authorization_code(const Client& client, std::map<std::string, std::string>& form,
                                        Response& res);
    Task<void> grant_refresh_token(const Client& client, std::map<std::string, std::string>& form,
                                   Response& res);
    /// Issues the access token (and refresh and ID tokens when the grant has them) into `res`.
    Task<void> issue(const Client& client, Grant grant, Response& res);
    Task<void> introspect(Request& req, Response& res);
    Task<void> revoke(Request& req, Response& res);
    Task<void> userinfo(Request& req, Response& res);
    Task<void> revocations(Request& req, Response& res);

    // ---- authorize.cpp
    Task<void> authorize(Request& req, Response& res);
    std::string client_address(const Request& req) const;

    // ---- admin.cpp
    void add_admin_routes(net::Router& router, const std::shared_ptr<Impl>& self);
};

}  // namespace plexus::identity
