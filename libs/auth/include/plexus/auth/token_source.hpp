#pragma once
/// A workload's own access token (OAuth 2.0 client credentials grant), for calls it makes on its
/// own behalf: fetched when first needed, reused while fresh, fetched anew once three quarters of
/// its lifetime have passed (one fetch at a time; callers keep the old token meanwhile), and
/// dropped when a callee refuses it. Thread-safe; share one per (client, scopes).
///
///     auth::TokenSource source(identity + "/token", credentials_file, {"inventory:write"});
///     auto t = co_await source.token();
///     if (!t.error.empty()) ...;  else req.headers.set("Authorization", "Bearer " + t.token);

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "plexus/auth/credentials.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/net/task.hpp"

namespace plexus::auth {

class TokenSource {
  public:
    /// `token_uri`: http://host:port/path of the token endpoint; throws std::invalid_argument for
    /// another form.
    TokenSource(std::string token_uri, std::string credentials_file, std::vector<std::string> scopes,
                core::Clock& clock = core::Clock::real());

    struct Answer {
        std::string token;  ///< the access token, when `error` is empty
        std::string error;  ///< why there is none
    };
    /// A token that is valid now, fetching one if needed (bounded by the fetch's timeout).
    net::Task<Answer> token();
    /// Forgets `token` (a callee answered 401 to it), so the next call fetches another.
    void forget(const std::string& token);

  private:
    struct Held {
        std::string token;
        core::SteadyTime refresh_at{}, expires_at{};
    };
    net::Task<void> fetch();

    net::Endpoint endpoint_;
    std::string path_;
    CredentialsFile credentials_;
    std::string scope_;
    core::Clock& clock_;
    std::mutex mutex_;
    Held held_;
    bool fetching_ = false;
    std::string last_error_;
    net::Signal fetched_;
};

}  // namespace plexus::auth
