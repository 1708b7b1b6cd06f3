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

namespace {
discovery::InstanceInfo checked(std::string service, std::string id, std::uint16_t port = 8080) {
    auto in = instance(std::move(service), std::move(id), port);
    in.check = discovery::HealthCheck{"/health/ready", 1000ms, 500ms, 1, 2};
    return in;
}

std::vector<std::string> listed_ids(const registry::Catalog& catalog, const std::string& service) {
    std::vector<std::string> ids;
    for (const auto& in : catalog.snapshot(service, false).instances) ids.push_back(in.id);
    return ids;
}
}  // namespace

TEST(Catalog, StatusChangesBumpTheIndexAndAreAnnounced) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(checked("catalog", "c1")));
    ASSERT_TRUE(catalog.register_instance(checked("catalog", "c2", 8081)));
    std::vector<std::string> changed;
    catalog.on_change([&](const std::string& s) { changed.push_back(s); });

    auto before = catalog.service_index("catalog");
    auto r = catalog.set_status("catalog", "c1", "critical");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(*r);
    auto critical = catalog.service_index("catalog");
    EXPECT_GT(critical, before);
    EXPECT_EQ(changed, std::vector<std::string>{"catalog"});
    EXPECT_EQ(listed_ids(catalog, "catalog"), std::vector<std::string>{"c2"});  // critical leaves discovery
    EXPECT_EQ(catalog.snapshot("catalog", true).instances.at(0).status, "critical");
    EXPECT_EQ(catalog.services().at(0).healthy, 1u);

    // The same status again is no change: no new index, nothing announced.
    r = catalog.set_status("catalog", "c1", "critical");
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
    EXPECT_EQ(catalog.service_index("catalog"), critical);
    EXPECT_EQ(changed.size(), 1u);

    // A warning stays in discovery.
    ASSERT_TRUE(catalog.set_status("catalog", "c1", "warning"));
    auto warning = catalog.service_index("catalog");
    EXPECT_GT(warning, critical);
    EXPECT_EQ(listed_ids(catalog, "catalog"), (std::vector<std::string>{"c1", "c2"}));
    EXPECT_EQ(catalog.services().at(0).healthy, 2u);

    ASSERT_TRUE(catalog.set_status("catalog", "c1", "passing"));
    EXPECT_GT(catalog.service_index("catalog"), warning);
    EXPECT_EQ(changed.size(), 3u);

    // Other services' indexes never move.
    ASSERT_TRUE(catalog.register_instance(instance("inventory", "i1")));
    auto other = catalog.service_index("inventory");
    ASSERT_TRUE(catalog.set_status("catalog", "c2", "critical"));
    EXPECT_EQ(listed_ids(catalog, "catalog"), std::vector<std::string>{"c1"});
    EXPECT_EQ(catalog.service_index("inventory"), other);
}

TEST(Catalog, SetStatusRejectsUnknownInstancesStatusesAndOldRegistrations) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(checked("catalog", "c1")));
    auto targets = catalog.check_targets("catalog");
    ASSERT_EQ(targets.size(), 1u);
    auto first = targets[0].registration;
    EXPECT_NE(first, 0u);

    auto r = catalog.set_status("catalog", "nope", "critical");
    EXPECT_EQ(r.error(), core::errc::not_found);
    r = catalog.set_status("nope", "c1", "critical");
    EXPECT_EQ(r.error(), core::errc::not_found);
    r = catalog.set_status("catalog", "c1", "sick");
    EXPECT_EQ(r.error(), core::errc::invalid_argument);

    // A re-registration is a new registration: results for the old one no longer apply, and it
    // starts passing again whatever its body said.
    ASSERT_TRUE(catalog.set_status("catalog", "c1", "critical", first));
    auto again = checked("catalog", "c1");
    again.status = "critical";
    ASSERT_TRUE(catalog.register_instance(again));
    targets = catalog.check_targets("catalog");
    ASSERT_EQ(targets.size(), 1u);
    EXPECT_NE(targets[0].registration, first);
    EXPECT_EQ(targets[0].instance.status, "passing");
    r = catalog.set_status("catalog", "c1", "critical", first);
    EXPECT_EQ(r.error(), core::errc::not_found);
    EXPECT_EQ(listed_ids(catalog, "catalog"), std::vector<std::string>{"c1"});
    r = catalog.set_status("catalog", "c1", "critical", targets[0].registration);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
}

TEST(Catalog, CheckTargetsListOnlyInstancesWithACheck) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(checked("catalog", "c1")));
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c2", 8081)));
    ASSERT_TRUE(catalog.register_instance(checked("catalog", "c3", 8082)));
    ASSERT_TRUE(catalog.set_draining("catalog", "c3"));
    auto targets = catalog.check_targets("catalog");
    ASSERT_EQ(targets.size(), 2u);
    EXPECT_EQ(targets[0].instance.id, "c1");
    EXPECT_EQ(targets[1].instance.id, "c3");  // draining instances are still checked
    ASSERT_TRUE(targets[0].instance.check);
    EXPECT_EQ(targets[0].instance.check->http, "/health/ready");
    EXPECT_NE(targets[0].registration, targets[1].registration);
    EXPECT_TRUE(catalog.check_targets("inventory").empty());
}

TEST(Catalog, RejectsChecksThatMakeNoSense) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    struct Case {
        discovery::HealthCheck check;
        const char* field;
    };
    const Case cases[] = {
        {{"health", 1000ms, 500ms, 1, 2}, "check.http"},
        {{"", 1000ms, 500ms, 1, 2}, "check.http"},
        {{"/health ready", 1000ms, 500ms, 1, 2}, "check.http"},
        {{"/health\r\nX: y", 1000ms, 500ms, 1, 2}, "check.http"},
        {{"/h", 99ms, 50ms, 1, 2}, "check.interval_ms"},
        {{"/h", 600'001ms, 500ms, 1, 2}, "check.interval_ms"},
        {{"/h", 1000ms, 0ms, 1, 2}, "check.timeout_ms"},
        {{"/h", 1000ms, -5ms, 1, 2}, "check.timeout_ms"},
        {{"/h", 1000ms, 1001ms, 1, 2}, "check.timeout_ms"},
        {{"/h", 1000ms, 500ms, 0, 2}, "check.healthy_threshold"},
        {{"/h", 1000ms, 500ms, 11, 2}, "check.healthy_threshold"},
        {{"/h", 1000ms, 500ms, 1, 0}, "check.unhealthy_threshold"},
        {{"/h", 1000ms, 500ms, 1, 11}, "check.unhealthy_threshold"},
    };
    for (const auto& c : cases) {
        auto in = instance("catalog", "c1");
        in.check = c.check;
        std::string why;
        EXPECT_FALSE(catalog.register_instance(in, &why)) << c.field;
        EXPECT_NE(why.find(c.field), std::string::npos) << c.check.http << " → " << why;
    }
    EXPECT_TRUE(catalog.services().empty());

    // The edges are valid.
    for (auto check : {discovery::HealthCheck{"/", 100ms, 100ms, 1, 1},
                       discovery::HealthCheck{"/h?x=1", 600'000ms, 1ms, 10, 10}}) {
        auto in = instance("catalog", "c1");
        in.check = check;
        EXPECT_EQ(catalog.validate(in), "");
    }
    auto warning = instance("catalog", "c1");
    warning.status = "warning";
    EXPECT_EQ(catalog.validate(warning), "");
}

TEST(Catalog, RestoredInstancesKeepTheirCheckAndStartPassing) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    core::ManualClock clock;
    {
        registry::Catalog catalog(clock, {}, open_db(path));
        auto in = checked("catalog", "c1");
        in.check->interval = 250ms;
        in.check->timeout = 100ms;
        in.check->unhealthy_threshold = 3;
        ASSERT_TRUE(catalog.register_instance(in));
        ASSERT_TRUE(catalog.register_instance(instance("catalog", "c2", 8081)));
        ASSERT_TRUE(catalog.set_status("catalog", "c1", "critical"));
    }
    registry::Catalog catalog(clock, {}, open_db(path));
    auto all = catalog.snapshot("catalog", true).instances;
    ASSERT_EQ(all.size(), 2u);
    ASSERT_TRUE(all[0].check);
    EXPECT_EQ(*all[0].check, (discovery::HealthCheck{"/health/ready", 250ms, 100ms, 1, 3}));
    EXPECT_EQ(all[0].status, "passing");  // status is not persisted: checked again from the start
    EXPECT_FALSE(all[1].check);
    EXPECT_EQ(catalog.check_targets("catalog").size(), 1u);
}

TEST(Catalog, OpensADatabaseWrittenBeforeChecksExisted) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    {
        auto db = open_db(path);
        // The schema's first version, as released before health checks.
        ASSERT_TRUE(db->migrate({R"(CREATE TABLE instances (
             service TEXT NOT NULL, id TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
             tags TEXT NOT NULL, metadata TEXT NOT NULL, ttl_ms INTEGER NOT NULL, draining INTEGER NOT NULL,
             PRIMARY KEY (service, id));
           CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);)"}));
        ASSERT_TRUE(
            db->execute("INSERT INTO instances VALUES ('catalog', 'c1', '127.0.0.1', 8080, '[]', '{}', "
                        "5000, 0)"));
    }
    core::ManualClock clock;
    registry::Catalog catalog(clock, {}, open_db(path));
    auto snap = catalog.snapshot("catalog", false);
    ASSERT_EQ(snap.instances.size(), 1u);
    EXPECT_FALSE(snap.instances[0].check);
    auto in = checked("catalog", "c1");
    ASSERT_TRUE(catalog.register_instance(in));  // and the upgraded table takes checks
}
