// `plexus up --detach` with the default manifest on a temporary data dir and free ports: the
// gateway serves the shop, a catalog instance killed with SIGKILL while a client keeps calling
// costs no failed call, the supervisor restarts it, the registry drops the dead registration,
// and `plexus down` leaves no process behind.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

class PlexusUp : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(d.up()) << d.up_output() << d.supervisor_log(); }

    Deployment d;
};

}  // namespace

TEST_F(PlexusUp, ServesTheShopSurvivesAKilledInstanceAndStopsClean) {
    const int gateway_port = d.gateway_port();
    EXPECT_NE(d.up_output().find("http://127.0.0.1:" + std::to_string(gateway_port)), std::string::npos)
        << d.up_output();
    auto first = http_get(gateway_port, "/api/products/1");
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(json::parse(first.body).at("availability").at("quantity").as_int64(), 25);
    EXPECT_FALSE(first.headers["x-request-id"].empty());
    EXPECT_EQ(http_get(gateway_port, "/api/nothing-here").status, 404);

    // The gateway's admin endpoints answer on its admin listener only, never on the public port.
    const int admin_port = d.gateway_admin_port();
    ASSERT_GT(admin_port, 0);
    EXPECT_NE(admin_port, gateway_port);
    EXPECT_NE(d.up_output().find("http://127.0.0.1:" + std::to_string(admin_port)), std::string::npos)
        << d.up_output();
    for (const char* path : {"/metrics", "/-/routes", "/-/resilience"}) {
        EXPECT_EQ(http_get(admin_port, path).status, 200) << path;
        EXPECT_EQ(http_get(gateway_port, path).status, 404) << path;
    }
    EXPECT_NE(http_get(admin_port, "/metrics").body.find("plexus_gateway_requests_total"), std::string::npos);
    EXPECT_EQ(http_get(gateway_port, "/health/ready").status, 200);  // load balancers' probes

    // The identity server answers through the gateway at its issuer URL, and the first admin can
    // get a token with the credentials plexus up wrote for it.
    auto discovery = http_get(gateway_port, "/auth/.well-known/openid-configuration");
    ASSERT_EQ(discovery.status, 200) << discovery.body;
    const auto issuer = "http://127.0.0.1:" + std::to_string(gateway_port) + "/auth";
    EXPECT_EQ(json::parse(discovery.body).at("issuer").as_string(), issuer);
    auto creds = credentials_of(read_file(d.data_dir() + "/identity/admin-credentials.json"));
    ASSERT_EQ(creds.id, "plexus-admin");
    auto token = client_credentials(gateway_port, "/auth/token", creds);
    ASSERT_EQ(token.status, 200) << token.body;
    EXPECT_EQ(json::parse(token.body).at("token_type").as_string(), "Bearer");
    EXPECT_EQ(http_get(gateway_port, "/auth/jwks").status, 200);

    // Changing the catalog needs scope catalog:write: refused without a token, allowed with the
    // token of a client the admin creates.
    const std::string product = R"({"name":"Tamper","price_cents":2900})";
    const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};
    EXPECT_EQ(http("POST", gateway_port, "/api/products", product, json_type).status, 401);
    auto admin = "Bearer " + access_token_of(token);
    auto writer = http("POST", gateway_port, "/auth/admin/clients",
                       R"({"name":"catalog editor","scopes":["catalog:write"]})",
                       {{"Authorization", admin}, {"Content-Type", "application/json"}});
    ASSERT_EQ(writer.status, 201) << writer.body;
    auto w = credentials_of(writer.body);
    auto writer_token = client_credentials(gateway_port, "/auth/token", w);
    ASSERT_EQ(writer_token.status, 200) << writer_token.body;
    auto bearer = "Bearer " + access_token_of(writer_token);
    auto created = http("POST", gateway_port, "/api/products", product,
                        {{"Content-Type", "application/json"}, {"Authorization", bearer}});
    EXPECT_GE(created.status, 200) << created.body;
    EXPECT_LT(created.status, 300) << created.body;
    EXPECT_EQ(http("POST", gateway_port, "/api/products", product, {{"Authorization", admin}}).status, 403);

    // Revoked at the identity server, the token is refused by the gateway within about a second
    // (pushed by the revocation watch), although its verification is cached there.
    auto revoked =
        http("POST", gateway_port, "/auth/revoke",
             "token=" + access_token_of(writer_token) + "&client_id=" + w.id + "&client_secret=" + w.secret,
             {{"Content-Type", "application/x-www-form-urlencoded"}});
    ASSERT_EQ(revoked.status, 200) << revoked.body;
    const auto revoked_at = std::chrono::steady_clock::now();
    EXPECT_TRUE(eventually([&] {
        return http("GET", gateway_port, "/api/products/1", {}, {}).status == 200 &&
               http("POST", gateway_port, "/api/products", product,
                    {{"Content-Type", "application/json"}, {"Authorization", bearer}})
                       .status == 401;
    }));
    std::printf("the gateway refused the revoked token %lld ms after the revocation\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - revoked_at)
                                           .count()));

    // The same through the CLI, as the deployment's first admin.
    std::string cli_out;
    ASSERT_EQ(d.plexus("identity clients create 'stock sync' --scope inventory:write --json", &cli_out), 0)
        << cli_out;
    auto made = json::parse(cli_out).as_object();
    EXPECT_EQ(made.at("name").as_string(), "stock sync");
    EXPECT_EQ(made.at("client_secret").as_string().size(), 43u);
    ASSERT_EQ(d.plexus("identity clients list", &cli_out), 0) << cli_out;
    EXPECT_NE(cli_out.find(std::string(made.at("client_id").as_string())), std::string::npos) << cli_out;
    EXPECT_EQ(cli_out.find(std::string(made.at("client_secret").as_string())), std::string::npos);
    ASSERT_EQ(d.plexus("identity keys rotate", &cli_out), 0) << cli_out;
    EXPECT_NE(cli_out.find("signing with"), std::string::npos) << cli_out;
    EXPECT_EQ(d.plexus("identity clients delete nosuch", &cli_out), 1);
    EXPECT_NE(cli_out.find("404: no client nosuch"), std::string::npos) << cli_out;

    // Stock changes take an API key or an access token with inventory:write, checked at the gateway
    // (introspected with its own provisioned client) and again by inventory.
    const std::string quantity = R"({"quantity":11})";
    EXPECT_EQ(http("PUT", gateway_port, "/api/stock/2", quantity, json_type).status, 401);
    ASSERT_EQ(d.plexus("identity api-keys create importer --scope inventory:write --json", &cli_out), 0)
        << cli_out;
    auto api_key = std::string(json::parse(cli_out).at("api_key").as_string());
    auto key_id = api_key.substr(0, api_key.find('.'));
    auto by_key = http("PUT", gateway_port, "/api/stock/2", quantity,
                       {{"Content-Type", "application/json"}, {"X-API-Key", api_key}});
    EXPECT_EQ(by_key.status, 200) << by_key.body;
    EXPECT_EQ(json::parse(http_get(gateway_port, "/api/stock/2").body).at("quantity").as_int64(), 11);
    ASSERT_EQ(d.plexus("identity api-keys delete " + key_id, &cli_out), 0) << cli_out;
    EXPECT_TRUE(eventually([&] {
        return http("PUT", gateway_port, "/api/stock/2", quantity,
                    {{"Content-Type", "application/json"}, {"X-API-Key", api_key}})
                   .status == 401;
    }));

    // An opaque token (its client says so) is introspected the same way.
    ASSERT_EQ(d.plexus("identity clients create 'stock sync opaque' --scope inventory:write --opaque --json",
                       &cli_out),
              0)
        << cli_out;
    auto opaque = client_credentials(gateway_port, "/auth/token", credentials_of(cli_out));
    ASSERT_EQ(opaque.status, 200) << opaque.body;
    auto opaque_token = access_token_of(opaque);
    EXPECT_TRUE(opaque_token.starts_with("pxo_"));
    EXPECT_EQ(http("PUT", gateway_port, "/api/stock/2", quantity,
                   {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + opaque_token}})
                  .status,
              200);

    // The catalog sets a new product's stock in inventory with its own service token.
    auto stocked =
        http("POST", gateway_port, "/api/products", R"({"name":"Scale","price_cents":3900,"stock":6})",
             {{"Content-Type", "application/json"}, {"Authorization", admin}});
    EXPECT_EQ(stocked.status, 403);  // the admin token has no catalog:write
    ASSERT_EQ(d.plexus("identity clients create 'editor 2' --scope catalog:write --json", &cli_out), 0)
        << cli_out;
    auto editor_token = client_credentials(gateway_port, "/auth/token", credentials_of(cli_out));
    ASSERT_EQ(editor_token.status, 200) << editor_token.body;
    stocked = http(
        "POST", gateway_port, "/api/products", R"({"name":"Scale","price_cents":3900,"stock":6})",
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + access_token_of(editor_token)}});
    ASSERT_EQ(stocked.status, 201) << stocked.body;
    auto new_id = std::to_string(json::parse(stocked.body).at("id").as_int64());
    EXPECT_EQ(json::parse(http_get(gateway_port, "/api/stock/" + new_id).body).at("quantity").as_int64(), 6);

    auto victim = d.instance("catalog-0");
    ASSERT_FALSE(victim.empty());
    int victim_pid = static_cast<int>(victim.at("pid").as_int64());
    auto victim_address = std::string(victim.at("address").as_string());
    auto victim_port = std::stoi(victim_address.substr(victim_address.rfind(':') + 1));
    ASSERT_GT(victim_pid, 0);

    // A client keeps calling through the gateway while the instance dies.
    std::atomic<bool> stop{false};
    std::atomic<int> calls{0}, failures{0};
    std::string last_failure;
    std::thread client([&] {
        while (!stop) {
            auto r = http_get(gateway_port, "/api/products/" + std::to_string(1 + calls % 5));
            ++calls;
            if (r.status != 200) {
                ++failures;
                last_failure = std::to_string(r.status) + " " + r.body + r.error;
            }
        }
    });
    ASSERT_TRUE(eventually([&] { return calls > 50; }));
    ASSERT_EQ(::kill(victim_pid, SIGKILL), 0);

    // The registry no longer lists the dead process's address (its health check fails; its TTL is
    // 5 s). A failing registry fails the test rather than listing nothing.
    bool dropped = eventually([&] {
        auto ports = d.registered_ports("catalog");
        return std::find(ports.begin(), ports.end(), victim_port) == ports.end();
    });
    // The supervisor restarts it under the same instance name with a new pid.
    bool restarted = eventually([&] {
        auto i = d.instance("catalog-0");
        return !i.empty() && i.at("restarts").as_int64() >= 1 && i.at("healthy").as_bool() &&
               i.at("pid").as_int64() != victim_pid;
    });
    int calls_at_drop = calls;
    ASSERT_TRUE(eventually([&] { return calls > calls_at_drop + 50; }));
    stop = true;
    client.join();

    EXPECT_TRUE(restarted) << json::serialize(d.instances());
    EXPECT_TRUE(dropped) << d.registry_port();
    EXPECT_EQ(failures, 0) << "of " << calls << " calls; last: " << last_failure;
    EXPECT_GT(calls, 100);

    // plexus status prints the table.
    std::string status_out;
    ASSERT_EQ(d.plexus("status", &status_out), 0);
    EXPECT_NE(status_out.find("catalog-1"), std::string::npos) << status_out;
    EXPECT_NE(status_out.find("healthy"), std::string::npos) << status_out;

    // plexus scale: a third catalog replica starts, registers and becomes healthy; scaling back
    // stops it.
    std::string scale_out;
    ASSERT_EQ(d.plexus("scale catalog 3", &scale_out), 0) << scale_out;
    EXPECT_TRUE(eventually([&] {
        auto i = d.instance("catalog-2");
        return !i.empty() && i.at("healthy").as_bool() && i.at("state").as_string() == "running";
    })) << json::serialize(d.instances());
    EXPECT_TRUE(eventually([&] { return d.registered_ports("catalog").size() == 3; }));
    ASSERT_EQ(d.plexus("scale catalog 2", &scale_out), 0) << scale_out;
    EXPECT_TRUE(eventually([&] { return d.instance("catalog-2").empty(); }))
        << json::serialize(d.instances());
    EXPECT_NE(d.plexus("scale nosuch 1", &scale_out), 0);
    EXPECT_NE(scale_out.find("nosuch"), std::string::npos) << scale_out;

    // The control API refuses what it cannot do, as problem details, and changes nothing.
    auto put_replicas = [&](const std::string& service, const std::string& body) {
        return http("PUT", d.control_port(), "/v1/services/" + service + "/replicas", body,
                    {{"Content-Type", "application/json"}});
    };
    struct Refusal {
        std::string service, body;
        int status;
        std::string detail;
    };
    for (const auto& c : {Refusal{"nosuch", R"({"replicas":1})", 404, "no service named 'nosuch'"},
                          Refusal{"catalog", "not json", 400, R"(body must be {\"replicas\": N})"},
                          Refusal{"catalog", R"({"replicas":"2"})", 400, "body must be"},
                          Refusal{"catalog", R"({"count":2})", 400, "body must be"},
                          Refusal{"catalog", R"({"replicas":-1})", 400, "replicas must be between 0 and 64"},
                          Refusal{"catalog", R"({"replicas":65})", 400, "replicas must be between 0 and 64"},
                          // 2^32 + 2 would wrap to 2 in an int and be accepted
                          Refusal{"catalog", R"({"replicas":4294967298})", 400, "replicas must be between"},
                          Refusal{"catalog", R"({"replicas":18446744073709551615})", 400, "body must be"}}) {
        auto r = put_replicas(c.service, c.body);
        EXPECT_EQ(r.status, c.status) << c.body << ": " << r.body;
        EXPECT_EQ(r.headers["content-type"], "application/problem+json") << c.body;
        EXPECT_NE(r.body.find(c.detail), std::string::npos) << c.body << ": " << r.body;
    }
    std::size_t catalogs = 0;
    for (const auto& i : d.instances()) catalogs += i.at("service").as_string() == "catalog";
    EXPECT_EQ(catalogs, 2u) << json::serialize(d.instances());

    // plexus down leaves no process behind.
    std::string down_out;
    ASSERT_EQ(d.down(&down_out), 0) << down_out;
    EXPECT_EQ(::kill(d.supervisor_pid(), 0), -1);
    for (int pid : d.seen_pids()) {
        EXPECT_TRUE(
            eventually([&] { return ::kill(pid, 0) == -1 && errno == ESRCH; }, std::chrono::seconds(5)))
            << "pid " << pid << " is still alive";
    }
    EXPECT_NE(http_get(gateway_port, "/api/products/1").status, 200);
}
