#include "plexus/auth/revoked_tokens.hpp"

#include <boost/json.hpp>
#include <chrono>

#include "plexus/net/client.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::auth {

namespace {
constexpr auto kWait = std::chrono::seconds(30);
constexpr auto kFirstBackoff = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

std::int64_t seconds_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

bool RevokedTokens::contains(std::string_view jti) const {
    if (jti.empty()) return false;
    std::shared_ptr<const std::map<std::string, std::int64_t, std::less<>>> snapshot;
    {
        std::lock_guard lock(mutex_);
        snapshot = revoked_;
    }
    return snapshot->find(jti) != snapshot->end();
}

void RevokedTokens::add(const std::vector<std::pair<std::string, std::int64_t>>& revoked, std::int64_t index,
                        std::int64_t now) {
    std::lock_guard lock(mutex_);
    auto next = std::make_shared<std::map<std::string, std::int64_t, std::less<>>>();
    for (const auto& [jti, exp] : *revoked_) {
        if (exp >= now) next->emplace(jti, exp);
    }
    for (const auto& [jti, exp] : revoked) {
        if (exp >= now) (*next)[jti] = exp;
    }
    revoked_ = std::move(next);
    index_ = std::max(index_, index);
}

std::int64_t RevokedTokens::index() const {
    std::lock_guard lock(mutex_);
    return index_;
}

std::size_t RevokedTokens::size() const {
    std::lock_guard lock(mutex_);
    return revoked_->size();
}

net::Task<void> RevokedTokens::watch(std::string uri, std::function<std::shared_ptr<RevokedTokens>()> lock) {
    auto url = net::parse_http_url(uri);
    if (!url) {
        telemetry::error("revocation watch not started: the URI must be http://host:port/path",
                         {{"uri", uri}});
        co_return;
    }
    auto backoff = kFirstBackoff;
    bool failing = false;
    while (true) {
        std::int64_t since = 0;
        if (auto self = lock())
            since = self->index();
        else
            co_return;
        auto res = co_await net::fetch(
            url->endpoint, "GET",
            url->path + "?since=" + std::to_string(since) + "&wait=" + std::to_string(kWait.count()) + "s",
            {}, {}, kWait + std::chrono::seconds(5));
        auto self = lock();
        if (!self) co_return;
        boost::system::error_code ec;
        auto doc = res && res->status == 200 ? boost::json::parse(res->body, ec) : boost::json::value();
        const auto* list = !ec && doc.is_object() ? doc.as_object().if_contains("revoked") : nullptr;
        const auto* index = !ec && doc.is_object() ? doc.as_object().if_contains("index") : nullptr;
        if (!list || !list->is_array() || !index || !index->is_int64()) {
            if (!failing) {
                telemetry::warn(
                    "revocation watch failing; retrying",
                    {{"uri", uri},
                     {"error", res ? "status " + std::to_string(res->status) : res.error().message()}});
            }
            failing = true;
            self.reset();
            co_await net::sleep_for(backoff);
            backoff = std::min(backoff * 2, kMaxBackoff);
            continue;
        }
        if (failing) telemetry::info("revocation watch recovered", {{"uri", uri}});
        failing = false;
        backoff = kFirstBackoff;
        std::vector<std::pair<std::string, std::int64_t>> revoked;
        for (const auto& item : list->as_array()) {
            const auto* o = item.if_object();
            if (!o) continue;
            const auto* jti = o->if_contains("jti");
            const auto* exp = o->if_contains("exp");
            if (jti && jti->is_string() && exp && exp->is_number())
                revoked.emplace_back(std::string(jti->as_string()), exp->to_number<std::int64_t>());
        }
        self->add(revoked, index->as_int64(), seconds_now());
    }
}

}  // namespace plexus::auth
