// A server that defers bodies to its handler (ServerSettings::defer_body): the handler sees the
// head first, reads the body when it wants it, or answers without it. Raw sockets show what goes
// over the wire. Every wait is bounded by kWait.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"

namespace net = plexus::net;
using namespace plexus::net::testing;

namespace {

class DeferredBodyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        runtime_ = std::make_unique<net::Runtime>(1);
        runner_ = std::thread([rt = runtime_.get()] { rt->run(); });
        net::ServerSettings settings;
        settings.defer_body = true;
        server_ = std::make_unique<net::Server>(
            *runtime_, settings, [](net::Request& req, net::Response& res) { return handle(req, res); });
        server_->start();
    }
    void TearDown() override {
        runtime_->stop();
        runner_.join();
        server_.reset();
    }

    // /read: reads up to 10 bytes of body and echoes it, "had a body source" or not in a header;
    // /refuse: answers 403 without reading.
    static net::Task<void> handle(net::Request& req, net::Response& res) {
        bool deferred = req.body_source != nullptr;
        if (req.path() == "/refuse") {
            res.problem(403, "Forbidden", "not you");
            co_return;
        }
        switch (co_await net::read_body(req, 10)) {
            case net::BodyStatus::complete:
                res.text(200, "got:" + req.body);
                res.headers.set("X-Deferred", deferred ? "yes" : "no");
                break;
            case net::BodyStatus::too_large:
                res.problem(413, "Content Too Large", "too big");
                break;
            case net::BodyStatus::malformed:
                res.problem(400, "Bad Request", "bad chunks");
                break;
            case net::BodyStatus::closed:
                res.problem(400, "Bad Request", "gone");
                break;
        }
    }

    std::uint16_t port() const { return server_->port(); }

    std::unique_ptr<net::Runtime> runtime_;
    std::thread runner_;
    std::unique_ptr<net::Server> server_;
};

std::size_t count(const std::string& s, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
}

TEST_F(DeferredBodyTest, BodiesReadByTheHandlerKeepTheConnection) {
    RawSocket s(port());
    ASSERT_TRUE(s.connected());
    ASSERT_TRUE(
        s.send("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
               "POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
               "GET /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    const auto& raw = s.received();
    EXPECT_EQ(count(raw, "HTTP/1.1 200 OK\r\n"), 3u) << raw;
    EXPECT_NE(raw.find("got:hello"), std::string::npos);
    EXPECT_NE(raw.find("got:abc"), std::string::npos);
    EXPECT_EQ(count(raw, "X-Deferred: yes"), 2u) << raw;  // the GET had no body to defer
    EXPECT_EQ(count(raw, "X-Deferred: no"), 1u) << raw;
}

TEST_F(DeferredBodyTest, ContinueIsSentOnlyWhenTheHandlerReads) {
    RawSocket reader(port());
    ASSERT_TRUE(
        reader.send("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
    ASSERT_EQ(reader.read_until("\r\n\r\n"), RawSocket::End::found);
    EXPECT_EQ(reader.received(), "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_TRUE(reader.send("ok"));
    ASSERT_EQ(reader.read_until("got:ok"), RawSocket::End::found) << reader.received();

    RawSocket refused(port());
    ASSERT_TRUE(refused.send(
        "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
    // Answered without the body and closed: the unread body cannot be told from a next request.
    ASSERT_EQ(refused.read_to_end(), RawSocket::End::eof);
    const auto& raw = refused.received();
    EXPECT_EQ(raw.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u) << raw;
    EXPECT_EQ(raw.find("100 Continue"), std::string::npos) << raw;
    EXPECT_NE(raw.find("Connection: close\r\n"), std::string::npos) << raw;
}

TEST_F(DeferredBodyTest, ABodyOverTheHandlersLimitIsItsAnswerAndClosesTheConnection) {
    RawSocket sized(port());
    ASSERT_TRUE(sized.send("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"));
    ASSERT_EQ(sized.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(sized.received().rfind("HTTP/1.1 413 ", 0), 0u) << sized.received();
    EXPECT_NE(sized.received().find("too big"), std::string::npos);

    RawSocket chunked(port());
    ASSERT_TRUE(
        chunked.send("POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "b\r\nhello world\r\n0\r\n\r\n"));
    ASSERT_EQ(chunked.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(chunked.received().rfind("HTTP/1.1 413 ", 0), 0u) << chunked.received();
}

TEST_F(DeferredBodyTest, MalformedChunksAreTheHandlersAnswer) {
    RawSocket s(port());
    ASSERT_TRUE(s.send(
        "POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(s.received().rfind("HTTP/1.1 400 ", 0), 0u) << s.received();
    EXPECT_NE(s.received().find("bad chunks"), std::string::npos);
}

}  // namespace
