#include "plexus/registry/catalog.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "plexus/store/database.hpp"

using namespace plexus;
using namespace std::chrono_literals;

namespace {

discovery::InstanceInfo instance(std::string service, std::string id, std::uint16_t port = 8080) {
    discovery::InstanceInfo in;
    in.service = std::move(service);
    in.id = std::move(id);
    in.address = "127.0.0.1";
    in.port = port;
    in.ttl = 5s;
    return in;
}

std::unique_ptr<store::Database> open_db(const std::string& path) {
    auto db = store::Database::open(path);
    EXPECT_TRUE(db) << db.error().message();
    return std::make_unique<store::Database>(std::move(*db));
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path =
            std::filesystem::temp_directory_path() / ("plexus-catalog-" + std::to_string(::getpid()) + "-" +
                                                      std::to_string(reinterpret_cast<std::uintptr_t>(this)));
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(Catalog, RegisterHeartbeatAndExpire) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c2", 8081)));
    EXPECT_EQ(catalog.snapshot("catalog", false).instances.size(), 2u);

    clock.advance(4s);
    ASSERT_TRUE(catalog.heartbeat("catalog", "c1"));
    clock.advance(2s);  // c2 is now 6 s old, c1 2 s since its heartbeat
    EXPECT_EQ(catalog.reap(), 1u);
    auto snap = catalog.snapshot("catalog", false);
    ASSERT_EQ(snap.instances.size(), 1u);
    EXPECT_EQ(snap.instances[0].id, "c1");
    EXPECT_FALSE(catalog.heartbeat("catalog", "c2"));
}

TEST(Catalog, IndexAdvancesPerServiceChange) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    auto before = catalog.service_index("inventory");
    auto i1 = catalog.register_instance(instance("inventory", "i1"));
    ASSERT_TRUE(i1);
    EXPECT_GT(*i1, before);
    EXPECT_EQ(catalog.service_index("inventory"), *i1);
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    EXPECT_EQ(catalog.service_index("inventory"), *i1);  // other services do not move it
    ASSERT_TRUE(catalog.heartbeat("inventory", "i1"));
    EXPECT_EQ(catalog.service_index("inventory"), *i1);  // heartbeats are not changes
    auto i2 = catalog.deregister("inventory", "i1");
    ASSERT_TRUE(i2);
    EXPECT_GT(*i2, *i1);
    EXPECT_EQ(catalog.service_index("inventory"), *i2);  // kept after the last instance left
}

TEST(Catalog, DrainingLeavesHealthyList) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    ASSERT_TRUE(catalog.set_draining("catalog", "c1"));
    EXPECT_TRUE(catalog.snapshot("catalog", false).instances.empty());
    auto all = catalog.snapshot("catalog", true);
    ASSERT_EQ(all.instances.size(), 1u);
    EXPECT_TRUE(all.instances[0].draining);
    auto services = catalog.services();
    ASSERT_EQ(services.size(), 1u);
    EXPECT_EQ(services[0].instances, 1u);
    EXPECT_EQ(services[0].healthy, 0u);
}

TEST(Catalog, RejectsInvalidInstances) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    auto bad = instance("", "x");
    std::string why;
    EXPECT_FALSE(catalog.register_instance(bad, &why));
    EXPECT_NE(why.find("service name"), std::string::npos);
    bad = instance("catalog", "x", 0);
    EXPECT_NE(catalog.validate(bad).find("port"), std::string::npos);
    bad = instance("catalog", "x");
    bad.metadata["blob"] = std::string(5000, 'a');
    EXPECT_NE(catalog.validate(bad).find("metadata"), std::string::npos);
    bad = instance("catalog", "x");
    bad.ttl = 10ms;
    EXPECT_NE(catalog.validate(bad).find("ttl_ms"), std::string::npos);
    bad = instance("catalog", "has space");
    EXPECT_NE(catalog.validate(bad).find("instance id"), std::string::npos);
}

TEST(Catalog, ChangesAreAnnounced) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    std::vector<std::string> changed;
    catalog.on_change([&](const std::string& s) { changed.push_back(s); });
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    clock.advance(6s);
    catalog.reap();
    EXPECT_EQ(changed, (std::vector<std::string>{"catalog", "catalog"}));
}

TEST(Catalog, RestartKeepsCatalogAndRestoredInstancesMustHeartbeat) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    core::ManualClock clock;
    std::uint64_t index_before = 0;
    {
        registry::Catalog catalog(clock, {}, open_db(path));
        auto in = instance("catalog", "c1");
        in.tags = {"v1"};
        in.metadata = {{"zone", "a"}};
        ASSERT_TRUE(catalog.register_instance(in));
        ASSERT_TRUE(catalog.register_instance(instance("inventory", "i1")));
        ASSERT_TRUE(catalog.set_draining("inventory", "i1"));
        index_before = catalog.index();
    }
    clock.advance(60s);  // the registry was down for a minute
    registry::Catalog catalog(clock, {}, open_db(path));
    EXPECT_GT(catalog.index(), index_before);  // watchers holding old indexes see a change
    auto snap = catalog.snapshot("catalog", false);
    ASSERT_EQ(snap.instances.size(), 1u);
    EXPECT_EQ(snap.instances[0].tags, std::vector<std::string>{"v1"});
    EXPECT_EQ(snap.instances[0].metadata.at("zone"), "a");
    EXPECT_TRUE(catalog.snapshot("inventory", true).instances.at(0).draining);

    clock.advance(3s);
    ASSERT_TRUE(catalog.heartbeat("catalog", "c1"));
    clock.advance(3s);  // inventory's restored TTL (5 s) has passed; catalog heartbeated
    EXPECT_EQ(catalog.reap(), 1u);
    EXPECT_EQ(catalog.snapshot("catalog", false).instances.size(), 1u);
    EXPECT_TRUE(catalog.snapshot("inventory", true).instances.empty());
}
