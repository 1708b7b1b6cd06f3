#include "cors/cors.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <stdexcept>

#include "plexus/core/duration.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"

namespace plexus::gateway::filters {

namespace {

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::optional<std::string> settings_problem(const CorsConfig& c) {
    if (c.allow_origins.empty()) return "allow_origins: list the origins that may call, or \"*\"";
    bool any = false;
    for (const auto& o : c.allow_origins) {
        if (o == "*") {
            any = true;
            continue;
        }
        // An origin is scheme://host[:port], nothing after it.
        auto scheme = o.find("://");
        if (scheme == std::string::npos || scheme == 0 || o.size() == scheme + 3 ||
            o.find('/', scheme + 3) != std::string::npos || !net::is_field_value(o))
            return "allow_origins: '" + o + "' is not an origin (scheme://host[:port])";
    }
    if (any && c.allow_origins.size() > 1) return "allow_origins: \"*\" stands alone";
    if (any && c.allow_credentials) return "allow_credentials: cannot be true with allow_origins \"*\"";
    for (const auto& m : c.allow_methods) {
        if (!net::is_token(m)) return "allow_methods: '" + m + "' is not a method";
    }
    for (const auto* list : {&c.allow_headers, &c.expose_headers}) {
        for (const auto& h : *list) {
            if (!net::is_token(h))
                return std::string(list == &c.allow_headers ? "allow_headers" : "expose_headers") + ": '" +
                       h + "' is not a header name";
        }
    }
    if (c.max_age.count() < 0) return "max_age: must not be negative";
    return std::nullopt;
}

// Whether every comma-separated name of `requested` is in `allowed` (case-insensitive).
bool all_allowed(std::string_view requested, const std::vector<std::string>& allowed) {
    while (!requested.empty()) {
        auto comma = requested.find(',');
        auto name = requested.substr(0, comma);
        while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
        if (!name.empty() && std::none_of(allowed.begin(), allowed.end(),
                                          [&](const std::string& a) { return net::iequals(a, name); }))
            return false;
        if (comma == std::string_view::npos) break;
        requested.remove_prefix(comma + 1);
    }
    return true;
}

class CorsFilter final : public Filter {
  public:
    CorsFilter(const CorsConfig& c, std::size_t slot)
        : Filter(kRequestHead | kResponseHead),
          c_(c),
          any_(c.allow_origins.size() == 1 && c.allow_origins[0] == "*"),
          slot_(slot),
          methods_(join(c.allow_methods)),
          headers_(join(c.allow_headers)),
          expose_(join(c.expose_headers)),
          max_age_(std::to_string(c.max_age.count() / 1000)) {}

    FilterResult on_request_head(Exchange& x) const override {
        auto origin = x.request.headers.get("Origin");
        if (!origin) return FilterResult::next;
        bool allowed = origin_allowed(*origin);
        x.scratch[slot_] = allowed ? 2 : 1;  // 1: an origin was sent, 2: and it is allowed
        auto method = x.request.headers.get("Access-Control-Request-Method");
        if (x.request.method != "OPTIONS" || !method) return FilterResult::next;

        // A preflight: answered here.
        auto requested = x.request.headers.get("Access-Control-Request-Headers").value_or("");
        bool method_ok = std::any_of(c_.allow_methods.begin(), c_.allow_methods.end(),
                                     [&](const std::string& m) { return m == *method; });
        if (!allowed || !method_ok || !all_allowed(requested, c_.allow_headers)) {
            x.response.problem(403, "Forbidden",
                               !allowed ? "origin " + std::string(*origin) + " may not call this route"
                               : !method_ok
                                   ? "method " + std::string(*method) + " is not allowed across origins"
                                   : "a requested header is not allowed across origins",
                               x.request.path());
            return FilterResult::answered;
        }
        x.response.status = 204;
        x.response.headers.set("Access-Control-Allow-Methods", methods_);
        if (!headers_.empty()) x.response.headers.set("Access-Control-Allow-Headers", headers_);
        x.response.headers.set("Access-Control-Max-Age", max_age_);
        return FilterResult::answered;
    }

    void on_response_head(Exchange& x) const override {
        auto state = x.scratch[slot_];
        if (state == 0) return;
        if (!any_) x.response.headers.add("Vary", "Origin");
        if (state != 2) return;
        x.response.headers.set("Access-Control-Allow-Origin", any_ ? "*" : *x.request.headers.get("Origin"));
        if (c_.allow_credentials) x.response.headers.set("Access-Control-Allow-Credentials", "true");
        if (!expose_.empty()) x.response.headers.set("Access-Control-Expose-Headers", expose_);
    }

  private:
    bool origin_allowed(std::string_view origin) const {
        if (any_) return true;
        return std::any_of(c_.allow_origins.begin(), c_.allow_origins.end(),
                           [&](const std::string& o) { return net::iequals(o, origin); });
    }

    CorsConfig c_;
    bool any_;
    std::size_t slot_;
    std::string methods_, headers_, expose_, max_age_;
};

class CorsFactory final : public FilterFactory {
  public:
    std::string_view name() const noexcept override { return "cors"; }

    std::shared_ptr<const FilterConfig> parse(core::SettingsReader& r) const override {
        auto c = std::make_shared<CorsConfig>();
        r.field("allow_origins", c->allow_origins, core::Need::required);
        r.field("allow_methods", c->allow_methods);
        r.field("allow_headers", c->allow_headers);
        r.field("expose_headers", c->expose_headers);
        r.field("allow_credentials", c->allow_credentials);
        r.field("max_age", c->max_age);
        r.done();
        if (auto p = settings_problem(*c)) fail_setting(r, *p);
        return c;
    }

    std::shared_ptr<const Filter> create(const FilterConfig& config, FilterContext& ctx) const override {
        const auto& c = dynamic_cast<const CorsConfig&>(config);
        if (auto p = settings_problem(c)) throw std::invalid_argument(*p);
        return std::make_shared<CorsFilter>(c, ctx.slot);
    }
};

}  // namespace

void CorsConfig::to_json(boost::json::object& out) const {
    out["allow_origins"] = boost::json::value_from(allow_origins);
    out["allow_methods"] = boost::json::value_from(allow_methods);
    if (!allow_headers.empty()) out["allow_headers"] = boost::json::value_from(allow_headers);
    if (!expose_headers.empty()) out["expose_headers"] = boost::json::value_from(expose_headers);
    out["allow_credentials"] = allow_credentials;
    out["max_age"] = core::format_duration(max_age);
}

const FilterFactory& cors_factory() noexcept {
    static const CorsFactory factory;
    return factory;
}

}  // namespace plexus::gateway::filters
