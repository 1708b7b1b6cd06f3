#pragma once
/// A method + path router with `{param}` segments and a trailing `{name...}` catch-all.
/// Patterns are compiled once; matching walks segments without allocating.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/net/http.hpp"
#include "plexus/net/server.hpp"

namespace plexus::net {

/// A compiled path pattern: "/products/{id}", "/files/{path...}", "/health/live".
class PathPattern {
  public:
    /// Throws std::invalid_argument for a pattern that does not start with '/', has an empty or
    /// duplicate parameter name, or a catch-all that is not the last segment.
    explicit PathPattern(std::string_view pattern);
    /// Whether `path` matches; on success appends captures to `params` (if not null).
    bool match(std::string_view path, PathParams* params) const;
    const std::string& text() const noexcept { return text_; }
    /// Number of literal segments: more specific patterns win ties.
    std::size_t literal_count() const noexcept;

  private:
    struct Segment {
        std::string text;  // literal text or parameter name
        enum Kind { literal, param, rest } kind;
    };
    std::string text_;
    std::vector<Segment> segments_;
};

/// Routes requests to handlers. Build it at startup, then share it read-only across threads.
/// A path that matches no route answers 404; a path that matches only with other methods
/// answers 405 with `Allow`. All answers from the router itself are problem+json.
class Router {
  public:
    /// Adds a route; `method` "*" matches any method. `max_body_bytes` 0 = server default.
    void add(std::string method, std::string_view pattern, Handler handler, std::size_t max_body_bytes = 0);
    /// Called for every request no route takes, with the router's own 404 or 405 answer already
    /// in `res` (to keep, log, count or change). Set before serving.
    void set_unmatched(Handler handler);
    /// Dispatches `req` (fills `req.params`).
    Task<void> dispatch(Request& req, Response& res) const;
    /// The body limit of the route `req` would take (0 = server default).
    std::size_t body_limit(const Request& req) const;
    /// A server Handler that dispatches through this router (which must outlive the server).
    Handler handler() const;
    BodyLimit body_limit_fn() const;

  private:
    struct Route {
        std::string method;
        PathPattern pattern;
        Handler handler;
        std::size_t max_body_bytes;
    };
    // The route for `req`, its parameters decoded into `params`; else null, with the methods the
    // path allows in `allow`, and `malformed` set when a route for the method matched but a
    // parameter held a bad percent-escape.
    const Route* find(const Request& req, PathParams* params, std::string* allow, bool* malformed) const;
    std::vector<Route> routes_;
    Handler unmatched_;
};

}  // namespace plexus::net
