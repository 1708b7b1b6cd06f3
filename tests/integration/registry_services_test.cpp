// The registry and the shop services as real processes on loopback.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <sstream>

#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
namespace json = boost::json;

namespace {

class RegistryWithServices : public ::testing::Test {
  protected:
    void SetUp() override {
        start_registry();
        start_identity();
    }

    // The identity server the services check credentials with; the catalog's own client gets
    // inventory:write (its stock changes), as in the default deployment.
    void start_identity() {
        identity_port = free_port();
        auto url = "http://127.0.0.1:" + std::to_string(identity_port);
        identity = Process({PLEXUS_BIN, "identity", "--listen", "127.0.0.1:" + std::to_string(identity_port),
                            "--data-dir", dir.path() + "/identity", "--issuer", url, "--provision",
                            "shop-catalog:inventory:write=" + dir.path() + "/catalog/credentials.json",
                            "--provision", "shop-inventory=" + dir.path() + "/inventory/credentials.json"},
                           {}, dir.path() + "/identity.log");
        ASSERT_TRUE(eventually([&] { return http_get(identity_port, "/health/ready").status == 200; }))
            << identity.log();
    }

    void start_registry() {
        if (registry_port == 0) registry_port = free_port();
        registry = Process({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:" + std::to_string(registry_port),
                            "--data-dir", dir.path() + "/registry"},
                           {}, dir.path() + "/registry.log");
        ASSERT_TRUE(eventually([&] { return http_get(registry_port, "/health/ready").status == 200; }))
            << registry.log();
    }

    Process start_service(const std::string& binary, const std::string& name, const std::string& id,
                          std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{binary, "--instance-id", id, "--heartbeat", "200ms", "--ttl", "1s"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto identity_url = "http://127.0.0.1:" + std::to_string(identity_port);
        return Process(argv,
                       {{"PLEXUS_REGISTRY", "http://127.0.0.1:" + std::to_string(registry_port)},
                        {"PLEXUS_DATA_DIR", dir.path() + "/" + name},
                        {"PLEXUS_IDENTITY", identity_url},
                        {"PLEXUS_ISSUER", identity_url},
                        {"PLEXUS_CREDENTIALS", dir.path() + "/" + name + "/credentials.json"},
                        {"PLEXUS_THREADS", "1"}},
                       dir.path() + "/" + id + ".log");
    }

    json::object service(const std::string& name, const std::string& query = {}) {
        auto r = http_get(registry_port, "/v1/services/" + name + query);
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body).as_object();
    }

    std::size_t healthy(const std::string& name) { return service(name)["instances"].as_array().size(); }

    // The value of an unlabelled series on the registry's /metrics, or "" if it is absent.
    std::string registry_metric(const std::string& name) {
        auto text = http_get(registry_port, "/metrics").body;
        auto at = text.find("\n" + name + " ");
        if (at == std::string::npos) return "";
        at += name.size() + 2;
        return text.substr(at, text.find('\n', at) - at);
    }

    int instance_port(const std::string& name, const std::string& id) {
        auto snapshot = service(name);
        for (const auto& in : snapshot["instances"].as_array()) {
            if (in.at("id").as_string() == id) return static_cast<int>(in.at("port").as_int64());
        }
        return 0;
    }

    TempDir dir;
    int registry_port = 0;
    int identity_port = 0;
    Process registry;
    Process identity;
};

}  // namespace

TEST_F(RegistryWithServices, ServicesRegisterAndCatalogCallsInventoryThroughDiscovery) {
    auto inventory = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-0");
    auto catalog = start_service(SHOP_CATALOG_BIN, "catalog", "catalog-0");
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 1 && healthy("catalog") == 1; }));

    int port = instance_port("catalog", "catalog-0");
    ASSERT_GT(port, 0);
    auto r = http("GET", port, "/products/1", {}, {{"X-Request-Id", "req-test-1"}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto product = json::parse(r.body).as_object();
    EXPECT_EQ(product["name"].as_string(), "Espresso beans");
    EXPECT_EQ(product["availability"].at("quantity").as_int64(), 25);
    EXPECT_EQ(r.headers["x-request-id"], "req-test-1");
    // The correlation id travelled to inventory.
    EXPECT_TRUE(eventually([&] { return inventory.log().find("req-test-1") != std::string::npos; }));

    EXPECT_EQ(http_get(port, "/products/abc").status, 400);
    EXPECT_EQ(http_get(port, "/products/999").status, 404);
    EXPECT_EQ(http_get(port, "/health/ready").status, 200);
    auto metrics = http_get(port, "/metrics");
    EXPECT_NE(metrics.body.find("plexus_http_requests_total"), std::string::npos);
}

TEST_F(RegistryWithServices, CatalogSetsStockWithItsOwnTokenAndEachServiceChecksItsCallers) {
    auto inventory = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-0");
    auto catalog = start_service(SHOP_CATALOG_BIN, "catalog", "catalog-0");
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 1 && healthy("catalog") == 1; }));
    int catalog_port = instance_port("catalog", "catalog-0");
    int inventory_port = instance_port("inventory", "inventory-0");

    // The first admin (its one-time credentials file) makes an editor client and an API key.
    auto token = [&](const ClientCredentials& client, const std::string& scope) {
        auto r = client_credentials(identity_port, "/token", client, scope);
        EXPECT_EQ(r.status, 200) << r.body;
        return "Bearer " + access_token_of(r);
    };
    auto admin_bearer =
        token(credentials_of(read_file(dir.path() + "/identity/admin-credentials.json")), "plexus:admin");
    auto editor =
        http("POST", identity_port, "/admin/clients", R"({"name":"editor","scopes":["catalog:write"]})",
             {{"Authorization", admin_bearer}, {"Content-Type", "application/json"}});
    ASSERT_EQ(editor.status, 201) << editor.body;
    auto editor_bearer = token(credentials_of(editor.body), "catalog:write");
    auto key = http("POST", identity_port, "/admin/api-keys",
                    R"({"name":"importer","subject":"importer","scopes":["inventory:write"]})",
                    {{"Authorization", admin_bearer}, {"Content-Type", "application/json"}});
    ASSERT_EQ(key.status, 201) << key.body;
    auto api_key = std::string(json::parse(key.body).at("api_key").as_string());

    // Catalog: creating a product needs catalog:write, checked by the service itself.
    const std::string product = R"({"name":"Tamper","price_cents":2900,"stock":4})";
    EXPECT_EQ(http("POST", catalog_port, "/products", product, {{"Content-Type", "application/json"}}).status,
              401);
    EXPECT_EQ(http("POST", catalog_port, "/products", product,
                   {{"Content-Type", "application/json"}, {"Authorization", admin_bearer}})
                  .status,
              403);
    auto created = http("POST", catalog_port, "/products", product,
                        {{"Content-Type", "application/json"}, {"Authorization", editor_bearer}});
    ASSERT_EQ(created.status, 201) << created.body << catalog.log();
    auto id = std::to_string(json::parse(created.body).at("id").as_int64());
    EXPECT_EQ(json::parse(created.body).at("stock").as_int64(), 4);
    // ...and its stock was set in inventory with the catalog's own token (scope inventory:write).
    auto stock = json::parse(http_get(inventory_port, "/stock/" + id).body).as_object();
    EXPECT_EQ(stock.at("quantity").as_int64(), 4);
    EXPECT_TRUE(eventually([&] {
        return inventory.log().find(R"("by":"shop-catalog")") != std::string::npos;
    })) << inventory.log();

    // Inventory: a stock change needs inventory:write, from an API key or an access token.
    const std::string quantity = R"({"quantity":9})";
    EXPECT_EQ(
        http("PUT", inventory_port, "/stock/1", quantity, {{"Content-Type", "application/json"}}).status,
        401);
    EXPECT_EQ(http("PUT", inventory_port, "/stock/1", quantity,
                   {{"Content-Type", "application/json"}, {"Authorization", editor_bearer}})
                  .status,
              403);
    auto by_key = http("PUT", inventory_port, "/stock/1", quantity,
                       {{"Content-Type", "application/json"}, {"X-API-Key", api_key}});
    EXPECT_EQ(by_key.status, 200) << by_key.body;
    EXPECT_EQ(http("PUT", inventory_port, "/stock/1", quantity,
                   {{"Content-Type", "application/json"}, {"X-API-Key", api_key + "x"}})
                  .status,
              401);
}

TEST_F(RegistryWithServices, BlockingWatchAnswersWhenTheServiceChanges) {
    auto inventory = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-0");
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 1; }));
    auto index = service("inventory")["index"].as_int64();

    // Nothing changes: the watch holds until its wait ends and returns the same index.
    auto start = std::chrono::steady_clock::now();
    auto idle =
        http_get(registry_port, "/v1/services/inventory?index=" + std::to_string(index) + "&wait=300ms");
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(250));
    EXPECT_EQ(json::parse(idle.body).at("index").as_int64(), index);
    EXPECT_EQ(idle.headers["x-plexus-index"], std::to_string(index));

    // A graceful stop deregisters: the waiting watch answers. It would wait 60 s, longer than the
    // client waits for it (10 s), so an answer means the deregistration woke it.
    auto watch = std::async(std::launch::async, [&] {
        return http_get(registry_port, "/v1/services/inventory?index=" + std::to_string(index) + "&wait=60s");
    });
    ASSERT_TRUE(eventually([&] { return registry_metric("plexus_registry_watchers") == "1"; }));
    inventory.signal(SIGTERM);
    auto changed = watch.get();
    ASSERT_EQ(changed.status, 200) << "the watch was not woken: " << changed.error;
    auto body = json::parse(changed.body).as_object();
    EXPECT_GT(body["index"].as_int64(), index);
    EXPECT_TRUE(body["instances"].as_array().empty());
    EXPECT_EQ(inventory.wait(), 0);
}

TEST_F(RegistryWithServices, KilledInstanceIsDroppedWithinItsTtl) {
    auto a = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-a");
    auto b = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-b");
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 2; }))
        << json::serialize(service("inventory", "?all=true")) << a.log() << b.log();
    a.kill();
    // Gone from the catalog, not just failing its health check (a critical instance is still listed
    // with all=true): the TTL (1 s) removed it. The catalog's tests time the TTL with a manual clock.
    ASSERT_TRUE(eventually([&] {
        return service("inventory", "?all=true")["instances"].as_array().size() == 1;
    })) << json::serialize(service("inventory", "?all=true"));
    EXPECT_EQ(service("inventory", "?all=true")["instances"].as_array()[0].at("id").as_string(),
              "inventory-b");
    EXPECT_EQ(registry_metric("plexus_registry_expired_total"), "1");
}

TEST_F(RegistryWithServices, RestartKeepsTheCatalog) {
    auto inventory = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-0");
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 1; }));
    registry.signal(SIGTERM);
    ASSERT_EQ(registry.wait(), 0);
    start_registry();
    // Restored from SQLite right away; the instance keeps heartbeating and stays. Time passes on
    // purpose here, longer than the TTL (1 s), since what is checked is that nothing happens.
    EXPECT_EQ(healthy("inventory"), 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(healthy("inventory"), 1u);
    // Kept, not forgotten and registered anew.
    EXPECT_EQ(inventory.log().find("registry forgot"), std::string::npos) << inventory.log();
}

TEST_F(RegistryWithServices, BadRegistrationsGetProblemDetails) {
    auto put = [&](const std::string& path, const std::string& body) {
        return http("PUT", registry_port, path, body, {{"Content-Type", "application/json"}});
    };
    auto r = put("/v1/services/shop/instances/i1", R"({"address":"127.0.0.1"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.headers["content-type"], "application/problem+json");
    EXPECT_NE(r.body.find("port is required"), std::string::npos);
    EXPECT_EQ(put("/v1/services/shop/instances/i1", R"({"address":"127.0.0.1","port":70000})").status, 400);
    EXPECT_EQ(put("/v1/services/shop/instances/i1", R"({"port":80})").status, 400);  // no address
    EXPECT_EQ(put("/v1/services/shop/instances/i1", "not json").status, 400);
    std::string big =
        R"({"address":"127.0.0.1","port":80,"metadata":{"k":")" + std::string(5000, 'x') + "\"}}";
    r = put("/v1/services/shop/instances/i1", big);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("metadata"), std::string::npos);
    EXPECT_EQ(put("/v1/services/shop/instances/i1/heartbeat", "").status, 404);
    EXPECT_EQ(http_get(registry_port, "/v1/services/shop?index=abc").status, 400);
    EXPECT_EQ(http_get(registry_port, "/v1/services/shop?index=1&wait=forever").status, 400);
    // Over the registration body limit (64 KiB).
    EXPECT_EQ(put("/v1/services/shop/instances/i1", std::string(70000, ' ')).status, 413);
}

// ---------------------------------------------------------------- resilience of SDK clients

TEST_F(RegistryWithServices, CatalogFallsBackWhileInventoryIsSlowAndRecoversAfterwards) {
    auto inventory = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-0");
    auto catalog = start_service(SHOP_CATALOG_BIN, "catalog", "catalog-0",
                                 {"--config", std::string(PLEXUS_SOURCE_DIR) + "/deploy/catalog.yaml"});
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 1 && healthy("catalog") == 1; }));
    int port = instance_port("catalog", "catalog-0");
    int inventory_port = instance_port("inventory", "inventory-0");
    auto availability = [&] {
        auto r = http_get(port, "/products/1");
        EXPECT_EQ(r.status, 200) << r.body;
        return json::serialize(json::parse(r.body).as_object()["availability"]);
    };
    auto breaker_state = [&] {
        auto doc = json::parse(http_get(port, "/-/resilience").body).as_object();
        for (const auto& u : doc["upstreams"].as_array()) {
            if (u.at("name").as_string() == "inventory")
                return std::string(u.at("breaker").at("state").as_string());
        }
        return std::string("(none)");
    };
    ASSERT_EQ(availability(), R"({"in_stock":true,"quantity":25})");

    // Inventory turns slow: every answer now comes from the fallback, because catalog's 600 ms
    // budget for inventory runs out (inventory would answer with the quantity after 2 s), and the
    // breaker opens.
    auto slow =
        http("PUT", inventory_port, "/-/faults", R"({"inbound":{"delay_percent":100,"delay_ms":2000}})");
    ASSERT_EQ(slow.status, 200) << slow.body;
    for (int i = 0; i < 12; ++i) EXPECT_EQ(availability(), R"("unknown")") << i;
    EXPECT_EQ(breaker_state(), "open");
    auto metrics = http_get(port, "/metrics").body;
    EXPECT_NE(
        metrics.find(
            R"(plexus_circuit_breaker_transitions_total{breaker="inventory",from="closed",to="open"} 1)"),
        std::string::npos);

    // Healed: after open_for (3 s) the breaker lets its 3 trial calls through; they pass, it closes.
    ASSERT_EQ(http("PUT", inventory_port, "/-/faults", R"({"inbound":{}})").status, 200);
    EXPECT_TRUE(eventually(
        [&] { return availability() == R"({"in_stock":true,"quantity":25})" && breaker_state() == "closed"; },
        std::chrono::seconds(15)))
        << breaker_state();
}

TEST_F(RegistryWithServices, SpentDeadlineIs504WithoutDoingTheWork) {
    auto inventory = start_service(SHOP_INVENTORY_BIN, "inventory", "inventory-0");
    ASSERT_TRUE(eventually([&] { return healthy("inventory") == 1; }));
    int port = instance_port("inventory", "inventory-0");
    auto r = http("GET", port, "/stock/1", {}, {{"X-Plexus-Deadline-Ms", "0"}, {"X-Request-Id", "late-1"}});
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/problem+json");
    EXPECT_NE(r.body.find("deadline"), std::string::npos);
    EXPECT_EQ(http("GET", port, "/stock/1", {}, {{"X-Plexus-Deadline-Ms", "500"}}).status, 200);
    auto metrics = http_get(port, "/metrics").body;
    EXPECT_NE(metrics.find(R"(plexus_deadline_expired_total{where="inbound"} 1)"), std::string::npos);
}

TEST_F(RegistryWithServices, FaultsEndpointValidatesAndReportsTheFaults) {
    auto catalog = start_service(SHOP_CATALOG_BIN, "catalog", "catalog-0");
    ASSERT_TRUE(eventually([&] { return healthy("catalog") == 1; }));
    int port = instance_port("catalog", "catalog-0");
    EXPECT_EQ(http("PUT", port, "/-/faults", "not json").status, 400);
    auto bad = http("PUT", port, "/-/faults", R"({"inbound":{"delay_percent":200}})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("delay_percent must be from 0 to 100"), std::string::npos) << bad.body;
    EXPECT_EQ(http("PUT", port, "/-/faults", R"({"clients":{"payments":{}}})").status, 400);
    auto ok = http("PUT", port, "/-/faults",
                   R"({"clients":{"inventory":{"abort_percent":100,"abort_status":503}}})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    auto doc = json::parse(http_get(port, "/-/faults").body).as_object();
    EXPECT_EQ(doc["clients"].at("inventory").at("abort_status").as_int64(), 503);
    // With every call to inventory aborted, the product is still served, from the fallback.
    auto r = http_get(port, "/products/2");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find(R"("availability":"unknown")"), std::string::npos) << r.body;
}
