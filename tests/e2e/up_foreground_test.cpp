// `plexus up` in the foreground: progress, the ready banner, Ctrl-C (SIGINT) stops everything
// and leaves no process behind; a broken manifest stops startup with file, line and key.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <fstream>
#include <regex>
#include <set>

#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;

namespace {

std::set<int> pids_in(const std::string& log) {
    std::set<int> pids;
    std::regex started("started, pid ([0-9]+)");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), started); it != std::sregex_iterator();
         ++it) {
        pids.insert(std::stoi((*it)[1]));
    }
    return pids;
}

}  // namespace

TEST(PlexusUpForeground, StartsShowsProgressAndStopsOnCtrlC) {
    TempDir dir;
    int gateway_port = free_port();
    Process up({PLEXUS_BIN, "up", "-f", std::string(PLEXUS_SOURCE_DIR) + "/deploy/plexus.yaml", "--data-dir",
                dir.path(), "--gateway-port", std::to_string(gateway_port), "--gateway-admin-port",
                std::to_string(free_port())},
               {}, dir.path() + "/up.out");
    ASSERT_TRUE(eventually([&] { return up.log().find("Plexus is up") != std::string::npos; },
                           std::chrono::seconds(60)))
        << up.log();
    auto out = up.log();
    EXPECT_NE(out.find("registry       healthy"), std::string::npos) << out;
    EXPECT_NE(out.find("catalog-1      healthy"), std::string::npos) << out;
    EXPECT_NE(out.find("curl http://127.0.0.1:" + std::to_string(gateway_port) + "/api/products/1"),
              std::string::npos)
        << out;
    auto r = http_get(gateway_port, "/api/products/3");
    EXPECT_EQ(r.status, 200) << r.body;

    // The first admin's credentials are pointed at, never printed.
    EXPECT_NE(out.find("file mode 0600): " + dir.path() + "/identity/admin-credentials.json"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("Sign in as admin: plexus login --data-dir " + dir.path()), std::string::npos) << out;
    EXPECT_EQ(out.find("client_secret"), std::string::npos);

    auto children = pids_in(out);
    ASSERT_EQ(children.size(), 8u)
        << out;  // registry, identity, config, limits, gateway, 2 catalogs, inventory
    up.signal(SIGINT);
    EXPECT_EQ(up.wait(std::chrono::seconds(60)), 0) << up.log();
    EXPECT_NE(up.log().find("plexus: stopped"), std::string::npos);
    for (int pid : children) {
        EXPECT_TRUE(eventually([&] { return ::kill(pid, 0) == -1; }, std::chrono::seconds(5)))
            << "pid " << pid << " outlived plexus up";
    }
    EXPECT_FALSE(std::ifstream(dir.path() + "/supervisor.json").good());
}

TEST(PlexusUpForeground, BrokenManifestNamesFileLineAndKey) {
    TempDir dir;
    auto manifest = dir.path() + "/broken.yaml";
    std::ofstream(manifest)
        << "name: shop\nservices:\n  catalog:\n    command: [\"/bin/true\"]\n    replicsa: 2\n";
    std::string out;
    int rc = run_command(
        std::string(PLEXUS_BIN) + " up -f " + manifest + " --data-dir " + dir.path() + "/data", &out);
    EXPECT_EQ(rc, 2);
    EXPECT_NE(out.find(manifest + ":5: services.catalog.replicsa: unknown key"), std::string::npos) << out;
}
