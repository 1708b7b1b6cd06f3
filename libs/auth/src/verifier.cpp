#include "plexus/auth/verifier.hpp"

#include <boost/json.hpp>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "plexus/auth/credentials.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::auth {

namespace {

constexpr auto kMinRefetch = std::chrono::seconds(10);
constexpr auto kIntrospectionTimeout = std::chrono::milliseconds(2000);

std::string claim_string(const boost::json::object& claims, std::string_view name) {
    const auto* v = claims.if_contains(name);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t claim_number(const boost::json::object& claims, std::string_view name) {
    const auto* v = claims.if_contains(name);
    return v && v->is_number() ? v->to_number<std::int64_t>() : 0;
}

// What a token's claims (a JWT's, or an introspection answer, which uses the same names) say.
std::shared_ptr<CachedToken> cached_from(boost::json::object claims, std::string_view kind) {
    auto principal = std::make_shared<serving::Principal>();
    principal->subject = claim_string(claims, "sub");
    principal->client_id = claim_string(claims, "client_id");
    principal->scope = claim_string(claims, "scope");
    if (const auto* roles = claims.if_contains("roles"); roles && roles->is_array()) {
        for (const auto& r : roles->as_array()) {
            if (r.is_string())
                principal->roles += (principal->roles.empty() ? "" : " ") + std::string(r.as_string());
        }
    }
    principal->kind = kind;
    auto cached = std::make_shared<CachedToken>();
    cached->jti = claim_string(claims, "jti");
    cached->issued_at = claim_number(claims, "iat");
    cached->principal = std::move(principal);
    cached->claims = std::move(claims);
    return cached;
}

// Revoked by its id, or by its client's deletion after it was issued.
bool is_revoked(const RevokedTokens& revoked, const CachedToken& t) {
    return revoked.contains(
        t.jti, t.principal ? std::string_view(t.principal->client_id) : std::string_view(), t.issued_at);
}

Check invalid(std::string detail) { return Check{.status = Check::invalid, .detail = std::move(detail)}; }

}  // namespace

TokenKinds kind_named(std::string_view name) noexcept {
    if (name == "jwt") return kJwt;
    if (name == "opaque") return kOpaque;
    if (name == "api_key") return kApiKey;
    return 0;
}

std::string kind_names(TokenKinds kinds) {
    std::string out;
    for (auto [bit, name] :
         {std::pair{kJwt, "jwt"}, std::pair{kOpaque, "opaque"}, std::pair{kApiKey, "api_key"}}) {
        if (kinds & bit) out += (out.empty() ? "" : ", ") + std::string(name);
    }
    return out;
}

TokenKinds kind_of(std::string_view credential) noexcept {
    if (credential.starts_with("pxk_")) return kApiKey;
    if (credential.starts_with("pxo_")) return kOpaque;
    auto first = credential.find('.');
    if (first == std::string_view::npos) return 0;
    auto second = credential.find('.', first + 1);
    if (second == std::string_view::npos || credential.find('.', second + 1) != std::string_view::npos)
        return 0;
    return kJwt;
}

struct Verifier::Introspection {
    net::Endpoint endpoint;
    std::string path;
    CredentialsFile credentials;
    std::atomic<bool> failing{false};
    std::atomic<std::size_t> in_flight{0};

    // One introspection per credential at a time: requests that present a credential already
    // being introspected wait for that answer instead of asking again.
    struct Pending {
        net::Signal done;
        std::mutex mutex;
        std::optional<Check> result;
        std::optional<Check> get() {
            std::lock_guard lock(mutex);
            return result;
        }
    };
    std::mutex pending_mutex;
    std::unordered_map<std::string, std::shared_ptr<Pending>> pending;

    // The credential's pending introspection, and whether the caller is the one to make it.
    std::pair<std::shared_ptr<Pending>, bool> join(const std::string& credential) {
        std::lock_guard lock(pending_mutex);
        auto& slot = pending[credential];
        if (slot) return {slot, false};
        slot = std::make_shared<Pending>();
        return {slot, true};
    }
    void finish(const std::string& credential, Pending& p, Check result) {
        {
            std::lock_guard lock(pending_mutex);
            pending.erase(credential);
        }
        {
            std::lock_guard lock(p.mutex);
            p.result = std::move(result);
        }
        p.done.notify_all();
    }

    Introspection(const ProviderSettings& s) : credentials(s.credentials_file) {
        auto url = net::parse_http_url(s.introspection_uri);
        if (!url || url->path.empty())
            throw std::invalid_argument("introspection_uri: must be http://host:port/path");
        if (s.credentials_file.empty())
            throw std::invalid_argument(
                "introspection needs the checker's client credentials (a credentials file)");
        endpoint = url->endpoint;
        path = url->path;
    }

    // Logs the first failure of a streak, and the recovery.
    void failed(const ProviderSettings& s, const std::string& why) {
        if (!failing.exchange(true))
            telemetry::warn("token introspection failing", {{"uri", s.introspection_uri}, {"error", why}});
    }
    void succeeded(const ProviderSettings& s) {
        if (failing.exchange(false))
            telemetry::info("token introspection recovered", {{"uri", s.introspection_uri}});
    }
};

Verifier::Verifier(ProviderSettings settings, std::size_t cache_size, core::Clock& clock)
    : Verifier(std::move(settings), std::nullopt, cache_size, clock) {}

Verifier::Verifier(ProviderSettings settings, security::KeySet keys, std::size_t cache_size,
                   core::Clock& clock)
    : Verifier(std::move(settings), std::optional<security::KeySet>(std::move(keys)), cache_size, clock) {}

Verifier::Verifier(ProviderSettings settings, std::optional<security::KeySet> keys, std::size_t cache_size,
                   core::Clock& clock)
    : settings_(std::move(settings)),
      clock_(clock),
      jwks_(keys ? JwksCache(std::move(*keys)) : JwksCache(settings_.jwks_uri, kMinRefetch, clock)),
      tokens_(cache_size),
      jwt_(security::VerifyPolicy{.issuer = settings_.issuer,
                                  .audiences = settings_.audience.empty()
                                                   ? std::vector<std::string>{}
                                                   : std::vector<std::string>{settings_.audience},
                                  .leeway = settings_.leeway},
           clock) {
    if (!settings_.introspection_uri.empty()) introspection_ = std::make_shared<Introspection>(settings_);
}

std::int64_t Verifier::now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
}

Check Verifier::check(std::string_view credential, TokenKinds accepted) const {
    auto kind = kind_of(credential);
    if (kind == 0) return invalid("not a token or API key this platform issues");
    if (!(kind & accepted))
        return invalid("this route does not accept a " + kind_names(kind) + " credential");
    if (auto hit = tokens_.find(credential, now())) return from_cache(std::move(hit));
    if (kind != kJwt) return Check{.status = Check::pending};
    auto v = jwt_.verify(credential, *jwks_.keys());
    if (v.error == security::JwtError::unknown_key)
        return Check{.status = Check::pending};  // the keys may be newer
    return conclude_jwt(v, std::string(credential));
}

net::Task<Check> Verifier::check_async(std::string credential, TokenKinds accepted) {
    auto c = check(credential, accepted);
    if (c.status != Check::pending) co_return c;
    auto kind = kind_of(credential);
    if (kind != kJwt) {
        if (!introspection_) co_return co_await introspect(std::move(credential), kind);
        auto keep = introspection_;
        auto [pending, first] = keep->join(credential);
        if (!first) {
            auto seen = pending->done.epoch();
            if (auto r = pending->get()) co_return std::move(*r);
            co_await pending->done.wait(kIntrospectionTimeout + std::chrono::seconds(1), seen);
            if (auto r = pending->get()) co_return std::move(*r);
            co_return Check{.status = Check::unavailable, .detail = "the identity provider did not answer"};
        }
        struct Finish {  // whatever happens, the waiters get an answer
            Introspection& in;
            const std::string& credential;
            Introspection::Pending& p;
            Check result{.status = Check::unavailable, .detail = "the identity provider did not answer"};
            ~Finish() { in.finish(credential, p, std::move(result)); }
        } finish{*keep, credential, *pending};
        finish.result = co_await introspect(credential, kind);
        co_return finish.result;
    }
    co_await jwks_.refresh();
    auto v = jwt_.verify(credential, *jwks_.keys());
    co_return conclude_jwt(v, std::move(credential));
}

Check Verifier::from_cache(std::shared_ptr<const CachedToken> t) const {
    if (!t->principal) return invalid("the token is not active");
    if (is_revoked(revoked_, *t)) return invalid("the token was revoked");
    return Check{.status = Check::ok, .token = std::move(t)};
}

Check Verifier::conclude_jwt(const security::Verified& v, std::string credential) const {
    if (!v) return invalid(v.detail);
    auto exp = claim_number(v.claims, "exp");
    auto cached = cached_from(v.claims, "jwt");
    if (is_revoked(revoked_, *cached)) return invalid("the token was revoked");
    tokens_.put(std::move(credential), cached, exp != 0 ? exp : now());
    return Check{.status = Check::ok, .token = std::move(cached)};
}

net::Task<Check> Verifier::introspect(std::string credential, TokenKinds kind) {
    if (!introspection_)
        co_return invalid("opaque tokens and API keys cannot be checked here (no introspection endpoint)");
    auto keep = introspection_;
    std::string why;
    auto creds = keep->credentials.load(why);
    if (!creds) {
        keep->failed(settings_, why);
        co_return Check{.status = Check::unavailable, .detail = "the identity provider cannot be asked"};
    }
    struct Slot {  // one of the introspections in flight, given back however this ends
        std::atomic<std::size_t>& n;
        ~Slot() { n.fetch_sub(1); }
    } slot{keep->in_flight};
    if (keep->in_flight.fetch_add(1) >= settings_.max_introspections)
        co_return Check{.status = Check::unavailable,
                        .detail = "too many credentials are being checked with the identity provider"};
    auto body = "token=" + net::percent_encode(credential) +
                "&token_type_hint=" + (kind == kApiKey ? "api_key" : "access_token") + "&" + creds->form();
    auto res = co_await net::fetch(keep->endpoint, "POST", keep->path, std::move(body),
                                   "application/x-www-form-urlencoded", kIntrospectionTimeout);
    boost::system::error_code ec;
    auto doc = res && res->status == 200 ? boost::json::parse(res->body, ec) : boost::json::value();
    const auto* answer = !ec ? doc.if_object() : nullptr;
    const auto* active = answer ? answer->if_contains("active") : nullptr;
    if (!active || !active->is_bool()) {
        keep->failed(settings_, res ? "status " + std::to_string(res->status) : res.error().message());
        co_return Check{.status = Check::unavailable, .detail = "the identity provider did not answer"};
    }
    keep->succeeded(settings_);
    auto type = claim_string(*answer, "token_type");
    bool right_type = kind == kApiKey ? type == "api_key" : type == "Bearer";
    auto aud_ok = [&] {
        if (settings_.audience.empty()) return true;
        const auto* aud = answer->if_contains("aud");
        if (!aud) return true;  // API keys name no audience
        if (aud->is_string()) return aud->as_string() == settings_.audience;
        if (aud->is_array()) {
            for (const auto& a : aud->as_array()) {
                if (a.is_string() && a.as_string() == settings_.audience) return true;
            }
        }
        return false;
    };
    if (!active->as_bool() || !right_type || !aud_ok()) {
        static const auto inactive = std::make_shared<const CachedToken>();
        tokens_.put(std::move(credential), inactive, now() + settings_.negative_ttl.count());
        co_return invalid("the token is not active");
    }
    auto exp = claim_number(*answer, "exp");
    auto until = now() + settings_.introspection_ttl.count();
    if (exp != 0) until = std::min(until, exp);
    auto cached = cached_from(std::move(doc.as_object()), kind == kApiKey ? "api_key" : "opaque");
    if (is_revoked(revoked_, *cached)) co_return invalid("the token was revoked");
    tokens_.put(std::move(credential), cached, until);
    co_return Check{.status = Check::ok, .token = std::move(cached)};
}

void Verifier::watch(net::Executor ex) {
    if (settings_.revocations_uri.empty() || watching_.exchange(true)) return;
    std::weak_ptr<Verifier> weak = weak_from_this();
    net::spawn(ex,
               RevokedTokens::watch(settings_.revocations_uri,
                                    [weak]() -> std::shared_ptr<RevokedTokens> {
                                        auto s = weak.lock();
                                        return s ? std::shared_ptr<RevokedTokens>(s, &s->revoked_) : nullptr;
                                    }),
               "revocation watch");
}

}  // namespace plexus::auth
