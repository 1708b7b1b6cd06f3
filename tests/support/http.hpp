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

}  // namespace plexus::test
