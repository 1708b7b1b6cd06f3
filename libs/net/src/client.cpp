#include "plexus/net/client.hpp"

#include <charconv>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "asio.hpp"
#include "sweeper.hpp"
#include "wire.hpp"

namespace plexus::net {

namespace {

class NetCategory final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "plexus.net"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::connect_failed:
                return "connection refused or unreachable";
            case errc::timeout:
                return "timed out";
            case errc::connection_closed:
                return "connection closed by peer";
            case errc::protocol_error:
                return "invalid HTTP response";
            case errc::response_too_large:
                return "response too large";
            case errc::pool_exhausted:
                return "no free connection to the endpoint";
            case errc::bad_address:
                return "bad address";
            case errc::tls_failed:
                return "TLS handshake failed";
        }
        return "unknown net error";
    }
};

std::mutex settings_mutex;
ClientSettings global_settings;

constexpr std::size_t kReadChunk = 16 * 1024;

struct Connection {
    Socket socket;
    wire::ReadBuffer buf;
    Deadline deadline;
    std::chrono::steady_clock::time_point idle_since;
    std::string out;
    explicit Connection(const Executor& ex) : socket(ex) {}
};

struct EndpointPool {
    std::vector<std::unique_ptr<Connection>> idle;  // most recently used at the back
    std::size_t busy = 0;
    std::deque<Timer*> waiters;
    PoolStats stats;
    std::string host_header;
    std::optional<tcp::endpoint> resolved;
};

// The connection pools of one io_context; only its thread touches them.
class ClientPool : public asio::execution_context::service {
  public:
    using key_type = ClientPool;
    static inline asio::execution_context::id id;

    explicit ClientPool(asio::execution_context& ctx) : asio::execution_context::service(ctx) {
        std::lock_guard lock(settings_mutex);
        settings = global_settings;
    }
    static ClientPool& of(const Executor& ex) { return asio::use_service<ClientPool>(ex.context()); }

    EndpointPool& pool(const Endpoint& ep) {
        char port[8];
        auto [end, ec] = std::to_chars(port, port + sizeof port, ep.port);
        key.clear();
        key += ep.host;
        key += ':';
        key.append(port, end);
        auto it = pools.find(key);
        if (it == pools.end()) {
            it = pools.emplace(key, EndpointPool{}).first;
            it->second.host_header = key;
        }
        return it->second;
    }

    void release(EndpointPool& p, std::unique_ptr<Connection> c) {
        --p.busy;
        if (c) {
            c->idle_since = std::chrono::steady_clock::now();
            p.idle.push_back(std::move(c));
        }
        wake_one(p);
    }

    void wake_one(EndpointPool& p) {
        if (!p.waiters.empty()) {
            auto* t = p.waiters.front();
            p.waiters.pop_front();
            t->cancel();
        }
    }

    ClientSettings settings;
    std::unordered_map<std::string, EndpointPool> pools;
    std::string key;

  private:
    void shutdown() override { pools.clear(); }
};

// The read of what the peer sends next into the connection's buffer: the operation itself, to be
// awaited in place (a coroutine of its own would cost a frame per read).
auto read_some(Connection& c) {
    return c.socket.async_read_some(asio::buffer(c.buf.prepare(kReadChunk), kReadChunk), use_task);
}

ErrorCode read_error(const Connection& c) noexcept {
    return c.deadline.expired ? errc::timeout : errc::connection_closed;
}

// Reads one response into `res`. `received_any` reports whether any response byte arrived.
Task<ErrorCode> read_response(Connection& c, const Request& req, Response& res,
                              const ClientSettings& settings, bool& received_any, bool& reusable) {
    wire::HeadScanner scanner;
    while (true) {
        scanner.reset();
        while (true) {
            if (!c.buf.empty()) {
                received_any = true;
                auto st = scanner.scan(c.buf.view(), settings.max_header_bytes);
                if (st == wire::HeadScanner::Status::complete) break;
                if (st == wire::HeadScanner::Status::bad_line_ending) co_return errc::protocol_error;
                if (st == wire::HeadScanner::Status::too_large) co_return errc::response_too_large;
            }
            auto [ec, n] = co_await read_some(c);
            if (ec) co_return read_error(c);
            c.buf.commit(n);
        }
        res.clear();
        wire::Framing framing;
        bool keep_alive = true;
        auto err = wire::parse_response_head(c.buf.view().substr(0, scanner.head_size()), req.method, res,
                                             framing, keep_alive);
        c.buf.consume(scanner.head_size());
        if (err) co_return errc::protocol_error;
        if (res.status < 200) continue;  // interim responses (100 Continue) are skipped
        reusable = keep_alive;

        if (framing.kind == wire::Framing::sized) {
            if (framing.length > settings.max_response_bytes) co_return errc::response_too_large;
            res.body.reserve(framing.length);
            while (res.body.size() < framing.length) {
                if (c.buf.empty()) {
                    auto [ec, n] = co_await read_some(c);
                    if (ec) co_return read_error(c);
                    c.buf.commit(n);
                }
                auto take = std::min<std::size_t>(framing.length - res.body.size(), c.buf.size());
                res.body.append(c.buf.view().substr(0, take));
                c.buf.consume(take);
            }
        } else if (framing.kind == wire::Framing::chunked) {
            wire::ChunkedDecoder decoder;
            while (true) {
                std::size_t used = 0;
                auto st = decoder.feed(c.buf.view(), res.body, settings.max_response_bytes, used);
                c.buf.consume(used);
                if (st == wire::ChunkedDecoder::Status::done) break;
                if (st == wire::ChunkedDecoder::Status::bad_chunk) co_return errc::protocol_error;
                if (st == wire::ChunkedDecoder::Status::too_large) co_return errc::response_too_large;
                auto [ec, n] = co_await read_some(c);
                if (ec) co_return read_error(c);
                c.buf.commit(n);
            }
        } else if (framing.kind == wire::Framing::until_close) {
            while (true) {
                res.body.append(c.buf.view());
                c.buf.clear();
                if (res.body.size() > settings.max_response_bytes) co_return errc::response_too_large;
                auto [ec, n] = co_await read_some(c);
                if (ec == asio::error::eof) break;
                if (ec) co_return read_error(c);
                c.buf.commit(n);
            }
            reusable = false;
        }
        // Bytes beyond the response on a connection we reuse mean the peer misbehaved.
        if (!c.buf.empty()) reusable = false;
        co_return ErrorCode{};
    }
}

// Writes the request; the operation itself, awaited in place by send.
auto write_request(Connection& c, const Request& req, const EndpointPool& pool) {
    c.out.clear();
    wire::serialize_request_head(req, pool.host_header, c.out);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(c.out), asio::buffer(req.body)};
    return asio::async_write(c.socket, bufs, use_task);
}

Task<ErrorCode> connect(Connection& c, EndpointPool& pool, const Endpoint& ep,
                        std::chrono::steady_clock::time_point deadline, const ClientSettings& settings) {
    if (!pool.resolved) {
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(ep.host, ec);
        if (!ec) {
            pool.resolved = tcp::endpoint(addr, ep.port);
        } else {
            Resolver resolver(c.socket.get_executor());
            auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_task);
            if (rec || results.empty()) co_return errc::bad_address;
            pool.resolved = results.begin()->endpoint();
        }
    }
    auto connect_deadline = std::min(deadline, std::chrono::steady_clock::now() + settings.connect_timeout);
    c.deadline.set(connect_deadline);
    auto [ec] = co_await c.socket.async_connect(*pool.resolved, use_task);
    if (ec) {
        if (c.deadline.expired && connect_deadline == deadline) co_return errc::timeout;
        co_return errc::connect_failed;
    }
    c.socket.set_option(tcp::no_delay(true));
    c.deadline.set(deadline);
    co_return ErrorCode{};
}

}  // namespace

const boost::system::error_category& net_category() noexcept {
    static const NetCategory category;
    return category;
}

namespace {
std::optional<Endpoint> parse_host_port(std::string_view text, bool allow_port_zero) {
    if (text.substr(0, 7) == "http://") text.remove_prefix(7);
    while (!text.empty() && text.back() == '/') text.remove_suffix(1);
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    auto host = text.substr(0, colon);
    auto port_text = text.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5) return std::nullopt;
    unsigned port = 0;
    for (char ch : port_text) {
        if (ch < '0' || ch > '9') return std::nullopt;
        port = port * 10 + static_cast<unsigned>(ch - '0');
    }
    if ((port == 0 && !allow_port_zero) || port > 65535) return std::nullopt;
    if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.find('/') != std::string_view::npos) return std::nullopt;
    return Endpoint{std::string(host), static_cast<std::uint16_t>(port)};
}
}  // namespace

std::optional<Endpoint> parse_endpoint(std::string_view text) { return parse_host_port(text, false); }

std::optional<HttpUrl> parse_http_url(std::string_view url) {
    if (!url.starts_with("http://")) return std::nullopt;
    url.remove_prefix(7);
    auto slash = url.find('/');
    auto ep = parse_endpoint(url.substr(0, slash));
    if (!ep) return std::nullopt;
    HttpUrl out{*ep, {}};
    if (slash != std::string_view::npos) out.path = std::string(url.substr(slash));
    if (out.path.find_first_of("?# ") != std::string::npos) return std::nullopt;
    return out;
}

std::optional<Endpoint> parse_listen_address(std::string_view text) { return parse_host_port(text, true); }

void set_client_settings(const ClientSettings& settings) {
    std::lock_guard lock(settings_mutex);
    global_settings = settings;
}

Task<ErrorCode> send(const Endpoint& endpoint, const Request& request, Response& response,
                     std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    auto& pools = ClientPool::of(ex);
    const auto& settings = pools.settings;
    auto& pool = pools.pool(endpoint);
    auto deadline = std::chrono::steady_clock::now() + timeout;

    // Wait for a connection slot if the endpoint is at its limit.
    while (pool.busy >= settings.max_connections_per_endpoint && pool.idle.empty()) {
        if (std::chrono::steady_clock::now() >= deadline) co_return errc::pool_exhausted;
        Timer t(ex);
        t.expires_at(deadline);
        pool.waiters.push_back(&t);
        co_await t.async_wait(use_task);
        std::erase(pool.waiters, &t);
    }

    ++pool.busy;
    std::unique_ptr<Connection> conn;
    auto now = std::chrono::steady_clock::now();
    while (!pool.idle.empty()) {
        auto c = std::move(pool.idle.back());
        pool.idle.pop_back();
        if (now - c->idle_since < settings.idle_expiry && c->socket.is_open()) {
            conn = std::move(c);
            break;
        }
    }

    for (int attempt = 0; attempt < 2; ++attempt) {
        bool reused = conn != nullptr;
        if (!conn) {
            conn = std::make_unique<Connection>(ex);
            DeadlineScope scope(ex, conn->deadline, conn->socket);
            auto ec = co_await connect(*conn, pool, endpoint, deadline, settings);
            if (ec) {
                pools.release(pool, nullptr);
                co_return ec;
            }
            ++pool.stats.connects;
        } else {
            ++pool.stats.reused;
        }
        bool received_any = false, reusable = false;
        ErrorCode ec;
        {
            conn->deadline.set(deadline);
            DeadlineScope scope(ex, conn->deadline, conn->socket);
            auto [wec, written] = co_await write_request(*conn, request, pool);
            if (wec)
                ec = read_error(*conn);
            else
                ec = co_await read_response(*conn, request, response, settings, received_any, reusable);
        }
        if (!ec) {
            pools.release(pool, reusable ? std::move(conn) : nullptr);
            co_return ec;
        }
        conn.reset();
        // A pooled connection the peer had already closed: try once more on a fresh one. A
        // non-idempotent request may have been processed before the peer closed, so it is not
        // repeated.
        if (reused && !received_any && ec == errc::connection_closed && is_idempotent(request.method) &&
            std::chrono::steady_clock::now() < deadline) {
            ++pool.stats.retried;
            continue;
        }
        pools.release(pool, nullptr);
        co_return ec;
    }
    pools.release(pool, nullptr);
    co_return errc::connection_closed;
}

Task<Result<Response>> fetch(const Endpoint& endpoint, std::string method, std::string target,
                             std::string body, std::string content_type, std::chrono::milliseconds timeout) {
    auto req = make_request(std::move(method), std::move(target), std::move(body), content_type);
    Response res;
    auto ec = co_await send(endpoint, req, res, timeout);
    if (ec) co_return ec;
    co_return res;
}

Task<PoolStats> pool_stats(const Endpoint& endpoint) {
    auto ex = co_await asio::this_coro::executor;
    auto& pool = ClientPool::of(ex).pool(endpoint);
    auto stats = pool.stats;
    stats.idle = pool.idle.size();
    stats.busy = pool.busy;
    co_return stats;
}

}  // namespace plexus::net
