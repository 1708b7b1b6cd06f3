#include "rate_limit/rate_limit.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <stdexcept>

#include "plexus/core/duration.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::gateway::filters {

namespace {

enum class KeyKind { ip, route, header };

std::optional<std::string> settings_problem(const RateLimitConfig& c) {
    if (c.buckets.requests < 1) return "requests: must be at least 1";
    if (c.buckets.per.count() < 1) return "per: must be at least 1ms";
    if (c.buckets.burst < 0) return "burst: must not be negative";
    if (c.buckets.max_keys < 1) return "max_keys: must be at least 1";
    if (c.key != "ip" && c.key != "route") {
        if (!c.key.starts_with("header:") || !net::is_token(c.key.substr(7)))
            return "key: expected ip, route or header:<Name>, got '" + c.key + "'";
    }
    return std::nullopt;
}

// The scratch word: whether it is set, the remaining tokens and the seconds until full.
constexpr std::uint64_t kSet = 1ull << 63;
std::uint64_t pack(std::int64_t remaining, std::int64_t reset_s) {
    auto r = static_cast<std::uint64_t>(std::clamp<std::int64_t>(remaining, 0, 0x7fffffff));
    auto s = static_cast<std::uint64_t>(std::clamp<std::int64_t>(reset_s, 0, 0x7fffffff));
    return kSet | (r << 31) | s;
}

std::int64_t ceil_seconds(std::chrono::milliseconds d) { return (d.count() + 999) / 1000; }

class RateLimitFilter final : public Filter {
  public:
    RateLimitFilter(std::shared_ptr<TokenBuckets> buckets, KeyKind kind, std::string header, std::size_t slot,
                    std::string route, telemetry::Counter& limited)
        : Filter(kRequestHead | kResponseHead),
          buckets_(std::move(buckets)),
          kind_(kind),
          header_(std::move(header)),
          slot_(slot),
          route_(std::move(route)),
          limit_(std::to_string(buckets_->settings().capacity())),
          limited_(limited) {}

    FilterResult on_request_head(Exchange& x) const override {
        std::string_view key = "-";
        switch (kind_) {
            case KeyKind::ip:
                key = x.request.remote_address;
                break;
            case KeyKind::route:
                break;
            case KeyKind::header:
                key = x.request.headers.get(header_).value_or("-");
                break;
        }
        auto d = buckets_->take(key);
        x.scratch[slot_] = pack(d.remaining, ceil_seconds(d.full_in));
        if (d.allowed) return FilterResult::next;
        limited_.inc();
        x.response.problem(429, "Too Many Requests", "rate limit of route " + route_ + " exceeded",
                           x.request.path());
        x.response.headers.set("Retry-After",
                               std::to_string(std::max<std::int64_t>(1, ceil_seconds(d.retry_after))));
        return FilterResult::answered;
    }

    void on_response_head(Exchange& x) const override {
        auto word = x.scratch[slot_];
        if (!(word & kSet)) return;
        x.response.headers.set("RateLimit-Limit", limit_);
        char buf[16];
        auto decimal = [&buf](std::uint64_t v) {
            auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
            return std::string_view(buf, static_cast<std::size_t>(end - buf));
        };
        x.response.headers.set("RateLimit-Remaining", decimal((word >> 31) & 0x7fffffff));
        x.response.headers.set("RateLimit-Reset", decimal(word & 0x7fffffff));
    }

  private:
    std::shared_ptr<TokenBuckets> buckets_;
    KeyKind kind_;
    std::string header_;
    std::size_t slot_;
    std::string route_;
    std::string limit_;
    telemetry::Counter& limited_;
};

class RateLimitFactory final : public FilterFactory {
  public:
    explicit RateLimitFactory(core::Clock& clock) : clock_(clock) {}
    std::string_view name() const noexcept override { return "rate_limit"; }

    std::shared_ptr<const FilterConfig> parse(core::SettingsReader& r) const override {
        auto c = std::make_shared<RateLimitConfig>();
        r.field("requests", c->buckets.requests, core::Need::required);
        r.field("per", c->buckets.per);
        r.field("burst", c->buckets.burst);
        std::int64_t max_keys = static_cast<std::int64_t>(c->buckets.max_keys);
        r.field("max_keys", max_keys);
        c->buckets.max_keys = max_keys < 1 ? 0 : static_cast<std::size_t>(max_keys);
        r.field("key", c->key);
        r.done();
        if (auto p = settings_problem(*c)) fail_setting(r, *p);
        return c;
    }

    std::shared_ptr<const Filter> create(const FilterConfig& config, FilterContext& ctx) const override {
        const auto& c = dynamic_cast<const RateLimitConfig&>(config);
        if (auto p = settings_problem(c)) throw std::invalid_argument(*p);
        KeyKind kind = c.key == "ip" ? KeyKind::ip : c.key == "route" ? KeyKind::route : KeyKind::header;
        // Same route, same place in the chain, same settings: the same buckets after a reload.
        auto state_key = "rate_limit:" + ctx.route.name + ":" + std::to_string(ctx.slot) + ":" +
                         std::to_string(c.buckets.requests) + "/" + std::to_string(c.buckets.per.count()) +
                         ":" + std::to_string(c.buckets.capacity()) + ":" +
                         std::to_string(c.buckets.max_keys) + ":" + c.key;
        auto buckets = ctx.state.keep<TokenBuckets>(
            state_key, [&] { return std::make_shared<TokenBuckets>(c.buckets, clock_); });
        auto& limited = ctx.metrics
                            .counter("plexus_gateway_rate_limited_total",
                                     "Requests refused by a rate_limit filter, by route.", {"route"})
                            .labels({ctx.route.name});
        return std::make_shared<RateLimitFilter>(std::move(buckets), kind,
                                                 kind == KeyKind::header ? c.key.substr(7) : std::string(),
                                                 ctx.slot, ctx.route.name, limited);
    }

  private:
    core::Clock& clock_;
};

}  // namespace

void RateLimitConfig::to_json(boost::json::object& out) const {
    out["requests"] = buckets.requests;
    out["per"] = core::format_duration(buckets.per);
    out["burst"] = buckets.capacity();
    out["key"] = key;
    out["max_keys"] = buckets.max_keys;
}

const FilterFactory& rate_limit_factory() noexcept {
    static const RateLimitFactory factory(core::Clock::real());
    return factory;
}

std::unique_ptr<FilterFactory> make_rate_limit_factory(core::Clock& clock) {
    return std::make_unique<RateLimitFactory>(clock);
}

}  // namespace plexus::gateway::filters
