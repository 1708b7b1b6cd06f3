#include "plexus/auth/credentials.hpp"

#include "plexus/core/files.hpp"
#include "plexus/net/http.hpp"

namespace plexus::auth {

std::string ClientCredentials::form() const {
    return "client_id=" + net::percent_encode(client_id) +
           "&client_secret=" + net::percent_encode(client_secret);
}

std::optional<ClientCredentials> CredentialsFile::load(std::string& why) {
    std::lock_guard lock(mutex_);
    auto stamp = core::stamp_of(path_);
    if (loaded_ && stamp == stamp_) return loaded_;
    auto doc = core::read_json_object(path_, &why);
    if (!doc) return std::nullopt;
    auto text = [&](std::string_view key) {
        const auto* v = doc->if_contains(key);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    ClientCredentials c{text("client_id"), text("client_secret")};
    if (c.client_id.empty() || c.client_secret.empty()) {
        why = path_ + ": client_id and client_secret are required";
        return std::nullopt;
    }
    stamp_ = stamp;
    loaded_ = std::move(c);
    return loaded_;
}

}  // namespace plexus::auth
