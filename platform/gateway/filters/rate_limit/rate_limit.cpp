#include "rate_limit/rate_limit.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <stdexcept>

#include "plexus/core/duration.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"
#include "plexus/telemetry/metrics.hpp"
#include "rate_limit/global_limit.hpp"

namespace plexus::gateway::filters {

namespace {

enum class KeyKind { ip, route, header };

std::optional<std::string> settings_problem(const RateLimitConfig& c) {
    if (c.buckets.requests < 1) return "requests: must be at least 1";
    if (c.buckets.per.count() < 1) return "per: must be at least 1ms";
    if (c.buckets.burst < 0) return "burst: must not be negative";
    if (c.buckets.max_keys < 1) return "max_keys: must be at least 1";
    if (c.scope != "local" && c.scope != "global") return "scope: local or global, got '" + c.scope + "'";
    if (c.batch < 0 || c.batch > 1'000'000) return "batch: from 1 to 1000000 (0: a tenth of the burst)";
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
    RateLimitFilter(std::shared_ptr<resilience::TokenBuckets> buckets, std::shared_ptr<GlobalLimit> global,
                    KeyKind kind, std::string header, std::size_t slot, std::string route,
                    std::int64_t capacity, std::int64_t full_in_s, telemetry::Counter& limited)
        : Filter(kRequestHead | kResponseHead),
          buckets_(std::move(buckets)),
          global_(std::move(global)),
          kind_(kind),
          header_(std::move(header)),
          slot_(slot),
          route_(std::move(route)),
          limit_(std::to_string(capacity)),
          full_in_s_(full_in_s),
          limited_(limited) {}

    FilterResult on_request_head(Exchange& x) const override {
        auto key = key_of(x);
        if (!global_) {
            auto d = buckets_->take(key);
            return conclude(x, d.allowed, d.remaining, ceil_seconds(d.full_in), d.retry_after);
        }
        auto d = global_->take(key);
        if (d.verdict == GlobalLimit::Verdict::wait) return FilterResult::suspend;
        return conclude_global(x, d);
    }

    net::Task<FilterResult> on_request_head_async(Exchange& x) const override {
        co_return conclude_global(x, co_await global_->take_async(std::string(key_of(x))));
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
    std::string_view key_of(const Exchange& x) const {
        switch (kind_) {
            case KeyKind::ip:
                return x.request.remote_address;
            case KeyKind::route:
                return "-";
            case KeyKind::header:
                return x.request.headers.get(header_).value_or("-");
        }
        return "-";
    }

    FilterResult conclude_global(Exchange& x, const GlobalLimit::Decision& d) const {
        // The service keeps the shared bucket: the reset is at most one refill of it away.
        return conclude(x, d.verdict == GlobalLimit::Verdict::allowed, d.remaining, full_in_s_,
                        d.retry_after);
    }

    FilterResult conclude(Exchange& x, bool allowed, std::int64_t remaining, std::int64_t reset_s,
                          std::chrono::milliseconds retry_after) const {
        x.scratch[slot_] = pack(remaining, reset_s);
        if (allowed) return FilterResult::next;
        limited_.inc();
        x.response.problem(429, "Too Many Requests", "rate limit of route " + route_ + " exceeded",
                           x.request.path());
        x.response.headers.set("Retry-After",
                               std::to_string(std::max<std::int64_t>(1, ceil_seconds(retry_after))));
        return FilterResult::answered;
    }

    std::shared_ptr<resilience::TokenBuckets> buckets_;
    std::shared_ptr<GlobalLimit> global_;
    KeyKind kind_;
    std::string header_;
    std::size_t slot_;
    std::string route_;
    std::string limit_;
    std::int64_t full_in_s_;
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
        r.field("scope", c->scope);
        r.field("batch", c->batch);
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
        auto& limited = ctx.metrics
                            .counter("plexus_gateway_rate_limited_total",
                                     "Requests refused by a rate_limit filter, by route.", {"route"})
                            .labels({ctx.route.name});
        std::shared_ptr<resilience::TokenBuckets> buckets;
        std::shared_ptr<GlobalLimit> global;
        if (c.scope == "global") {
            if (!ctx.limits_uri || ctx.limits_uri->empty())
                throw std::invalid_argument("scope: global needs the gateway's --limits-uri");
            auto batcher = ctx.state.keep<LeaseBatcher>(
                "limits:" + *ctx.limits_uri, [&] { return std::make_shared<LeaseBatcher>(*ctx.limits_uri); });
            if (ctx.background) batcher->start(*ctx.background);
            global = ctx.state.keep<GlobalLimit>(
                state_key + ":global:" + std::to_string(c.effective_batch()), [&] {
                    return std::make_shared<GlobalLimit>(ctx.route.name, c.buckets, c.effective_batch(),
                                                         batcher, clock_);
                });
        } else {
            buckets = ctx.state.keep<resilience::TokenBuckets>(
                state_key, [&] { return std::make_shared<resilience::TokenBuckets>(c.buckets, clock_); });
        }
        auto per_s = std::max<std::int64_t>(1, (c.buckets.per.count() + 999) / 1000);
        return std::make_shared<RateLimitFilter>(std::move(buckets), std::move(global), kind,
                                                 kind == KeyKind::header ? c.key.substr(7) : std::string(),
                                                 ctx.slot, ctx.route.name, c.buckets.capacity(), per_s,
                                                 limited);
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
    out["scope"] = scope;
    if (scope == "global") out["batch"] = effective_batch();
}

const FilterFactory& rate_limit_factory() noexcept {
    static const RateLimitFactory factory(core::Clock::real());
    return factory;
}

std::unique_ptr<FilterFactory> make_rate_limit_factory(core::Clock& clock) {
    return std::make_unique<RateLimitFactory>(clock);
}

}  // namespace plexus::gateway::filters
