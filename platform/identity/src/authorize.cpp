// The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636, S256 only): GET shows a plain
// server-rendered login page, POST checks the password and sends the browser back to the
// client with a one-time code. Errors about the client or its redirect_uri are shown on the page
// (never redirected to an unverified place, §4.1.2.1); the rest go back to the client.

#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"
#include "server_impl.hpp"

namespace plexus::identity {

namespace {

std::string html_escape(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (char c : in) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

// Whether `presented` is `registered`; a loopback registration without a port matches any port
// (RFC 8252 §7.3: the native app listens on whatever port it got).
bool redirect_matches(std::string_view registered, std::string_view presented) {
    if (registered == presented) return true;
    for (std::string_view loopback : {"http://127.0.0.1", "http://[::1]"}) {
        if (!registered.starts_with(loopback) || !presented.starts_with(loopback)) continue;
        auto rest = registered.substr(loopback.size());
        auto given = presented.substr(loopback.size());
        if (rest.starts_with(':') || !given.starts_with(':')) return false;
        auto digits = given.find_first_not_of("0123456789", 1);
        if (digits == 1) return false;
        return given.substr(digits == std::string_view::npos ? given.size() : digits) == rest;
    }
    return false;
}

// RFC 7636 §4.2: S256 challenge = BASE64URL(SHA256(verifier)), 43 characters.
bool valid_challenge(std::string_view c) {
    return c.size() == 43 && std::all_of(c.begin(), c.end(), [](char ch) {
               return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
           });
}

constexpr std::string_view kPageStyle =
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}"
    "main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;"
    "box-shadow:0 1px 4px #0002}h1{margin-top:0;font-size:1.4rem}label{display:block;margin:1rem 0}"
    "input{display:block;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.3rem}"
    "button{width:100%;padding:.6rem;background:#2456d3;color:#fff;border:0;border-radius:4px}"
    ".error{color:#a40000}";

void page(Response& res, int status, std::string_view title, const std::string& content) {
    res.status = status;
    res.body =
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>" +
        html_escape(title) + " · Plexus</title><style>" + std::string(kPageStyle) +
        "</style></head><body><main>" + content + "</main></body></html>\n";
    res.headers.set("Content-Type", "text/html; charset=utf-8");
    res.headers.set("Cache-Control", "no-store");
    res.headers.set("Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
    res.headers.set("X-Frame-Options", "DENY");
    res.headers.set("X-Content-Type-Options", "nosniff");
    res.headers.set("Referrer-Policy", "no-referrer");
}

void error_page(Response& res, int status, const std::string& why) {
    page(res, status, "Cannot sign in",
         "<h1>Cannot sign in</h1><p class=\"error\">" + html_escape(why) +
             "</p><p>The application that sent you here is misconfigured.</p>");
}

// The parameters of the authorization request that the login form carries along.
constexpr std::string_view kCarried[] = {"response_type", "client_id",      "redirect_uri",          "scope",
                                         "state",         "code_challenge", "code_challenge_method", "nonce"};

void login_page(Response& res, int status, const ClientInfo& client,
                const std::map<std::string, std::string>& params, std::string_view username,
                std::string_view error) {
    std::string hidden;
    for (auto name : kCarried) {
        auto it = params.find(std::string(name));
        if (it == params.end()) continue;
        hidden += "<input type=\"hidden\" name=\"" + std::string(name) + "\" value=\"" +
                  html_escape(it->second) + "\">";
    }
    std::string content =
        "<h1>Sign in</h1><p>to continue to <strong>" + html_escape(client.name) + "</strong></p>";
    if (!error.empty()) content += "<p class=\"error\" role=\"alert\">" + html_escape(error) + "</p>";
    content +=
        "<form method=\"post\" action=\"authorize\">" + hidden +
        "<label>Username<input name=\"username\" autocomplete=\"username\" required autofocus value=\"" +
        html_escape(username) +
        "\"></label><label>Password<input type=\"password\" name=\"password\" "
        "autocomplete=\"current-password\" required></label><button type=\"submit\">Sign in</button></form>";
    page(res, status, "Sign in", content);
}

std::string with_query(std::string_view uri, const std::vector<std::pair<std::string, std::string>>& params) {
    std::string out(uri);
    char sep = out.find('?') == std::string::npos ? '?' : '&';
    for (const auto& [k, v] : params) {
        out += sep + k + "=" + net::percent_encode(v);
        sep = '&';
    }
    return out;
}

}  // namespace

std::string Server::Impl::client_address(const Request& req) const {
    const auto& proxies = settings.trusted_proxies;
    if (std::find(proxies.begin(), proxies.end(), req.remote_address) == proxies.end())
        return req.remote_address;
    auto forwarded = req.headers.get("X-Forwarded-For");
    if (!forwarded || forwarded->empty()) return req.remote_address;
    // The last entry is the one the trusted proxy added: the address it saw.
    auto last =
        forwarded->substr(forwarded->rfind(',') == std::string_view::npos ? 0 : forwarded->rfind(',') + 1);
    while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
    while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
    return last.empty() ? req.remote_address : std::string(last);
}

Task<void> Server::Impl::authorize(Request& req, Response& res) {
    // The parameters: the query of a GET, the form of the login POST; each at most once.
    std::map<std::string, std::string> params;
    auto fields = req.method == "POST" ? net::parse_form(req.body) : net::parse_form(req.query());
    if (req.method == "POST") {
        auto type = req.headers.get("Content-Type").value_or("");
        if (type.substr(0, type.find(';')) != "application/x-www-form-urlencoded")
            co_return error_page(res, 415,
                                 "the login form must be sent as application/x-www-form-urlencoded");
    }
    if (!fields) co_return error_page(res, 400, "the request has a malformed escape");
    for (auto& [k, v] : *fields) {
        if (!params.emplace(k, v).second)
            co_return error_page(res, 400, "parameter " + k + " appears more than once");
    }
    auto param = [&](std::string_view name) {
        auto it = params.find(std::string(name));
        return it == params.end() ? std::string() : it->second;
    };
    auto clients = snapshot_clients();
    auto c = clients->find(param("client_id"));
    if (c == clients->end()) co_return error_page(res, 400, "unknown client_id");
    const auto& client = c->second.info;
    auto redirect_uri = param("redirect_uri");
    bool registered = std::any_of(client.redirect_uris.begin(), client.redirect_uris.end(),
                                  [&](const std::string& r) { return redirect_matches(r, redirect_uri); });
    if (redirect_uri.empty() || !registered)
        co_return error_page(res, 400, "redirect_uri is not one the client registered");

    // From here on, errors go back to the client, with its state (RFC 6749 §4.1.2.1).
    auto state = param("state");
    auto back = [&](std::vector<std::pair<std::string, std::string>> query) {
        if (!state.empty()) query.emplace_back("state", state);
        query.emplace_back("iss", issuer);  // RFC 9207: which server answered
        res.status = 303;
        res.headers.set("Location", with_query(redirect_uri, query));
        res.headers.set("Cache-Control", "no-store");
    };
    auto refuse = [&](std::string error, std::string description) {
        refused.labels({error}).inc();
        back({{"error", std::move(error)}, {"error_description", std::move(description)}});
    };
    if (param("response_type") != "code")
        co_return refuse("unsupported_response_type", "response_type must be code");
    if (param("code_challenge_method") != "S256" || !valid_challenge(param("code_challenge")))
        co_return refuse("invalid_request",
                         "PKCE is required: code_challenge (43 characters) with method S256");
    auto requested = split_scopes(param("scope"));
    for (const auto& s : requested) {
        if (!valid_scope(s) || s == kAnyScope)
            co_return refuse("invalid_scope", "scope " + s + " is malformed");
    }
    if (param("nonce").size() > 512 || state.size() > 2048)
        co_return refuse("invalid_request", "state or nonce is too long");
    if (req.method != "POST") co_return login_page(res, 200, client, params, {}, {});

    auto username = param("username");
    auto password = param("password");
    auto address = client_address(req);
    if (auto wait = throttle.wait(username, address); wait.count() > 0) {
        logins.labels({"throttled"}).inc();
        login_page(res, 429, client, params, username,
                   "Too many failed attempts. Try again in " + std::to_string(wait.count()) + " s.");
        res.headers.set("Retry-After", std::to_string(wait.count()));
        co_return;
    }
    auto user =
        co_await net::offload([this, username, password] { return check_password(username, password); });
    if (!user) {
        throttle.failed(username, address);
        logins.labels({"failure"}).inc();
        telemetry::warn("login failed", {{"username", username}, {"address", address}});
        co_return login_page(res, 401, client, params, username, "Wrong username or password.");
    }
    throttle.succeeded(username);
    logins.labels({"success"}).inc();
    std::string why;
    auto scopes = user_scopes(client, *user, requested, why);
    if (!scopes) co_return refuse("invalid_scope", why);

    auto code = security::random_token();
    auto family = security::random_token(16);
    auto row = std::make_tuple(security::sha256_hex(code), client.client_id, user->user_id, redirect_uri,
                               join_scopes(*scopes), param("code_challenge"), param("nonce"), now(),
                               now() + settings.code_ttl.count(), family);
    co_await net::offload([this, &row] {
        std::lock_guard lock(db_mutex);
        auto& [hash, client_id, user_id, uri, scope, challenge, nonce, auth_time, expires, fam] = row;
        auto done = db->execute(
            "INSERT INTO auth_codes(code_hash, client_id, user_id, redirect_uri, scope, challenge, nonce,"
            " auth_time, expires_at, family) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            hash, client_id, user_id, uri, scope, challenge, nonce, auth_time, expires, fam);
        if (!done) throw std::runtime_error("cannot store an authorization code: " + done.error().message());
        // Codes are good for a minute; older ones are only kept to detect a replay, for a day.
        db->execute("DELETE FROM auth_codes WHERE expires_at < ?", now() - 86400);
    });
    telemetry::info("login",
                    {{"user_id", user->user_id}, {"client_id", client.client_id}, {"address", address}});
    back({{"code", code}});
}

}  // namespace plexus::identity
