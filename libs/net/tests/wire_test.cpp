#include "wire.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>

#include "plexus/net/http.hpp"

using namespace plexus::net;
using namespace plexus::net::wire;

namespace {

struct ParsedRequest {
    HeadError err;
    Request req;
    Framing framing;
};

// Runs the scanner over a complete head first (as the server does), then the parser.
ParsedRequest parse_request(std::string_view head, std::size_t max_headers = 100) {
    HeadScanner scanner;
    auto st = scanner.scan(head, 64 * 1024);
    EXPECT_EQ(st, HeadScanner::Status::complete) << head;
    ParsedRequest p;
    p.err = parse_request_head(head.substr(0, scanner.head_size()), max_headers, p.req, p.framing);
    return p;
}

int request_status(std::string_view head, std::size_t max_headers = 100) {
    return parse_request(head, max_headers).err.status;
}

struct ParsedResponse {
    HeadError err;
    Response res;
    Framing framing;
    bool keep_alive = true;
};

ParsedResponse parse_response(std::string_view head, std::string_view method = "GET") {
    ParsedResponse p;
    p.err = parse_response_head(head, method, p.res, p.framing, p.keep_alive);
    return p;
}

struct Decoded {
    ChunkedDecoder::Status status;
    std::string body;
    std::size_t consumed = 0;
};

Decoded decode_at_once(std::string_view in, std::size_t max_body = 1024) {
    ChunkedDecoder d;
    Decoded out;
    out.status = d.feed(in, out.body, max_body, out.consumed);
    return out;
}

// Feeds one byte per call, as a slow client would deliver it.
Decoded decode_bytewise(std::string_view in, std::size_t max_body = 1024) {
    ChunkedDecoder d;
    Decoded out{ChunkedDecoder::Status::incomplete, {}, 0};
    for (std::size_t i = 0; i < in.size(); ++i) {
        std::size_t used = 0;
        out.status = d.feed(in.substr(i, 1), out.body, max_body, used);
        out.consumed += used;
        if (out.status != ChunkedDecoder::Status::incomplete) break;
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------- head scanner

TEST(Methods, IdempotentPerRfc9110) {
    for (auto m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) EXPECT_TRUE(is_idempotent(m)) << m;
    for (auto m : {"POST", "PATCH", "CONNECT", "get", "Put", "", "GETX"}) EXPECT_FALSE(is_idempotent(m)) << m;
}

TEST(HeadScanner, FindsTheEndOfTheHeadAcrossPartialReads) {
    const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const std::string data = head + "BODY";
    HeadScanner scanner;
    for (std::size_t n = 1; n < head.size(); ++n) {
        ASSERT_EQ(scanner.scan(std::string_view(data).substr(0, n), 1024), HeadScanner::Status::incomplete)
            << n;
    }
    ASSERT_EQ(scanner.scan(data, 1024), HeadScanner::Status::complete);
    EXPECT_EQ(scanner.head_size(), head.size());
}

TEST(HeadScanner, RejectsBareLf) {
    HeadScanner a;
    EXPECT_EQ(a.scan("GET / HTTP/1.1\nHost: a\r\n\r\n", 1024), HeadScanner::Status::bad_line_ending);
    HeadScanner b;
    EXPECT_EQ(b.scan("GET / HTTP/1.1\r\nHost: a\n\r\n", 1024), HeadScanner::Status::bad_line_ending);
    HeadScanner c;
    EXPECT_EQ(c.scan("GET / HTTP/1.1\r\nHost: a\r\n\n", 1024), HeadScanner::Status::bad_line_ending);
}

TEST(HeadScanner, RejectsBareCr) {
    HeadScanner a;
    EXPECT_EQ(a.scan("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 1024), HeadScanner::Status::bad_line_ending);
    HeadScanner b;
    EXPECT_EQ(b.scan("GET / HTTP/1.1\rHost: a\r\n\r\n", 1024), HeadScanner::Status::bad_line_ending);
}

TEST(HeadScanner, WaitsForTheByteAfterATrailingCr) {
    HeadScanner scanner;
    EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r", 1024), HeadScanner::Status::incomplete);
    EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nHost: a\r\n\r", 1024), HeadScanner::Status::incomplete);
    EXPECT_EQ(scanner.scan("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1024), HeadScanner::Status::complete);
}

TEST(HeadScanner, ReportsHeadsOverTheByteLimit) {
    const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    HeadScanner fits;
    EXPECT_EQ(fits.scan(head, head.size()), HeadScanner::Status::complete);

    HeadScanner complete_but_large;
    EXPECT_EQ(complete_but_large.scan(head, 10), HeadScanner::Status::too_large);

    // An endless header line is cut off without ever completing.
    HeadScanner endless;
    std::string data = "GET / HTTP/1.1\r\nX-Long: " + std::string(5000, 'a');
    EXPECT_EQ(endless.scan(data, 4096), HeadScanner::Status::too_large);
}

TEST(HeadScanner, ResetStartsOver) {
    HeadScanner scanner;
    ASSERT_EQ(scanner.scan("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1024), HeadScanner::Status::complete);
    scanner.reset();
    EXPECT_EQ(scanner.scan("GET /x HTTP/1.1\r\n", 1024), HeadScanner::Status::incomplete);
    EXPECT_EQ(scanner.scan("GET /x HTTP/1.1\r\nHost: b\r\n\r\n", 1024), HeadScanner::Status::complete);
    EXPECT_EQ(scanner.head_size(), 28u);
}

// ---------------------------------------------------------------- request heads

TEST(RequestHead, ParsesGetWithHeaders) {
    auto p = parse_request(
        "GET /products/42?color=red%20ish&x HTTP/1.1\r\n"
        "Host: shop.local:8080\r\n"
        "Accept:   application/json  \r\n"
        "X-Empty:\r\n"
        "x-request-id: abc\r\n"
        "\r\n");
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.req.method, "GET");
    EXPECT_EQ(p.req.target, "/products/42?color=red%20ish&x");
    EXPECT_EQ(p.req.path(), "/products/42");
    EXPECT_EQ(p.req.query(), "color=red%20ish&x");
    EXPECT_EQ(p.req.query_param("color"), "red ish");
    EXPECT_EQ(p.req.query_param("x"), "");
    EXPECT_FALSE(p.req.query_param("y"));
    EXPECT_EQ(p.req.version_minor, 1);
    ASSERT_EQ(p.req.headers.size(), 4u);
    EXPECT_EQ(p.req.headers.get("host"), "shop.local:8080");
    EXPECT_EQ(p.req.headers.get("ACCEPT"), "application/json");  // OWS trimmed
    EXPECT_EQ(p.req.headers.get("X-Request-Id"), "abc");
    EXPECT_EQ(p.req.headers.get("x-empty"), "");
    EXPECT_EQ(p.req.headers.begin()->name(), "Host");  // order and spelling kept
    EXPECT_TRUE(p.req.keep_alive);
    EXPECT_EQ(p.framing.kind, Framing::none);
}

TEST(RequestHead, AcceptsOptionsAsterisk) {
    EXPECT_EQ(request_status("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    EXPECT_EQ(request_status("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(RequestHead, AppliesKeepAliveRulesOfEachVersion) {
    EXPECT_TRUE(parse_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(
        parse_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n").req.keep_alive);
    EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n").req.keep_alive);
    EXPECT_TRUE(parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").req.keep_alive);
    auto p = parse_request("GET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(p.req.version_minor, 0);
}

TEST(RequestHead, RequiresHostInHttp11) {
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"), 0);
}

TEST(RequestHead, RejectsContentLengthWithTransferEncoding) {
    EXPECT_EQ(request_status(
                  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
              400);
    EXPECT_EQ(request_status(
                  "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
              400);
}

TEST(RequestHead, ChecksDuplicateContentLength) {
    EXPECT_EQ(request_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
              400);
    EXPECT_EQ(request_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), 400);

    auto same = parse_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    ASSERT_FALSE(same.err) << same.err.detail;
    EXPECT_EQ(same.framing.kind, Framing::sized);
    EXPECT_EQ(same.framing.length, 5u);

    auto list = parse_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7 , 7\r\n\r\n");
    ASSERT_FALSE(list.err) << list.err.detail;
    EXPECT_EQ(list.framing.length, 7u);
}

TEST(RequestHead, RejectsInvalidContentLength) {
    for (const char* value : {"abc", "-1", "+5", "0x10", "5 5", "5;", "", "1234567890123456789"}) {
        std::string head = std::string("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ") + value + "\r\n\r\n";
        EXPECT_EQ(request_status(head), 400) << "Content-Length: " << value;
    }
}

TEST(RequestHead, DecidesBodyFraming) {
    auto sized = parse_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
    EXPECT_EQ(sized.framing.kind, Framing::sized);
    EXPECT_EQ(sized.framing.length, 12u);

    auto empty = parse_request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(empty.framing.kind, Framing::none);

    auto chunked = parse_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    ASSERT_FALSE(chunked.err) << chunked.err.detail;
    EXPECT_EQ(chunked.framing.kind, Framing::chunked);
}

TEST(RequestHead, RejectsUnsupportedTransferCodings) {
    EXPECT_EQ(request_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
    EXPECT_EQ(request_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    EXPECT_EQ(request_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 501);
    EXPECT_EQ(request_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                             "Transfer-Encoding: gzip\r\n\r\n"),
              501);
    // Two fields are one list: "chunked, chunked" applies chunked twice.
    EXPECT_NE(request_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
              0);
    // Transfer-Encoding did not exist in HTTP/1.0: the length cannot be trusted.
    EXPECT_EQ(request_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(RequestHead, ChecksEveryByteOfLongFieldValues) {
    // Values longer than a machine word and than a vector block, with the offending byte at each
    // position.
    for (std::size_t len : {9, 19, 41, 70, 150}) {
        for (std::size_t at = 0; at < len; ++at) {
            for (char bad : {'\x01', '\x7f', '\x1f', '\0'}) {
                std::string value(len, 'v');
                value[at] = bad;
                std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + value + "\r\n\r\n";
                auto p = parse_request(head);
                EXPECT_EQ(p.err.status, 400) << "byte " << int(bad) << " at " << at << " of " << len;
            }
            std::string ok(len, 'v');
            ok[at] = '\t';
            if (at > 0 && at < len - 1) {  // a tab inside the value (leading and trailing ones are trimmed)
                auto p = parse_request("GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + ok + "\r\n\r\n");
                EXPECT_EQ(p.err.status, 0) << "tab at " << at << " of " << len;
                EXPECT_EQ(p.req.headers.get("x-long"), ok);
            }
            ok[at] = '\xe9';  // obs-text is allowed
            EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + ok + "\r\n\r\n"), 0);
        }
    }
}

TEST(RequestHead, RejectsObsoleteLineFolding) {
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
}

TEST(RequestHead, RejectsMalformedFields) {
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);  // space before colon
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX(a): b\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01"
                             "c\r\n\r\n"),
              400);
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n"), 400);
    // obs-text and HTAB inside a value are fine.
    EXPECT_EQ(request_status("GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\tok\r\n\r\n"), 0);
}

TEST(RequestHead, RejectsMalformedRequestLines) {
    EXPECT_EQ(request_status("GET /\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status("G{T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / HTTX/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request_status("GET / http/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(RequestHead, LimitsTheNumberOfFields) {
    std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 4; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
    head += "\r\n";
    EXPECT_EQ(request_status(head, 5), 0);
    EXPECT_EQ(request_status(head, 4), 431);
}

TEST(RequestHead, RejectsOtherHttpVersions) {
    EXPECT_EQ(request_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    EXPECT_EQ(request_status("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505);
    EXPECT_EQ(request_status("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505);
}

// ---------------------------------------------------------------- chunked bodies

TEST(ChunkedDecoder, DecodesInOnePieceAndStopsAtTheEnd) {
    const std::string body =
        "5;name=value\r\nhello\r\n"
        "6 ;a;b=\"c d\"\r\n world\r\n"
        "A\r\n0123456789\r\n"
        "0\r\n"
        "X-Checksum: abc\r\n"
        "X-Other: d\r\n"
        "\r\n";
    auto d = decode_at_once(body + "GET /next HTTP/1.1\r\n");
    ASSERT_EQ(d.status, ChunkedDecoder::Status::done);
    EXPECT_EQ(d.body, "hello world0123456789");
    EXPECT_EQ(d.consumed, body.size());  // the pipelined request is left alone
}

TEST(ChunkedDecoder, DecodesByteByByte) {
    const std::string body = "5;ext\r\nhello\r\nb\r\n, chunked!!\r\n0;last\r\nTrailer: x\r\n\r\n";
    auto d = decode_bytewise(body + "extra");
    ASSERT_EQ(d.status, ChunkedDecoder::Status::done);
    EXPECT_EQ(d.body, "hello, chunked!!");
    EXPECT_EQ(d.consumed, body.size());
}

TEST(ChunkedDecoder, ReportsIncompleteInput) {
    auto d = decode_at_once("5\r\nhel");
    EXPECT_EQ(d.status, ChunkedDecoder::Status::incomplete);
    EXPECT_EQ(d.body, "hel");
    EXPECT_EQ(d.consumed, 6u);
    EXPECT_EQ(decode_at_once("5\r\nhello\r\n0\r\n").status, ChunkedDecoder::Status::incomplete);
}

TEST(ChunkedDecoder, EmptyBody) {
    auto d = decode_at_once("0\r\n\r\n");
    EXPECT_EQ(d.status, ChunkedDecoder::Status::done);
    EXPECT_EQ(d.body, "");
}

TEST(ChunkedDecoder, RejectsInvalidChunkSizes) {
    for (const char* size : {"zz", "-1", "+1", "0x5", " 5", "", "1000000000000000", "fffffffffffffffff"}) {
        std::string in = std::string(size) + "\r\nhello\r\n0\r\n\r\n";
        EXPECT_EQ(decode_at_once(in).status, ChunkedDecoder::Status::bad_chunk) << size;
        EXPECT_EQ(decode_bytewise(in).status, ChunkedDecoder::Status::bad_chunk) << size;
    }
    // A size line that never ends.
    EXPECT_EQ(decode_at_once(std::string(2000, '0')).status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_at_once("5;" + std::string(2000, 'e')).status, ChunkedDecoder::Status::bad_chunk);
}

TEST(ChunkedDecoder, LimitsTheSizeLineHoweverItArrives) {
    // Chunk extensions of 1000 bytes pass; of 1100 bytes they are refused whether the line comes
    // in one read or byte by byte (it used to be refused only when cut before its LF).
    for (std::size_t n : {1000u, 1100u}) {
        const std::string in = "3;" + std::string(n, 'e') + "\r\nabc\r\n0\r\n\r\n";
        const auto want = n < 1024 ? ChunkedDecoder::Status::done : ChunkedDecoder::Status::bad_chunk;
        EXPECT_EQ(decode_at_once(in).status, want) << n;
        EXPECT_EQ(decode_bytewise(in).status, want) << n;
    }
}

TEST(ChunkedDecoder, RejectsBareLineEndings) {
    EXPECT_EQ(decode_at_once("5\nhello\r\n0\r\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_at_once("5;a\rb\r\nhello\r\n0\r\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_at_once("5\r\nhello\r\n0\r\nX: y\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_at_once("0\r\n\n").status, ChunkedDecoder::Status::bad_chunk);
}

TEST(ChunkedDecoder, RequiresCrlfAfterChunkData) {
    EXPECT_EQ(decode_at_once("5\r\nhelloXX0\r\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_at_once("5\r\nhello\n0\r\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_at_once("5\r\nhello world\r\n0\r\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
    EXPECT_EQ(decode_bytewise("5\r\nhello\r\r0\r\n\r\n").status, ChunkedDecoder::Status::bad_chunk);
}

TEST(ChunkedDecoder, EnforcesTheBodyLimit) {
    const std::string in = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    EXPECT_EQ(decode_at_once(in, 10).status, ChunkedDecoder::Status::done);
    EXPECT_EQ(decode_at_once(in, 9).status, ChunkedDecoder::Status::too_large);
    EXPECT_EQ(decode_bytewise(in, 9).status, ChunkedDecoder::Status::too_large);
    // The announced size is checked before any of the data is buffered.
    auto huge = decode_at_once("fffffffffffffff\r\n", 1024);
    EXPECT_EQ(huge.status, ChunkedDecoder::Status::too_large);
    EXPECT_TRUE(huge.body.empty());
}

TEST(ChunkedDecoder, LimitsTrailerSize) {
    std::string in = "0\r\n";
    for (int i = 0; i < 400; ++i)
        in += "X-Trailer-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
    in += "\r\n";
    EXPECT_EQ(decode_at_once(in).status, ChunkedDecoder::Status::bad_chunk);
}

TEST(ChunkedDecoder, ResetAllowsReuse) {
    ChunkedDecoder d;
    std::string body;
    std::size_t used = 0;
    // Stop in the middle of a size line, then start over with a new body.
    ASSERT_EQ(d.feed("5\r\nhello\r\n3", body, 100, used), ChunkedDecoder::Status::incomplete);
    d.reset();
    body.clear();
    EXPECT_EQ(d.feed("2\r\nab\r\n0\r\n\r\n", body, 100, used), ChunkedDecoder::Status::done);
    EXPECT_EQ(body, "ab");
}

// ---------------------------------------------------------------- response heads

TEST(ResponseHead, ContentLength) {
    auto p = parse_response("HTTP/1.1 201 Created\r\nContent-Length: 17\r\nX-A: b\r\n\r\n");
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.res.status, 201);
    EXPECT_EQ(p.res.headers.get("x-a"), "b");
    EXPECT_EQ(p.framing.kind, Framing::sized);
    EXPECT_EQ(p.framing.length, 17u);
    EXPECT_TRUE(p.keep_alive);
}

TEST(ResponseHead, Chunked) {
    auto p = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.framing.kind, Framing::chunked);
    EXPECT_TRUE(p.keep_alive);
}

TEST(ResponseHead, UntilCloseWhenUnframed) {
    auto p = parse_response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.framing.kind, Framing::until_close);
    EXPECT_FALSE(p.keep_alive);
}

TEST(ResponseHead, NoBodyForHeadAnd204And304) {
    auto head = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "HEAD");
    ASSERT_FALSE(head.err);
    EXPECT_EQ(head.framing.kind, Framing::none);
    EXPECT_TRUE(head.keep_alive);

    auto head_chunked = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD");
    EXPECT_EQ(head_chunked.framing.kind, Framing::none);

    auto no_content = parse_response("HTTP/1.1 204 No Content\r\n\r\n");
    ASSERT_FALSE(no_content.err);
    EXPECT_EQ(no_content.framing.kind, Framing::none);
    EXPECT_TRUE(no_content.keep_alive);

    auto not_modified = parse_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
    ASSERT_FALSE(not_modified.err);
    EXPECT_EQ(not_modified.framing.kind, Framing::none);

    auto interim = parse_response("HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_FALSE(interim.err);
    EXPECT_EQ(interim.res.status, 100);
    EXPECT_EQ(interim.framing.kind, Framing::none);
}

TEST(ResponseHead, KeepAliveRules) {
    EXPECT_FALSE(
        parse_response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
    EXPECT_FALSE(parse_response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
    EXPECT_TRUE(
        parse_response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
}

TEST(ResponseHead, AcceptsAMissingReasonPhrase) {
    auto p = parse_response("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n");
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.res.status, 404);
    auto empty_reason = parse_response("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n");
    EXPECT_FALSE(empty_reason.err);
}

TEST(ResponseHead, RejectsMalformedResponses) {
    EXPECT_TRUE(parse_response("HTTP/1.1 2000 OK\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/1.1 abc OK\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/1.1 -20 OK\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/1.1 099 OK\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/2 200 OK\r\n\r\n").err);
    EXPECT_TRUE(parse_response("ICY 200 OK\r\n\r\n").err);
    EXPECT_TRUE(
        parse_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").err);
    EXPECT_TRUE(parse_response("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n").err);
    EXPECT_EQ(parse_response("HTTP/1.1 abc OK\r\n\r\n").err.status, 502);
}

// ---------------------------------------------------------------- serialisation

TEST(Serialize, ResponseHeadSetsFramingItself) {
    Response res;
    res.status = 201;
    res.headers.add("Content-Type", "application/json");
    res.headers.add("Content-Length", "999");
    res.headers.add("Transfer-Encoding", "chunked");
    res.headers.add("Connection", "keep-alive");
    res.headers.add("X-Trace", "t1");
    res.body = R"({"id":1})";
    std::string out;
    serialize_response_head(res, false, "Sun, 06 Nov 1994 08:49:37 GMT", out);
    EXPECT_EQ(out,
              "HTTP/1.1 201 Created\r\n"
              "Content-Type: application/json\r\n"
              "X-Trace: t1\r\n"
              "Content-Length: 8\r\n"
              "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
              "\r\n");

    // What it writes parses back to the same message.
    auto p = parse_response(out);
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.res.status, 201);
    EXPECT_EQ(p.framing.kind, Framing::sized);
    EXPECT_EQ(p.framing.length, res.body.size());
    EXPECT_TRUE(p.keep_alive);
}

TEST(Serialize, ResponseHeadWithClose) {
    Response res;
    res.status = 404;
    res.headers.add("Date", "Mon, 01 Jan 2024 00:00:00 GMT");
    std::string out;
    serialize_response_head(res, true, "ignored", out);
    EXPECT_EQ(out,
              "HTTP/1.1 404 Not Found\r\n"
              "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
              "Content-Length: 0\r\n"
              "Connection: close\r\n"
              "\r\n");
    EXPECT_FALSE(parse_response(out).keep_alive);
}

TEST(Serialize, ResponseHeadWithoutBodyHasNoContentLength) {
    for (int status : {204, 304}) {
        Response res;
        res.status = status;
        std::string out;
        serialize_response_head(res, false, "d", out);
        EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
        EXPECT_EQ(out.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0), 0u) << out;
    }
}

TEST(Serialize, RequestHeadAddsHostAndContentLength) {
    Request req;
    req.method = "POST";
    req.target = "/orders?x=1";
    req.headers.add("Content-Type", "application/json");
    req.headers.add("content-length", "1");
    req.headers.add("Transfer-Encoding", "chunked");
    req.headers.add("Connection", "close");
    req.body = "{}";
    std::string out;
    serialize_request_head(req, "10.0.0.1:8080", out);
    EXPECT_EQ(out,
              "POST /orders?x=1 HTTP/1.1\r\n"
              "Content-Type: application/json\r\n"
              "Host: 10.0.0.1:8080\r\n"
              "Content-Length: 2\r\n"
              "\r\n");

    auto p = parse_request(out);
    ASSERT_FALSE(p.err) << p.err.detail;
    EXPECT_EQ(p.framing.kind, Framing::sized);
    EXPECT_EQ(p.framing.length, 2u);
    EXPECT_EQ(p.req.headers.get("host"), "10.0.0.1:8080");
}

TEST(Serialize, RequestHeadKeepsTheCallersHost) {
    Request req;
    req.method = "GET";
    req.target = "/";
    req.headers.add("HOST", "example.test");
    std::string out;
    serialize_request_head(req, "10.0.0.1:8080", out);
    EXPECT_EQ(out, "GET / HTTP/1.1\r\nHOST: example.test\r\n\r\n");
}

TEST(Serialize, RequestHeadSendsZeroLengthForEmptyPost) {
    Request post;
    post.method = "POST";
    post.target = "/";
    std::string out;
    serialize_request_head(post, "h", out);
    EXPECT_NE(out.find("\r\nContent-Length: 0\r\n"), std::string::npos) << out;

    Request get;
    get.method = "GET";
    get.target = "/";
    out.clear();
    serialize_request_head(get, "h", out);
    EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
}

TEST(HttpDate, IsAnImfFixdate) {
    auto d = http_date();
    ASSERT_EQ(d.size(), 29u) << d;
    EXPECT_EQ(d.substr(25), " GMT");
    EXPECT_EQ(d[3], ',');
}

// ---------------------------------------------------------------- buffer and small helpers

TEST(ReadBuffer, KeepsUnconsumedBytesWhenGrowing) {
    ReadBuffer buf;
    char* p = buf.prepare(4);
    std::memcpy(p, "abcd", 4);
    buf.commit(4);
    buf.consume(2);
    EXPECT_EQ(buf.view(), "cd");
    p = buf.prepare(100);
    std::memcpy(p, "efgh", 4);
    buf.commit(4);
    EXPECT_EQ(buf.view(), "cdefgh");
    buf.consume(6);
    EXPECT_TRUE(buf.empty());
}

TEST(Headers, SetRemoveAndLookupAreCaseInsensitive) {
    Headers h;
    h.add("Set-Cookie", "a");
    h.add("X-Other", "o");
    h.add("set-cookie", "b");
    EXPECT_EQ(h.size(), 3u);
    h.set("SET-COOKIE", "c");
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h.get("set-cookie"), "c");
    EXPECT_EQ(h.begin()->name(), "Set-Cookie");
    EXPECT_EQ(h.remove("x-other"), 1u);
    EXPECT_EQ(h.remove("x-other"), 0u);
    EXPECT_EQ(h.size(), 1u);
    h.clear();
    EXPECT_TRUE(h.empty());
    EXPECT_FALSE(h.contains("set-cookie"));
}

TEST(PercentDecode, DecodesAndRejectsMalformedEscapes) {
    EXPECT_EQ(percent_decode("a%20b%2Fc+d"), "a b/c+d");
    EXPECT_EQ(percent_decode("%41%62"), "Ab");
    EXPECT_FALSE(percent_decode("%"));
    EXPECT_FALSE(percent_decode("%4"));
    EXPECT_FALSE(percent_decode("a%zz"));
}

TEST(PercentEncode, KeepsOnlyUnreservedCharactersAndRoundTrips) {
    EXPECT_EQ(percent_encode("aZ09-._~"), "aZ09-._~");
    EXPECT_EQ(percent_encode("a b/c+d=&?\xff@["), "a%20b%2Fc%2Bd%3D%26%3F%FF%40%5B");
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    EXPECT_EQ(percent_decode(percent_encode(all)), all);
}

TEST(HopByHop, KnowsTheHopByHopFields) {
    EXPECT_TRUE(is_hop_by_hop("Connection"));
    EXPECT_TRUE(is_hop_by_hop("transfer-encoding"));
    EXPECT_TRUE(is_hop_by_hop("Keep-Alive"));
    EXPECT_FALSE(is_hop_by_hop("Content-Length"));
    EXPECT_FALSE(is_hop_by_hop("Host"));
    EXPECT_TRUE(is_hop_by_hop(FieldId::proxy_authorization));
    EXPECT_FALSE(is_hop_by_hop(FieldId::other));
}

TEST(Iequals, FoldsOnlyAsciiLettersAtAnyLength) {
    EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
    EXPECT_TRUE(iequals("X-Plexus-Original-Path", "x-plexus-original-path"));
    EXPECT_TRUE(iequals("abc", "ABC"));
    EXPECT_FALSE(iequals("abc", "abd"));
    EXPECT_FALSE(iequals("abc", "abcd"));
    // Characters that differ from each other only in bit 0x20 but are not letters.
    EXPECT_FALSE(iequals("0123456789[x", "0123456789{x"));
    EXPECT_FALSE(iequals("0123456789@x", "0123456789`x"));
    EXPECT_FALSE(iequals("0123456789^x", "0123456789~x"));
    EXPECT_FALSE(iequals("0123456789\xc1x", "0123456789\xe1x"));
    EXPECT_FALSE(iequals("0123456789-x", "0123456789\rx"));
    // The difference in each position of a 13-byte name.
    const std::string base = "abcdefghijklm";
    for (std::size_t i = 0; i < base.size(); ++i) {
        std::string upper = base, other = base;
        upper[i] = static_cast<char>(upper[i] - 32);
        other[i] = 'z';
        EXPECT_TRUE(iequals(base, upper)) << i;
        EXPECT_EQ(iequals(base, other), base[i] == 'z') << i;
    }
}

TEST(FieldId, RecognisesWellKnownNamesInAnyCase) {
    EXPECT_EQ(field_id("Host"), FieldId::host);
    EXPECT_EQ(field_id("CONTENT-LENGTH"), FieldId::content_length);
    EXPECT_EQ(field_id("x-plexus-deadline-ms"), FieldId::x_plexus_deadline_ms);
    EXPECT_EQ(field_id("X-Plexus-Original-Path"), FieldId::x_plexus_original_path);
    EXPECT_EQ(field_id("TE"), FieldId::te);
    EXPECT_EQ(field_id("Authorization"), FieldId::authorization);
    EXPECT_EQ(field_id("X-API-Key"), FieldId::x_api_key);
    EXPECT_EQ(field_id("x-plexus-subject"), FieldId::x_plexus_subject);
    EXPECT_EQ(field_id("X-Plexus-Client"), FieldId::x_plexus_client);
    EXPECT_EQ(field_id("X-Plexus-Scopes"), FieldId::x_plexus_scopes);
    EXPECT_EQ(field_id("X-Plexus-Roles"), FieldId::x_plexus_roles);
    EXPECT_EQ(field_id("x-plexus-subjects"), FieldId::other);
    EXPECT_EQ(field_id("Hosts"), FieldId::other);
    EXPECT_EQ(field_id("Hast"), FieldId::other);
    EXPECT_EQ(field_id(""), FieldId::other);
    EXPECT_EQ(field_id("x-request-ic"), FieldId::other);
}

TEST(Headers, LookupWorksForWellKnownAndOtherNames) {
    Headers h;
    h.add("x-custom", "1");
    h.add("HOST", "a");
    h.add("X-Custom", "2");
    EXPECT_EQ(h.begin()[1].id(), FieldId::host);
    EXPECT_EQ(h.get("host"), "a");
    EXPECT_EQ(h.get(FieldId::host), "a");
    EXPECT_EQ(h.get("X-CUSTOM"), "1");
    EXPECT_FALSE(h.get(FieldId::other));
    EXPECT_FALSE(h.get(FieldId::date));
    h.rename(h.begin()[1], "X-Forwarded-Host");
    EXPECT_FALSE(h.get("host"));
    EXPECT_EQ(h.get(FieldId::x_forwarded_host), "a");
}

TEST(Headers, EraseIfAsksAboutEveryFieldBeforeMovingAny) {
    Headers h;
    h.add("Connection", "x-a, x-b");
    h.add("X-A", "1");
    h.add("Keep", "2");
    h.add("X-B", "3");
    std::string_view listed = *h.get(FieldId::connection);
    auto removed = h.erase_if([&](const Header& f) {
        if (f.id() == FieldId::connection) return true;
        std::string lower;
        for (char c : f.name()) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return listed.find(lower) != std::string_view::npos;  // `listed` is the Connection value
    });
    EXPECT_EQ(removed, 3u);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h.begin()->name(), "Keep");
    // The dropped fields' storage is reused.
    h.add("New", "4");
    EXPECT_EQ(h.size(), 2u);
    EXPECT_EQ(h.get("new"), "4");
}

TEST(WireSerialize, HeadResponseKeepsTheProxiedContentLength) {
    Response res;
    res.status = 200;
    res.headers.add("Content-Length", "1234");
    std::string out;
    wire::serialize_response_head(res, false, "Sun, 06 Nov 1994 08:49:37 GMT", out, true);
    EXPECT_NE(out.find("Content-Length: 1234\r\n"), std::string::npos) << out;
    out.clear();
    wire::serialize_response_head(res, false, "Sun, 06 Nov 1994 08:49:37 GMT", out, false);
    EXPECT_NE(out.find("Content-Length: 0\r\n"), std::string::npos) << out;
}
