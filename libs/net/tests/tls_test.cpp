// HTTPS: the server with a certificate from the development CA against a blocking OpenSSL client
// that offers whatever a test wants (old protocols, weak ciphers), certificate reloads, and the
// timeouts, limits and drain of plain connections over TLS. Every wait is bounded by kWait.

#include "plexus/net/tls.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "plexus/net/dev_ca.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/tls_testing.hpp"

namespace net = plexus::net;
using namespace std::chrono_literals;
using namespace plexus::net::testing;
using Clock = std::chrono::steady_clock;

namespace {

std::string make_temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "plexus-tls-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

class TlsServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = make_temp_dir();
        ca_ = net::ensure_dev_ca(dir_ + "/tls");
        tls_ = std::make_shared<net::ServerTls>(ca_.cert, ca_.key);
        router_.add("GET", "/hello", [](net::Request& req, net::Response& res) -> net::Task<void> {
            res.text(200, req.secure ? "hello over tls" : "hello in plain text");
            co_return;
        });
        router_.add("POST", "/echo", [](net::Request& req, net::Response& res) -> net::Task<void> {
            res.text(200, req.body);
            co_return;
        });
        router_.add("GET", "/slow", [this](net::Request&, net::Response& res) -> net::Task<void> {
            slow_started_ = true;
            co_await net::sleep_for(300ms);
            res.text(200, "slow");
        });
        runtime_ = std::make_unique<net::Runtime>(2);
        runner_ = std::thread([rt = runtime_.get()] { rt->run(); });
    }

    void TearDown() override {
        if (server_) {
            std::promise<void> done;
            server_->shutdown([&] { done.set_value(); });
            EXPECT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
        }
        runtime_->stop();
        runner_.join();
        server_.reset();
        runtime_.reset();
        std::filesystem::remove_all(dir_);
    }

    void start_server(net::ServerSettings settings = {}) {
        settings.tls = tls_;
        server_ = std::make_unique<net::Server>(*runtime_, std::move(settings), router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        port_ = server_->port();
    }

    TlsClientOptions trusting() const {
        TlsClientOptions o;
        o.ca_file = ca_.ca_cert;
        return o;
    }

    // Replaces the server certificate with a new one from the same CA.
    void renew_certificate() {
        std::filesystem::remove(ca_.cert);
        auto again = net::ensure_dev_ca(dir_ + "/tls");
        ASSERT_TRUE(again.created_cert);
        ASSERT_FALSE(again.created_ca);
    }

    std::string dir_;
    net::DevCa ca_;
    std::shared_ptr<net::ServerTls> tls_;
    net::Router router_;
    std::unique_ptr<net::Runtime> runtime_;
    std::thread runner_;
    std::unique_ptr<net::Server> server_;
    std::uint16_t port_ = 0;
    std::atomic<bool> slow_started_{false};
};

}  // namespace

TEST_F(TlsServerTest, Tls13HandshakeVerifiesAgainstTheDevelopmentCaAndServesRequests) {
    start_server();
    for (const char* host : {"127.0.0.1", "localhost"}) {
        auto options = trusting();
        options.host = host;
        TlsClient client(port_, options);
        ASSERT_TRUE(client.handshake()) << host << ": " << client.error();
        EXPECT_EQ(client.version(), "TLSv1.3");
        EXPECT_EQ(client.alpn(), "http/1.1");
        EXPECT_EQ(client.peer_sha256(), tls_->certificate().sha256);
        auto first = client.get("/hello");
        EXPECT_EQ(status_of(first), 200) << first;
        EXPECT_TRUE(first.ends_with("\r\n\r\nhello over tls")) << first;
        // Keep-alive: a second request on the same connection, with a body.
        ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"));
        auto second = client.read_response();
        EXPECT_TRUE(second.ends_with("\r\n\r\nabcde")) << second;
    }
    EXPECT_EQ(server_->stats().requests, 4u);
}

TEST_F(TlsServerTest, Tls12UsesForwardSecretAeadCiphersInTheServersOrder) {
    start_server();
    auto options = trusting();
    options.max_version = TLS1_2_VERSION;
    // The client prefers AES-256; the server's order puts AES-128 first.
    options.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256";
    TlsClient client(port_, options);
    ASSERT_TRUE(client.handshake()) << client.error();
    EXPECT_EQ(client.version(), "TLSv1.2");
    EXPECT_EQ(client.cipher(), "ECDHE-ECDSA-AES128-GCM-SHA256");
    EXPECT_EQ(status_of(client.get("/hello")), 200);

    options.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
    TlsClient chacha(port_, options);
    ASSERT_TRUE(chacha.handshake()) << chacha.error();
    EXPECT_EQ(chacha.cipher(), "ECDHE-ECDSA-CHACHA20-POLY1305");
}

TEST_F(TlsServerTest, Tls12SessionsAreResumed) {
    start_server();
    auto options = trusting();
    options.max_version = TLS1_2_VERSION;
    SSL_SESSION* session = nullptr;
    {
        TlsClient first(port_, options);
        ASSERT_TRUE(first.handshake()) << first.error();
        EXPECT_FALSE(first.resumed());
        session = SSL_get1_session(first.native());
        ASSERT_NE(session, nullptr);
    }
    TlsClient second(port_, options);
    SSL_set_session(second.native(), session);
    SSL_SESSION_free(session);
    ASSERT_TRUE(second.handshake()) << second.error();
    EXPECT_TRUE(second.resumed());
    EXPECT_EQ(status_of(second.get("/hello")), 200);
}

TEST_F(TlsServerTest, OldProtocolsAreRefused) {
    start_server();
    for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
        TlsClientOptions options;
        options.min_version = TLS1_VERSION;
        options.max_version = version;
        options.security_level = 0;  // the client itself would allow them
        options.ciphers = "ALL:@SECLEVEL=0";
        TlsClient client(port_, options);
        EXPECT_FALSE(client.handshake())
            << "version " << std::hex << version << " negotiated " << client.version();
        EXPECT_NE(client.error().find("protocol version"), std::string::npos) << client.error();
    }
    // The same client is served once it may use TLS 1.2.
    TlsClientOptions options;
    options.min_version = TLS1_VERSION;
    options.security_level = 0;
    TlsClient modern(port_, options);
    EXPECT_TRUE(modern.handshake()) << modern.error();
    EXPECT_TRUE(wait_until([&] { return server_->stats().tls_handshake_failures == 2; }));
}

TEST_F(TlsServerTest, WeakCiphersAndOtherProtocolsAreRefused) {
    start_server();
    for (const char* ciphers : {
             "ECDHE-ECDSA-AES128-SHA",        // CBC with SHA-1
             "ECDHE-ECDSA-AES256-SHA384",     // CBC
             "ECDHE-ECDSA-NULL-SHA",          // no encryption
             "AES128-GCM-SHA256:AES256-SHA",  // no forward secrecy
         }) {
        TlsClientOptions options;
        options.max_version = TLS1_2_VERSION;
        options.security_level = 0;
        options.ciphers = std::string(ciphers) + ":@SECLEVEL=0";
        TlsClient client(port_, options);
        EXPECT_FALSE(client.handshake()) << ciphers << " negotiated " << client.cipher();
    }
    TlsClientOptions h2_only;
    h2_only.alpn = "h2";
    TlsClient h2(port_, h2_only);
    EXPECT_FALSE(h2.handshake()) << "ALPN without http/1.1 was accepted";
    EXPECT_NE(h2.error().find("no application protocol"), std::string::npos) << h2.error();
}

TEST_F(TlsServerTest, AnUntrustedClientRefusesAnotherCasCertificate) {
    start_server();
    auto other = net::ensure_dev_ca(dir_ + "/other");
    TlsClientOptions options;
    options.ca_file = other.ca_cert;
    TlsClient client(port_, options);
    EXPECT_FALSE(client.handshake());
    EXPECT_NE(client.error().find("certificate verify failed"), std::string::npos) << client.error();
    // A name the certificate does not have.
    auto misnamed = trusting();
    misnamed.host = "example.com";
    TlsClient wrong_name(port_, misnamed);
    EXPECT_FALSE(wrong_name.handshake());
}

TEST_F(TlsServerTest, ReloadServesTheNewCertificateToNewHandshakesOnly) {
    start_server();
    TlsClient before(port_, trusting());
    ASSERT_TRUE(before.handshake()) << before.error();
    auto old_fingerprint = before.peer_sha256();
    EXPECT_EQ(status_of(before.get("/hello")), 200);

    EXPECT_FALSE(tls_->reload_if_changed()) << "nothing changed yet";
    renew_certificate();
    auto reloaded = tls_->reload_if_changed();
    ASSERT_TRUE(reloaded);
    ASSERT_TRUE(reloaded->ok) << reloaded->error;
    EXPECT_NE(reloaded->certificate.sha256, old_fingerprint);
    EXPECT_EQ(tls_->certificate().sha256, reloaded->certificate.sha256);

    TlsClient after(port_, trusting());
    ASSERT_TRUE(after.handshake()) << after.error();
    EXPECT_EQ(after.peer_sha256(), reloaded->certificate.sha256);
    EXPECT_EQ(status_of(after.get("/hello")), 200);
    // The connection made before keeps its session.
    EXPECT_EQ(status_of(before.get("/hello")), 200);
}

TEST_F(TlsServerTest, ABrokenNewPairIsRejectedAndTheOldOneKeepsServing) {
    start_server();
    auto serving = tls_->certificate().sha256;
    auto good_cert = read_file(ca_.cert);

    write_file(ca_.cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    auto broken = tls_->reload_if_changed();
    ASSERT_TRUE(broken);
    EXPECT_FALSE(broken->ok);
    EXPECT_NE(broken->error.find(ca_.cert), std::string::npos) << broken->error;
    EXPECT_EQ(broken->certificate.sha256, serving);

    // A valid certificate with a key that is not its own.
    write_file(ca_.cert, good_cert);
    write_file(ca_.key, read_file(ca_.ca_key));
    auto mismatched = tls_->reload();
    EXPECT_FALSE(mismatched.ok);
    EXPECT_NE(mismatched.error.find("does not match"), std::string::npos) << mismatched.error;

    TlsClient client(port_, trusting());
    ASSERT_TRUE(client.handshake()) << client.error();
    EXPECT_EQ(client.peer_sha256(), serving);
    EXPECT_EQ(status_of(client.get("/hello")), 200);
}

TEST_F(TlsServerTest, HandshakeTimeoutDropsAClientThatSaysNothing) {
    net::ServerSettings settings;
    settings.handshake_timeout = 200ms;
    settings.idle_timeout = 60s;  // past kWait: only the handshake timeout can close
    start_server(settings);
    RawSocket silent(port_);
    auto t0 = Clock::now();
    EXPECT_EQ(silent.read_to_end(), RawSocket::End::eof);
    EXPECT_GE(since(t0), 150ms);
    EXPECT_TRUE(wait_until([&] { return server_->stats().timeouts == 1; }));
    EXPECT_EQ(server_->stats().tls_handshake_failures, 1u);

    // A client that starts a handshake and stalls in the middle fares the same.
    RawSocket stalled(port_);
    ASSERT_TRUE(stalled.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
    EXPECT_EQ(stalled.read_to_end(), RawSocket::End::eof);
    EXPECT_TRUE(wait_until([&] { return server_->stats().timeouts == 2; }));
}

TEST_F(TlsServerTest, PlainHttpOnATlsPortIsRefused) {
    start_server();
    RawSocket plain(port_);
    ASSERT_TRUE(plain.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto end = plain.read_to_end();
    EXPECT_TRUE(end == RawSocket::End::eof || end == RawSocket::End::reset) << end;
    EXPECT_EQ(plain.received().find("hello"), std::string::npos);
    EXPECT_EQ(server_->stats().requests, 0u);
}

TEST_F(TlsServerTest, HeaderTimeoutAndLimitsHoldOverTls) {
    net::ServerSettings settings;
    settings.header_timeout = 200ms;
    settings.idle_timeout = 60s;
    settings.max_header_bytes = 1024;
    settings.max_body_bytes = 16;
    start_server(settings);

    TlsClient slow(port_, trusting());
    ASSERT_TRUE(slow.handshake()) << slow.error();
    ASSERT_TRUE(slow.send("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // never finishes its head
    auto t0 = Clock::now();
    slow.read_to_close();
    EXPECT_GE(since(t0), 150ms);
    EXPECT_EQ(slow.buffered(), "");
    EXPECT_TRUE(wait_until([&] { return server_->stats().timeouts == 1; }));

    TlsClient large_head(port_, trusting());
    ASSERT_TRUE(large_head.handshake()) << large_head.error();
    ASSERT_TRUE(
        large_head.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
    auto refused = large_head.read_response();
    EXPECT_EQ(status_of(refused), 431) << refused;

    TlsClient large_body(port_, trusting());
    ASSERT_TRUE(large_body.handshake()) << large_body.error();
    ASSERT_TRUE(large_body.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
                                std::string(100, 'b')));
    auto too_large = large_body.read_response();
    EXPECT_EQ(status_of(too_large), 413) << too_large;
    // The server closes after a rejection, with a TLS close_notify.
    EXPECT_TRUE(large_body.read_to_close());
}

TEST_F(TlsServerTest, ConnectionCloseEndsWithCloseNotify) {
    start_server();
    TlsClient client(port_, trusting());
    ASSERT_TRUE(client.handshake()) << client.error();
    ASSERT_TRUE(client.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto response = client.read_response();
    EXPECT_EQ(status_of(response), 200) << response;
    EXPECT_TRUE(client.read_to_close()) << "closed without close_notify";
}

TEST_F(TlsServerTest, ShutdownDrainsInFlightTlsRequests) {
    start_server();
    TlsClient idle(port_, trusting());
    ASSERT_TRUE(idle.handshake()) << idle.error();
    EXPECT_EQ(status_of(idle.get("/hello")), 200);

    TlsClient busy(port_, trusting());
    ASSERT_TRUE(busy.handshake()) << busy.error();
    ASSERT_TRUE(busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return slow_started_.load(); }));

    std::promise<void> done;
    server_->shutdown([&] { done.set_value(); });
    idle.read_to_close();  // closed at once: it was waiting for a request
    auto response = busy.read_response();
    EXPECT_EQ(status_of(response), 200) << response;
    EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
    EXPECT_TRUE(response.ends_with("slow"));
    EXPECT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
    server_.reset();
}

TEST(ServerTlsLoad, BadFilesAreErrorsNamingTheFile) {
    auto dir = make_temp_dir();
    auto ca = net::ensure_dev_ca(dir);
    auto expect_error = [](const std::string& cert, const std::string& key, const std::string& named,
                           const std::string& says) {
        try {
            net::ServerTls tls(cert, key);
            ADD_FAILURE() << "loaded " << cert << " and " << key;
        } catch (const net::TlsError& e) {
            std::string what = e.what();
            EXPECT_TRUE(what.starts_with(named)) << what;
            EXPECT_NE(what.find(says), std::string::npos) << what;
        }
    };
    expect_error(dir + "/missing.pem", ca.key, dir + "/missing.pem", "cannot be read");
    expect_error(ca.cert, dir + "/missing-key.pem", dir + "/missing-key.pem", "cannot be read");
    write_file(dir + "/empty.pem", "");
    expect_error(dir + "/empty.pem", ca.key, dir + "/empty.pem", "no PEM certificate");
    expect_error(ca.key, ca.key, ca.key, "no PEM certificate");
    expect_error(ca.cert, ca.cert, ca.cert, "no usable PEM private key");
    expect_error(ca.cert, ca.ca_key, ca.ca_key, "does not match the certificate in " + ca.cert);
    expect_error(dir, ca.key, dir, "cannot be read");

    // A chain: leaf and CA in one file.
    write_file(dir + "/chain.pem", read_file(ca.cert) + read_file(ca.ca_cert));
    net::ServerTls chained(dir + "/chain.pem", ca.key);
    EXPECT_EQ(chained.certificate().chain, 1u);
    EXPECT_EQ(chained.certificate().subject, "CN=localhost,O=Plexus development");
    EXPECT_EQ(chained.certificate().sha256.size(), 64u);
    EXPECT_FALSE(chained.certificate().not_after.empty());
    std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------- fetch_https

namespace {

// A listening socket that never accepts: connections complete in the kernel, then nothing answers.
class SilentListener {
  public:
    SilentListener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        auto addr = loopback(0);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(fd_, 4);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    ~SilentListener() { ::close(fd_); }
    std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace

TEST_F(TlsServerTest, FetchHttpsVerifiesTheServerAndReadsTheAnswer) {
    start_server();
    auto fetch = [&](net::Endpoint ep, std::string ca_file, std::chrono::milliseconds timeout = 5s) {
        auto future = net::start(runtime_->executor(0), net::fetch_https(std::move(ep), std::move(ca_file),
                                                                         "GET", "/hello", timeout));
        return wait(future);
    };
    for (const char* host : {"127.0.0.1", "localhost"}) {
        auto ok = fetch({host, port_}, ca_.ca_cert);
        ASSERT_TRUE(ok) << host << ": " << ok.error().message();
        EXPECT_EQ(ok->status, 200);
        EXPECT_EQ(ok->body, "hello over tls");
    }

    auto other = net::ensure_dev_ca(dir_ + "/other");
    auto untrusted = fetch({"127.0.0.1", port_}, other.ca_cert);
    ASSERT_FALSE(untrusted);
    EXPECT_EQ(untrusted.error(), make_error_code(net::errc::tls_failed));
    auto no_ca = fetch({"127.0.0.1", port_}, dir_ + "/no-such-ca.pem");
    ASSERT_FALSE(no_ca);
    EXPECT_EQ(no_ca.error(), make_error_code(net::errc::tls_failed));

    ClosedPort closed;
    auto refused = fetch(closed.endpoint(), ca_.ca_cert);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), make_error_code(net::errc::connect_failed));

    SilentListener silent;
    auto t0 = Clock::now();
    auto timed_out = fetch({"127.0.0.1", silent.port()}, ca_.ca_cert, 200ms);
    ASSERT_FALSE(timed_out);
    EXPECT_EQ(timed_out.error(), make_error_code(net::errc::timeout));
    EXPECT_LT(since(t0), kWait);

    // A plain HTTP server does not pass for an HTTPS one.
    net::Server plain(*runtime_, net::ServerSettings{}, router_.handler());
    plain.start();
    auto not_tls = fetch({"127.0.0.1", plain.port()}, ca_.ca_cert);
    ASSERT_FALSE(not_tls);
    EXPECT_EQ(not_tls.error(), make_error_code(net::errc::tls_failed));
    std::promise<void> done;
    plain.shutdown([&] { done.set_value(); });
    EXPECT_EQ(done.get_future().wait_for(kWait), std::future_status::ready);
}
