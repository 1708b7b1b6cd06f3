#include "auth/auth.hpp"

#include <atomic>
#include <boost/json.hpp>
#include <stdexcept>

#include "auth/jwks_cache.hpp"
#include "auth/revoked_tokens.hpp"
#include "auth/token_cache.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::gateway::filters {

namespace {

constexpr std::string_view kRealm = R"(Bearer realm="plexus")";
constexpr auto kMinRefetch = std::chrono::seconds(10);

std::optional<std::string> settings_problem(const AuthConfig& c) {
    for (const auto& s : c.scopes) {
        if (s.empty() || s.find(' ') != std::string::npos) return "scopes: '" + s + "' is not a scope";
    }
    for (const auto& r : c.roles) {
        if (r.empty() || r.find(' ') != std::string::npos) return "roles: '" + r + "' is not a role";
    }
    if (c.cache_size < 1 || c.cache_size > 10'000'000) return "cache_size: from 1 to 10000000";
    return std::nullopt;
}

// A claim predicate holds: the claim equals `want`, or is a list that holds it.
bool claim_holds(const boost::json::object& claims, const std::string& name, const std::string& want) {
    const auto* v = claims.if_contains(name);
    if (!v) return false;
    if (v->is_string()) return v->as_string() == want;
    if (v->is_array()) {
        for (const auto& item : v->as_array()) {
            if (item.is_string() && item.as_string() == want) return true;
        }
    }
    return false;
}

std::string claim_string(const boost::json::object& claims, std::string_view name) {
    const auto* v = claims.if_contains(name);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// What is shared by every route checking tokens of one provider: its keys, verified tokens and
// revoked token ids.
struct ProviderState : std::enable_shared_from_this<ProviderState> {
    JwksCache jwks;
    TokenCache tokens;
    RevokedTokens revoked;
    security::JwtVerifier verifier;
    std::atomic<bool> watching{false};
    ProviderState(const AuthProvider& p, std::size_t cache_size, core::Clock& clock)
        : jwks(p.jwks_uri, kMinRefetch, clock),
          tokens(cache_size),
          verifier(
              security::VerifyPolicy{.issuer = p.issuer,
                                     .audiences = p.audience.empty() ? std::vector<std::string>{}
                                                                     : std::vector<std::string>{p.audience},
                                     .leeway = p.leeway},
              clock) {}

    // Starts the revocation watch once, on `ex`; it ends when the state is dropped.
    void watch(const std::string& uri, net::Executor ex) {
        if (uri.empty() || watching.exchange(true)) return;
        std::weak_ptr<ProviderState> weak = shared_from_this();
        net::spawn(ex,
                   RevokedTokens::watch(uri,
                                        [weak]() -> std::shared_ptr<RevokedTokens> {
                                            auto s = weak.lock();
                                            return s ? std::shared_ptr<RevokedTokens>(s, &s->revoked)
                                                     : nullptr;
                                        }),
                   "revocation watch");
    }
};

class AuthFilter final : public Filter {
  public:
    AuthFilter(const AuthConfig& c, std::shared_ptr<ProviderState> provider,
               telemetry::CounterFamily& results, const std::string& route, core::Clock& clock)
        : Filter(kRequestHead),
          c_(c),
          provider_(std::move(provider)),
          ok_(results.labels({route, "ok"})),
          missing_(results.labels({route, "missing"})),
          invalid_(results.labels({route, "invalid"})),
          forbidden_(results.labels({route, "forbidden"})),
          clock_(clock) {}

    FilterResult on_request_head(Exchange& x) const override {
        auto token = bearer(x);
        if (token.empty()) {
            missing_.inc();
            x.response.problem(401, "Unauthorized", "this route needs a Bearer access token",
                               x.request.path());
            x.response.headers.set("WWW-Authenticate", kRealm);
            return FilterResult::answered;
        }
        if (auto hit = provider_->tokens.find(token, now())) {
            if (provider_->revoked.contains(hit->jti)) return revoked(x);
            return admit(x, *hit);
        }
        auto v = provider_->verifier.verify(token, *provider_->jwks.keys());
        if (v.error == security::JwtError::unknown_key)
            return FilterResult::suspend;  // the keys may be newer
        return conclude(x, v, std::string(token));
    }

    net::Task<FilterResult> on_request_head_async(Exchange& x) const override {
        co_await provider_->jwks.refresh();
        auto token = bearer(x);
        auto v = provider_->verifier.verify(token, *provider_->jwks.keys());
        co_return conclude(x, v, std::string(token));
    }

  private:
    static std::string_view bearer(const Exchange& x) {
        auto auth = x.request.headers.get("Authorization").value_or("");
        if (auth.size() <= 7 || !net::iequals(auth.substr(0, 7), "Bearer ")) return {};
        auto token = auth.substr(7);
        while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
        return token;
    }

    std::int64_t now() const {
        return std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
    }

    FilterResult conclude(Exchange& x, const security::Verified& v, std::string token) const {
        if (!v) {
            invalid_.inc();
            x.response.problem(401, "Unauthorized", "invalid access token: " + v.detail, x.request.path());
            x.response.headers.set("WWW-Authenticate", std::string(kRealm) + R"(, error="invalid_token")");
            return FilterResult::answered;
        }
        auto jti = claim_string(v.claims, "jti");
        if (provider_->revoked.contains(jti)) return revoked(x);
        auto cached = std::make_shared<CachedToken>();
        cached->jti = std::move(jti);
        auto principal = std::make_shared<serving::Principal>();
        principal->subject = claim_string(v.claims, "sub");
        principal->client_id = claim_string(v.claims, "client_id");
        principal->scope = claim_string(v.claims, "scope");
        if (const auto* roles = v.claims.if_contains("roles"); roles && roles->is_array()) {
            for (const auto& r : roles->as_array()) {
                if (r.is_string()) principal->roles += (principal->roles.empty() ? "" : " ") + std::string(r.as_string());
            }
        }
        principal->kind = "jwt";
        cached->principal = std::move(principal);
        cached->claims = v.claims;
        const auto* exp = v.claims.if_contains("exp");
        provider_->tokens.put(std::move(token), cached,
                              exp && exp->is_number() ? exp->to_number<std::int64_t>() : now());
        return admit(x, *cached);
    }

    FilterResult admit(Exchange& x, const CachedToken& t) const {
        const auto& p = *t.principal;
        for (const auto& s : c_.scopes) {
            if (!p.has_scope(s)) return refuse(x, "the token lacks scope " + s);
        }
        for (const auto& r : c_.roles) {
            if (!claim_holds(t.claims, "roles", r)) return refuse(x, "the token lacks role " + r);
        }
        for (const auto& [name, want] : c_.claims) {
            if (!claim_holds(t.claims, name, want))
                return refuse(x, "the token's " + name + " claim does not allow this route");
        }
        ok_.inc();
        auto& h = x.request.headers;
        h.set("X-Plexus-Subject", p.subject);
        if (!p.client_id.empty()) h.set("X-Plexus-Client", p.client_id);
        if (!p.scope.empty()) h.set("X-Plexus-Scopes", p.scope);
        if (!p.roles.empty()) h.set("X-Plexus-Roles", p.roles);
        if (!c_.relay_token) h.remove("Authorization");
        x.scope.set_principal(t.principal);
        return FilterResult::next;
    }

    FilterResult revoked(Exchange& x) const {
        invalid_.inc();
        x.response.problem(401, "Unauthorized", "invalid access token: the token was revoked",
                           x.request.path());
        x.response.headers.set("WWW-Authenticate", std::string(kRealm) + R"(, error="invalid_token")");
        return FilterResult::answered;
    }

    FilterResult refuse(Exchange& x, const std::string& why) const {
        forbidden_.inc();
        x.response.problem(403, "Forbidden", why, x.request.path());
        std::string challenge = std::string(kRealm) + R"(, error="insufficient_scope")";
        if (!c_.scopes.empty()) {
            std::string needed;
            for (const auto& s : c_.scopes) needed += (needed.empty() ? "" : " ") + s;
            challenge += R"(, scope=")" + needed + "\"";
        }
        x.response.headers.set("WWW-Authenticate", challenge);
        return FilterResult::answered;
    }

    AuthConfig c_;
    std::shared_ptr<ProviderState> provider_;
    telemetry::Counter &ok_, &missing_, &invalid_, &forbidden_;
    core::Clock& clock_;
};

class AuthFactory final : public FilterFactory {
  public:
    std::string_view name() const noexcept override { return "auth"; }

    std::shared_ptr<const FilterConfig> parse(core::SettingsReader& r) const override {
        auto c = std::make_shared<AuthConfig>();
        r.field("scopes", c->scopes);
        r.field("roles", c->roles);
        r.field("claims", c->claims);
        r.field("relay_token", c->relay_token);
        r.field("cache_size", c->cache_size);
        r.done();
        if (auto p = settings_problem(*c)) fail_setting(r, *p);
        return c;
    }

    std::shared_ptr<const Filter> create(const FilterConfig& config, FilterContext& ctx) const override {
        const auto& c = dynamic_cast<const AuthConfig&>(config);
        if (auto p = settings_problem(c)) throw std::invalid_argument(*p);
        if (!ctx.auth || ctx.auth->issuer.empty() || ctx.auth->jwks_uri.empty())
            throw std::invalid_argument(
                "the gateway has no identity provider (plexus gateway --issuer --jwks-uri)");
        auto& clock = core::Clock::real();
        const auto& p = *ctx.auth;
        // One state per provider (and cache size), shared by its routes and kept across reloads.
        auto provider = ctx.state.keep<ProviderState>(
            "auth:" + p.issuer + "|" + p.jwks_uri + "|" + p.audience + "|" + std::to_string(c.cache_size),
            [&] {
                return std::make_shared<ProviderState>(p, static_cast<std::size_t>(c.cache_size), clock);
            });
        if (ctx.background) provider->watch(p.revocations_uri, *ctx.background);
        auto& results = ctx.metrics.counter("plexus_gateway_auth_total",
                                            "Requests checked by an auth filter, by route and result.",
                                            {"route", "result"});
        return std::make_shared<AuthFilter>(c, std::move(provider), results, ctx.route.name, clock);
    }
};

}  // namespace

void AuthConfig::to_json(boost::json::object& out) const {
    if (!scopes.empty()) out["scopes"] = boost::json::value_from(scopes);
    if (!roles.empty()) out["roles"] = boost::json::value_from(roles);
    if (!claims.empty()) {
        boost::json::object o;
        for (const auto& [k, v] : claims) o[k] = v;
        out["claims"] = std::move(o);
    }
    out["relay_token"] = relay_token;
    out["cache_size"] = cache_size;
}

const FilterFactory& auth_factory() noexcept {
    static const AuthFactory factory;
    return factory;
}

}  // namespace plexus::gateway::filters
