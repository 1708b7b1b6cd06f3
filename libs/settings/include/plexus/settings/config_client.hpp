#pragma once
/// An instance's side of the config server: fetch its configuration, follow changes with the
/// server's blocking watch, say which version it runs (or why it refused one), and publish the
/// schema of the settings it loads. Used by the SDK and by the daemons.
///
///     settings::ConfigClient client({.url = "http://127.0.0.1:8888", .app = "catalog",
///                                    .profiles = "prod", .instance = id, .token = token_fn});
///     auto now = co_await client.fetch();                      // at startup
///     net::spawn(ex, settings::ConfigClient::follow(client_ptr, now->version, apply, stop), "config");
///
/// Thread-safe: calls may run concurrently from any io thread.

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "plexus/net/client.hpp"
#include "plexus/net/task.hpp"

namespace plexus::settings {

struct ConfigServer {
    std::string url;                   ///< http://host:port of the config server
    std::string app;                   ///< the application whose configuration this is
    std::string profiles = "default";  ///< "prod", "prod,eu"
    std::string instance;              ///< this instance's id (canaries choose by it)
    /// A bearer token for each call ("" for none: a server without identity); may fetch one.
    std::function<net::Task<std::string>()> token;
    std::chrono::milliseconds timeout{5000};  ///< per call, besides the watch's wait
    std::chrono::milliseconds wait{30'000};   ///< how long one watch call waits for a change
};

/// A ConfigServer::token that fetches the workload's own token (client credentials grant of the
/// client in `credentials_file`, from the token endpoint `token_uri`, renewed before it expires);
/// a failure is logged and the call goes without one. Throws std::invalid_argument for a
/// `token_uri` that is not http://host:port/path.
std::function<net::Task<std::string>()> client_token(const std::string& token_uri,
                                                     const std::string& credentials_file);

/// Where `instance` of `app` reads its configuration: the config server `url`, `profiles`, and a
/// token of the workload's own (client_token()) when both `token_uri` and `credentials_file` are
/// given. Throws std::invalid_argument as client_token() does.
ConfigServer config_server(std::string url, std::string app, std::string profiles, std::string instance,
                           const std::string& token_uri = {}, const std::string& credentials_file = {});

/// One version of an application's merged configuration.
struct Fetched {
    std::int64_t version = 0;  ///< 0: nothing configured for it yet
    boost::json::object config;
};

/// A call that did not work: why, for a log line or a startup error.
struct Failure {
    std::string why;
    int status = 0;  ///< the server's HTTP status, 0 when it did not answer
};

class ConfigClient {
  public:
    /// Throws std::invalid_argument for a URL that is not http://host:port, an empty app.
    explicit ConfigClient(ConfigServer server);

    /// The configuration now.
    net::Task<std::variant<Fetched, Failure>> fetch() const;
    /// Waits (up to the configured `wait`) for a version other than `known`: the new one, or
    /// nullopt-like Fetched with version == known when none came.
    net::Task<std::variant<Fetched, Failure>> next(std::int64_t known) const;
    /// Tells the server which version this instance runs: `offered` applied, or refused (then
    /// `running` is the one it keeps, `error` why). Failures are logged, not returned.
    net::Task<void> report(std::int64_t offered, std::int64_t running, bool applied, std::string error) const;
    /// Publishes `schema` (JSON Schema of the settings this application loads); the server's
    /// list of problems the current configuration has with it, or a Failure.
    net::Task<std::variant<std::vector<std::string>, Failure>> publish_schema(
        boost::json::value schema) const;

    /// Follows changes after version `from` until `*stop`: for each new version calls `apply`
    /// (which returns "" when applied, else why it refused; it runs on the blocking pool, one
    /// call at a time) and reports the outcome. Backs off
    /// (up to 5 s) while the server cannot be reached, logging each failure streak once.
    static net::Task<void> follow(std::shared_ptr<const ConfigClient> client, std::int64_t from,
                                  std::function<std::string(const Fetched&)> apply,
                                  std::shared_ptr<std::atomic<bool>> stop);

    /// A program's start with a config server: fetches its configuration (retrying while the
    /// server cannot be reached, for up to `give_up` or until `*stop`), applies it with
    /// `apply(fetched, true)` ("" when applied, else why not), reports the outcome, publishes
    /// `schema` when given (problems the server finds are logged), then follows changes on `ex`
    /// with `apply(fetched, false)` until `*stop`. "" when the program can start, else why not.
    static net::Task<std::string> start(std::shared_ptr<const ConfigClient> client,
                                        std::function<std::string(const Fetched&, bool initial)> apply,
                                        std::optional<boost::json::value> schema,
                                        std::shared_ptr<std::atomic<bool>> stop, net::Executor ex,
                                        std::chrono::milliseconds give_up = std::chrono::seconds(30));
    /// "config server URL APP/PROFILES version N": where a version came from, for messages.
    std::string source(std::int64_t version) const;

    const ConfigServer& server() const noexcept { return server_; }

  private:
    net::Task<std::variant<Fetched, Failure>> get(std::string target,
                                                  std::chrono::milliseconds timeout) const;
    net::Task<Result<net::Response>> call(std::string method, std::string target, std::string body,
                                          std::chrono::milliseconds timeout) const;

    ConfigServer server_;
    net::Endpoint endpoint_;
};

}  // namespace plexus::settings
