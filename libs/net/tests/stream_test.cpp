// net::stream against a scripted loopback server that writes a response in pieces with pauses,
// holds the connection open, or drops it. Every wait is bounded by kWait.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/testing.hpp"

namespace net = plexus::net;
using namespace std::chrono_literals;
using namespace plexus::net::testing;

namespace {

// What a streamed response delivered so far; written by the io thread, read by the test.
struct Received {
    mutable std::mutex mutex;
    std::string body;
    int calls = 0;
    int status = 0;
    std::string header;

    std::string text() const {
        std::lock_guard lock(mutex);
        return body;
    }
    int pieces() const {
        std::lock_guard lock(mutex);
        return calls;
    }
    bool has(std::string_view s) const {
        std::lock_guard lock(mutex);
        return body.find(s) != std::string::npos;
    }
};

// Streams with arguments it owns; stops after `stop_at` body bytes when given.
net::Task<plexus::ErrorCode> stream_owned(net::Endpoint ep, net::Request req, std::shared_ptr<Received> rx,
                                          std::chrono::milliseconds idle, std::size_t stop_at = 0) {
    co_return co_await net::stream(
        ep, req,
        [rx, stop_at](std::string_view piece) {
            std::lock_guard lock(rx->mutex);
            rx->body.append(piece);
            ++rx->calls;
            return stop_at == 0 || rx->body.size() < stop_at;
        },
        idle,
        [rx](const net::Response& head) {
            std::lock_guard lock(rx->mutex);
            rx->status = head.status;
            rx->header = std::string(head.headers.get("X-Test").value_or(""));
        });
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string chunk(std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return std::string(size) + std::string(data) + "\r\n";
}

constexpr std::string_view kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Test: yes\r\nTransfer-Encoding: chunked\r\n\r\n";

// Waits until the peer closes `fd` (or resets it); false after `limit`.
bool wait_peer_closed(int fd, std::chrono::milliseconds limit = kWait) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    char buf[1024];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return true;
    }
    return false;
}

// Accepts connections one at a time; for each, reads the request (head and Content-Length body)
// and runs the script, then closes the connection.
class ScriptedServer {
  public:
    using Script = std::function<void(int fd, const std::string& request)>;

    explicit ScriptedServer(Script script) : script_(std::move(script)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto addr = loopback(0);
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(listen_fd_, 16);
        socklen_t len = sizeof addr;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() {
        (void)!::write(stop_pipe_[1], "x", 1);
        thread_.join();
        ::close(listen_fd_);
        ::close(stop_pipe_[0]);
        ::close(stop_pipe_[1]);
    }
    net::Endpoint endpoint() const { return {"127.0.0.1", port_}; }
    int connections() const { return connections_; }
    std::string last_request() const {
        std::lock_guard lock(mutex_);
        return last_request_;
    }

  private:
    bool wait_readable(int fd) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        int r = ::poll(p, 2, static_cast<int>(kWait.count()));
        return r > 0 && (p[1].revents & POLLIN) == 0 && (p[0].revents & POLLIN) != 0;
    }

    void serve() {
        while (wait_readable(listen_fd_)) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++connections_;
            std::string request;
            char buf[4096];
            std::size_t want = std::string::npos;
            while (wait_readable(fd)) {
                auto n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                request.append(buf, static_cast<std::size_t>(n));
                auto end = request.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                if (want == std::string::npos) {
                    want = end + 4;
                    auto cl = request.find("Content-Length: ");
                    if (cl != std::string::npos && cl < end) want += std::stoul(request.substr(cl + 16));
                }
                if (request.size() >= want) break;
            }
            {
                std::lock_guard lock(mutex_);
                last_request_ = request;
            }
            script_(fd, request);
            ::close(fd);
        }
    }

    Script script_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::atomic<int> connections_{0};
    mutable std::mutex mutex_;
    std::string last_request_;
    std::thread thread_;
};

class StreamTest : public ::testing::Test {
  protected:
    void SetUp() override {
        runtime_ = std::make_unique<net::Runtime>(1);
        runner_ = std::thread([rt = runtime_.get()] { rt->run(); });
    }
    void TearDown() override { stop_runtime(); }

    void stop_runtime() {
        if (!runtime_) return;
        runtime_->stop();
        runner_.join();
        runtime_.reset();
    }

    template <class T>
    std::future<T> start(net::Task<T> task) {
        return net::start(runtime_->executor(0), std::move(task));
    }

    std::unique_ptr<net::Runtime> runtime_;
    std::thread runner_;
};

TEST_F(StreamTest, DeliversEachPieceAsItArrivesAndEndsWithTheBody) {
    auto rx = std::make_shared<Received>();
    std::atomic<bool> first_seen_before_second{false};
    ScriptedServer server([&](int fd, const std::string&) {
        send_all(fd, kChunkedHead);
        send_all(fd, chunk("{\"n\":1}\n"));
        // The next piece goes out only once the client has the first: delivery is incremental.
        first_seen_before_second = wait_until([&] { return rx->has("{\"n\":1}\n"); });
        std::this_thread::sleep_for(50ms);
        send_all(fd, chunk("{\"n\":2}\n"));
        std::this_thread::sleep_for(50ms);
        send_all(fd, chunk("{\"n\":") + chunk("3}\n"));
        std::this_thread::sleep_for(50ms);
        send_all(fd, "0\r\n\r\n");
        wait_peer_closed(fd);
    });
    auto req = net::make_request("POST", "/v3/watch", R"({"create_request":{}})", "application/json");
    auto f = start(stream_owned(server.endpoint(), req, rx, 2s));
    auto ec = wait(f);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(first_seen_before_second);
    EXPECT_EQ(rx->text(), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    EXPECT_GE(rx->pieces(), 3);
    EXPECT_EQ(rx->status, 200);
    EXPECT_EQ(rx->header, "yes");
    auto sent = server.last_request();
    EXPECT_NE(sent.find("POST /v3/watch HTTP/1.1\r\n"), std::string::npos) << sent;
    EXPECT_NE(sent.find("Content-Length: 21\r\n"), std::string::npos) << sent;
    EXPECT_TRUE(sent.ends_with("\r\n\r\n{\"create_request\":{}}")) << sent;
}

TEST_F(StreamTest, StopsAndClosesTheConnectionWhenTheHandlerSaysSo) {
    auto rx = std::make_shared<Received>();
    std::atomic<bool> closed_by_client{false};
    ScriptedServer server([&](int fd, const std::string&) {
        send_all(fd, kChunkedHead);
        send_all(fd, chunk("first\n"));
        closed_by_client = wait_peer_closed(fd);  // the response never ends by itself
    });
    auto f = start(stream_owned(server.endpoint(), net::make_request("POST", "/s"), rx, 5s, 6));
    auto ec = wait(f);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(rx->text(), "first\n");
    EXPECT_TRUE(wait_until([&] { return closed_by_client.load(); }));
}

TEST_F(StreamTest, EndsWithTimeoutWhenThePeerFallsSilent) {
    auto rx = std::make_shared<Received>();
    ScriptedServer server([&](int fd, const std::string&) {
        send_all(fd, kChunkedHead);
        send_all(fd, chunk("a"));
        std::this_thread::sleep_for(100ms);
        send_all(fd, chunk("b"));  // within the idle bound: the bound is per wait, not overall
        wait_peer_closed(fd);
    });
    auto t0 = std::chrono::steady_clock::now();
    auto f = start(stream_owned(server.endpoint(), net::make_request("POST", "/s"), rx, 300ms));
    auto ec = wait(f);
    EXPECT_EQ(ec, net::errc::timeout) << ec.message();
    EXPECT_EQ(rx->text(), "ab");
    EXPECT_GE(since(t0), 400ms);
    EXPECT_LT(since(t0), 3s);
}

TEST_F(StreamTest, ReportsAConnectionClosedMidBody) {
    auto rx = std::make_shared<Received>();
    ScriptedServer server([&](int fd, const std::string&) {
        send_all(fd, kChunkedHead);
        send_all(fd, chunk("partial"));
    });
    auto f = start(stream_owned(server.endpoint(), net::make_request("POST", "/s"), rx, 5s));
    auto ec = wait(f);
    EXPECT_EQ(ec, net::errc::connection_closed) << ec.message();
    EXPECT_EQ(rx->text(), "partial");
}

TEST_F(StreamTest, StreamsSizedAndCloseDelimitedBodies) {
    ScriptedServer server([&](int fd, const std::string& request) {
        if (request.starts_with("GET /sized")) {
            send_all(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\n01234");
            std::this_thread::sleep_for(50ms);
            send_all(fd, "56789");
        } else {
            send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil");
            std::this_thread::sleep_for(50ms);
            send_all(fd, " close");
        }
    });
    auto sized = std::make_shared<Received>();
    auto f1 = start(stream_owned(server.endpoint(), net::make_request("GET", "/sized"), sized, 5s));
    auto ec = wait(f1);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(sized->status, 503);
    EXPECT_EQ(sized->text(), "0123456789");

    auto closing = std::make_shared<Received>();
    auto f2 = start(stream_owned(server.endpoint(), net::make_request("GET", "/close"), closing, 5s));
    ec = wait(f2);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(closing->text(), "until close");
}

TEST_F(StreamTest, ReportsARefusedConnection) {
    ClosedPort closed;
    auto rx = std::make_shared<Received>();
    auto f = start(stream_owned(closed.endpoint(), net::make_request("POST", "/s"), rx, 5s));
    auto ec = wait(f);
    EXPECT_EQ(ec, net::errc::connect_failed) << ec.message();
    EXPECT_EQ(rx->pieces(), 0);
}

TEST_F(StreamTest, UsesAConnectionOfItsOwnOutsideThePool) {
    ScriptedServer server([&](int fd, const std::string&) {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
        wait_peer_closed(fd);
    });
    auto rx = std::make_shared<Received>();
    auto f = start(stream_owned(server.endpoint(), net::make_request("POST", "/s"), rx, 5s));
    EXPECT_FALSE(wait(f));
    EXPECT_EQ(rx->text(), "ok");
    auto endpoint = server.endpoint();  // outlives the task, which refers to it
    auto stats_f = start(net::pool_stats(endpoint));
    auto stats = wait(stats_f);
    EXPECT_EQ(stats.connects, 0u);
    EXPECT_EQ(stats.idle, 0u);
    EXPECT_EQ(stats.busy, 0u);
    EXPECT_TRUE(wait_until([&] { return server.connections() == 1; }));
}

TEST_F(StreamTest, IsAbandonedAndClosedWhenItsIoContextStops) {
    auto rx = std::make_shared<Received>();
    std::atomic<bool> closed_by_client{false};
    ScriptedServer server([&](int fd, const std::string&) {
        send_all(fd, kChunkedHead);
        send_all(fd, chunk("waiting"));
        closed_by_client = wait_peer_closed(fd);
    });
    auto f = start(stream_owned(server.endpoint(), net::make_request("POST", "/s"), rx, 60s));
    ASSERT_TRUE(wait_until([&] { return rx->has("waiting"); }));
    auto t0 = std::chrono::steady_clock::now();
    stop_runtime();
    EXPECT_LT(since(t0), 2s);
    EXPECT_TRUE(wait_until([&] { return closed_by_client.load(); }));
}

}  // namespace
