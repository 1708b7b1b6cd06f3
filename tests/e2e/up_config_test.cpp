// Central configuration in a deployment `plexus up` started: the `plexus config` commands change
// the catalog's settings and every catalog instance applies them at once; a canary reaches one
// instance first and is then promoted; the gateway takes routes from the config server; a change
// the catalog's published schema refuses is refused before it goes live.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

class PlexusUpConfig : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(d.up()) << d.up_output() << d.supervisor_log(); }

    // How many products a page of GET /products has, asked through `port` at `path`.
    static std::size_t page_size(int port, const std::string& path) {
        auto r = http_get(port, path);
        if (r.status != 200) return 0;
        return json::parse(r.body).at("items").as_array().size();
    }

    // The port of a catalog instance by its id, as the registry lists it.
    int catalog_port(const std::string& id) {
        for (const auto& in : d.registered("catalog"))
            if (in.at("id").as_string() == id) return static_cast<int>(in.at("port").as_int64());
        return 0;
    }

    Deployment d;
};

}  // namespace

TEST_F(PlexusUpConfig, ASettingChangedWithTheCliReachesEveryInstanceAndCanBeRolledBack) {
    const int gw = d.gateway_port();
    ASSERT_EQ(page_size(gw, "/api/products"), 5u);  // the seeded default_limit (20) shows them all
    std::string out;
    ASSERT_EQ(d.plexus("config set catalog listing.default_limit=2 -m shorter", &out), 0) << out;
    EXPECT_NE(out.find("catalog: version"), std::string::npos) << out;
    const int c0 = catalog_port("catalog-0"), c1 = catalog_port("catalog-1");
    ASSERT_GT(c0, 0);
    ASSERT_GT(c1, 0);
    EXPECT_TRUE(eventually([&] {
        return page_size(c0, "/products") == 2 && page_size(c1, "/products") == 2;
    })) << d.grep_logs("configuration");
    auto page = json::parse(http_get(gw, "/api/products").body).as_object();
    EXPECT_EQ(page.at("next").as_string(), "2");
    EXPECT_EQ(page_size(gw, "/api/products?after=2"), 2u);

    ASSERT_EQ(d.plexus("config instances catalog", &out), 0) << out;
    EXPECT_NE(out.find("catalog-0"), std::string::npos) << out;
    EXPECT_NE(out.find("catalog-1"), std::string::npos) << out;
    EXPECT_EQ(out.find("refused"), std::string::npos) << out;
    ASSERT_EQ(d.plexus("config history catalog", &out), 0) << out;
    EXPECT_NE(out.find("shorter"), std::string::npos) << out;
    EXPECT_NE(out.find("plexus-admin"), std::string::npos) << out;  // the author, from the token
    ASSERT_EQ(d.plexus("config diff catalog", &out), 0) << out;
    EXPECT_NE(out.find("~ listing.default_limit: 20 -> 2"), std::string::npos) << out;

    // The catalog published the schema of what it loads: a value it could not load is refused
    // by the config server, naming the key, and nothing changes.
    EXPECT_EQ(d.plexus("config set catalog listing.default_limit=5000", &out), 1) << out;
    EXPECT_NE(out.find("listing.default_limit"), std::string::npos) << out;
    EXPECT_EQ(d.plexus("config set catalog listing.colour=blue", &out), 1) << out;
    EXPECT_NE(out.find("unknown key"), std::string::npos) << out;
    EXPECT_EQ(page_size(c0, "/products"), 2u);

    ASSERT_EQ(d.plexus("config rollback catalog", &out), 0) << out;
    EXPECT_NE(out.find("(rollback)"), std::string::npos) << out;
    EXPECT_TRUE(
        eventually([&] { return page_size(c0, "/products") == 5 && page_size(c1, "/products") == 5; }));
}

TEST_F(PlexusUpConfig, ACanaryReachesItsInstanceFirstAndIsThenPromoted) {
    std::string out;
    ASSERT_EQ(d.plexus("config canary catalog listing.default_limit=1 --instance catalog-0 -m try", &out), 0)
        << out;
    const int c0 = catalog_port("catalog-0"), c1 = catalog_port("catalog-1");
    EXPECT_TRUE(eventually([&] { return page_size(c0, "/products") == 1; }));
    EXPECT_EQ(page_size(c1, "/products"), 5u);
    ASSERT_EQ(d.plexus("config get catalog --instance catalog-1", &out), 0) << out;
    EXPECT_NE(out.find("default_limit: 20"), std::string::npos) << out;
    ASSERT_EQ(d.plexus("config list", &out), 0) << out;
    EXPECT_NE(out.find("catalog-0"), std::string::npos) << out;                      // the canary pending
    EXPECT_EQ(d.plexus("config set catalog listing.max_limit=50", &out), 1) << out;  // not while it is out
    ASSERT_EQ(d.plexus("config promote catalog", &out), 0) << out;
    EXPECT_TRUE(eventually([&] { return page_size(c1, "/products") == 1; }));
    EXPECT_EQ(page_size(c0, "/products"), 1u);
}

TEST_F(PlexusUpConfig, TheGatewayTakesRoutesFromTheConfigServer) {
    const int gw = d.gateway_port();
    EXPECT_EQ(http_get(gw, "/api/v2/products").status, 404);
    std::ifstream in(std::string(PLEXUS_SOURCE_DIR) + "/deploy/routes.yaml");
    std::stringstream shipped;
    shipped << in.rdbuf();
    auto routes = shipped.str();
    auto at = routes.find("\nroutes:\n");
    ASSERT_NE(at, std::string::npos);
    routes.insert(at + 9,
                  "  - name: products-v2\n    match:\n      prefix: /api/v2/products\n"
                  "    service: catalog\n    rewrite: /products\n");
    auto file = d.data_dir() + "/routes-v2.yaml";
    std::ofstream(file) << routes;
    std::string out;
    ASSERT_EQ(d.plexus("config set gateway -f " + file + " -m v2", &out), 0) << out;
    EXPECT_TRUE(eventually([&] { return http_get(gw, "/api/v2/products").status == 200; }))
        << d.grep_logs("routes");
    EXPECT_EQ(http_get(gw, "/api/products/1").status, 200);  // the other routes still serve

    // Routes the gateway cannot load are refused there and reported; the old ones keep serving.
    std::ofstream(file) << "routes:\n  - name: broken\n    match: {prefix: /x}\n";
    ASSERT_EQ(d.plexus("config set gateway -f " + file, &out), 0) << out;
    EXPECT_TRUE(eventually([&] {
        std::string instances;
        d.plexus("config instances gateway", &instances);
        return instances.find("refused") != std::string::npos;
    }));
    EXPECT_EQ(http_get(gw, "/api/v2/products").status, 200);
}
