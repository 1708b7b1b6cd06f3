#pragma once
/// Blocking HTTP calls for the `plexus` commands people run (`login`, `identity ...`,
/// `config ...`): one io thread, plain http or https (verified against a CA file, e.g. the
/// development CA of `plexus up --tls`).

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"

namespace plexus::identity {

/// Where a server is: "http[s]://host:port[/prefix]".
struct ServerUrl {
    net::Endpoint endpoint;
    std::string prefix;  ///< "" or "/auth", no trailing slash
    bool https = false;
    std::string ca_file;  ///< for https: the CA the server's certificate must chain to

    /// nullopt for another form.
    static std::optional<ServerUrl> parse(std::string_view url, std::string ca_file = {});
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class CliHttp {
  public:
    CliHttp();
    ~CliHttp();
    CliHttp(const CliHttp&) = delete;
    CliHttp& operator=(const CliHttp&) = delete;

    /// One call to `url.prefix + path`; the response, or nullopt with `why` (unreachable, no answer).
    std::optional<net::Response> send(const ServerUrl& url, std::string method, std::string path,
                                      std::string body, HeaderList headers, std::string& why);
    /// A form POST (application/x-www-form-urlencoded) answered with a JSON object; nullopt with
    /// `why` (the OAuth error_description when there is one) for anything else.
    std::optional<boost::json::object> post_form(const ServerUrl& url, std::string path,
                                                 const HeaderList& fields, std::string& why);

    net::Runtime& runtime() noexcept { return runtime_; }

  private:
    net::Runtime runtime_{1};
    std::thread io_;
};

/// An access token of a confidential client (client credentials grant with `scope`) from the
/// token endpoint of the issuer at `issuer`; nullopt with `why`.
std::optional<std::string> client_token(CliHttp& http, const ServerUrl& issuer, const std::string& client_id,
                                        const std::string& client_secret, const std::string& scope,
                                        std::string& why);

}  // namespace plexus::identity
