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

bool RevokedTokens::contains(std::string_view jti, std::string_view client_id, std::int64_t issued_at) const {
    std::shared_ptr<const State> state;
    {
        std::lock_guard lock(mutex_);
        state = state_;
    }
    if (!jti.empty() && state->jtis.find(jti) != state->jtis.end()) return true;
    if (client_id.empty() || state->clients.empty()) return false;
    auto c = state->clients.find(client_id);
    return c != state->clients.end() && issued_at <= c->second.issued_before;
}

void RevokedTokens::add(const std::vector<Revocation>& revoked, std::int64_t index, std::int64_t now) {
    std::lock_guard lock(mutex_);
    auto next = std::make_shared<State>();
    for (const auto& [jti, exp] : state_->jtis) {
        if (exp >= now) next->jtis.emplace(jti, exp);
    }
    for (const auto& [client, entry] : state_->clients) {
        if (entry.expires_at >= now) next->clients.emplace(client, entry);
    }
    for (const auto& r : revoked) {
        if (r.expires_at < now) continue;
        if (r.client_id.empty()) {
            next->jtis[r.jti] = r.expires_at;
            continue;
        }
        auto& entry = next->clients[r.client_id];  // the latest deletion counts
        entry.issued_before = std::max(entry.issued_before, r.issued_before);
        entry.expires_at = std::max(entry.expires_at, r.expires_at);
    }
    state_ = std::move(next);
    index_ = std::max(index_, index);
}

std::int64_t RevokedTokens::index() const {
    std::lock_guard lock(mutex_);
    return index_;
}

std::size_t RevokedTokens::size() const {
    std::lock_guard lock(mutex_);
    return state_->jtis.size() + state_->clients.size();
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
        std::vector<Revocation> revoked;
        for (const auto& item : list->as_array()) {
            const auto* o = item.if_object();
            if (!o) continue;
            const auto* jti = o->if_contains("jti");
            const auto* exp = o->if_contains("exp");
            const auto* client = o->if_contains("client_id");
            const auto* before = o->if_contains("issued_before");
            if (!jti || !jti->is_string() || !exp || !exp->is_int64()) continue;
            Revocation r{.jti = std::string(jti->as_string()), .expires_at = exp->as_int64()};
            if (client && client->is_string() && before && before->is_int64()) {
                r.client_id = std::string(client->as_string());
                r.issued_before = before->as_int64();
            }
            revoked.push_back(std::move(r));
        }
        self->add(revoked, index->as_int64(), seconds_now());
    }
}

}  // namespace plexus::auth
