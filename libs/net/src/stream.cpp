#include <algorithm>
#include <limits>

#include "asio.hpp"
#include "plexus/net/client.hpp"
#include "sweeper.hpp"
#include "wire.hpp"

namespace plexus::net {

namespace {

constexpr std::size_t kStreamReadChunk = 16 * 1024;
constexpr std::size_t kStreamMaxHeadBytes = 64 * 1024;
// The body is handed on as it is decoded, so no total applies; this only stops a chunk-size line
// that claims more than memory could ever hold.
constexpr std::size_t kStreamMaxChunk = std::numeric_limits<std::size_t>::max() / 4;

// One streamed exchange: the connection and the idle deadline the sweeper enforces on it.
struct StreamConnection {
    Socket socket;
    Deadline deadline;
    wire::ReadBuffer buf;
    std::chrono::milliseconds idle;

    StreamConnection(const Executor& ex, std::chrono::milliseconds idle_timeout)
        : socket(ex), idle(idle_timeout) {}

    void touch() noexcept { deadline.set_after(idle); }
    ErrorCode read_error() const noexcept {
        return deadline.expired ? ErrorCode(errc::timeout) : ErrorCode(errc::connection_closed);
    }
    auto read_some() {
        return socket.async_read_some(asio::buffer(buf.prepare(kStreamReadChunk), kStreamReadChunk),
                                      use_task);
    }
};

Task<ErrorCode> open_stream(StreamConnection& c, const Endpoint& endpoint) {
    tcp::endpoint target;
    boost::system::error_code aec;
    auto addr = asio::ip::make_address(endpoint.host, aec);
    if (!aec) {
        target = tcp::endpoint(addr, endpoint.port);
    } else {
        Resolver resolver(c.socket.get_executor());
        auto [rec, results] =
            co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), use_task);
        if (rec || results.empty()) co_return errc::bad_address;
        target = results.begin()->endpoint();
    }
    if (c.deadline.expired) co_return errc::timeout;
    auto [ec] = co_await c.socket.async_connect(target, use_task);
    if (ec) co_return c.deadline.expired ? errc::timeout : errc::connect_failed;
    boost::system::error_code ignored;
    c.socket.set_option(tcp::no_delay(true), ignored);
    co_return ErrorCode{};
}

}  // namespace

Task<ErrorCode> stream(const Endpoint& endpoint, const Request& request,
                       std::function<bool(std::string_view chunk)> on_data,
                       std::chrono::milliseconds idle_timeout,
                       std::function<void(const Response& head)> on_head) {
    auto ex = co_await asio::this_coro::executor;
    StreamConnection c(ex, idle_timeout);
    // Connecting is bounded like a request's connect, not by the (long) idle time: a member that
    // drops packets is given up on as soon as an unreachable server would be.
    c.deadline.set_after(std::min(idle_timeout, ClientSettings{}.connect_timeout));
    DeadlineScope scope(ex, c.deadline, c.socket);

    if (auto ec = co_await open_stream(c, endpoint)) co_return ec;

    {
        std::string head;
        wire::serialize_request_head(request, endpoint.to_string(), head);
        std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(request.body)};
        c.touch();
        auto [ec, written] = co_await asio::async_write(c.socket, bufs, use_task);
        if (ec) co_return c.read_error();
    }

    Response res;
    wire::Framing framing;
    wire::HeadScanner scanner;
    while (true) {
        scanner.reset();
        while (true) {
            if (!c.buf.empty()) {
                auto st = scanner.scan(c.buf.view(), kStreamMaxHeadBytes);
                if (st == wire::HeadScanner::Status::complete) break;
                if (st == wire::HeadScanner::Status::bad_line_ending) co_return errc::protocol_error;
                if (st == wire::HeadScanner::Status::too_large) co_return errc::response_too_large;
            }
            c.touch();
            auto [ec, n] = co_await c.read_some();
            if (ec) co_return c.read_error();
            c.buf.commit(n);
        }
        res.clear();
        bool keep_alive = true;
        auto err = wire::parse_response_head(c.buf.view().substr(0, scanner.head_size()), request.method, res,
                                             framing, keep_alive);
        c.buf.consume(scanner.head_size());
        if (err) co_return errc::protocol_error;
        if (res.status >= 200) break;  // interim responses (100 Continue) are skipped
    }
    if (on_head) on_head(res);

    switch (framing.kind) {
        case wire::Framing::none:
            co_return ErrorCode{};
        case wire::Framing::sized: {
            std::uint64_t left = framing.length;
            while (left > 0) {
                if (c.buf.empty()) {
                    c.touch();
                    auto [ec, n] = co_await c.read_some();
                    if (ec) co_return c.read_error();
                    c.buf.commit(n);
                }
                auto take = static_cast<std::size_t>(std::min<std::uint64_t>(left, c.buf.size()));
                bool more = on_data(c.buf.view().substr(0, take));
                c.buf.consume(take);
                left -= take;
                if (!more) co_return ErrorCode{};
            }
            co_return ErrorCode{};
        }
        case wire::Framing::chunked: {
            wire::ChunkedDecoder decoder;
            std::string piece;
            while (true) {
                std::size_t used = 0;
                piece.clear();
                auto st = decoder.feed(c.buf.view(), piece, kStreamMaxChunk, used);
                c.buf.consume(used);
                if (!piece.empty() && !on_data(piece)) co_return ErrorCode{};
                if (st == wire::ChunkedDecoder::Status::done) co_return ErrorCode{};
                if (st == wire::ChunkedDecoder::Status::bad_chunk) co_return errc::protocol_error;
                if (st == wire::ChunkedDecoder::Status::too_large) co_return errc::response_too_large;
                c.touch();
                auto [ec, n] = co_await c.read_some();
                if (ec) co_return c.read_error();
                c.buf.commit(n);
            }
        }
        case wire::Framing::until_close: {
            while (true) {
                if (!c.buf.empty()) {
                    bool more = on_data(c.buf.view());
                    c.buf.clear();
                    if (!more) co_return ErrorCode{};
                }
                c.touch();
                auto [ec, n] = co_await c.read_some();
                if (ec == asio::error::eof) co_return ErrorCode{};
                if (ec) co_return c.read_error();
                c.buf.commit(n);
            }
        }
    }
    co_return errc::protocol_error;
}

}  // namespace plexus::net
