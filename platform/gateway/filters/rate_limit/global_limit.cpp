#include "rate_limit/global_limit.hpp"

#include <boost/json.hpp>
#include <stdexcept>

#include "plexus/telemetry/log.hpp"

namespace plexus::gateway::filters {

namespace {

constexpr auto kLeaseLife = std::chrono::seconds(1);
constexpr auto kRequestTimeout = std::chrono::milliseconds(1000);
constexpr auto kDegradedFor = std::chrono::seconds(1);  // local limits after a failed batch
constexpr std::size_t kMaxBatch = 1000;                 // the service's limit per request

std::int64_t ms_of(core::SteadyTime t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------- GlobalLimit

GlobalLimit::GlobalLimit(std::string name, resilience::BucketSettings settings, std::int64_t batch,
                         std::shared_ptr<LeaseBatcher> batcher, core::Clock& clock)
    : name_(std::move(name)),
      settings_(settings),
      batch_(batch),
      batcher_(std::move(batcher)),
      clock_(clock),
      leases_(settings.max_keys),
      local_(settings, clock) {}

GlobalLimit::Decision GlobalLimit::fallback(std::string_view key) {
    auto d = local_.take(key);
    return {d.allowed ? Verdict::allowed : Verdict::refused, d.remaining, d.retry_after};
}

GlobalLimit::Decision GlobalLimit::take(std::string_view key) {
    const auto now = clock_.now();
    if (ms_of(now) < degraded_until_ms_.load(std::memory_order_relaxed)) return fallback(key);
    Decision d;
    bool ask = false;
    leases_.upsert(
        key, [] { return Lease{}; },
        [&](Lease& l) {
            if (l.tokens > 0 && now >= l.expires) l.tokens = 0;  // not spent in time: dropped
            if (l.tokens > 0) {
                --l.tokens;
                d = {Verdict::allowed, l.tokens, {}};
                if (l.tokens * 2 < batch_ && !l.asking) ask = l.asking = true;
            } else if (now < l.refused_until) {
                d = {Verdict::refused, 0,
                     std::chrono::duration_cast<std::chrono::milliseconds>(l.refused_until - now)};
            }
        });
    if (ask) batcher_->ask(shared_from_this(), std::string(key));
    return d;
}

net::Task<GlobalLimit::Decision> GlobalLimit::take_async(std::string key) {
    if (!batcher_->started()) co_return fallback(key);  // no background loop: local only
    // Up to three batches: the one in flight when this key was queued may not carry it.
    for (int round = 0; round < 3; ++round) {
        auto seen = batcher_->answered().epoch();
        auto d = take(key);
        if (d.verdict != Verdict::wait) co_return d;
        bool ask = leases_.upsert(
            key, [] { return Lease{}; }, [](Lease& l) { return !std::exchange(l.asking, true); });
        if (ask) batcher_->ask(shared_from_this(), key);
        if (!co_await batcher_->answered().wait(kRequestTimeout * 2, seen)) break;
    }
    auto d = take(key);
    co_return d.verdict == Verdict::wait ? fallback(key) : d;
}

void GlobalLimit::granted(const std::string& key, std::int64_t tokens,
                          std::chrono::milliseconds retry_after) {
    const auto now = clock_.now();
    leases_.upsert(
        key, [] { return Lease{}; },
        [&](Lease& l) {
            l.asking = false;
            if (tokens > 0) {
                if (now >= l.expires) l.tokens = 0;
                l.tokens += tokens;
                l.expires = now + kLeaseLife;
                l.refused_until = {};
            } else {
                // Refused: ask again once half a batch could have come back, not at every token, or a
                // starved key would cost the service one request per token.
                auto half_batch =
                    std::chrono::milliseconds(settings_.per.count() * batch_ / (2 * settings_.requests));
                l.refused_until = now + std::max({retry_after, half_batch, std::chrono::milliseconds(1)});
            }
        });
}

void GlobalLimit::failed(const std::string& key) {
    degraded_until_ms_.store(ms_of(clock_.now() + kDegradedFor), std::memory_order_relaxed);
    leases_.upsert(key, [] { return Lease{}; }, [](Lease& l) { l.asking = false; });
}

// ---------------------------------------------------------------- LeaseBatcher

LeaseBatcher::LeaseBatcher(const std::string& limits_uri) : uri_(limits_uri) {
    auto url = net::parse_http_url(limits_uri);
    if (!url || !(url->path.empty() || url->path == "/"))
        throw std::invalid_argument("the limit service's address must be http://host:port, got '" +
                                    limits_uri + "'");
    endpoint_ = url->endpoint;
}

void LeaseBatcher::start(net::Executor ex) {
    if (started_.exchange(true)) return;
    net::spawn(ex, loop(weak_from_this()), "lease batches");
}

void LeaseBatcher::ask(std::shared_ptr<GlobalLimit> limit, std::string key) {
    {
        std::lock_guard lock(mutex_);
        pending_.push_back({std::move(limit), std::move(key)});
    }
    work_.notify_all();
}

net::Task<void> LeaseBatcher::loop(std::weak_ptr<LeaseBatcher> weak) {
    while (true) {
        std::vector<Ask> batch;
        std::uint64_t seen = 0;
        if (auto self = weak.lock()) {
            seen = self->work_.epoch();
            std::lock_guard lock(self->mutex_);
            auto n = std::min(self->pending_.size(), kMaxBatch);
            batch.assign(std::make_move_iterator(self->pending_.begin()),
                         std::make_move_iterator(self->pending_.begin() + static_cast<std::ptrdiff_t>(n)));
            self->pending_.erase(self->pending_.begin(),
                                 self->pending_.begin() + static_cast<std::ptrdiff_t>(n));
        } else {
            co_return;
        }
        if (batch.empty()) {
            auto self = weak.lock();
            if (!self) co_return;
            auto& work = self->work_;
            self.reset();  // the wait must not keep the batcher alive
            co_await work.wait(std::chrono::seconds(1), seen);
            continue;
        }
        auto self = weak.lock();
        if (!self) co_return;
        co_await self->send(std::move(batch));
        self->answered_.notify_all();
    }
}

net::Task<void> LeaseBatcher::send(std::vector<Ask> batch) {
    std::vector<std::pair<std::shared_ptr<GlobalLimit>, std::string>> asks;
    boost::json::array leases;
    for (auto& a : batch) {
        auto limit = a.limit.lock();
        if (!limit) continue;
        const auto& s = limit->settings();
        leases.push_back({{"bucket", limit->name() + "/" + a.key},
                          {"requests", s.requests},
                          {"per_ms", s.per.count()},
                          {"burst", s.capacity()},
                          {"want", limit->batch()}});
        asks.emplace_back(std::move(limit), std::move(a.key));
    }
    if (asks.empty()) co_return;
    auto res = co_await net::fetch(endpoint_, "POST", "/v1/leases",
                                   boost::json::serialize(boost::json::object{{"leases", std::move(leases)}}),
                                   "application/json", kRequestTimeout);
    boost::system::error_code ec;
    auto doc = res && res->status == 200 ? boost::json::parse(res->body, ec) : boost::json::value();
    const auto* granted = !ec && doc.is_object() ? doc.as_object().if_contains("granted") : nullptr;
    if (!granted || !granted->is_array() || granted->as_array().size() != asks.size()) {
        if (!failing_)
            telemetry::warn(
                "limit service failing; global limits are local until it answers",
                {{"uri", uri_},
                 {"error", res ? "status " + std::to_string(res->status) : res.error().message()}});
        failing_ = true;
        for (auto& [limit, key] : asks) limit->failed(key);
        co_return;
    }
    if (failing_) telemetry::info("limit service answering again", {{"uri", uri_}});
    failing_ = false;
    for (std::size_t i = 0; i < asks.size(); ++i) {
        const auto* g = granted->as_array()[i].if_object();
        const auto* tokens = g ? g->if_contains("tokens") : nullptr;
        const auto* retry = g ? g->if_contains("retry_after_ms") : nullptr;
        asks[i].first->granted(
            asks[i].second, tokens && tokens->is_int64() ? tokens->as_int64() : 0,
            std::chrono::milliseconds(retry && retry->is_int64() ? retry->as_int64() : 1000));
    }
}

}  // namespace plexus::gateway::filters
