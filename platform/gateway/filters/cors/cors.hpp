#pragma once
/// The `cors` filter: Cross-Origin Resource Sharing (the Fetch standard's CORS protocol) for
/// browsers calling the route from other origins.
///
///     filters:
///       - name: cors
///         allow_origins: ["https://shop.example"]   # exact origins, or ["*"] for any
///         allow_methods: [GET, POST]                # default: GET, HEAD, POST
///         allow_headers: [Content-Type, Authorization]
///         expose_headers: [X-Request-Id]
///         allow_credentials: false                  # true is refused together with "*"
///         max_age: 10m                              # how long a browser may cache a preflight
///
/// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered by the
/// filter itself, before the body is read and without calling the upstream: 204 with the
/// Access-Control-Allow-* fields, or 403 problem+json when the origin, the method or a requested
/// header is not allowed. Other requests from an allowed origin get Access-Control-Allow-Origin
/// (and -Credentials, -Expose-Headers) on their answer; from another origin they pass unchanged,
/// so the browser withholds the answer from the page. `Vary: Origin` is set whenever the answer
/// depends on it. A route whose `match.methods` leaves out OPTIONS never sees preflights.

#include <chrono>
#include <string>
#include <vector>

#include "plexus/gateway/filter.hpp"

namespace plexus::gateway::filters {

/// The filter's settings.
struct CorsConfig final : FilterConfig {
    std::vector<std::string> allow_origins;
    std::vector<std::string> allow_methods{"GET", "HEAD", "POST"};
    std::vector<std::string> allow_headers;
    std::vector<std::string> expose_headers;
    bool allow_credentials = false;
    std::chrono::milliseconds max_age{600'000};
    void to_json(boost::json::object& out) const override;
};

/// The factory registered as "cors".
const FilterFactory& cors_factory() noexcept;

}  // namespace plexus::gateway::filters
