// `plexus gateway` as a process: SIGHUP reloads the routes file (including a change its file watch
// cannot see), a broken file is rejected while the old routes keep serving, and SIGTERM stops it.
// With --tls-cert/--tls-key it serves HTTPS and follows changes of the certificate files.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "plexus/net/dev_ca.hpp"
#include "plexus/net/tls_testing.hpp"
#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"
#include "support/stub_server.hpp"

using namespace plexus::test;

namespace {

// A routes file with one route, `prefix` (always four characters, so that every version of the
// file has the same size) to `upstream_port`.
std::string routes(const std::string& prefix, int upstream_port) {
    return "routes:\n  - name: only\n    match:\n      prefix: " + prefix +
           "\n    upstreams: [\"127.0.0.1:" + std::to_string(upstream_port) + "\"]\n";
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
}

struct timespec mtime_of(const std::string& path) {
    struct stat st{};
    ::stat(path.c_str(), &st);
    return st.st_mtim;
}

class GatewayDaemon : public ::testing::Test {
  protected:
    void SetUp() override {
        routes_file = dir.path() + "/routes.yaml";
        write_file(routes_file, routes("/aaa", upstream.port()));
        port = free_port();
        admin_port = free_port();
        gateway =
            Process({PLEXUS_BIN, "gateway", "--listen", "127.0.0.1:" + std::to_string(port), "--admin-listen",
                     "127.0.0.1:" + std::to_string(admin_port), "--routes", routes_file, "--threads", "1"},
                    {}, dir.path() + "/gateway.log");
        ASSERT_TRUE(eventually([&] { return http_get(port, "/health/ready").status == 200; }))
            << gateway.log();
    }

    // Rewrites the routes file and puts its modification time back: same size, same time, so the
    // file watch (which compares both) sees no change and only SIGHUP can load it.
    void rewrite_unseen(const std::string& text) {
        auto before = mtime_of(routes_file);
        auto size = std::string(routes("/aaa", upstream.port())).size();
        ASSERT_EQ(text.size(), size) << "the file's size would give the change away";
        write_file(routes_file, text);
        struct timespec times[2] = {before, before};
        ASSERT_EQ(::utimensat(AT_FDCWD, routes_file.c_str(), times, 0), 0);
    }

    TempDir dir;
    StubServer upstream;
    std::string routes_file;
    int port = 0, admin_port = 0;
    Process gateway;
};

}  // namespace

TEST_F(GatewayDaemon, SighupReloadsTheRoutesEvenWhenTheFileWatchCannotTell) {
    EXPECT_EQ(http_get(port, "/aaa/x").status, 200);
    EXPECT_EQ(http_get(port, "/bbb/x").status, 404);

    rewrite_unseen(routes("/bbb", upstream.port()));
    gateway.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return http_get(port, "/bbb/x").status == 200; })) << gateway.log();
    EXPECT_EQ(http_get(port, "/aaa/x").status, 404);
    EXPECT_EQ(upstream.requests("/bbb/x"), 1);

    // The handler stays installed: a second SIGHUP reloads again.
    rewrite_unseen(routes("/ccc", upstream.port()));
    gateway.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return http_get(port, "/ccc/x").status == 200; })) << gateway.log();
    EXPECT_TRUE(gateway.running());

    gateway.signal(SIGTERM);
    EXPECT_EQ(gateway.wait(), 0) << gateway.log();
}

TEST_F(GatewayDaemon, SighupWithABrokenFileKeepsTheRoutesAndSaysWhy) {
    std::string broken = "routes: [oops";
    broken += std::string(routes("/aaa", upstream.port()).size() - broken.size(), ' ');
    rewrite_unseen(broken);
    gateway.signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return gateway.log().find("routes rejected") != std::string::npos; }))
        << gateway.log();
    EXPECT_NE(gateway.log().find(routes_file), std::string::npos) << gateway.log();
    EXPECT_EQ(http_get(port, "/aaa/x").status, 200);
    EXPECT_TRUE(gateway.running());
}

TEST_F(GatewayDaemon, AdminEndpointsAnswerOnTheAdminListenerOnly) {
    EXPECT_EQ(http_get(port, "/aaa/x").status, 200);
    auto metrics = http_get(admin_port, "/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("plexus_gateway_requests_total{route=\"only\",code_class=\"2xx\"} 1"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(http_get(admin_port, "/-/routes").body.find("\"name\":\"only\""), std::string::npos);
    EXPECT_EQ(http_get(admin_port, "/-/resilience").status, 200);
    EXPECT_EQ(http_get(admin_port, "/aaa/x").status, 404);  // no routing there
    for (const char* path : {"/-/routes", "/-/resilience", "/-/metrics"})
        EXPECT_EQ(http_get(port, path).status, 404) << path;
    EXPECT_EQ(http_get(port, "/metrics").status, 404);  // an ordinary path: no route takes it
    EXPECT_EQ(http_get(port, "/health/live").status, 200);
    gateway.signal(SIGTERM);
    EXPECT_EQ(gateway.wait(), 0) << gateway.log();
}

namespace {

// `plexus gateway` serving HTTPS with a certificate of a development CA made in a temporary dir.
class GatewayDaemonTls : public ::testing::Test {
  protected:
    void SetUp() override {
        routes_file = dir.path() + "/routes.yaml";
        write_file(routes_file, routes("/aaa", upstream.port()));
        ca = plexus::net::ensure_dev_ca(dir.path() + "/tls");
    }

    Process start(std::vector<std::string> extra) {
        port = free_port();
        std::vector<std::string> argv = {PLEXUS_BIN,       "gateway",
                                         "--listen",       "127.0.0.1:" + std::to_string(port),
                                         "--admin-listen", "127.0.0.1:" + std::to_string(free_port()),
                                         "--routes",       routes_file,
                                         "--threads",      "1"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return Process(argv, {}, dir.path() + "/gateway-" + std::to_string(++starts) + ".log");
    }

    // The fingerprint of the certificate a new handshake gets, after a request through it
    // answered 200; empty when either failed.
    std::string fingerprint_of_a_working_handshake() {
        plexus::net::testing::TlsClientOptions options;
        options.ca_file = ca.ca_cert;
        options.timeout = std::chrono::seconds(2);
        plexus::net::testing::TlsClient client(static_cast<std::uint16_t>(port), options);
        if (!client.handshake()) return {};
        if (plexus::net::testing::status_of(client.get("/aaa/x")) != 200) return {};
        return client.peer_sha256();
    }

    TempDir dir;
    StubServer upstream;
    std::string routes_file;
    plexus::net::DevCa ca;
    int port = 0;
    int starts = 0;
};

}  // namespace

TEST_F(GatewayDaemonTls, ServesHttpsAndReloadsTheCertificateWhenItsFilesChange) {
    auto gateway = start({"--tls-cert", ca.cert, "--tls-key", ca.key});
    std::string first;
    ASSERT_TRUE(eventually([&] { return !(first = fingerprint_of_a_working_handshake()).empty(); }))
        << gateway.log();
    EXPECT_EQ(http_get(port, "/aaa/x").status, 0) << "plain HTTP answered on the TLS port";
    EXPECT_NE(gateway.log().find("\"scheme\":\"https\""), std::string::npos) << gateway.log();

    // A new certificate of the same CA: new handshakes get it within about a second.
    std::filesystem::remove(ca.cert);
    ASSERT_TRUE(plexus::net::ensure_dev_ca(dir.path() + "/tls").created_cert);
    std::string second;
    ASSERT_TRUE(eventually([&] {
        second = fingerprint_of_a_working_handshake();
        return !second.empty() && second != first;
    })) << gateway.log();

    // A broken one is logged and the last good one keeps serving.
    auto good = read_file(ca.cert);
    write_file(ca.cert, good.substr(0, good.size() / 2));
    ASSERT_TRUE(eventually([&] {
        return gateway.log().find("tls certificate rejected") != std::string::npos;
    })) << gateway.log();
    EXPECT_NE(gateway.log().find(ca.cert), std::string::npos);
    EXPECT_EQ(fingerprint_of_a_working_handshake(), second);
    EXPECT_TRUE(gateway.running());

    gateway.signal(SIGTERM);
    EXPECT_EQ(gateway.wait(), 0) << gateway.log();
}

TEST_F(GatewayDaemonTls, BadTlsFlagsStopTheStartWithExitCode2) {
    auto missing = start({"--tls-cert", dir.path() + "/nothing.pem", "--tls-key", ca.key});
    EXPECT_EQ(missing.wait(), 2) << missing.log();
    EXPECT_NE(missing.log().find(dir.path() + "/nothing.pem: cannot be read"), std::string::npos)
        << missing.log();

    write_file(dir.path() + "/junk.pem", "not a certificate\n");
    auto junk = start({"--tls-cert", dir.path() + "/junk.pem", "--tls-key", ca.key});
    EXPECT_EQ(junk.wait(), 2) << junk.log();
    EXPECT_NE(junk.log().find(dir.path() + "/junk.pem: no PEM certificate"), std::string::npos) << junk.log();

    auto mismatched = start({"--tls-cert", ca.cert, "--tls-key", ca.ca_key});
    EXPECT_EQ(mismatched.wait(), 2) << mismatched.log();
    EXPECT_NE(mismatched.log().find("does not match the certificate"), std::string::npos) << mismatched.log();

    auto half = start({"--tls-cert", ca.cert});
    EXPECT_EQ(half.wait(), 2) << half.log();
    EXPECT_NE(half.log().find("--tls-cert and --tls-key go together"), std::string::npos) << half.log();
}
