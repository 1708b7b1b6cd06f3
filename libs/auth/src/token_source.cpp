#include "plexus/auth/token_source.hpp"

#include <boost/json.hpp>
#include <stdexcept>

#include "plexus/net/http.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::auth {

namespace {
constexpr auto kFetchTimeout = std::chrono::milliseconds(3000);
}

TokenSource::TokenSource(std::string token_uri, std::string credentials_file, std::vector<std::string> scopes,
                         core::Clock& clock)
    : credentials_(std::move(credentials_file)), clock_(clock) {
    auto url = net::parse_http_url(token_uri);
    if (!url || url->path.empty()) throw std::invalid_argument("token_uri: must be http://host:port/path");
    endpoint_ = url->endpoint;
    path_ = url->path;
    for (const auto& s : scopes) scope_ += (scope_.empty() ? "" : " ") + s;
}

net::Task<TokenSource::Answer> TokenSource::token() {
    auto seen = fetched_.epoch();
    bool fetch_now = false;
    std::string usable;
    {
        std::lock_guard lock(mutex_);
        auto now = clock_.now();
        bool valid = !held_.token.empty() && now < held_.expires_at;
        if (valid) usable = held_.token;
        if (!fetching_ && (!valid || now >= held_.refresh_at)) fetching_ = fetch_now = true;
    }
    if (fetch_now)
        co_await fetch();  // a failed early refresh leaves the current token
    else if (!usable.empty())
        co_return Answer{std::move(usable), {}};
    else
        co_await fetched_.wait(kFetchTimeout * 2, seen);
    std::lock_guard lock(mutex_);
    if (!held_.token.empty() && clock_.now() < held_.expires_at) co_return Answer{held_.token, {}};
    co_return Answer{{}, last_error_.empty() ? "no token yet" : last_error_};
}

void TokenSource::forget(const std::string& token) {
    std::lock_guard lock(mutex_);
    if (held_.token == token) held_ = Held{};
}

net::Task<void> TokenSource::fetch() {
    std::string error;
    Held next;
    auto creds = credentials_.load(error);
    if (creds) {
        auto body = "grant_type=client_credentials&" + creds->form();
        if (!scope_.empty()) body += "&scope=" + net::percent_encode(scope_);
        auto started = clock_.now();
        auto res = co_await net::fetch(endpoint_, "POST", path_, std::move(body),
                                       "application/x-www-form-urlencoded", kFetchTimeout);
        boost::system::error_code ec;
        auto doc = res ? boost::json::parse(res->body, ec) : boost::json::value();
        const auto* o = !ec ? doc.if_object() : nullptr;
        const auto* token = o ? o->if_contains("access_token") : nullptr;
        const auto* expires_in = o ? o->if_contains("expires_in") : nullptr;
        if (res && res->status == 200 && token && token->is_string() && expires_in &&
            expires_in->is_int64() && expires_in->as_int64() > 0) {
            auto ttl = std::chrono::seconds(expires_in->as_int64());
            next.token = std::string(token->as_string());
            next.refresh_at = started + ttl * 3 / 4;
            // A little before the issuer's expiry, so a token is never sent as it lapses.
            next.expires_at =
                started + ttl - std::min<std::chrono::seconds>(ttl / 10, std::chrono::seconds(10));
        } else if (!res) {
            error = "token endpoint unreachable: " + res.error().message();
        } else {
            const auto* why = o ? o->if_contains("error_description") : nullptr;
            error = "token endpoint answered " + std::to_string(res->status) +
                    (why && why->is_string() ? ": " + std::string(why->as_string()) : std::string());
        }
    }
    {
        std::lock_guard lock(mutex_);
        if (!next.token.empty()) {
            held_ = std::move(next);
            last_error_.clear();
        } else {
            last_error_ = error;
        }
        fetching_ = false;
    }
    if (!error.empty()) telemetry::warn("service token not fetched", {{"error", error}});
    fetched_.notify_all();
}

}  // namespace plexus::auth
