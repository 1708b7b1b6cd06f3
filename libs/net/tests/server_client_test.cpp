// The server and the client against each other on loopback, plus raw sockets for what a
// well-behaved client never sends. Every wait is bounded by kWait.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/net/testing.hpp"

namespace net = plexus::net;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using namespace plexus::net::testing;

namespace {

// Counts events from io threads; the test thread waits for a count.
class Events {
  public:
    void notify() {
        std::lock_guard lock(mutex_);
        ++count_;
        cv_.notify_all();
    }
    bool wait_for(int n) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, kWait, [&] { return count_ >= n; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    int count_ = 0;
};

std::string status_line(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }

std::string body_of(const std::string& raw) {
    auto end = raw.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : raw.substr(end + 4);
}

std::size_t count(const std::string& haystack, std::string_view needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1))
        ++n;
    return n;
}

std::string pattern_body(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

constexpr std::string_view kKeepAliveOk =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";

// Answers every connection with exactly one canned response and then closes it: a server that
// drops keep-alive connections sooner than its clients expect, or one that speaks bad HTTP.
class OneResponsePerConnectionServer {
  public:
    explicit OneResponsePerConnectionServer(std::string response = std::string(kKeepAliveOk))
        : response_(std::move(response)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto addr = loopback(0);
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(listen_fd_, 16);
        socklen_t len = sizeof addr;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        ::pipe2(stop_pipe_, O_CLOEXEC);
        thread_ = std::thread([this] { serve(); });
    }
    ~OneResponsePerConnectionServer() {
        ::write(stop_pipe_[1], "x", 1);
        thread_.join();
        ::close(listen_fd_);
        ::close(stop_pipe_[0]);
        ::close(stop_pipe_[1]);
    }
    std::uint16_t port() const { return port_; }
    // Waits until `n` connections have been answered and closed.
    bool wait_closed(int n) { return closed_.wait_for(n); }

  private:
    // Waits for `fd` to be readable; false when stopped or after kWait.
    bool wait_readable(int fd) {
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        int r = ::poll(p, 2, static_cast<int>(kWait.count()));
        return r > 0 && (p[1].revents & POLLIN) == 0 && (p[0].revents & POLLIN) != 0;
    }

    void serve() {
        while (wait_readable(listen_fd_)) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            std::string request;
            char buf[4096];
            while (request.find("\r\n\r\n") == std::string::npos && wait_readable(fd)) {
                auto n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            ::send(fd, response_.data(), response_.size(), MSG_NOSIGNAL);
            ::close(fd);
            closed_.notify();
        }
    }

    std::string response_;
    int listen_fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    Events closed_;
    std::thread thread_;
};

class ServerClientTest : public ::testing::Test {
  protected:
    void SetUp() override {
        add_routes();
        runtime_ = std::make_unique<net::Runtime>(2);
        runner_ = std::thread([rt = runtime_.get()] { rt->run(); });
    }

    void TearDown() override {
        if (server_ && !shut_down_) {
            auto done = shutdown_server();
            EXPECT_EQ(done.wait_for(kWait), std::future_status::ready) << "server did not drain";
        }
        runtime_->stop();
        runner_.join();
        server_.reset();
        runtime_.reset();
        net::set_client_settings(net::ClientSettings{});
    }

    void start_server(net::ServerSettings settings = {}) {
        server_ = std::make_unique<net::Server>(*runtime_, std::move(settings), router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        ep_ = net::Endpoint{"127.0.0.1", server_->port()};
    }

    // Starts a graceful shutdown; the future is ready once the done callback has run.
    std::future<void> shutdown_server() {
        shut_down_ = true;
        auto done = std::make_shared<std::promise<void>>();
        auto future = done->get_future();
        server_->shutdown([this, done] {
            done_saw_slow_finished_ = slow_finished_.load();
            done->set_value();
        });
        return future;
    }

    // Starts `task` on io_context `context` (by default 0, whose client pool the tests inspect).
    template <class T>
    std::future<T> start(net::Task<T> task, std::size_t context = 0) {
        auto promise = std::make_shared<std::promise<T>>();
        auto future = promise->get_future();
        net::spawn(runtime_->executor(context), deliver(std::move(task), promise), "test task");
        return future;
    }

    template <class T>
    static T wait(std::future<T>& future) {
        if (future.wait_for(kWait) != std::future_status::ready) throw std::runtime_error("task timed out");
        return future.get();
    }

    template <class T>
    T run(net::Task<T> task) {
        auto future = start(std::move(task));
        return wait(future);
    }

    plexus::Result<net::Response> fetch(std::string method, std::string target, std::string body = {},
                                        std::chrono::milliseconds timeout = 5s) {
        std::string content_type = body.empty() ? "" : "text/plain";
        return run(net::fetch(ep_, std::move(method), std::move(target), std::move(body),
                              std::move(content_type), timeout));
    }

    net::PoolStats pool_stats() { return run(net::pool_stats(ep_)); }

    void add_routes() {
        router_.add("GET", "/hello", [](net::Request&, net::Response& res) -> net::Task<void> {
            res.text(200, "hello");
            co_return;
        });
        router_.add("*", "/echo", [](net::Request& req, net::Response& res) -> net::Task<void> {
            res.status = 200;
            res.headers.add("Content-Type",
                            req.headers.get("content-type").value_or("application/octet-stream"));
            res.headers.add("X-Method", req.method);
            res.headers.add("X-Body-Size", std::to_string(req.body.size()));
            res.headers.add("X-Remote", req.remote_address);
            res.headers.add("X-Custom", req.headers.get("x-custom").value_or(""));
            res.body = req.body;
            co_return;
        });
        router_.add(
            "POST", "/small",
            [](net::Request& req, net::Response& res) -> net::Task<void> {
                res.text(200, req.body);
                co_return;
            },
            16);
        router_.add("GET", "/status/{code}", [](net::Request& req, net::Response& res) -> net::Task<void> {
            // Sets a body even where the status forbids one: the server must not send it.
            res.text(std::stoi(std::string(req.param("code"))), "status body");
            co_return;
        });
        router_.add("GET", "/slow", [this](net::Request& req, net::Response& res) -> net::Task<void> {
            auto ms = std::stoi(req.query_param("ms").value_or("300"));
            slow_started_.notify();
            co_await net::sleep_for(std::chrono::milliseconds(ms));
            slow_finished_ = true;
            res.text(200, "slow");
        });
        router_.add("GET", "/big", [](net::Request& req, net::Response& res) -> net::Task<void> {
            res.text(200, pattern_body(std::stoul(req.query_param("n").value_or("0"))));
            co_return;
        });
        router_.add("GET", "/thread", [](net::Request&, net::Response& res) -> net::Task<void> {
            res.text(200, std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + "<end>");
            co_return;
        });
        router_.add("GET", "/teapot", [](net::Request&, net::Response&) -> net::Task<void> {
            throw net::HttpError(418, "I'm a teapot", "short and stout");
            co_return;
        });
        router_.add("GET", "/boom", [](net::Request&, net::Response&) -> net::Task<void> {
            throw std::runtime_error("internal detail that must not leak");
            co_return;
        });
        router_.add("GET", "/throw-int", [](net::Request&, net::Response&) -> net::Task<void> {
            throw 42;
            co_return;
        });
    }

    net::Router router_;
    std::unique_ptr<net::Runtime> runtime_;
    std::thread runner_;
    std::unique_ptr<net::Server> server_;
    bool shut_down_ = false;
    net::Endpoint ep_;

    Events slow_started_;
    std::atomic<bool> slow_finished_{false};
    std::atomic<bool> done_saw_slow_finished_{false};
};

// ---------------------------------------------------------------- round trips

TEST_F(ServerClientTest, GetRoundTrip) {
    start_server();
    auto r = fetch("GET", "/hello");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");
    EXPECT_EQ(r->headers.get("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(r->headers.get("content-length"), "5");
    EXPECT_TRUE(r->headers.contains("date"));
    EXPECT_FALSE(r->headers.contains("connection"));
}

TEST_F(ServerClientTest, PostRoundTripWithSend) {
    start_server();
    net::Request req;
    req.method = "POST";
    req.target = "/echo?x=1";
    req.headers.add("Content-Type", "application/json");
    req.headers.add("X-Custom", "custom value");
    req.body = R"({"sku":"A-1","qty":2})";
    auto r = run(send_owned(ep_, req, 5s));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, req.body);
    EXPECT_EQ(r->headers.get("content-type"), "application/json");
    EXPECT_EQ(r->headers.get("x-method"), "POST");
    EXPECT_EQ(r->headers.get("x-custom"), "custom value");
    EXPECT_EQ(r->headers.get("x-remote"), "127.0.0.1");
}

TEST_F(ServerClientTest, EmptyPostAndOtherMethods) {
    start_server();
    for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
        auto r = fetch(method, "/echo");
        ASSERT_TRUE(r) << method << ": " << r.error().message();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->headers.get("x-method"), method);
        EXPECT_EQ(r->headers.get("x-body-size"), "0");
    }
}

TEST_F(ServerClientTest, LargeBodiesBothWays) {
    net::ServerSettings settings;
    settings.max_body_bytes = 2 * 1024 * 1024;
    start_server(settings);

    auto upload = pattern_body(1536 * 1024);
    auto echoed = fetch("POST", "/echo", upload, 10s);
    ASSERT_TRUE(echoed) << echoed.error().message();
    EXPECT_EQ(echoed->status, 200);
    EXPECT_EQ(echoed->body.size(), upload.size());
    EXPECT_TRUE(echoed->body == upload);

    auto big = fetch("GET", "/big?n=3000000", {}, 10s);
    ASSERT_TRUE(big) << big.error().message();
    EXPECT_EQ(big->body.size(), 3000000u);
    EXPECT_TRUE(big->body == pattern_body(3000000));
}

TEST_F(ServerClientTest, RouterAnswersThroughTheServer) {
    start_server();
    auto missing = fetch("GET", "/nothing");
    ASSERT_TRUE(missing) << missing.error().message();
    EXPECT_EQ(missing->status, 404);
    EXPECT_EQ(missing->headers.get("content-type"), "application/problem+json");

    auto wrong = fetch("DELETE", "/hello");
    ASSERT_TRUE(wrong) << wrong.error().message();
    EXPECT_EQ(wrong->status, 405);
    EXPECT_EQ(wrong->headers.get("allow"), "GET");
    EXPECT_EQ(wrong->headers.get("content-type"), "application/problem+json");
}

TEST_F(ServerClientTest, ConnectionsAreSpreadEvenlyOverTheThreads) {
    // Whatever the kernel's SO_REUSEPORT hash does with these addresses, each new connection
    // goes to the thread that holds the fewest.
    start_server();
    std::vector<std::unique_ptr<RawSocket>> sockets;
    std::map<std::string, int> per_thread;
    for (int i = 0; i < 6; ++i) {
        auto& s = sockets.emplace_back(std::make_unique<RawSocket>(ep_.port));
        ASSERT_TRUE(s->connected());
        ASSERT_TRUE(s->send("GET /thread HTTP/1.1\r\nHost: t\r\n\r\n"));
        // The body ends with "<end>", so its arrival means the whole response is in.
        ASSERT_EQ(s->read_until("<end>"), RawSocket::End::found);
        const auto& raw = s->received();
        auto body = raw.find("\r\n\r\n") + 4;
        ++per_thread[raw.substr(body, raw.find("<end>", body) - body)];
    }
    ASSERT_EQ(per_thread.size(), 2u);
    for (auto& [thread, n] : per_thread) EXPECT_EQ(n, 3) << "thread " << thread;
}

TEST_F(ServerClientTest, ConcurrentRequestsShareThePool) {
    start_server();
    std::vector<std::future<plexus::Result<net::Response>>> futures;
    for (int i = 0; i < 16; ++i) {
        futures.push_back(
            start(net::fetch(ep_, "POST", "/echo", "request " + std::to_string(i), "text/plain")));
    }
    for (int i = 0; i < 16; ++i) {
        auto r = wait(futures[i]);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->body, "request " + std::to_string(i));
    }
    auto stats = pool_stats();
    EXPECT_EQ(stats.busy, 0u);
    EXPECT_LE(stats.connects, 16u);
    EXPECT_EQ(stats.idle, stats.connects);
}

// ---------------------------------------------------------------- keep-alive and the pool

TEST_F(ServerClientTest, KeepAliveReusesThePooledConnection) {
    start_server();
    ASSERT_TRUE(fetch("GET", "/hello"));
    auto after_first = pool_stats();
    EXPECT_EQ(after_first.connects, 1u);
    EXPECT_EQ(after_first.reused, 0u);
    EXPECT_EQ(after_first.idle, 1u);

    auto r = fetch("POST", "/echo", "second");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "second");
    auto stats = pool_stats();
    EXPECT_EQ(stats.connects, 1u);
    EXPECT_EQ(stats.reused, 1u);
    EXPECT_EQ(stats.retried, 0u);
    EXPECT_EQ(stats.idle, 1u);
    EXPECT_EQ(stats.busy, 0u);
    EXPECT_EQ(server_->stats().connections_accepted, 1u);
    EXPECT_EQ(server_->stats().requests, 2u);
}

TEST_F(ServerClientTest, Http10KeepAliveIsConfirmedExplicitly) {
    start_server();
    RawSocket s(ep_.port);
    ASSERT_TRUE(s.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    ASSERT_EQ(s.read_until("\r\n\r\nhello"), RawSocket::End::found) << s.received();
    EXPECT_NE(s.received().find("\r\nConnection: keep-alive\r\n"), std::string::npos) << s.received();
    s.clear();
    ASSERT_TRUE(s.send("GET /hello HTTP/1.0\r\n\r\n"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(status_line(s.received()), "HTTP/1.1 200 OK");
    EXPECT_NE(s.received().find("\r\nConnection: close\r\n"), std::string::npos) << s.received();
    EXPECT_EQ(body_of(s.received()), "hello");
}

TEST_F(ServerClientTest, PipelinedRequestsAreAnsweredInOrder) {
    start_server();
    RawSocket s(ep_.port);
    ASSERT_TRUE(
        s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
               "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthird"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    const auto& raw = s.received();
    auto first = raw.find("first"), second = raw.find("hello"), third = raw.find("third");
    ASSERT_NE(first, std::string::npos) << raw;
    ASSERT_NE(second, std::string::npos) << raw;
    ASSERT_NE(third, std::string::npos) << raw;
    EXPECT_LT(first, second);
    EXPECT_LT(second, third);
    EXPECT_EQ(count(raw, "HTTP/1.1 200 OK\r\n"), 3u);
}

// ---------------------------------------------------------------- request bodies and framing

TEST_F(ServerClientTest, ChunkedRequestBodyIsDecoded) {
    start_server();
    RawSocket s(ep_.port);
    ASSERT_TRUE(
        s.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               "Content-Type: text/plain\r\nConnection: close\r\n\r\n"));
    // Arrives in pieces that split sizes, data and line ends.
    for (const char* piece :
         {"5;ext=1\r", "\nhel", "lo\r\n6\r\n wo", "rld\r\n0\r\n", "X-Trailer: t\r\n", "\r\n"}) {
        ASSERT_TRUE(s.send(piece));
    }
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(status_line(s.received()), "HTTP/1.1 200 OK") << s.received();
    EXPECT_NE(s.received().find("\r\nX-Body-Size: 11\r\n"), std::string::npos) << s.received();
    EXPECT_EQ(body_of(s.received()), "hello world");
}

TEST_F(ServerClientTest, FramingAttacksAre400AndClose) {
    start_server();
    struct Attack {
        const char* name;
        std::string bytes;
    };
    const std::vector<Attack> attacks = {
        {"CL+TE",
         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"TE+CL",
         "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
         "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"differing CL",
         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 37\r\n\r\n"
         "helloGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"},
        {"invalid chunk size",
         "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\nhello\r\n0\r\n\r\n"},
        {"bare LF in header", "GET /hello HTTP/1.1\r\nHost: x\nX-Smuggle: 1\r\n\r\n"},
        {"bare CR in header", "GET /hello HTTP/1.1\r\nHost: x\rX-Smuggle: 1\r\n\r\n"},
        {"obs-fold", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n"},
        {"space before colon", "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n"},
        {"missing Host", "GET /hello HTTP/1.1\r\nAccept: */*\r\n\r\n"},
        {"two Host fields", "GET /hello HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"},
        {"malformed request line", "GET /hello\r\nHost: x\r\n\r\n"},
    };
    for (const auto& attack : attacks) {
        SCOPED_TRACE(attack.name);
        RawSocket s(ep_.port);
        ASSERT_TRUE(s.connected());
        ASSERT_TRUE(s.send(attack.bytes));
        EXPECT_EQ(s.read_to_end(), RawSocket::End::eof);
        const auto& raw = s.received();
        EXPECT_EQ(raw.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << raw;
        EXPECT_NE(raw.find("\r\nConnection: close\r\n"), std::string::npos) << raw;
        EXPECT_NE(raw.find("\r\nContent-Type: application/problem+json\r\n"), std::string::npos) << raw;
        EXPECT_EQ(count(raw, "HTTP/1.1 "), 1u) << "a smuggled request was answered: " << raw;
    }
    EXPECT_EQ(server_->stats().bad_requests, attacks.size());
    EXPECT_EQ(server_->stats().requests, 0u);
}

TEST_F(ServerClientTest, LimitViolationsGetTheirStatus) {
    net::ServerSettings settings;
    settings.max_header_bytes = 1024;
    settings.max_headers = 10;
    start_server(settings);
    struct Case {
        const char* name;
        std::string bytes;
        const char* status_line;
    };
    std::string many_headers = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 10; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
    const std::vector<Case> cases = {
        {"head too large", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n",
         "HTTP/1.1 431 Request Header Fields Too Large"},
        {"too many headers", many_headers + "\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
        {"unsupported coding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
         "HTTP/1.1 501 Not Implemented"},
        {"HTTP/2.0", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        RawSocket s(ep_.port);
        ASSERT_TRUE(s.send(c.bytes));
        EXPECT_EQ(s.read_to_end(), RawSocket::End::eof);
        EXPECT_EQ(status_line(s.received()), c.status_line) << s.received();
    }
}

TEST_F(ServerClientTest, BodyOverTheRouteLimitIs413) {
    start_server();
    auto r = fetch("POST", "/small", std::string(100, 'x'));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->headers.get("content-type"), "application/problem+json");
    EXPECT_NE(r->body.find(R"("status":413)"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(R"("instance":"/small")"), std::string::npos) << r->body;
    EXPECT_EQ(r->headers.get("connection"), "close");

    auto ok = fetch("POST", "/small", std::string(16, 'x'));
    ASSERT_TRUE(ok) << ok.error().message();
    EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerClientTest, BodyOverTheServerLimitIs413) {
    net::ServerSettings settings;
    settings.max_body_bytes = 1024;
    start_server(settings);
    auto r = fetch("POST", "/echo", std::string(1025, 'x'));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->headers.get("content-type"), "application/problem+json");

    // The limit also holds for a chunked body, whose size is not announced.
    RawSocket s(ep_.port);
    ASSERT_TRUE(
        s.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "400\r\n" +
               std::string(1024, 'a') + "\r\n1\r\nb\r\n0\r\n\r\n"));
    EXPECT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(status_line(s.received()), "HTTP/1.1 413 Content Too Large") << s.received();
}

// The client sends the whole body before it reads; the 413 must survive that.
TEST_F(ServerClientTest, LargeBodyOverTheLimitStillGetsTheProblemResponse) {
    start_server();
    auto r = fetch("POST", "/small", std::string(4 * 1024 * 1024, 'x'), 10s);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->headers.get("content-type"), "application/problem+json");
}

TEST_F(ServerClientTest, ExpectContinue) {
    start_server();
    RawSocket s(ep_.port);
    ASSERT_TRUE(
        s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
               "Connection: close\r\n\r\n"));
    ASSERT_EQ(s.read_until("\r\n\r\n"), RawSocket::End::found);
    EXPECT_EQ(s.received(), "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_TRUE(s.send("hello"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    const auto& raw = s.received();
    ASSERT_EQ(raw.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 0), 0u) << raw;
    EXPECT_EQ(body_of(raw.substr(raw.find("\r\n\r\n") + 4)), "hello");

    // The client skips the interim response.
    net::Request req;
    req.method = "PUT";
    req.target = "/echo";
    req.headers.add("Expect", "100-continue");
    req.body = "payload";
    auto r = run(send_owned(ep_, req, 5s));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "payload");
}

TEST_F(ServerClientTest, ExpectContinueIsNotSentForABodyOverTheLimit) {
    start_server();
    RawSocket s(ep_.port);
    ASSERT_TRUE(
        s.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(status_line(s.received()), "HTTP/1.1 413 Content Too Large") << s.received();
    EXPECT_EQ(s.received().find("100 Continue"), std::string::npos);
}

// ---------------------------------------------------------------- responses without a body

TEST_F(ServerClientTest, HeadResponseHasNoBody) {
    start_server();
    RawSocket s(ep_.port);
    ASSERT_TRUE(s.send("HEAD /big?n=1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_EQ(status_line(s.received()), "HTTP/1.1 200 OK");
    EXPECT_NE(s.received().find("\r\nContent-Length: 1000\r\n"), std::string::npos) << s.received();
    EXPECT_EQ(body_of(s.received()), "");

    auto head = fetch("HEAD", "/big?n=1000");
    ASSERT_TRUE(head) << head.error().message();
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->body, "");
    EXPECT_EQ(head->headers.get("content-length"), "1000");
    // The connection stays usable: nothing of a body is left on it.
    auto next = fetch("GET", "/hello");
    ASSERT_TRUE(next) << next.error().message();
    EXPECT_EQ(next->body, "hello");
    EXPECT_EQ(pool_stats().reused, 1u);
}

TEST_F(ServerClientTest, NoBodyFor204And304) {
    start_server();
    for (const char* code : {"204", "304"}) {
        SCOPED_TRACE(code);
        RawSocket s(ep_.port);
        ASSERT_TRUE(
            s.send(std::string("GET /status/") + code + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        ASSERT_EQ(s.read_to_end(), RawSocket::End::eof);
        EXPECT_EQ(status_line(s.received()).substr(0, 12), std::string("HTTP/1.1 ") + code);
        EXPECT_EQ(s.received().find("Content-Length"), std::string::npos) << s.received();
        EXPECT_EQ(body_of(s.received()), "");
    }
}

// ---------------------------------------------------------------- handler errors

TEST_F(ServerClientTest, HttpErrorBecomesAProblemWithItsStatus) {
    start_server();
    auto r = fetch("GET", "/teapot");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 418);
    EXPECT_EQ(r->headers.get("content-type"), "application/problem+json");
    EXPECT_NE(r->body.find(R"("status":418)"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(R"("title":"I'm a teapot")"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find(R"("detail":"short and stout")"), std::string::npos) << r->body;
    // The connection survives a handler error.
    ASSERT_TRUE(fetch("GET", "/hello"));
    EXPECT_EQ(pool_stats().connects, 1u);
}

TEST_F(ServerClientTest, OtherExceptionsBecomeA500Problem) {
    start_server();
    auto r = fetch("GET", "/boom");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->headers.get("content-type"), "application/problem+json");
    EXPECT_NE(r->body.find(R"("status":500)"), std::string::npos) << r->body;
    EXPECT_EQ(r->body.find("internal detail"), std::string::npos) << r->body;

    auto odd = fetch("GET", "/throw-int");
    ASSERT_TRUE(odd) << odd.error().message();
    EXPECT_EQ(odd->status, 500);
    EXPECT_EQ(odd->headers.get("content-type"), "application/problem+json");
    EXPECT_EQ(server_->in_flight(), 0u);
}

// ---------------------------------------------------------------- timeouts

TEST_F(ServerClientTest, HeaderTimeoutDisconnectsASlowClient) {
    net::ServerSettings settings;
    settings.header_timeout = 200ms;
    settings.idle_timeout = 60s;  // past kWait, which bounds the read: only the header timeout can close
    start_server(settings);
    RawSocket s(ep_.port);
    auto t0 = Clock::now();
    ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n"));
    EXPECT_EQ(s.read_to_end(), RawSocket::End::eof);
    EXPECT_GE(since(t0), 200ms);
    EXPECT_EQ(s.received(), "");
    EXPECT_TRUE(wait_until([&] { return server_->stats().timeouts == 1; }));
}

TEST_F(ServerClientTest, IdleConnectionsAreClosed) {
    net::ServerSettings settings;
    settings.idle_timeout = 200ms;
    start_server(settings);

    RawSocket silent(ep_.port);
    auto t0 = Clock::now();
    EXPECT_EQ(silent.read_to_end(), RawSocket::End::eof);
    EXPECT_GE(since(t0), 150ms);  // its idle time began at accept, just before t0

    RawSocket used(ep_.port);
    ASSERT_TRUE(used.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(used.read_until("\r\n\r\nhello"), RawSocket::End::found);
    EXPECT_EQ(used.read_to_end(), RawSocket::End::eof);
    EXPECT_TRUE(wait_until([&] { return server_->stats().timeouts == 2; }));
}

TEST_F(ServerClientTest, ClientTimeoutAgainstASlowHandler) {
    net::ServerSettings settings;
    settings.drain_timeout = 100ms;  // the handler outlives the test; shutdown does not wait for it
    start_server(settings);
    auto t0 = Clock::now();
    auto r = fetch("GET", "/slow?ms=60000", {}, 200ms);
    auto elapsed = since(t0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(net::errc::timeout)) << r.error().message();
    EXPECT_GE(elapsed, 200ms);
    EXPECT_FALSE(slow_finished_);  // the client gave up; the answer did not come first
    auto stats = pool_stats();
    EXPECT_EQ(stats.busy, 0u);
    EXPECT_EQ(stats.idle, 0u);  // a timed-out connection is never pooled
}

// ---------------------------------------------------------------- connection failures

TEST_F(ServerClientTest, ConnectToAClosedPortFails) {
    ClosedPort closed;
    ep_ = net::Endpoint{"127.0.0.1", closed.port()};
    auto r = fetch("GET", "/hello");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(net::errc::connect_failed)) << r.error().message();
    EXPECT_EQ(pool_stats().busy, 0u);
}

TEST_F(ServerClientTest, DeadPooledConnectionIsRetriedOnceOnAFreshOne) {
    OneResponsePerConnectionServer peer;
    ep_ = net::Endpoint{"127.0.0.1", peer.port()};
    auto first = fetch("GET", "/one");
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(first->body, "ok");
    ASSERT_TRUE(peer.wait_closed(1));
    ASSERT_EQ(pool_stats().idle, 1u);  // the client does not know yet

    auto second = fetch("GET", "/two");
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_EQ(second->body, "ok");
    auto stats = pool_stats();
    EXPECT_EQ(stats.connects, 2u);
    EXPECT_EQ(stats.reused, 1u);
    EXPECT_EQ(stats.retried, 1u);
}

TEST_F(ServerClientTest, NonIdempotentRequestOnADeadPooledConnectionIsNotRepeated) {
    OneResponsePerConnectionServer peer;
    ep_ = net::Endpoint{"127.0.0.1", peer.port()};
    ASSERT_TRUE(fetch("GET", "/one"));
    ASSERT_TRUE(peer.wait_closed(1));
    auto r = fetch("POST", "/order");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(net::errc::connection_closed)) << r.error().message();
    EXPECT_EQ(pool_stats().retried, 0u);
}

TEST_F(ServerClientTest, ConnectionClosedByIdleTimeoutIsRetried) {
    net::ServerSettings settings;
    settings.idle_timeout = 100ms;
    start_server(settings);
    ASSERT_TRUE(fetch("GET", "/hello"));
    ASSERT_TRUE(wait_until([&] { return server_->stats().timeouts == 1; }));
    auto r = fetch("GET", "/hello");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, "hello");
    auto stats = pool_stats();
    EXPECT_EQ(stats.retried, 1u);
    EXPECT_EQ(stats.connects, 2u);
}

TEST_F(ServerClientTest, ReadsChunkedAndUntilCloseResponses) {
    {
        OneResponsePerConnectionServer peer(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
        ep_ = net::Endpoint{"127.0.0.1", peer.port()};
        auto r = fetch("GET", "/");
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->body, "hello world");
        EXPECT_EQ(pool_stats().idle, 1u);
    }
    {
        OneResponsePerConnectionServer peer(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
        ep_ = net::Endpoint{"127.0.0.1", peer.port()};
        auto r = fetch("GET", "/");
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->body, "until the end");
        EXPECT_EQ(pool_stats().idle, 0u);  // its end was the connection's end
    }
}

TEST_F(ServerClientTest, InvalidResponsesAreProtocolErrors) {
    for (const char* response : {
             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
             "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
             "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok",
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
             "SSH-2.0-OpenSSH_9.2\r\n\r\n",
         }) {
        SCOPED_TRACE(response);
        OneResponsePerConnectionServer peer(response);
        ep_ = net::Endpoint{"127.0.0.1", peer.port()};
        auto r = fetch("GET", "/");
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(net::errc::protocol_error)) << r.error().message();
        EXPECT_EQ(pool_stats().idle, 0u);
    }
}

TEST_F(ServerClientTest, TruncatedResponseIsConnectionClosedAndNotRetried) {
    OneResponsePerConnectionServer peer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    ep_ = net::Endpoint{"127.0.0.1", peer.port()};
    auto r = fetch("GET", "/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(net::errc::connection_closed)) << r.error().message();
    EXPECT_EQ(pool_stats().retried, 0u);
}

TEST_F(ServerClientTest, ResponseOverTheClientLimit) {
    net::ClientSettings settings;
    settings.max_response_bytes = 1000;
    net::set_client_settings(settings);  // before this runtime's first request
    start_server();
    auto big = fetch("GET", "/big?n=1001");
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error(), make_error_code(net::errc::response_too_large)) << big.error().message();
    auto fits = fetch("GET", "/big?n=1000");
    ASSERT_TRUE(fits) << fits.error().message();
    EXPECT_EQ(fits->body.size(), 1000u);
}

TEST_F(ServerClientTest, RequestsWaitForAFreeConnectionUntilTheirTimeout) {
    net::ClientSettings settings;
    settings.max_connections_per_endpoint = 1;
    net::set_client_settings(settings);  // before this runtime's first request
    start_server();
    auto slow = start(net::fetch(ep_, "GET", "/slow?ms=300"));
    ASSERT_TRUE(slow_started_.wait_for(1));

    auto impatient = fetch("GET", "/hello", {}, 50ms);
    ASSERT_FALSE(impatient);
    EXPECT_EQ(impatient.error(), make_error_code(net::errc::pool_exhausted)) << impatient.error().message();

    auto patient = start(net::fetch(ep_, "GET", "/hello"));
    auto s = wait(slow);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->body, "slow");
    auto p = wait(patient);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->body, "hello");
    auto stats = pool_stats();
    EXPECT_EQ(stats.connects, 1u);
    EXPECT_EQ(stats.reused, 1u);
}

// ---------------------------------------------------------------- graceful shutdown

TEST_F(ServerClientTest, ShutdownLetsInFlightRequestsFinish) {
    start_server();
    RawSocket idle(ep_.port);  // an idle keep-alive connection is closed at once
    ASSERT_TRUE(idle.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(idle.read_until("\r\n\r\nhello"), RawSocket::End::found);

    auto in_flight = start(net::fetch(ep_, "GET", "/slow?ms=300"));
    ASSERT_TRUE(slow_started_.wait_for(1));
    EXPECT_EQ(server_->in_flight(), 1u);
    auto done = shutdown_server();

    EXPECT_EQ(idle.read_to_end(), RawSocket::End::eof);
    auto r = wait(in_flight);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "slow");
    EXPECT_EQ(r->headers.get("connection"), "close");

    ASSERT_EQ(done.wait_for(kWait), std::future_status::ready);
    EXPECT_TRUE(done_saw_slow_finished_);
    EXPECT_EQ(server_->in_flight(), 0u);

    // Nothing accepts connections any more.
    RawSocket late(ep_.port);
    EXPECT_FALSE(late.connected());
    EXPECT_EQ(late.error(), ECONNREFUSED);
    auto refused = fetch("GET", "/hello");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(net::errc::connect_failed)) << refused.error().message();
}

TEST_F(ServerClientTest, ShutdownDoesNotWaitPastTheDrainTimeout) {
    net::ServerSettings settings;
    settings.drain_timeout = 100ms;
    start_server(settings);
    // The handler sleeps far past kWait: a shutdown that waited for it would not be done in time.
    auto in_flight = start(net::fetch(ep_, "GET", "/slow?ms=60000"));
    ASSERT_TRUE(slow_started_.wait_for(1));
    auto t0 = Clock::now();
    auto done = shutdown_server();
    ASSERT_EQ(done.wait_for(kWait), std::future_status::ready);
    EXPECT_GE(since(t0), 100ms);
    EXPECT_FALSE(done_saw_slow_finished_);
    auto r = wait(in_flight);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(net::errc::connection_closed)) << r.error().message();
    EXPECT_FALSE(slow_finished_);
}

TEST_F(ServerClientTest, ShutdownWithoutConnectionsCompletesAtOnce) {
    start_server();
    auto done = shutdown_server();
    EXPECT_EQ(done.wait_for(kWait), std::future_status::ready);
}

// As a daemon's main() does on a second signal: the runtime stops with the server still
// running, then both are destroyed. Nothing of one io_context may be touched after it is gone
// (this one is for the sanitizer build).
TEST(ServerLifetime, ServerAndRuntimeDestroyedWithoutShutdown) {
    net::Router router;
    router.add("GET", "/hello", [](net::Request&, net::Response& res) -> net::Task<void> {
        res.text(200, "hello");
        co_return;
    });
    auto runtime = std::make_unique<net::Runtime>(4);
    auto server = std::make_unique<net::Server>(*runtime, net::ServerSettings{}, router.handler());
    server->start();
    std::thread runner([rt = runtime.get()] { rt->run(); });
    RawSocket s(server->port());
    ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(s.read_until("\r\n\r\nhello"), RawSocket::End::found);
    runtime->stop();
    runner.join();
    server.reset();
    runtime.reset();
}

// ---------------------------------------------------------------- task helpers and endpoints

net::Task<std::tuple<bool, bool, bool>> offload_checks() {
    auto io_thread = std::this_thread::get_id();
    auto worker = co_await net::offload([] { return std::this_thread::get_id(); });
    bool resumed_at_home = std::this_thread::get_id() == io_thread;
    bool rethrown = false;
    try {
        co_await net::offload([] { throw std::runtime_error("from the pool"); });
    } catch (const std::runtime_error& e) {
        rethrown = std::string(e.what()) == "from the pool";
    }
    co_return std::tuple{worker != io_thread, resumed_at_home, rethrown};
}

TEST_F(ServerClientTest, OffloadRunsOnThePoolAndResumesOnTheCallersThread) {
    auto [elsewhere, at_home, rethrown] = run(offload_checks());
    EXPECT_TRUE(elsewhere);
    EXPECT_TRUE(at_home);
    EXPECT_TRUE(rethrown);
}

TEST_F(ServerClientTest, UnhandledExceptionsInSpawnedTasksReachTheHook) {
    Events reported;
    std::string what_seen;
    net::set_unhandled_exception_hook([&](const char* what, std::exception_ptr) {
        what_seen = what;
        reported.notify();
    });
    net::spawn(
        runtime_->executor(1),
        []() -> net::Task<void> {
            co_await net::sleep_for(1ms);
            throw std::runtime_error("lost?");
        }(),
        "failing task");
    EXPECT_TRUE(reported.wait_for(1));
    net::set_unhandled_exception_hook([](const char* what, std::exception_ptr) {
        std::fprintf(stderr, "unhandled exception in %s\n", what);
    });
    EXPECT_EQ(what_seen, "failing task");
}

TEST_F(ServerClientTest, SignalWaitTimesOutWithoutANotify) {
    net::Signal signal;
    signal.notify_all();  // before the wait began: does not count
    auto t0 = Clock::now();
    EXPECT_FALSE(run(signal.wait(50ms)));
    EXPECT_GE(since(t0), 50ms);
    EXPECT_EQ(signal.waiters(), 0u);
}

TEST_F(ServerClientTest, SignalWakesWaitersOnEveryIoContext) {
    net::Signal signal;
    auto first = start(signal.wait(kWait), 0);
    auto second = start(signal.wait(kWait), 1);
    auto third = start(signal.wait(kWait), 1);
    ASSERT_TRUE(wait_until([&] { return signal.waiters() == 3; }));
    signal.notify_all();
    EXPECT_TRUE(wait(first));  // true: notified, not timed out
    EXPECT_TRUE(wait(second));
    EXPECT_TRUE(wait(third));
    EXPECT_EQ(signal.waiters(), 0u);
}

TEST(ParseEndpoint, AcceptsHostPortForms) {
    EXPECT_EQ(net::parse_endpoint("127.0.0.1:8080"), (net::Endpoint{"127.0.0.1", 8080}));
    EXPECT_EQ(net::parse_endpoint("http://catalog.local:80/"), (net::Endpoint{"catalog.local", 80}));
    EXPECT_EQ(net::parse_endpoint("[::1]:9000"), (net::Endpoint{"::1", 9000}));
    EXPECT_EQ(net::parse_endpoint("localhost:65535")->to_string(), "localhost:65535");
}

TEST(ParseEndpoint, RejectsEverythingElse) {
    for (const char* bad : {"", "host", ":80", "host:", "host:0", "host:65536", "host:8o", "host:123456",
                            "http://host:80/path", "https://host:443", "[::1]"}) {
        EXPECT_FALSE(net::parse_endpoint(bad)) << bad;
    }
}

TEST(ParseListenAddress, AllowsPortZeroAndNothingLooser) {
    EXPECT_EQ(net::parse_listen_address("127.0.0.1:0"), (net::Endpoint{"127.0.0.1", 0}));
    EXPECT_EQ(net::parse_listen_address("0.0.0.0:8080"), (net::Endpoint{"0.0.0.0", 8080}));
    for (const char* bad : {"", "host", ":0", "host:", "host:65536", "host:8o", "host:12abc"}) {
        EXPECT_FALSE(net::parse_listen_address(bad)) << bad;
    }
}

}  // namespace
