#include "plexus/auth/bearer.hpp"

namespace plexus::auth {

namespace {
constexpr std::string_view kRealm = R"(Bearer realm="plexus")";
}

std::string_view presented(const net::Headers& headers, TokenKinds kinds) {
    auto auth = headers.get("Authorization").value_or("");
    if (auth.size() > 7 && net::iequals(auth.substr(0, 7), "Bearer ")) {
        auto token = auth.substr(7);
        while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
        return token;
    }
    if (kinds & kApiKey) return headers.get("X-API-Key").value_or("");
    return {};
}

std::optional<std::string> lacking_scope(const serving::Principal& p,
                                         const std::vector<std::string>& scopes) {
    for (const auto& s : scopes) {
        if (!p.has_scope(s)) return "the token lacks scope " + s;
    }
    return std::nullopt;
}

void set_identity_headers(net::Headers& headers, const serving::Principal& p) {
    // Whatever the caller sent under these names goes: an empty one is removed, not kept.
    auto put = [&](std::string_view name, const std::string& value) {
        if (value.empty())
            headers.remove(name);
        else
            headers.set(name, value);
    };
    put("X-Plexus-Subject", p.subject);
    put("X-Plexus-Client", p.client_id);
    put("X-Plexus-Scopes", p.scope);
    put("X-Plexus-Roles", p.roles);
}

void answer_unauthorized(net::Response& res, const Check* check, TokenKinds kinds, std::string_view path) {
    if (!check) {
        res.problem(401, "Unauthorized",
                    kinds == kApiKey ? "this route needs an API key (X-API-Key)"
                                     : "this route needs a Bearer access token",
                    path);
        res.headers.set("WWW-Authenticate", kRealm);
    } else if (check->status == Check::unavailable) {
        res.problem(503, "Service Unavailable", "cannot check the credential now: " + check->detail, path);
        res.headers.set("Retry-After", "1");
    } else {
        res.problem(401, "Unauthorized", "invalid access token: " + check->detail, path);
        res.headers.set("WWW-Authenticate", std::string(kRealm) + R"(, error="invalid_token")");
    }
}

void answer_forbidden(net::Response& res, const std::string& why, const std::vector<std::string>& scopes,
                      std::string_view path) {
    res.problem(403, "Forbidden", why, path);
    std::string challenge = std::string(kRealm) + R"(, error="insufficient_scope")";
    if (!scopes.empty()) {
        std::string needed;
        for (const auto& s : scopes) needed += (needed.empty() ? "" : " ") + s;
        challenge += R"(, scope=")" + needed + "\"";
    }
    res.headers.set("WWW-Authenticate", challenge);
}

}  // namespace plexus::auth
