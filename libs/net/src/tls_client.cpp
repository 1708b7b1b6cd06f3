// fetch_https: one request over one TLS connection, for probes and tools.

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "asio.hpp"
#include "openssl.hpp"
#include "plexus/net/tls.hpp"
#include "sweeper.hpp"
#include "wire.hpp"

namespace plexus::net {

namespace {

constexpr std::size_t kMaxResponse = 16 * 1024 * 1024;
constexpr std::size_t kMaxHead = 64 * 1024;
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

bool is_ip(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// The client side of one connection: trust in `ca_file`, the name `host` checked (and sent as SNI
// when it is a DNS name). Null when the CA file cannot be used.
ossl::Ssl new_client_session(const std::string& ca_file, const std::string& host) {
    ERR_clear_error();
    ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx || SSL_CTX_load_verify_file(ctx.get(), ca_file.c_str()) != 1) {
        ERR_clear_error();
        return {};
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    ossl::Ssl ssl(SSL_new(ctx.get()));  // holds its own reference to the context
    if (!ssl) return {};
    bool named = is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) == 1
                             : SSL_set1_host(ssl.get(), host.c_str()) == 1 &&
                                   SSL_set_tlsext_host_name(ssl.get(), host.c_str()) == 1;
    if (!named || SSL_set_alpn_protos(ssl.get(), kAlpnHttp11, sizeof kAlpnHttp11) != 0) {
        ERR_clear_error();
        return {};
    }
    return ssl;
}

// Parses the response in `data`; connection_closed while it is incomplete. `at_end`: nothing more
// will come (the body of a response without framing then ends).
ErrorCode parse_response(std::string_view data, const std::string& method, bool at_end, Response& res) {
    wire::HeadScanner scanner;
    while (true) {
        auto st = scanner.scan(data, kMaxHead);
        if (st == wire::HeadScanner::Status::incomplete) return errc::connection_closed;
        if (st != wire::HeadScanner::Status::complete) return errc::protocol_error;
        res.clear();
        wire::Framing framing;
        bool keep_alive = true;
        if (wire::parse_response_head(data.substr(0, scanner.head_size()), method, res, framing, keep_alive))
            return errc::protocol_error;
        data.remove_prefix(scanner.head_size());
        if (res.status >= 200) {
            switch (framing.kind) {
                case wire::Framing::none:
                    return {};
                case wire::Framing::sized:
                    if (data.size() < framing.length) return errc::connection_closed;
                    res.body = data.substr(0, framing.length);
                    return {};
                case wire::Framing::chunked: {
                    wire::ChunkedDecoder decoder;
                    std::size_t used = 0;
                    auto chunks = decoder.feed(data, res.body, kMaxResponse, used);
                    if (chunks == wire::ChunkedDecoder::Status::done) return {};
                    if (chunks == wire::ChunkedDecoder::Status::incomplete) return errc::connection_closed;
                    return errc::protocol_error;
                }
                case wire::Framing::until_close:
                    if (!at_end) return errc::connection_closed;
                    res.body = data;
                    return {};
            }
        }
        scanner.reset();  // an interim response (100 Continue): the real one follows
    }
}

}  // namespace

Task<Result<Response>> fetch_https(Endpoint endpoint, std::string ca_file, std::string method,
                                   std::string target, std::chrono::milliseconds timeout) {
    return fetch_https(std::move(endpoint), std::move(ca_file),
                       make_request(std::move(method), std::move(target), {}, {}), timeout);
}

Task<Result<Response>> fetch_https(Endpoint endpoint, std::string ca_file, Request req,
                                   std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    Socket socket(ex);
    Deadline deadline;
    DeadlineScope scope(ex, deadline, socket);
    deadline.set_after(timeout);

    tcp::endpoint peer;
    boost::system::error_code ec;
    auto address = asio::ip::make_address(endpoint.host, ec);
    if (!ec) {
        peer = tcp::endpoint(address, endpoint.port);
    } else {
        Resolver resolver(ex);
        auto [rec, results] =
            co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), use_task);
        if (rec || results.empty()) co_return errc::bad_address;
        peer = results.begin()->endpoint();
    }
    auto ssl = new_client_session(ca_file, endpoint.host);
    if (!ssl) co_return errc::tls_failed;

    auto [cec] = co_await socket.async_connect(peer, use_task);
    if (cec) co_return deadline.expired ? errc::timeout : errc::connect_failed;
    socket.set_option(tcp::no_delay(true));
    asio::ssl::stream<Socket&> stream(socket, ssl.release());
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_task);
    if (hec) co_return deadline.expired ? errc::timeout : errc::tls_failed;

    std::string host =
        endpoint.host.find(':') == std::string::npos ? endpoint.host : "[" + endpoint.host + "]";
    std::string out;
    wire::serialize_request_head(req, host + ":" + std::to_string(endpoint.port), out);
    out.insert(out.size() - 2, "Connection: close\r\n");
    out += req.body;
    auto [wec, written] = co_await asio::async_write(stream, asio::buffer(out), use_task);
    if (wec) co_return deadline.expired ? errc::timeout : errc::connection_closed;

    std::string data;
    char buf[16 * 1024];
    Response res;
    while (true) {
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(buf), use_task);
        data.append(buf, n);
        if (data.size() > kMaxResponse) co_return errc::response_too_large;
        bool at_end = rec == asio::error::eof || rec == asio::ssl::error::stream_truncated;
        if (rec && !at_end) co_return deadline.expired ? errc::timeout : errc::connection_closed;
        auto perr = parse_response(data, req.method, at_end, res);
        if (!perr) co_return res;
        if (perr != errc::connection_closed || at_end) co_return perr;
    }
}

}  // namespace plexus::net
