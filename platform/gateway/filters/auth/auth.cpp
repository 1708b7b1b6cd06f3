#include "auth/auth.hpp"

#include <atomic>
#include <boost/json.hpp>
#include <stdexcept>

#include "plexus/auth/bearer.hpp"
#include "plexus/auth/verifier.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::gateway::filters {

namespace {

std::optional<std::string> settings_problem(const AuthConfig& c) {
    for (const auto& s : c.scopes) {
        if (s.empty() || s.find(' ') != std::string::npos) return "scopes: '" + s + "' is not a scope";
    }
    for (const auto& r : c.roles) {
        if (r.empty() || r.find(' ') != std::string::npos) return "roles: '" + r + "' is not a role";
    }
    if (c.cache_size < 1 || c.cache_size > 10'000'000) return "cache_size: from 1 to 10000000";
    for (const auto& k : c.accept) {
        if (!auth::kind_named(k)) return "accept: '" + k + "' is not jwt, opaque or api_key";
    }
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

class AuthFilter final : public Filter {
  public:
    AuthFilter(const AuthConfig& c, auth::TokenKinds kinds, std::shared_ptr<auth::Verifier> verifier,
               telemetry::CounterFamily& results, const std::string& route)
        : Filter(kRequestHead),
          c_(c),
          kinds_(kinds),
          verifier_(std::move(verifier)),
          ok_(results.labels({route, "ok"})),
          missing_(results.labels({route, "missing"})),
          invalid_(results.labels({route, "invalid"})),
          forbidden_(results.labels({route, "forbidden"})),
          unavailable_(results.labels({route, "unavailable"})) {}

    FilterResult on_request_head(Exchange& x) const override {
        auto credential = auth::presented(x.request.headers, kinds_);
        if (credential.empty()) {
            missing_.inc();
            auth::answer_unauthorized(x.response, nullptr, kinds_, x.request.path());
            return FilterResult::answered;
        }
        auto c = verifier_->check(credential, kinds_);
        if (c.status == auth::Check::pending) return FilterResult::suspend;
        return conclude(x, c);
    }

    net::Task<FilterResult> on_request_head_async(Exchange& x) const override {
        auto credential = std::string(auth::presented(x.request.headers, kinds_));
        co_return conclude(x, co_await verifier_->check_async(std::move(credential), kinds_));
    }

  private:
    FilterResult conclude(Exchange& x, const auth::Check& c) const {
        if (c.status == auth::Check::ok) return admit(x, *c.token);
        (c.status == auth::Check::unavailable ? unavailable_ : invalid_).inc();
        auth::answer_unauthorized(x.response, &c, kinds_, x.request.path());
        return FilterResult::answered;
    }

    FilterResult admit(Exchange& x, const auth::CachedToken& t) const {
        const auto& p = *t.principal;
        if (auto why = auth::lacking_scope(p, c_.scopes)) return refuse(x, *why);
        for (const auto& r : c_.roles) {
            if (!claim_holds(t.claims, "roles", r)) return refuse(x, "the token lacks role " + r);
        }
        for (const auto& [name, want] : c_.claims) {
            if (!claim_holds(t.claims, name, want))
                return refuse(x, "the token's " + name + " claim does not allow this route");
        }
        ok_.inc();
        auto& h = x.request.headers;
        if (!c_.relay_token) {  // first: fewer fields to move up behind the removed one
            h.remove("Authorization");
            if (kinds_ & auth::kApiKey) h.remove("X-API-Key");
        }
        auth::set_identity_headers(h, p);
        x.scope.set_principal(t.principal);
        return FilterResult::next;
    }

    FilterResult refuse(Exchange& x, const std::string& why) const {
        forbidden_.inc();
        auth::answer_forbidden(x.response, why, c_.scopes, x.request.path());
        return FilterResult::answered;
    }

    AuthConfig c_;
    auth::TokenKinds kinds_;
    std::shared_ptr<auth::Verifier> verifier_;
    telemetry::Counter &ok_, &missing_, &invalid_, &forbidden_, &unavailable_;
};

class AuthFactory final : public FilterFactory {
  public:
    std::string_view name() const noexcept override { return "auth"; }

    std::shared_ptr<const FilterConfig> parse(core::SettingsReader& r) const override {
        auto c = std::make_shared<AuthConfig>();
        r.field("scopes", c->scopes);
        r.field("roles", c->roles);
        r.field("claims", c->claims);
        r.field("accept", c->accept);
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
        const auto& p = *ctx.auth;
        const bool introspects = !p.introspection_uri.empty() && !p.credentials_file.empty();
        // Unset: JWTs, and opaque tokens when the gateway can introspect them.
        auth::TokenKinds kinds = c.accept.empty() ? auth::kJwt | (introspects ? auth::kOpaque : 0) : 0;
        for (const auto& k : c.accept) {
            if (k != "jwt" && !introspects)
                throw std::invalid_argument(
                    "accept: " + k + " needs the gateway's --introspection-uri and --client-credentials");
            kinds |= auth::kind_named(k);
        }
        // One verifier per provider (and cache size), shared by its routes and kept across reloads.
        auto verifier = ctx.state.keep<auth::Verifier>(
            "auth:" + p.issuer + "|" + p.jwks_uri + "|" + p.audience + "|" + p.introspection_uri + "|" +
                p.credentials_file + "|" + std::to_string(c.cache_size),
            [&] {
                return std::make_shared<auth::Verifier>(p, static_cast<std::size_t>(c.cache_size),
                                                        core::Clock::real());
            });
        if (ctx.background) verifier->watch(*ctx.background);
        auto& results = ctx.metrics.counter("plexus_gateway_auth_total",
                                            "Requests checked by an auth filter, by route and result.",
                                            {"route", "result"});
        return std::make_shared<AuthFilter>(c, kinds, std::move(verifier), results, ctx.route.name);
    }
};

}  // namespace

void AuthConfig::to_json(boost::json::object& out) const {
    if (!scopes.empty()) out["scopes"] = boost::json::value_from(scopes);
    if (!roles.empty()) out["roles"] = boost::json::value_from(roles);
    if (!accept.empty()) out["accept"] = boost::json::value_from(accept);
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
