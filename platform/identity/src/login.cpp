#include "plexus/identity/login.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include "plexus/core/files.hpp"
#include "plexus/identity/cli_http.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/server.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/security/secrets.hpp"

extern char** environ;

namespace plexus::identity {

namespace json = boost::json;

namespace {

std::string str(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string cache_path(const LoginOptions& o) {
    return o.cache_file.empty() ? credentials_file() : o.cache_file;
}

json::object read_cache(const std::string& path) {
    return core::read_json_object(path).value_or(json::object());
}

// Writes the cache (0600, in a 0700 directory), atomically.
bool write_cache(const std::string& path, const json::object& cache, std::string& why) {
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    std::filesystem::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);
    try {
        core::write_file_atomically(path, json::serialize(cache) + "\n", 0600);
    } catch (const std::runtime_error& e) {
        why = e.what();
        return false;
    }
    return true;
}

// The discovery document of `issuer`, checked to be that issuer's (OIDC Discovery §4.3).
std::optional<json::object> discover(CliHttp& http, const ServerUrl& url, const std::string& issuer,
                                     std::string& why) {
    auto r = http.send(url, "GET", "/.well-known/openid-configuration", {}, {}, why);
    if (!r) return std::nullopt;
    boost::system::error_code ec;
    auto doc = json::parse(r->body, ec);
    if (r->status != 200 || ec || !doc.is_object()) {
        why = issuer + " has no OpenID discovery document (" + std::to_string(r->status) + ")";
        return std::nullopt;
    }
    if (str(doc.as_object(), "issuer") != issuer) {
        why = "the discovery document names issuer '" + str(doc.as_object(), "issuer") + "', not " + issuer;
        return std::nullopt;
    }
    return std::move(doc.as_object());
}

// The path of an endpoint URL of the issuer (below its prefix), or nullopt if it is elsewhere.
std::optional<std::string> endpoint_path(const std::string& issuer, const std::string& endpoint) {
    if (!endpoint.starts_with(issuer + "/")) return std::nullopt;
    return endpoint.substr(issuer.size());
}

// The token answer's lifetime in seconds; 0 (refresh at the next use) when it says none.
std::int64_t expires_in(const json::object& tokens) {
    const auto* v = tokens.if_contains("expires_in");
    return v && v->is_int64() ? v->as_int64() : 0;
}

std::string normalized(std::string issuer) {
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    return issuer;
}

// Stores a token answer as the cache entry of `issuer`.
bool remember(const LoginOptions& o, const std::string& issuer, const json::object& tokens,
              const json::object& discovery, const std::string& username, std::string& why) {
    auto path = cache_path(o);
    auto cache = read_cache(path);
    json::object entry{{"client_id", o.client_id},
                       {"access_token", str(tokens, "access_token")},
                       {"refresh_token", str(tokens, "refresh_token")},
                       {"scope", str(tokens, "scope")},
                       {"expires_at", unix_now() + expires_in(tokens)},
                       {"token_endpoint", str(discovery, "token_endpoint")},
                       {"revocation_endpoint", str(discovery, "revocation_endpoint")},
                       {"username", username}};
    if (!cache["issuers"].is_object()) cache["issuers"] = json::object();
    cache["issuers"].as_object()[issuer] = std::move(entry);
    return write_cache(path, cache, why);
}

// Opens `url` in the user's browser when there is a display; failures are silent (the URL was printed).
void open_browser(const std::string& url) {
    if (!std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY")) return;
    pid_t pid;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    char* argv[] = {const_cast<char*>("xdg-open"), const_cast<char*>(url.c_str()), nullptr};
    if (posix_spawnp(&pid, "xdg-open", &actions, nullptr, argv, environ) == 0) {
        // Reaped by a detached thread so no zombie stays.
        std::thread([pid] { ::waitpid(pid, nullptr, 0); }).detach();
    }
    posix_spawn_file_actions_destroy(&actions);
}

// What the browser brought back to the loopback listener.
struct Callback {
    std::string code, error, iss;
};

}  // namespace

std::string credentials_file() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        return std::string(xdg) + "/plexus/credentials.json";
    const char* home = std::getenv("HOME");
    return std::string(home && *home ? home : ".") + "/.config/plexus/credentials.json";
}

int login(const LoginOptions& o, std::ostream& out, std::ostream& err) {
    auto fail = [&](const std::string& why) {
        err << "plexus login: " << why << "\n";
        return 1;
    };
    auto issuer = normalized(o.issuer);
    auto url = ServerUrl::parse(issuer, o.ca_file);
    if (!url) return fail("the issuer must be http[s]://host:port[/path], got '" + o.issuer + "'");
    CliHttp http;
    std::string why;
    auto discovery = discover(http, *url, issuer, why);
    if (!discovery) return fail(why);
    auto authorize = str(*discovery, "authorization_endpoint");
    auto token_path = endpoint_path(issuer, str(*discovery, "token_endpoint"));
    if (authorize.empty() || !token_path) return fail("the discovery document has no usable endpoints");

    // The one-shot listener the browser comes back to.
    auto verifier = security::random_token(48);
    auto state = security::random_token(16);
    auto nonce = security::random_token(16);
    auto result = std::make_shared<std::promise<Callback>>();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    net::Router router;
    router.add("GET", "/callback",
               [result, answered, state](net::Request& req, net::Response& res) -> net::Task<void> {
                   if (req.query_param("state").value_or("") != state) {
                       res.text(400,
                                "This sign-in answer is not for the waiting plexus login (state differs).\n");
                       co_return;
                   }
                   Callback cb{req.query_param("code").value_or(""), req.query_param("error").value_or(""),
                               req.query_param("iss").value_or("")};
                   if (auto d = req.query_param("error_description")) cb.error += ": " + *d;
                   bool ok = cb.error.empty();
                   if (!answered->exchange(true)) result->set_value(std::move(cb));
                   res.status = ok ? 200 : 400;
                   res.body = ok ? "<!doctype html><title>Signed in</title><p>Signed in. You can close this "
                                   "tab and go back "
                                   "to the terminal.</p>\n"
                                 : "<!doctype html><title>Not signed in</title><p>Sign-in failed; the "
                                   "terminal says why.</p>\n";
                   res.headers.set("Content-Type", "text/html; charset=utf-8");
                   co_return;
               });
    net::ServerSettings ss;
    ss.address = "127.0.0.1";
    ss.port = 0;
    net::Server listener(http.runtime(), ss, router.handler(), router.body_limit_fn());
    try {
        listener.start();
    } catch (const std::exception& e) {
        return fail(std::string("cannot listen on 127.0.0.1: ") + e.what());
    }
    auto redirect = "http://127.0.0.1:" + std::to_string(listener.port()) + "/callback";
    auto link = authorize + (authorize.find('?') == std::string::npos ? "?" : "&") +
                "response_type=code&client_id=" + net::percent_encode(o.client_id) +
                "&redirect_uri=" + net::percent_encode(redirect) + "&state=" + state + "&nonce=" + nonce +
                "&code_challenge=" + security::base64url_encode(security::sha256(verifier)) +
                "&code_challenge_method=S256";
    if (!o.scope.empty()) link += "&scope=" + net::percent_encode(o.scope);
    err << "Open this URL in a browser to sign in:\n  " << link << "\n" << std::flush;
    if (o.open_browser) open_browser(link);

    auto future = result->get_future();
    bool came = future.wait_for(o.timeout) == std::future_status::ready;
    auto stopped = std::make_shared<std::promise<void>>();
    listener.shutdown([stopped] { stopped->set_value(); });
    stopped->get_future().wait_for(std::chrono::seconds(5));
    if (!came) return fail("no answer from the browser within " + std::to_string(o.timeout.count()) + " s");
    auto cb = future.get();
    if (!cb.error.empty()) return fail("the identity server refused: " + cb.error);
    if (!cb.iss.empty() && cb.iss != issuer)
        return fail("the answer came from issuer " + cb.iss + ", not " + issuer);

    auto tokens = http.post_form(*url, *token_path,
                                 {{"grant_type", "authorization_code"},
                                  {"code", cb.code},
                                  {"redirect_uri", redirect},
                                  {"code_verifier", verifier},
                                  {"client_id", o.client_id}},
                                 why);
    if (!tokens) return fail("the token endpoint refused the code: " + why);
    // The ID token says who logged in; it is checked as OIDC asks (signature, issuer, audience, nonce).
    std::string username, subject;
    if (auto id_token = str(*tokens, "id_token"); !id_token.empty()) {
        auto jwks_path = endpoint_path(issuer, str(*discovery, "jwks_uri"));
        auto jwks = jwks_path ? http.send(*url, "GET", *jwks_path, {}, {}, why) : std::nullopt;
        auto keys = jwks ? security::KeySet::from_json(jwks->body) : std::nullopt;
        if (!keys) return fail("cannot read the issuer's keys to check the ID token");
        security::JwtVerifier verifier_of_id({.issuer = issuer, .audiences = {o.client_id}, .typ = "JWT"});
        auto id = verifier_of_id.verify(id_token, *keys);
        if (!id) return fail("the ID token does not verify: " + id.detail);
        if (str(id.claims, "nonce") != nonce) return fail("the ID token's nonce differs");
        subject = str(id.claims, "sub");
    }
    if (auto access = str(*tokens, "access_token"); !access.empty()) {
        auto info_path = endpoint_path(issuer, str(*discovery, "userinfo_endpoint"));
        if (info_path) {
            auto r = http.send(*url, "GET", *info_path, {}, {{"Authorization", "Bearer " + access}}, why);
            boost::system::error_code ec;
            auto doc = r && r->status == 200 ? json::parse(r->body, ec) : json::value();
            if (!ec && doc.is_object()) username = str(doc.as_object(), "preferred_username");
        }
    }
    if (username.empty()) username = subject;
    if (!remember(o, issuer, *tokens, *discovery, username, why)) return fail(why);
    out << "Logged in to " << issuer << " as " << username << " (scope: " << str(*tokens, "scope") << ").\n"
        << "Tokens cached in " << cache_path(o) << "; print an access token with: plexus token\n";
    return 0;
}

std::optional<std::string> cached_access_token(const LoginOptions& o, std::string& why) {
    auto issuer = normalized(o.issuer);
    auto cache = read_cache(cache_path(o));
    const auto* issuers = cache.if_contains("issuers");
    const auto* entry = issuers && issuers->is_object() ? issuers->as_object().if_contains(issuer) : nullptr;
    if (!entry || !entry->is_object()) {
        why = "not logged in to " + issuer + "; run: plexus login --issuer " + issuer;
        return std::nullopt;
    }
    const auto& e = entry->as_object();
    const auto* expires = e.if_contains("expires_at");
    if (expires && expires->is_int64() && expires->as_int64() > unix_now() + 30)
        return str(e, "access_token");
    // Refresh: the token endpoint rotates the refresh token, so the new one is cached at once.
    auto url = ServerUrl::parse(issuer, o.ca_file);
    auto token_path = url ? endpoint_path(issuer, str(e, "token_endpoint")) : std::nullopt;
    if (!token_path) {
        why = "the cached login for " + issuer + " is unusable; run plexus login";
        return std::nullopt;
    }
    CliHttp http;
    auto tokens = http.post_form(*url, *token_path,
                                 {{"grant_type", "refresh_token"},
                                  {"refresh_token", str(e, "refresh_token")},
                                  {"client_id", str(e, "client_id")}},
                                 why);
    if (!tokens) {
        why = "the login to " + issuer + " ended (" + why + "); run plexus login";
        return std::nullopt;
    }
    json::object discovery{{"token_endpoint", str(e, "token_endpoint")},
                           {"revocation_endpoint", str(e, "revocation_endpoint")}};
    auto options = o;
    options.client_id = str(e, "client_id");
    if (!remember(options, issuer, *tokens, discovery, str(e, "username"), why)) return std::nullopt;
    return str(*tokens, "access_token");
}

int logout(const LoginOptions& o, std::ostream& out, std::ostream& err) {
    auto issuer = normalized(o.issuer);
    auto path = cache_path(o);
    auto cache = read_cache(path);
    auto* issuers = cache.if_contains("issuers");
    auto* entry = issuers && issuers->is_object() ? issuers->as_object().if_contains(issuer) : nullptr;
    if (!entry || !entry->is_object()) {
        out << "Not logged in to " << issuer << ".\n";
        return 0;
    }
    const auto& e = entry->as_object();
    auto url = ServerUrl::parse(issuer, o.ca_file);
    auto revoke_path = url ? endpoint_path(issuer, str(e, "revocation_endpoint")) : std::nullopt;
    std::string why;
    if (revoke_path) {
        CliHttp http;
        auto r = http.send(*url, "POST", *revoke_path,
                           "token=" + net::percent_encode(str(e, "refresh_token")) +
                               "&client_id=" + net::percent_encode(str(e, "client_id")),
                           {{"Content-Type", "application/x-www-form-urlencoded"}}, why);
        if (!r || r->status != 200)
            err << "plexus logout: could not revoke the tokens (" << (r ? std::to_string(r->status) : why)
                << "); forgetting them anyway\n";
    }
    issuers->as_object().erase(issuer);
    if (!write_cache(path, cache, why)) {
        err << "plexus logout: " << why << "\n";
        return 1;
    }
    out << "Logged out of " << issuer << ".\n";
    return 0;
}

}  // namespace plexus::identity
