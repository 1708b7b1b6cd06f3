// `plexus gateway` as a process: SIGHUP reloads the routes file (including a change its file watch
// cannot see), a broken file is rejected while the old routes keep serving, and SIGTERM stops it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

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
