#pragma once
// A minimal blocking HTTP/1.1 client for tests (one request per connection, bounded by a
// timeout), independent of the library under test.

#include <chrono>
#include <map>
#include <string>

namespace plexus::test {

struct HttpResult {
    int status = 0;                              ///< 0: no answer (connection refused, reset or timed out)
    std::map<std::string, std::string> headers;  ///< lower-case names
    std::string body;
    std::string error;
};

HttpResult http(const std::string& method, int port, const std::string& target, const std::string& body = {},
                const std::map<std::string, std::string>& headers = {},
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

inline HttpResult http_get(int port, const std::string& target) { return http("GET", port, target); }

/// A client's id and secret, as `plexus identity clients create --json` prints them and the
/// identity server writes the first admin's (admin-credentials.json).
struct ClientCredentials {
    std::string id, secret;
};
/// The client_id and client_secret of a JSON document (text); empty ones when it has none.
ClientCredentials credentials_of(const std::string& json_text);

/// Asks the token endpoint `target` on `port` for a client-credentials token (credentials in the
/// form body; `scope` only when not empty). The whole answer.
HttpResult client_credentials(int port, const std::string& target, const ClientCredentials& client,
                              const std::string& scope = {});
/// The access_token of a token endpoint's 200 answer; "" for any other answer.
std::string access_token_of(const HttpResult& answer);

}  // namespace plexus::test
