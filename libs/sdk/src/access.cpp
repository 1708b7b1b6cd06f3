#include "access.hpp"

#include <algorithm>

#include "plexus/auth/bearer.hpp"
#include "plexus/auth/token_source.hpp"
#include "plexus/core/clock.hpp"

namespace plexus::detail {

RouteGuards resolve_guards(const std::vector<GuardedRoute>& routes, const AccessFlags& flags) {
    RouteGuards g;
    g.kinds.assign(routes.size(), 0);
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const auto& r = routes[i];
        if (!r.access.guarded) continue;
        auto where = "route " + r.method + " " + r.pattern + ": ";
        if (flags.identity.empty() || flags.issuer.empty()) {
            g.error =
                where + "requires a credential: set --identity and --issuer (PLEXUS_IDENTITY, PLEXUS_ISSUER)";
            return g;
        }
        g.kinds[i] =
            r.access.accept.empty() ? auth::kJwt | (flags.credentials.empty() ? 0 : auth::kOpaque) : 0;
        for (const auto& k : r.access.accept) {
            auto kind = auth::kind_named(k);
            if (!kind)
                g.error = where + "'" + k + "' is not jwt, opaque or api_key";
            else if (kind != auth::kJwt && flags.credentials.empty())
                g.error = where + k + " needs --credentials (PLEXUS_CREDENTIALS) to introspect with";
            if (!g.error.empty()) return g;
            g.kinds[i] |= kind;
        }
    }
    if (std::none_of(g.kinds.begin(), g.kinds.end(), [](auto k) { return k != 0; })) return g;
    auth::ProviderSettings provider{
        .issuer = flags.issuer,
        .jwks_uri = flags.identity + "/jwks",
        .audience = flags.audience,
        .revocations_uri = flags.identity + "/revocations",
        .introspection_uri = flags.credentials.empty() ? "" : flags.identity + "/introspect",
        .credentials_file = flags.credentials};
    g.verifier = std::make_shared<auth::Verifier>(provider, 10'000, core::Clock::real());
    return g;
}

net::Handler guarded(std::shared_ptr<auth::Verifier> verifier, auth::TokenKinds kinds,
                     std::vector<std::string> scopes, net::Handler inner) {
    return [verifier = std::move(verifier), kinds, scopes = std::move(scopes), inner = std::move(inner)](
               Request& req, Response& res) -> Task<void> {
        auto credential = auth::presented(req.headers, kinds);
        if (credential.empty()) co_return auth::answer_unauthorized(res, nullptr, kinds, req.path());
        auto c = verifier->check(credential, kinds);
        if (c.status == auth::Check::pending)
            c = co_await verifier->check_async(std::string(credential), kinds);
        if (c.status != auth::Check::ok) co_return auth::answer_unauthorized(res, &c, kinds, req.path());
        const auto& p = *c.token->principal;
        if (auto why = auth::lacking_scope(p, scopes))
            co_return auth::answer_forbidden(res, *why, scopes, req.path());
        auth::set_identity_headers(req.headers, p);
        co_await inner(req, res);
    };
}

std::string ClientCredential::activate(const AccessFlags& flags) {
    if (kind != Kind::service || token) return {};
    if (flags.identity.empty() || flags.credentials.empty())
        return "a service token needs --identity and --credentials (PLEXUS_IDENTITY, PLEXUS_CREDENTIALS)";
    token = std::make_shared<auth::TokenSource>(flags.identity + "/token", flags.credentials, scopes);
    return {};
}

Task<ClientCredential::Sent> ClientCredential::attach(const Request& incoming, Request& out) const {
    Sent sent;
    if (kind == Kind::relay && !out.headers.get("Authorization")) {
        if (auto a = incoming.headers.get("Authorization")) out.headers.set("Authorization", *a);
        if (auto k = incoming.headers.get("X-API-Key")) out.headers.set("X-API-Key", *k);
    } else if (kind == Kind::service) {
        auto t = co_await token->token();
        sent.error = std::move(t.error);
        sent.token = std::move(t.token);
        if (sent.error.empty()) out.headers.set("Authorization", "Bearer " + sent.token);
    }
    co_return sent;
}

void ClientCredential::rejected(const Sent& sent) const {
    if (!sent.token.empty()) token->forget(sent.token);
}

}  // namespace plexus::detail
