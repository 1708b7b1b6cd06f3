#pragma once
/// HTTP/1.1 client with a keep-alive connection pool per endpoint. Each io_context has its own
/// pool (no locks); a task uses the pool of the io_context it runs on.
///
/// A request sent on a reused connection that turns out to be dead (closed or reset before any
/// byte of the response arrived) is retried once on a fresh connection, never on another pooled
/// one. Every request has a timeout covering connect, write and the whole response.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "plexus/core/result.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/task.hpp"

namespace plexus::net {

/// Errors of the net library.
enum class errc {
    connect_failed = 1,  ///< nothing accepted the connection (nothing was sent)
    timeout,             ///< the request's time ran out
    connection_closed,   ///< the peer closed or reset the connection mid-exchange
    protocol_error,      ///< the peer sent something that is not valid HTTP/1.1
    response_too_large,  ///< the response exceeded the configured limit
    pool_exhausted,      ///< every connection to the endpoint was busy until the timeout
    bad_address,         ///< the host is not a numeric address or resolvable name
    tls_failed,          ///< the TLS handshake failed: refused, or a certificate not trusted
};
const boost::system::error_category& net_category() noexcept;
inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), net_category()}; }

struct Endpoint {
    std::string host;  ///< numeric address or host name
    std::uint16_t port = 0;
    std::string to_string() const { return host + ":" + std::to_string(port); }
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// Parses "http://host:port" or "host:port"; nullopt for anything else.
std::optional<Endpoint> parse_endpoint(std::string_view text);
/// Parses an address to listen on, "host:port", where port 0 means "any free port".
std::optional<Endpoint> parse_listen_address(std::string_view text);

/// An http:// URL split for send(): where to connect and the target to ask for.
struct HttpUrl {
    Endpoint endpoint;
    std::string path;  ///< "" or "/..." (no query)
};
/// Parses "http://host:port[/path]"; nullopt for anything else (https, no port, a query).
std::optional<HttpUrl> parse_http_url(std::string_view url);

struct ClientSettings {
    /// Per io_context (one per core) and endpoint. 1024 (Envoy's default cluster limit): a
    /// smaller cap makes a proxy with 1,000 client connections queue requests behind a few
    /// hundred upstream ones, which shows as a p99 twice nginx's.
    std::size_t max_connections_per_endpoint = 1024;
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds idle_expiry{30'000};
    std::size_t max_response_bytes = 64 * 1024 * 1024;
    std::size_t max_header_bytes = 64 * 1024;
};

/// Sets the pool settings for io_contexts whose pool is not yet created. Call at startup.
void set_client_settings(const ClientSettings& settings);

/// Sends `request` to `endpoint` and reads the response into `response` (cleared first).
/// `request.target` must be origin-form; Host is set from the endpoint unless present;
/// Content-Length is set from the body. Hop-by-hop headers the caller left in are sent as they
/// are, so proxies strip them first. Errors are `net::errc` values; an HTTP error status is not
/// an error here.
Task<ErrorCode> send(const Endpoint& endpoint, const Request& request, Response& response,
                     std::chrono::milliseconds timeout);

/// Convenience: builds a request and returns the response.
Task<Result<Response>> fetch(const Endpoint& endpoint, std::string method, std::string target,
                             std::string body = {}, std::string content_type = {},
                             std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

/// Sends `request` to `endpoint` on a connection of its own (never one from the keep-alive pool,
/// never returned to it) and hands the response body to `on_data` piece by piece as it arrives:
/// for long-lived responses such as a watch that answers one chunked response with one JSON
/// document per event. The pieces follow the transfer framing (chunked, Content-Length or until
/// close, already decoded) but not the sender's chunk boundaries: a piece may hold part of a chunk
/// or several, so the caller frames its own records. `on_head`, when given, sees the status and
/// header fields once, before any body byte; an HTTP error status is not an error here (its body is
/// streamed like any other). Interim (1xx) responses are skipped. The request is written as send()
/// writes it (Host from the endpoint unless present, Content-Length from the body).
///
/// `idle_timeout` bounds connecting, sending the request and every wait for the next bytes of the
/// response; there is no bound on the whole exchange. Returns an empty code when the body ended
/// (chunked terminator, Content-Length reached, or the peer closed a body delimited by close) or
/// when `on_data` returned false (the connection is then closed). Otherwise a `net::errc`:
/// connect_failed, bad_address, timeout (idle, or connecting took longer than
/// ClientSettings::connect_timeout's default), connection_closed (the peer closed or reset before
/// the body ended), protocol_error, response_too_large (a head over 64 KiB).
///
/// Cancellation: the call ends at the latest when its io_context stops (the task is then abandoned
/// with the io_context and its socket closed when the io_context is destroyed). Callbacks run on
/// the calling task's thread and must not block. `endpoint` and `request` must stay valid until
/// the task completes.
Task<ErrorCode> stream(const Endpoint& endpoint, const Request& request,
                       std::function<bool(std::string_view chunk)> on_data,
                       std::chrono::milliseconds idle_timeout,
                       std::function<void(const Response& head)> on_head = {});

/// Pool statistics of the calling task's io_context (for tests and metrics).
struct PoolStats {
    std::size_t idle = 0;
    std::size_t busy = 0;
    std::uint64_t connects = 0;  ///< connections opened so far
    std::uint64_t reused = 0;    ///< requests sent on a pooled connection
    std::uint64_t retried = 0;   ///< requests retried after a reused connection died
};
Task<PoolStats> pool_stats(const Endpoint& endpoint);

}  // namespace plexus::net

template <>
struct boost::system::is_error_code_enum<plexus::net::errc> : std::true_type {};
