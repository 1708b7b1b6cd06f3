#include "plexus/net/server.hpp"

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <list>
#include <mutex>
#include <optional>
#include <type_traits>

#include "asio.hpp"
#include "plexus/net/tls.hpp"
#include "sweeper.hpp"
#include "wire.hpp"

namespace plexus::net {

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;

int body_failure_status(BodyStatus st) { return st == BodyStatus::too_large ? 413 : 400; }

std::string body_failure_detail(BodyStatus st, std::size_t limit) {
    switch (st) {
        case BodyStatus::too_large:
            return "request body exceeds the limit of " + std::to_string(limit) + " bytes";
        case BodyStatus::malformed:
            return "invalid chunked encoding";
        default:
            return "the connection closed before the request body was complete";
    }
}
constexpr std::chrono::milliseconds kRejectLinger{2000};

// A connection's byte stream: the socket itself, or TLS over it. The connection loop is compiled
// for both, so a plain connection runs the same code it would without TLS support.
using TlsStream = asio::ssl::stream<Socket&>;
template <class Stream>
inline constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
    struct Connection;

    // One per io_context; touched only from its own thread.
    struct Worker {
        Executor ex;
        Acceptor* acceptor = nullptr;  // owned by the accept loop; null once it has ended
        std::list<Connection*> connections;
        std::atomic<std::size_t> load{0};  // connections placed on this worker, read by every acceptor
        bool stopping = false;
        bool finished = false;
        Worker(Executor e, Acceptor* a) : ex(std::move(e)), acceptor(a) {}
    };

    struct Connection {
        Socket socket;
        Deadline deadline;
        bool idle = true;  // waiting for the first byte of a request
        explicit Connection(Socket s) : socket(std::move(s)) {}
    };

    Runtime& runtime;
    ServerSettings settings;
    Handler handler;
    BodyLimit body_limit;
    std::vector<std::unique_ptr<Worker>> workers;
    std::uint16_t port = 0;

    std::atomic<bool> shutting_down{false};
    std::atomic<std::size_t> in_flight{0};
    std::atomic<std::size_t> live_workers{0};
    std::atomic<std::uint64_t> accepted{0}, requests{0}, bad{0}, timeouts{0}, handshake_failures{0};
    std::mutex done_mutex;
    std::function<void()> on_done;

    Impl(Runtime& rt, ServerSettings s, Handler h, BodyLimit b)
        : runtime(rt), settings(std::move(s)), handler(std::move(h)), body_limit(std::move(b)) {}

    void start() {
        auto address = asio::ip::make_address(settings.address);
        std::uint16_t bound = settings.port;
        std::vector<std::unique_ptr<Acceptor>> acceptors;
        for (std::size_t i = 0; i < runtime.size(); ++i) {
            auto acceptor = std::make_unique<Acceptor>(runtime.executor(i));
            tcp::endpoint ep(address, bound);
            acceptor->open(ep.protocol());
            acceptor->set_option(asio::socket_base::reuse_address(true));
            int one = 1;
            ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
            acceptor->bind(ep);
            acceptor->listen(asio::socket_base::max_listen_connections);
            bound = acceptor->local_endpoint().port();
            acceptors.push_back(std::move(acceptor));
        }
        port = bound;
        for (std::size_t i = 0; i < acceptors.size(); ++i) {
            workers.push_back(std::make_unique<Worker>(runtime.executor(i), acceptors[i].get()));
        }
        live_workers = workers.size();
        for (std::size_t i = 0; i < workers.size(); ++i) {
            spawn(workers[i]->ex, accept_loop(shared_from_this(), workers[i].get(), std::move(acceptors[i])),
                  "http accept loop");
        }
    }

    // The loop owns its acceptor so that the acceptor dies with the pending work of its own
    // io_context: the Impl can outlive that io_context (the last reference may be a coroutine of
    // another one that is destroyed later), and must then not destroy the acceptor itself.
    static Task<void> accept_loop(std::shared_ptr<Impl> self, Worker* w, std::unique_ptr<Acceptor> acceptor) {
        while (true) {
            auto [ec, socket] = co_await acceptor->async_accept(use_task);
            if (ec == asio::error::operation_aborted || w->stopping) break;
            if (ec) {
                // EMFILE and friends: back off briefly instead of spinning.
                co_await sleep_for(std::chrono::milliseconds(50));
                continue;
            }
            self->accepted.fetch_add(1, std::memory_order_relaxed);
            socket.set_option(tcp::no_delay(true));
            // SO_REUSEPORT spreads connections by a hash of their addresses, which can leave one
            // thread with most of a few long-lived connections (a load balancer's, say); the
            // connection goes to the worker that holds the fewest instead.
            Worker* target = self->least_loaded(w);
            if (target != w) {
                boost::system::error_code move_ec;
                auto protocol = socket.local_endpoint(move_ec).protocol();
                auto fd = socket.release(move_ec);
                if (move_ec) continue;
                socket = Socket(target->ex, protocol, fd);
            }
            target->load.fetch_add(1, std::memory_order_relaxed);
            spawn(target->ex, serve(self, target, std::move(socket)), "http connection");
        }
        w->acceptor = nullptr;
    }

    Worker* least_loaded(Worker* own) {
        Worker* best = own;
        auto best_load = own->load.load(std::memory_order_relaxed);
        for (auto& w : workers) {
            auto l = w->load.load(std::memory_order_relaxed);
            if (l < best_load) best = w.get(), best_load = l;
        }
        return best;
    }

    // Writes `a` then `b`; the operation itself, awaited in place (no frame of its own). The
    // bytes must stay put until it completes.
    template <class Stream>
    static auto write_all(Stream& s, std::string_view a, std::string_view b) {
        std::array<asio::const_buffer, 2> bufs{asio::buffer(a), asio::buffer(b)};
        return asio::async_write(s, bufs, use_task);
    }

    static Task<void> serve(std::shared_ptr<Impl> self, Worker* w, Socket socket) {
        Connection conn(std::move(socket));
        auto it = w->connections.insert(w->connections.end(), &conn);
        DeadlineScope scope(w->ex, conn.deadline, conn.socket);
        try {
            if (self->settings.tls)
                co_await self->serve_tls(w, conn);
            else
                co_await self->session(w, conn, conn.socket);
        } catch (...) {
            // an I/O failure on this connection only; it is closed below
        }
        boost::system::error_code ignored;
        conn.socket.shutdown(tcp::socket::shutdown_both, ignored);
        conn.socket.close(ignored);
        w->connections.erase(it);
        w->load.fetch_sub(1, std::memory_order_relaxed);
        self->maybe_finish(w);
    }

    // The TLS handshake, bounded by handshake_timeout, then the HTTP session over TLS.
    Task<void> serve_tls(Worker* w, Connection& conn) {
        SSL* ssl = detail::new_server_session(*settings.tls);
        if (!ssl) {
            handshake_failures.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        TlsStream stream(conn.socket, ssl);  // owns `ssl` from here
        conn.deadline.set_after(settings.handshake_timeout);
        auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, use_task);
        if (ec) {
            handshake_failures.fetch_add(1, std::memory_order_relaxed);
            if (conn.deadline.expired) timeouts.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        co_await session(w, conn, stream);
        co_await close_notify(conn, stream);
    }

    // Sends TLS's close_notify (once) without waiting for the peer's: what a client needs to know
    // that the data before it was complete. Bounded like a rejection's linger.
    static Task<void> close_notify(Connection& conn, TlsStream& stream) {
        SSL* ssl = stream.native_handle();
        if (!conn.socket.is_open() || conn.deadline.expired || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
            co_return;
        // Marking the peer's alert as received makes the shutdown complete once ours is written.
        SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
        conn.deadline.set_after(kRejectLinger);
        auto [ec] = co_await stream.async_shutdown(use_task);
        (void)ec;  // the connection is closed either way
    }

    // Sends a problem response for a request the server itself rejects, then the caller closes.
    template <class Stream>
    Task<void> reject(Connection& conn, Stream& stream, int status, std::string_view detail,
                      std::string_view instance = {}) {
        bad.fetch_add(1, std::memory_order_relaxed);
        Response res;
        res.problem(status, reason_phrase(status), detail, instance);
        co_await answer_and_linger(conn, stream, res, false);
    }

    // Sends `res` on a connection that closes after it. Closing with unread request bytes (the
    // rest of a body) makes the kernel send a reset, which can destroy the response before the
    // client reads it; so half-close and discard what the client still sends until it closes or
    // kRejectLinger passes.
    // Over TLS, the close_notify goes first and what the client still sends is discarded unread
    // (undecrypted).
    template <class Stream>
    static Task<void> answer_and_linger(Connection& conn, Stream& stream, const Response& res,
                                        bool head_only) {
        std::string head;
        wire::serialize_response_head(res, true, wire::http_date(), head, head_only);
        conn.deadline.set_after(kRejectLinger);
        auto [ec, written] = co_await write_all(stream, head, head_only ? std::string_view{} : res.body);
        if (ec) co_return;
        if constexpr (kTls<Stream>) {
            co_await close_notify(conn, stream);
            if (!conn.socket.is_open()) co_return;
            conn.deadline.set_after(kRejectLinger);
        }
        conn.socket.shutdown(tcp::socket::shutdown_send, ec);
        std::array<char, kReadChunk> discard;
        while (!ec) {
            auto [rec, n] = co_await conn.socket.async_read_some(asio::buffer(discard), use_task);
            ec = rec;
        }
    }

    // Reads the body `framing` announces into `req.body`, at most `limit` bytes, answering
    // `Expect: 100-continue` first. Leaves the connection's deadline cleared.
    template <class Stream>
    Task<BodyStatus> read_body(Connection& conn, Stream& stream, wire::ReadBuffer& buf,
                               wire::ChunkedDecoder& chunked, const wire::Framing& framing, Request& req,
                               std::size_t limit) {
        if (framing.kind == wire::Framing::none) co_return BodyStatus::complete;
        if (framing.kind == wire::Framing::sized && framing.length > limit) co_return BodyStatus::too_large;
        // The body gets its own allowance: a large upload is not cut off by the head's timeout.
        conn.deadline.set_after(settings.idle_timeout);
        if (auto expect = req.headers.get("expect"); expect && iequals(*expect, "100-continue")) {
            auto [ec, written] = co_await write_all(stream, "HTTP/1.1 100 Continue\r\n\r\n", {});
            if (ec) co_return BodyStatus::closed;
        }
        if (framing.kind == wire::Framing::sized) {
            req.body.reserve(framing.length);
            while (req.body.size() < framing.length) {
                if (buf.empty()) {
                    auto [ec, n] = co_await stream.async_read_some(
                        asio::buffer(buf.prepare(kReadChunk), kReadChunk), use_task);
                    if (ec) co_return BodyStatus::closed;
                    buf.commit(n);
                }
                auto take = std::min<std::size_t>(framing.length - req.body.size(), buf.size());
                req.body.append(buf.view().substr(0, take));
                buf.consume(take);
            }
        } else {
            chunked.reset();
            while (true) {
                std::size_t used = 0;
                auto st = chunked.feed(buf.view(), req.body, limit, used);
                buf.consume(used);
                if (st == wire::ChunkedDecoder::Status::done) break;
                if (st == wire::ChunkedDecoder::Status::bad_chunk) co_return BodyStatus::malformed;
                if (st == wire::ChunkedDecoder::Status::too_large) co_return BodyStatus::too_large;
                auto [ec, n] = co_await stream.async_read_some(
                    asio::buffer(buf.prepare(kReadChunk), kReadChunk), use_task);
                if (ec) co_return BodyStatus::closed;
                buf.commit(n);
            }
        }
        conn.deadline.clear();
        co_return BodyStatus::complete;
    }

    // The unread body of one request, for a handler of a server that defers bodies.
    template <class Stream>
    struct DeferredBody final : BodySource {
        Impl& impl;
        Connection& conn;
        Stream& stream;
        wire::ReadBuffer& buf;
        wire::ChunkedDecoder& chunked;
        wire::Framing framing;
        std::optional<BodyStatus> status;  // set once read() ran to its end
        DeferredBody(Impl& i, Connection& c, Stream& s, wire::ReadBuffer& b, wire::ChunkedDecoder& d,
                     wire::Framing f)
            : impl(i), conn(c), stream(s), buf(b), chunked(d), framing(f) {}
        Task<BodyStatus> read(Request& req, std::size_t limit) override {
            auto st = co_await impl.read_body(conn, stream, buf, chunked, framing, req, limit);
            status = st;
            co_return st;
        }
    };

    template <class Stream>
    Task<void> session(Worker* w, Connection& conn, Stream& stream) {
        wire::ReadBuffer buf;
        wire::HeadScanner scanner;
        wire::ChunkedDecoder chunked;
        Request req;
        Response res;
        std::string out;
        auto remote = conn.socket.remote_endpoint().address().to_string();

        while (true) {
            // ---- read the head
            conn.idle = true;
            if (w->stopping) co_return;
            conn.deadline.set_after(settings.idle_timeout);
            scanner.reset();
            bool started = false;
            while (true) {
                // Tolerate empty lines before a request line (RFC 9112 2.2).
                while (buf.size() >= 2 && buf.view().substr(0, 2) == "\r\n") buf.consume(2);
                if (!buf.empty()) {
                    if (!started) {
                        started = true;
                        conn.idle = false;
                        conn.deadline.set_after(settings.header_timeout);
                    }
                    auto st = scanner.scan(buf.view(), settings.max_header_bytes);
                    if (st == wire::HeadScanner::Status::complete) break;
                    if (st == wire::HeadScanner::Status::bad_line_ending) {
                        co_await reject(conn, stream, 400, "header lines must end with CRLF");
                        co_return;
                    }
                    if (st == wire::HeadScanner::Status::too_large) {
                        co_await reject(conn, stream, 431, "request head exceeds the size limit");
                        co_return;
                    }
                }
                auto [ec, n] = co_await stream.async_read_some(
                    asio::buffer(buf.prepare(kReadChunk), kReadChunk), use_task);
                if (ec) {
                    if (conn.deadline.expired) timeouts.fetch_add(1, std::memory_order_relaxed);
                    co_return;
                }
                buf.commit(n);
            }
            conn.idle = false;

            // ---- parse it
            req.clear();
            res.clear();
            wire::Framing framing;
            auto err = wire::parse_request_head(buf.view().substr(0, scanner.head_size()),
                                                settings.max_headers, req, framing);
            buf.consume(scanner.head_size());
            if (err) {
                co_await reject(conn, stream, err.status, err.detail);
                co_return;
            }
            req.remote_address = remote;
            if constexpr (kTls<Stream>) req.secure = true;

            // ---- read the body, or let the handler do it
            std::optional<DeferredBody<Stream>> deferred;
            if (settings.defer_body) {
                if (framing.kind != wire::Framing::none) {
                    deferred.emplace(*this, conn, stream, buf, chunked, framing);
                    req.body_source = &*deferred;
                }
            } else if (framing.kind != wire::Framing::none) {
                std::size_t limit = settings.max_body_bytes;
                if (body_limit) {
                    if (auto l = body_limit(req)) limit = l;
                }
                auto st = co_await read_body(conn, stream, buf, chunked, framing, req, limit);
                switch (st) {
                    case BodyStatus::complete:
                        break;
                    case BodyStatus::too_large:
                        co_await reject(conn, stream, 413, body_failure_detail(BodyStatus::too_large, limit),
                                        req.path());
                        co_return;
                    case BodyStatus::malformed:
                        co_await reject(conn, stream, 400, body_failure_detail(BodyStatus::malformed, limit),
                                        req.path());
                        co_return;
                    case BodyStatus::closed:
                        co_return;
                }
            }

            // ---- handle
            conn.deadline.clear();
            requests.fetch_add(1, std::memory_order_relaxed);
            in_flight.fetch_add(1, std::memory_order_relaxed);
            try {
                co_await handler(req, res);
            } catch (const HttpError& e) {
                res.clear();
                res.problem(e.status(), e.title(), e.what(), req.path());
            } catch (...) {
                res.clear();
                res.problem(500, "Internal Server Error", "the request could not be handled", req.path());
            }
            in_flight.fetch_sub(1, std::memory_order_relaxed);

            // ---- respond
            if (deferred && deferred->status != BodyStatus::complete) {
                // The body was left unread, or not read to its end: the connection cannot carry
                // another request.
                if (deferred->status == BodyStatus::closed) co_return;
                co_await answer_and_linger(conn, stream, res, req.method == "HEAD");
                co_return;
            }
            bool close = !req.keep_alive || w->stopping;
            out.clear();
            wire::serialize_response_head(res, close, wire::http_date(), out, req.method == "HEAD");
            if (req.version_minor == 0 && !close) {
                // HTTP/1.0 keep-alive must be confirmed explicitly.
                out.insert(out.size() - 2, "Connection: keep-alive\r\n");
            }
            conn.deadline.set_after(settings.idle_timeout);
            // The head has no Content-Length for 1xx/204/304, so a body set anyway would be read as
            // the next response.
            bool no_body = req.method == "HEAD" || res.status < 200 || res.status == 204 || res.status == 304;
            std::string_view body = no_body ? std::string_view{} : std::string_view(res.body);
            if constexpr (kTls<Stream>) {
                // TLS writes each buffer as records of its own: a small body joins the head in one.
                if (body.size() <= kReadChunk) out += body, body = {};
            }
            auto [ec, written] = co_await write_all(stream, out, body);
            if (ec || close) co_return;
        }
    }

    void maybe_finish(Worker* w) {
        if (!w->stopping || !w->connections.empty() || w->finished) return;
        finish(w);
    }

    // The drain is bounded: a handler still running at drain_timeout (its socket already closed
    // by the deadline) is not waited for; its coroutine ends when it returns or the runtime stops.
    static Task<void> finish_after_drain(std::shared_ptr<Impl> self, Worker* w) {
        co_await sleep_for(self->settings.drain_timeout);
        if (w->finished) co_return;
        boost::system::error_code ignored;
        for (auto* c : w->connections) c->socket.close(ignored);
        self->finish(w);
    }

    void finish(Worker* w) {
        w->finished = true;
        {
            if (live_workers.fetch_sub(1) == 1) {
                std::function<void()> done;
                {
                    std::lock_guard lock(done_mutex);
                    done = std::move(on_done);
                }
                if (done) done();
            }
        }
    }

    void shutdown(std::function<void()> done) {
        if (shutting_down.exchange(true)) return;
        {
            std::lock_guard lock(done_mutex);
            on_done = std::move(done);
        }
        for (auto& wp : workers) {
            Worker* w = wp.get();
            asio::dispatch(w->ex, [self = shared_from_this(), w] {
                w->stopping = true;
                boost::system::error_code ignored;
                if (w->acceptor) w->acceptor->close(ignored);
                for (auto* c : w->connections) {
                    if (c->idle)
                        c->socket.close(ignored);
                    else
                        c->deadline.set_after(self->settings.drain_timeout);
                }
                // A connection waiting only on its idle deadline is closed now; busy ones finish.
                self->maybe_finish(w);
                if (!w->finished) spawn(w->ex, finish_after_drain(self, w), "http drain");
            });
        }
    }
};

bool answer_body_failure(BodyStatus status, std::size_t limit, const Request& req, Response& res) {
    if (status == BodyStatus::complete) return true;
    auto code = body_failure_status(status);
    res.problem(code, reason_phrase(code), body_failure_detail(status, limit), req.path());
    return false;
}

Server::Server(Runtime& runtime, ServerSettings settings, Handler handler, BodyLimit body_limit)
    : impl_(std::make_shared<Impl>(runtime, std::move(settings), std::move(handler), std::move(body_limit))) {
}

Server::~Server() = default;

void Server::start() { impl_->start(); }
std::uint16_t Server::port() const noexcept { return impl_->port; }
void Server::shutdown(std::function<void()> done) { impl_->shutdown(std::move(done)); }
std::size_t Server::in_flight() const noexcept { return impl_->in_flight.load(); }

ServerStats Server::stats() const noexcept {
    return {impl_->accepted.load(), impl_->requests.load(), impl_->bad.load(), impl_->timeouts.load(),
            impl_->handshake_failures.load()};
}

}  // namespace plexus::net
