#include "plexus/auth/jwks_cache.hpp"

#include <stdexcept>

#include "plexus/telemetry/log.hpp"

namespace plexus::auth {

namespace {
constexpr auto kFetchTimeout = std::chrono::milliseconds(2000);
constexpr auto kWaitStep = std::chrono::milliseconds(5);
}  // namespace

JwksCache::JwksCache(std::string jwks_uri, std::chrono::milliseconds min_refetch, core::Clock& clock)
    : uri_(std::move(jwks_uri)),
      min_refetch_(min_refetch),
      clock_(&clock),
      keys_(std::make_shared<const security::KeySet>()) {
    auto url = net::parse_http_url(uri_);
    if (!url || url->path.empty()) throw std::invalid_argument("jwks_uri: must be http://host:port/path");
    endpoint_ = url->endpoint;
    path_ = url->path;
}

JwksCache::JwksCache(security::KeySet keys)
    : keys_(std::make_shared<const security::KeySet>(std::move(keys))) {}

std::shared_ptr<const security::KeySet> JwksCache::keys() const {
    std::lock_guard lock(mutex_);
    return keys_;
}

net::Task<bool> JwksCache::refresh() {
    if (!clock_) co_return false;  // a static key set
    auto seen = generation_.load();
    {
        std::lock_guard lock(mutex_);
        auto now = clock_->now();
        if (!in_flight_.load() && last_attempt_ != core::SteadyTime{} && now - last_attempt_ < min_refetch_)
            co_return false;
    }
    bool expected = false;
    if (in_flight_.compare_exchange_strong(expected, true)) {
        {
            std::lock_guard lock(mutex_);
            last_attempt_ = clock_->now();
        }
        bool ok = co_await fetch();
        generation_.fetch_add(1);
        in_flight_.store(false);
        co_return ok;
    }
    // Another request is fetching: wait for it to end (bounded by its own timeout).
    for (auto waited = std::chrono::milliseconds(0); generation_.load() == seen && waited < kFetchTimeout * 2;
         waited += kWaitStep)
        co_await net::sleep_for(kWaitStep);
    co_return generation_.load() != seen;
}

net::Task<bool> JwksCache::fetch() {
    auto res = co_await net::fetch(endpoint_, "GET", path_, {}, {}, kFetchTimeout);
    if (!res || res->status != 200) {
        telemetry::warn("jwks fetch failed",
                        {{"jwks_uri", uri_},
                         {"error", res ? "status " + std::to_string(res->status) : res.error().message()}});
        co_return false;
    }
    std::string why;
    std::vector<std::string> skipped;
    auto keys = security::KeySet::from_json(res->body, &why, &skipped);
    if (!keys) {
        telemetry::warn("jwks rejected", {{"jwks_uri", uri_}, {"error", why}});
        co_return false;
    }
    for (const auto& s : skipped) telemetry::warn("jwks key skipped", {{"jwks_uri", uri_}, {"reason", s}});
    auto next = std::make_shared<const security::KeySet>(std::move(*keys));
    auto count = static_cast<std::int64_t>(next->keys().size());
    {
        std::lock_guard lock(mutex_);
        keys_ = std::move(next);
    }
    telemetry::info("jwks loaded", {{"jwks_uri", uri_}, {"keys", count}});
    co_return true;
}

}  // namespace plexus::auth
