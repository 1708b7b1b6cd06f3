#pragma once
/// HTTP/1.1 server: one SO_REUSEPORT listener per io_context of a Runtime, keep-alive,
/// strict framing, limits, slow-client timeouts and graceful drain.
///
/// Framing errors answer 400 and close the connection: both Content-Length and
/// Transfer-Encoding, differing duplicate Content-Length, an invalid chunk size, a bare CR or LF
/// in the head, an obs-fold, a malformed request line, an HTTP/1.1 request without a Host field
/// and any request with more than one (RFC 9112 3.2). Limits: head size (431), header count
/// (431), body size per request (413). A client that does not finish its head within
/// `header_timeout` or stays idle past `idle_timeout` is disconnected.
///
/// HTTPS: with ServerSettings::tls set, every connection starts with a TLS handshake, which must
/// end within `handshake_timeout`; then the same HTTP rules, limits and timeouts apply. A plain
/// server pays nothing for this: the connection loop is compiled once per kind of stream.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "plexus/net/http.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/task.hpp"

namespace plexus::net {

class ServerTls;

struct ServerSettings {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  ///< 0 = the OS picks one; read it back with Server::port()
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_headers = 100;
    std::size_t max_body_bytes = 1024 * 1024;  ///< default per-request limit → 413
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds drain_timeout{10'000};
    /// Call the handler as soon as the head is parsed, with the body still unread
    /// (`Request::body_source` set when there is one): the handler reads it with read_body(), or
    /// answers without it (an authentication refusal, say), in which case no `100 Continue` is
    /// sent and the connection is closed after the answer. The BodyLimit is then not used.
    bool defer_body = false;
    /// Serve HTTPS with this certificate (net/tls.hpp); null: plain HTTP. It may be reloaded while
    /// the server runs: new handshakes use the new certificate.
    std::shared_ptr<const ServerTls> tls;
    /// How long a TLS client has, from the accept, to complete its handshake.
    std::chrono::milliseconds handshake_timeout{10'000};
};

/// How reading a deferred body ended.
enum class BodyStatus {
    complete,   ///< the whole body is in `Request::body`
    too_large,  ///< it exceeds the limit given to read_body(): answer 413
    malformed,  ///< invalid chunked encoding: answer 400
    closed,     ///< the connection failed or closed before the body was complete
};

/// The unread body of a request, given by the server (ServerSettings::defer_body).
class BodySource {
  public:
    /// Reads the whole body into `req.body`, at most `limit` bytes; sends `100 Continue` first
    /// when the client asked for it. Call once, on the request's own thread.
    virtual Task<BodyStatus> read(Request& req, std::size_t limit) = 0;

  protected:
    ~BodySource() = default;
};

/// Puts the answer for a body that could not be read in `res` (413 over `limit`, 400 for bad
/// chunks or a connection closed early), as the server itself words them. Returns true (and
/// leaves `res` alone) for `complete`.
bool answer_body_failure(BodyStatus status, std::size_t limit, const Request& req, Response& res);

/// Reads `req`'s body if it is still unread (`complete` at once when there is none or it was
/// read). Clears `req.body_source`.
inline Task<BodyStatus> read_body(Request& req, std::size_t limit) {
    BodySource* source = std::exchange(req.body_source, nullptr);
    if (!source) co_return BodyStatus::complete;
    co_return co_await source->read(req, limit);
}

/// Produces the response for a request. Runs on the connection's io_context; the request and
/// response live until the returned task completes. A thrown HttpError becomes a problem
/// response with its status; any other exception becomes a 500 problem.
using Handler = std::function<Task<void>(Request&, Response&)>;

/// Called after the head is parsed and before the body is read: the body limit for this
/// request (e.g. per route). Returning 0 means "the server default".
using BodyLimit = std::function<std::size_t(const Request&)>;

/// Counters a server keeps; read with Server::stats(). Approximate while running.
struct ServerStats {
    std::uint64_t connections_accepted = 0;
    std::uint64_t requests = 0;
    std::uint64_t bad_requests = 0;  ///< framing/limit errors answered by the server itself
    std::uint64_t timeouts = 0;      ///< connections closed by handshake/header/idle timeout
    std::uint64_t tls_handshake_failures = 0;  ///< TLS handshakes refused or broken off (timeouts too)
};

class Server {
  public:
    Server(Runtime& runtime, ServerSettings settings, Handler handler, BodyLimit body_limit = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Binds and starts accepting on every io_context. Throws std::system_error if the address
    /// cannot be bound.
    void start();
    /// The bound port (after start()).
    std::uint16_t port() const noexcept;
    /// Graceful stop: stops accepting, closes idle connections, lets in-flight requests finish
    /// (answered with `Connection: close`) for up to `drain_timeout`, then closes the rest.
    /// `done` is called (on an io thread) once every connection is gone, at the latest after
    /// `drain_timeout`: a handler still running then is not waited for; its coroutine ends when it
    /// returns or when the runtime stops. Thread-safe; idempotent (a second `done` is dropped).
    void shutdown(std::function<void()> done = {});
    /// Number of requests currently being handled, across all threads.
    std::size_t in_flight() const noexcept;
    ServerStats stats() const noexcept;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace plexus::net
