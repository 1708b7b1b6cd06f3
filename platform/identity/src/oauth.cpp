// The OAuth endpoints: the token endpoint's grants (client credentials, authorization code with
// PKCE, refresh token with rotation and reuse detection), introspection, revocation, userinfo,
// and the revocation watch gateways follow.

#include <algorithm>
#include <charconv>

#include "plexus/core/base64.hpp"
#include "plexus/core/duration.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"
#include "server_impl.hpp"

namespace plexus::identity {

namespace {

// Standard base64 (with padding) as in HTTP Basic credentials.
// Padding left out is taken as meant.
std::optional<std::string> base64_decode(std::string_view text) {
    std::string padded(text);
    while (padded.size() % 4 != 0) padded += '=';
    return core::base64_decode(padded);
}

// RFC 7636 §4.1: code_verifier = 43*128unreserved.
bool valid_code_verifier(std::string_view v) {
    return v.size() >= 43 && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
                      c == '~';
           });
}

// The `at_hash` of an ID token (OIDC Core §3.1.3.6): the left half of the access token's hash, by
// the hash of the signing algorithm (SHA-256 for ES256 and RS256).
std::optional<std::string> at_hash(security::Algorithm alg, std::string_view access_token) {
    if (alg == security::Algorithm::eddsa) return std::nullopt;  // no hash is defined for EdDSA
    auto digest = security::sha256(access_token);
    return security::base64url_encode(std::string_view(digest).substr(0, digest.size() / 2));
}

// A failed grant: the OAuth error, counted.
struct GrantError {
    std::string error, description;
};

}  // namespace

std::optional<std::vector<std::string>> user_scopes(const ClientInfo& client, const UserInfo& user,
                                                    const std::vector<std::string>& requested,
                                                    std::string& why) {
    auto standard = [](std::string_view s) {
        return s == "openid" || s == "profile" || s == "offline_access";
    };
    auto client_allows = [&](const std::string& s) {
        return has_scope(client.scopes, s) || (!standard(s) && has_scope(client.scopes, kAnyScope));
    };
    auto user_holds = [&](const std::string& s) { return standard(s) || has_scope(user.scopes, s); };
    std::vector<std::string> out;
    if (requested.empty()) {
        for (const auto& s : client.scopes) {
            if (s != kAnyScope && user_holds(s)) out.push_back(s);
        }
        if (has_scope(client.scopes, kAnyScope)) {
            for (const auto& s : user.scopes) {
                if (!has_scope(out, s)) out.push_back(s);
            }
        }
        return out;
    }
    for (const auto& s : requested) {
        if (s == kAnyScope || !client_allows(s)) {
            why = "the client may not ask for scope " + s;
            return std::nullopt;
        }
        if (!user_holds(s)) {
            why = "the user does not hold scope " + s;
            return std::nullopt;
        }
        if (!has_scope(out, s)) out.push_back(s);
    }
    return out;
}

void bearer_error(Response& res, int status, std::string_view error, const std::string& detail,
                  std::string_view path, std::string_view scope) {
    res.problem(status, status == 401 ? "Unauthorized" : "Forbidden", detail, path);
    std::string challenge = R"(Bearer realm="plexus")";
    if (!error.empty()) challenge += R"(, error=")" + std::string(error) + '"';
    if (!scope.empty()) challenge += R"(, scope=")" + std::string(scope) + '"';
    res.headers.set("WWW-Authenticate", challenge);
}

// ------------------------------------------------------------ forms and client authentication

std::optional<std::map<std::string, std::string>> Server::Impl::read_form(const Request& req, Response& res) {
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

// The client a request authenticates as (RFC 6749 §2.3.1: HTTP Basic or the form; a public
// client names itself with client_id alone), or an error answered in `res`. `form` loses
// client_id/client_secret.
const Client* Server::Impl::authenticate(const Request& req, std::map<std::string, std::string>& form,
                                         Response& res, const ClientMap& all) {
    std::string id, secret;
    auto basic = req.headers.get("Authorization");
    bool in_body = form.count("client_secret") > 0;
    bool public_client = false;
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
        auto pass = decoded && colon != std::string::npos ? net::percent_decode(decoded->substr(colon + 1))
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
    } else if (form.count("client_id")) {
        id = form["client_id"];
        public_client = true;
    } else {
        oauth_error(res, 401, "invalid_client", "the client must authenticate");
        return nullptr;
    }
    form.erase("client_id");
    form.erase("client_secret");
    auto it = all.find(id);
    if (public_client) {
        if (it == all.end() || it->second.info.confidential) {
            refused.labels({"invalid_client"}).inc();
            oauth_error(res, 401, "invalid_client",
                        "unknown client, or a confidential one without its secret");
            return nullptr;
        }
        return &it->second;
    }
    // The hash is compared even for an unknown id, so timing does not tell which ids exist.
    auto presented = security::sha256_hex(secret);
    bool ok = security::constant_time_equal(presented,
                                            it != all.end() ? it->second.secret_hash : std::string(64, '0'));
    if (it == all.end() || !ok || !it->second.info.confidential) {
        refused.labels({"invalid_client"}).inc();
        oauth_error(res, 401, "invalid_client", "unknown client or wrong secret");
        return nullptr;
    }
    return &it->second;
}

std::optional<Server::Impl::ClientCall> Server::Impl::client_call(const Request& req, Response& res) {
    auto form = read_form(req, res);
    if (!form) return std::nullopt;
    ClientCall call{std::move(*form), snapshot_clients()};
    call.client = authenticate(req, call.form, res, *call.clients);
    if (!call.client) return std::nullopt;
    return call;
}

// ------------------------------------------------------------ what a token says

Task<TokenFacts> Server::Impl::inspect(std::string token) {
    TokenFacts f;
    if (token.starts_with(kApiKeyPrefix)) {
        co_return co_await net::offload([this, token] { return check_api_key(token); });
    }
    if (token.starts_with(kOpaquePrefix) || token.starts_with(kRefreshPrefix)) {
        auto hash = security::sha256_hex(token);
        bool refresh = token.starts_with(kRefreshPrefix);
        auto row = co_await net::offload([this, hash, refresh]() -> std::optional<store::Row> {
            std::lock_guard lock(db_mutex);
            auto r =
                refresh
                    ? db->query_one(
                          "SELECT f.client_id, f.user_id AS subject, t.scope, t.issued_at, t.expires_at,"
                          " (t.used OR f.revoked) AS revoked, '' AS roles, t.family, '' AS jti"
                          " FROM refresh_tokens t"
                          " JOIN refresh_families f ON f.family = t.family WHERE t.token_hash = ?",
                          hash)
                    : db->query_one(
                          "SELECT client_id, subject, scope, issued_at, expires_at, revoked, roles, family,"
                          " jti FROM opaque_tokens WHERE token_hash = ?",
                          hash);
            if (!r) return std::nullopt;
            return std::move(*r);
        });
        if (!row || row->get<std::int64_t>("revoked") != 0 || row->get<std::int64_t>("expires_at") < now())
            co_return f;
        f.active = true;
        f.kind = refresh ? "refresh" : "opaque";
        f.client_id = row->get<std::string>("client_id");
        f.subject = row->get<std::string>("subject");
        f.scope = row->get<std::string>("scope");
        f.roles = split_scopes(row->get<std::string>("roles"));
        f.family = row->get<std::string>("family");
        f.jti = row->get<std::string>("jti");
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
    if (f.jti.empty() || revoked.contains(f.jti)) co_return f;
    f.active = true;
    f.kind = "jwt";
    f.client_id = str("client_id");
    f.subject = str("sub");
    f.scope = str("scope");
    if (const auto* roles = v.claims.if_contains("roles"); roles && roles->is_array()) {
        for (const auto& r : roles->as_array()) {
            if (r.is_string()) f.roles.emplace_back(r.as_string());
        }
    }
    auto number = [&](std::string_view k) {
        const auto* x = v.claims.if_contains(k);
        return x && x->is_number() ? x->to_number<std::int64_t>() : std::int64_t{0};
    };
    f.issued_at = number("iat");
    f.expires_at = number("exp");
    if (revoked.contains({}, f.client_id, f.issued_at)) f.active = false;  // its client was deleted since
    co_return f;
}

// ------------------------------------------------------------ the token endpoint

Task<void> Server::Impl::token(Request& req, Response& res) {
    auto call = client_call(req, res);
    if (!call) co_return;
    auto& form = call->form;
    const Client& client = *call->client;
    auto grant = form.find("grant_type");
    if (grant == form.end()) co_return oauth_error(res, 400, "invalid_request", "grant_type is required");
    if (grant->second == "authorization_code") co_return co_await grant_authorization_code(client, form, res);
    if (grant->second == "refresh_token") co_return co_await grant_refresh_token(client, form, res);
    if (grant->second != "client_credentials") {
        refused.labels({"unsupported_grant_type"}).inc();
        co_return oauth_error(res, 400, "unsupported_grant_type",
                              "grant_type " + grant->second + " is not supported");
    }
    if (!client.info.confidential) {
        refused.labels({"unauthorized_client"}).inc();
        co_return oauth_error(res, 400, "unauthorized_client",
                              "a public client cannot use client_credentials");
    }
    std::vector<std::string> scopes;
    for (const auto& s : client.info.scopes) {
        if (s != kAnyScope) scopes.push_back(s);
    }
    if (auto s = form.find("scope"); s != form.end()) {
        scopes = split_scopes(s->second);
        for (const auto& one : scopes) {
            if (one == kAnyScope || !has_scope(client.info.scopes, one)) {
                refused.labels({"invalid_scope"}).inc();
                co_return oauth_error(res, 400, "invalid_scope", "the client may not ask for scope " + one);
            }
        }
    }
    Grant g;
    g.grant_type = "client_credentials";
    g.subject = client.info.client_id;
    g.scope = join_scopes(scopes);
    co_await issue(client, std::move(g), res);
}

Task<void> Server::Impl::grant_authorization_code(const Client& client,
                                                  std::map<std::string, std::string>& form, Response& res) {
    auto code = form.find("code");
    auto redirect = form.find("redirect_uri");
    auto verifier = form.find("code_verifier");
    if (code == form.end() || redirect == form.end() || verifier == form.end())
        co_return oauth_error(res, 400, "invalid_request",
                              "code, redirect_uri and code_verifier are required");
    auto fail = [&](const GrantError& e) {
        refused.labels({e.error}).inc();
        oauth_error(res, 400, e.error, e.description);
    };
    if (!valid_code_verifier(verifier->second))
        co_return fail({"invalid_grant", "code_verifier must be 43 to 128 unreserved characters (RFC 7636)"});
    // Redeemed once, in one transaction: a second redemption is an attack on the first (a stolen
    // code), so it revokes what the first one got (RFC 6749 §4.1.2).
    auto hash = security::sha256_hex(code->second);
    struct Redeemed {
        std::optional<GrantError> error;
        store::Row row;
    };
    auto redeemed = co_await net::offload([this, hash]() -> Redeemed {
        std::lock_guard lock(db_mutex);
        auto tx = db->begin();
        if (!tx) throw std::runtime_error("cannot redeem a code: " + tx.error().message());
        auto r = db->query_one(
            "SELECT client_id, user_id, redirect_uri, scope, challenge, nonce, auth_time, expires_at, "
            "family, used"
            " FROM auth_codes WHERE code_hash = ?",
            hash);
        if (!r) return {GrantError{"invalid_grant", "unknown authorization code"}, {}};
        if (r->get<std::int64_t>("used") != 0) {
            revoke_family(r->get<std::string>("family"), "authorization code used twice");
            tx->commit();
            return {GrantError{"invalid_grant", "the authorization code was used before"}, {}};
        }
        if (r->get<std::int64_t>("expires_at") < now())
            return {GrantError{"invalid_grant", "the authorization code expired"}, {}};
        db->execute("UPDATE auth_codes SET used = 1 WHERE code_hash = ?", hash);
        db->execute(
            "INSERT INTO refresh_families(family, client_id, user_id, created_at) VALUES (?, ?, ?, ?)",
            r->get<std::string>("family"), r->get<std::string>("client_id"), r->get<std::string>("user_id"),
            now());
        if (auto c = tx->commit(); !c)
            throw std::runtime_error("cannot redeem a code: " + c.error().message());
        return {std::nullopt, std::move(*r)};
    });
    if (redeemed.error) co_return fail(*redeemed.error);
    const auto& row = redeemed.row;
    if (row.get<std::string>("client_id") != client.info.client_id)
        co_return fail({"invalid_grant", "the code was issued to another client"});
    if (row.get<std::string>("redirect_uri") != redirect->second)
        co_return fail({"invalid_grant", "redirect_uri differs from the authorization request's"});
    auto challenge = security::base64url_encode(security::sha256(verifier->second));
    if (!security::constant_time_equal(challenge, row.get<std::string>("challenge")))
        co_return fail({"invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)"});
    auto user_id = row.get<std::string>("user_id");
    auto user = co_await net::offload([this, user_id] { return find_user(user_id); });
    if (!user) co_return fail({"invalid_grant", "the user no longer exists"});
    Grant g;
    g.grant_type = "authorization_code";
    g.subject = user->user_id;
    g.user = true;
    g.roles = user->roles;
    g.scope = row.get<std::string>("scope");
    g.auth_time = row.get<std::int64_t>("auth_time");
    g.nonce = row.get<std::string>("nonce");
    g.family = row.get<std::string>("family");
    co_await issue(client, std::move(g), res);
}

Task<void> Server::Impl::grant_refresh_token(const Client& client, std::map<std::string, std::string>& form,
                                             Response& res) {
    auto presented = form.find("refresh_token");
    if (presented == form.end())
        co_return oauth_error(res, 400, "invalid_request", "refresh_token is required");
    auto fail = [&](const GrantError& e) {
        refused.labels({e.error}).inc();
        oauth_error(res, 400, e.error, e.description);
    };
    // Each refresh token is good once: using it rotates it. A used one presented again means two
    // parties hold it, and the server cannot tell the thief from the owner, so the whole family
    // (every refresh and access token descended from the login) is revoked (OAuth 2.1 §4.3.1).
    auto hash = security::sha256_hex(presented->second);
    auto client_id = client.info.client_id;
    struct Used {
        std::optional<GrantError> error;
        store::Row row;
    };
    auto used = co_await net::offload([this, hash, client_id]() -> Used {
        std::lock_guard lock(db_mutex);
        auto tx = db->begin();
        if (!tx) throw std::runtime_error("cannot use a refresh token: " + tx.error().message());
        auto r = db->query_one(
            "SELECT t.family, t.scope, t.auth_time, t.expires_at, t.used, f.client_id, f.user_id, f.revoked"
            " FROM refresh_tokens t JOIN refresh_families f ON f.family = t.family WHERE t.token_hash = ?",
            hash);
        if (!r || r->get<std::string>("client_id") != client_id)
            return {GrantError{"invalid_grant", "unknown refresh token"}, {}};
        if (r->get<std::int64_t>("revoked") != 0)
            return {GrantError{"invalid_grant", "the refresh token was revoked"}, {}};
        if (r->get<std::int64_t>("used") != 0) {
            revoke_family(r->get<std::string>("family"), "refresh token reused");
            tx->commit();
            return {GrantError{"invalid_grant",
                               "the refresh token was used before; every token of its login "
                               "is revoked"},
                    {}};
        }
        if (r->get<std::int64_t>("expires_at") < now())
            return {GrantError{"invalid_grant", "the refresh token expired"}, {}};
        db->execute("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?", hash);
        if (auto c = tx->commit(); !c)
            throw std::runtime_error("cannot use a refresh token: " + c.error().message());
        return {std::nullopt, std::move(*r)};
    });
    if (used.error) co_return fail(*used.error);
    const auto& row = used.row;
    auto user_id = row.get<std::string>("user_id");
    auto user = co_await net::offload([this, user_id] { return find_user(user_id); });
    if (!user) co_return fail({"invalid_grant", "the user no longer exists"});
    // The new tokens may narrow the scope, never widen it; what the user no longer holds is dropped.
    auto granted = split_scopes(row.get<std::string>("scope"));
    auto scopes = granted;
    if (auto s = form.find("scope"); s != form.end()) {
        scopes = split_scopes(s->second);
        for (const auto& one : scopes) {
            if (!has_scope(granted, one))
                co_return fail({"invalid_scope", "scope " + one + " was not granted to this refresh token"});
        }
    }
    std::string why;
    std::vector<std::string> kept;
    for (const auto& s : scopes) {
        if (user_scopes(client.info, *user, {s}, why)) kept.push_back(s);
    }
    Grant g;
    g.grant_type = "refresh_token";
    g.subject = user->user_id;
    g.user = true;
    g.roles = user->roles;
    g.scope = join_scopes(kept);
    g.auth_time = row.get<std::int64_t>("auth_time");
    g.family = row.get<std::string>("family");
    co_await issue(client, std::move(g), res);
}

Task<void> Server::Impl::issue(const Client& client, Grant grant, Response& res) {
    auto ttl = client.info.access_ttl.count() > 0 ? client.info.access_ttl : settings.access_ttl;
    auto issued_at = now();
    auto expires = issued_at + ttl.count();
    auto keys = snapshot_keys();
    const auto& client_id = client.info.client_id;
    std::string access, jti, refresh, opaque_hash;
    if (client.info.token_kind == "opaque") {
        access = std::string(kOpaquePrefix) + security::random_token();
        opaque_hash = security::sha256_hex(access);
        jti = security::random_token(16);
    } else {
        jti = security::random_token(16);
        json::object claims{
            {"iss", issuer},    {"sub", grant.subject}, {"aud", settings.audience}, {"client_id", client_id},
            {"iat", issued_at}, {"nbf", issued_at},     {"exp", expires},           {"jti", jti}};
        if (!grant.scope.empty()) claims["scope"] = grant.scope;
        if (!grant.roles.empty()) claims["roles"] = json::value_from(grant.roles);
        if (grant.user) claims["auth_time"] = grant.auth_time;
        access = security::sign_jwt(keys->signing, claims);
    }
    if (!grant.family.empty()) refresh = std::string(kRefreshPrefix) + security::random_token();
    auto refresh_expires = issued_at + settings.refresh_ttl.count();
    // A JWT for a client (no refresh family) touches no database.
    if (!opaque_hash.empty() || !grant.family.empty())
        co_await net::offload([&, this] {
            std::lock_guard lock(db_mutex);
            auto tx = db->begin();
            if (!tx) throw std::runtime_error("cannot store tokens: " + tx.error().message());
            if (!opaque_hash.empty()) {
                db->execute(
                    "INSERT INTO opaque_tokens(token_hash, client_id, subject, scope, issued_at, expires_at,"
                    " roles, family, jti) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    opaque_hash, client_id, grant.subject, grant.scope, issued_at, expires,
                    join_scopes(grant.roles), grant.family, jti);
            } else if (!grant.family.empty()) {
                db->execute("INSERT INTO family_tokens(family, jti, expires_at) VALUES (?, ?, ?)",
                            grant.family, jti, expires);
            }
            if (!refresh.empty()) {
                db->execute(
                    "INSERT INTO refresh_tokens(token_hash, family, scope, auth_time, issued_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    security::sha256_hex(refresh), grant.family, grant.scope, grant.auth_time, issued_at,
                    refresh_expires);
            }
            if (auto c = tx->commit(); !c)
                throw std::runtime_error("cannot store tokens: " + c.error().message());
        });
    json::object body{{"access_token", access}, {"token_type", "Bearer"}, {"expires_in", ttl.count()}};
    if (!grant.scope.empty()) body["scope"] = grant.scope;
    if (!refresh.empty()) body["refresh_token"] = refresh;
    if (grant.user && has_scope(split_scopes(grant.scope), "openid")) {
        // The ID token says who logged in, to the client (aud), not to resource servers.
        json::object id{{"iss", issuer},
                        {"sub", grant.subject},
                        {"aud", client_id},
                        {"azp", client_id},
                        {"iat", issued_at},
                        {"exp", expires},
                        {"auth_time", grant.auth_time}};
        if (!grant.nonce.empty()) id["nonce"] = grant.nonce;
        if (auto h = at_hash(keys->signing.algorithm(), access)) id["at_hash"] = *h;
        if (!grant.roles.empty()) id["roles"] = json::value_from(grant.roles);
        body["id_token"] = security::sign_jwt(keys->signing, id, "JWT");
    }
    issued.labels({grant.grant_type, client.info.token_kind}).inc();
    res.json(200, json::serialize(body));
    res.headers.set("Cache-Control", "no-store");
    res.headers.set("Pragma", "no-cache");
}

// ------------------------------------------------------------ introspection, revocation, userinfo

Task<void> Server::Impl::introspect(Request& req, Response& res) {
    auto call = client_call(req, res);
    if (!call) co_return;
    if (!call->client->info.confidential)
        co_return oauth_error(res, 401, "invalid_client", "only a confidential client may introspect tokens");
    auto t = call->form.find("token");
    if (t == call->form.end()) co_return oauth_error(res, 400, "invalid_request", "token is required");
    auto f = co_await inspect(t->second);
    json::object body{{"active", f.active}};
    if (f.active) {
        body["scope"] = f.scope;
        body["client_id"] = f.client_id;
        body["sub"] = f.subject;
        body["iss"] = issuer;
        body["aud"] = settings.audience;
        body["iat"] = f.issued_at;
        if (f.expires_at != 0) body["exp"] = f.expires_at;
        body["token_type"] = f.kind == "api_key"   ? "api_key"
                             : f.kind == "refresh" ? "refresh_token"
                                                   : "Bearer";
        if (!f.roles.empty()) body["roles"] = json::value_from(f.roles);
        if (!f.jti.empty()) body["jti"] = f.jti;  // what the revocation watch names
    }
    res.json(200, json::serialize(body));
    res.headers.set("Cache-Control", "no-store");
}

Task<void> Server::Impl::revoke(Request& req, Response& res) {
    auto call = client_call(req, res);
    if (!call) co_return;
    auto& form = call->form;
    const Client* client = call->client;
    auto t = form.find("token");
    if (t == form.end()) co_return oauth_error(res, 400, "invalid_request", "token is required");
    // RFC 7009 §2.2: an unknown or someone else's token also gets 200; only the owner revokes.
    auto f = co_await inspect(t->second);
    if (f.active && f.kind != "api_key" && f.client_id == client->info.client_id) {
        auto token = t->second;
        co_await net::offload([this, token, f] {
            std::lock_guard lock(db_mutex);
            if (f.kind == "refresh") {
                // Revoking a refresh token ends its login: the family and its access tokens.
                revoke_family(f.family, "refresh token revoked");
            } else if (f.kind == "opaque") {
                auto hash = security::sha256_hex(token);
                revoke_opaque("token_hash", hash);
                db->execute("UPDATE opaque_tokens SET revoked = 1 WHERE token_hash = ?", hash);
            } else {
                revoke_jti(f.jti, f.expires_at);
            }
        });
        telemetry::info("token revoked", {{"client_id", client->info.client_id}, {"kind", f.kind}});
    }
    res.status = 200;
    res.headers.set("Cache-Control", "no-store");
}

Task<void> Server::Impl::userinfo(Request& req, Response& res) {
    auto auth = req.headers.get("Authorization").value_or("");
    if (auth.size() < 8 || !net::iequals(auth.substr(0, 7), "Bearer ")) {
        bearer_error(res, 401, "", "userinfo needs a Bearer access token", req.path(), "");
        co_return;
    }
    auto f = co_await inspect(std::string(auth.substr(7)));
    if (!f.active || (f.kind != "jwt" && f.kind != "opaque")) {
        bearer_error(res, 401, "invalid_token", "the access token is not active", req.path(), "");
        co_return;
    }
    if (!has_scope(split_scopes(f.scope), "openid")) {
        bearer_error(res, 403, "insufficient_scope", "userinfo needs scope openid", req.path(), "openid");
        co_return;
    }
    auto subject = f.subject;
    auto user = co_await net::offload([this, subject] { return find_user(subject); });
    if (!user) {
        bearer_error(res, 401, "invalid_token", "the token's subject is not a user", req.path(), "");
        co_return;
    }
    json::object body{{"sub", user->user_id}};
    if (has_scope(split_scopes(f.scope), "profile")) body["preferred_username"] = user->username;
    body["roles"] = json::value_from(user->roles);
    res.json(200, json::serialize(body));
    res.headers.set("Cache-Control", "no-store");
}

// GET /revocations?since=N[&wait=30s]: the JWT revocations after N that have not expired, at
// once if there are any, else when one comes or `wait` (at most 60 s) ends.
Task<void> Server::Impl::revocations(Request& req, Response& res) {
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
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        co_await revocations_changed.wait(left, seen);
    }
    auto log = snapshot_log();
    auto t = now();
    json::array list;
    std::int64_t index = since;
    for (const auto& r : *log) {
        index = std::max(index, r.seq);
        if (r.seq <= since || r.expires_at < t) continue;
        json::object item{{"jti", r.jti}, {"exp", r.expires_at}};
        if (!r.client_id.empty()) {
            item["client_id"] = r.client_id;
            item["issued_before"] = r.issued_before;
        }
        list.push_back(std::move(item));
    }
    res.json(200, json::serialize(json::object{{"index", index}, {"revoked", std::move(list)}}));
    res.headers.set("Cache-Control", "no-store");
}

}  // namespace plexus::identity
