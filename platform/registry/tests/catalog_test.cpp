#include "plexus/registry/catalog.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
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

namespace {
namespace json = boost::json;

// The instances of a full answer by id, each as its JSON object.
std::map<std::string, json::value> instances_of(const registry::Answer& a) {
    std::map<std::string, json::value> out;
    auto body = json::parse(a.body).as_object();
    EXPECT_FALSE(body.contains("since")) << a.body;
    for (const auto& in : body.at("instances").as_array()) out[json::value_to<std::string>(in.at("id"))] = in;
    return out;
}

// `list` after the delta answer `a`, as a watcher applies it.
std::map<std::string, json::value> applied(std::map<std::string, json::value> list,
                                           const registry::Answer& a) {
    auto body = json::parse(a.body).as_object();
    for (const auto& id : body.at("removed").as_array()) list.erase(json::value_to<std::string>(id));
    for (const auto& in : body.at("changed").as_array()) list[json::value_to<std::string>(in.at("id"))] = in;
    return list;
}

std::vector<std::string> ids(const json::array& a) {
    std::vector<std::string> out;
    for (const auto& v : a)
        out.push_back(v.is_string() ? json::value_to<std::string>(v)
                                    : json::value_to<std::string>(v.at("id")));
    return out;
}
}  // namespace

TEST(Catalog, AnswersAreSharedUntilTheServiceChanges) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    auto first = catalog.answer("catalog", false);
    EXPECT_EQ(catalog.answer("catalog", false), first);  // the same bytes for every reader
    EXPECT_EQ(first->index, catalog.service_index("catalog"));
    EXPECT_FALSE(first->delta);
    auto all = catalog.answer("catalog", true);
    EXPECT_NE(all, first);
    EXPECT_EQ(all->body, first->body);  // nothing draining: the same list

    ASSERT_TRUE(catalog.register_instance(instance("inventory", "i1")));
    EXPECT_EQ(catalog.answer("catalog", false), first);  // another service changed
    ASSERT_TRUE(catalog.heartbeat("catalog", "c1"));
    EXPECT_EQ(catalog.answer("catalog", false), first);  // heartbeats are not changes

    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c2", 8081)));
    auto second = catalog.answer("catalog", false);
    EXPECT_NE(second, first);
    EXPECT_EQ(second->index, catalog.service_index("catalog"));
    auto body = json::parse(second->body).as_object();
    EXPECT_EQ(json::value_to<std::string>(body.at("service")), "catalog");
    EXPECT_EQ(body.at("index").to_number<std::uint64_t>(), second->index);
    EXPECT_EQ(ids(body.at("instances").as_array()), (std::vector<std::string>{"c1", "c2"}));
    // Each instance as the client library reads it.
    auto parsed = discovery::instance_from_json(json::serialize(body.at("instances").as_array().at(1)));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->port, 8081);
    EXPECT_EQ(parsed->status, "passing");

    auto unseen = json::parse(catalog.answer("never", false)->body).as_object();
    EXPECT_TRUE(unseen.at("instances").as_array().empty());
    EXPECT_EQ(unseen.at("index").to_number<std::uint64_t>(), catalog.index());
}

TEST(Catalog, ChangesSinceListOnlyWhatChanged) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "a")));
    auto since = *catalog.register_instance(instance("catalog", "b", 8081));
    auto before = catalog.answer("catalog", false);
    auto before_all = catalog.answer("catalog", true);
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c", 8082)));
    ASSERT_TRUE(catalog.set_draining("catalog", "a"));
    ASSERT_TRUE(catalog.deregister("catalog", "b"));
    ASSERT_TRUE(catalog.register_instance(instance("other", "o1")));

    auto delta = catalog.changes_since("catalog", false, since);
    ASSERT_TRUE(delta->delta) << delta->body;
    EXPECT_EQ(delta->index, catalog.service_index("catalog"));
    auto body = json::parse(delta->body).as_object();
    EXPECT_EQ(body.at("since").to_number<std::uint64_t>(), since);
    EXPECT_EQ(body.at("index").to_number<std::uint64_t>(), delta->index);
    EXPECT_EQ(ids(body.at("changed").as_array()), std::vector<std::string>{"c"});
    EXPECT_EQ(ids(body.at("removed").as_array()), (std::vector<std::string>{"a", "b"}));  // a drains
    EXPECT_EQ(applied(instances_of(*before), *delta), instances_of(*catalog.answer("catalog", false)));

    auto delta_all = catalog.changes_since("catalog", true, since);
    auto body_all = json::parse(delta_all->body).as_object();
    EXPECT_EQ(ids(body_all.at("changed").as_array()), (std::vector<std::string>{"a", "c"}));
    EXPECT_EQ(ids(body_all.at("removed").as_array()), std::vector<std::string>{"b"});
    EXPECT_EQ(applied(instances_of(*before_all), *delta_all), instances_of(*catalog.answer("catalog", true)));

    // Watchers at the same index share one answer; at the current index nothing changed.
    EXPECT_EQ(catalog.changes_since("catalog", false, since), delta);
    auto none = json::parse(catalog.changes_since("catalog", false, delta->index)->body).as_object();
    EXPECT_TRUE(none.at("changed").as_array().empty());
    EXPECT_TRUE(none.at("removed").as_array().empty());
}

TEST(Catalog, ChangesSinceAnIndexNoLongerRememberedAreTheFullList) {
    core::ManualClock clock;
    registry::CatalogLimits limits;
    limits.change_log = 2;
    registry::Catalog catalog(clock, limits);
    auto before = catalog.service_index("catalog");  // what a GET answered before anything existed
    auto first = *catalog.register_instance(instance("catalog", "a"));
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "b", 8081)));
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c", 8082)));
    EXPECT_FALSE(catalog.changes_since("catalog", false, before)->delta);  // a's change was forgotten
    EXPECT_TRUE(catalog.changes_since("catalog", false, first)->delta);    // b's and c's were not
    // An index this service never reached, and a service never seen: the full list.
    EXPECT_FALSE(catalog.changes_since("catalog", false, catalog.index() + 5)->delta);
    EXPECT_FALSE(catalog.changes_since("never", false, 1)->delta);
    EXPECT_EQ(instances_of(*catalog.changes_since("catalog", false, before)).size(), 3u);
}

TEST(Catalog, AServiceSeenFirstAfterAnIndexIsADeltaFromEmpty) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    ASSERT_TRUE(catalog.register_instance(instance("other", "o1")));
    auto seen = catalog.service_index("catalog");  // what a GET of the unknown service answered
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    auto delta = catalog.changes_since("catalog", false, seen);
    ASSERT_TRUE(delta->delta) << delta->body;
    EXPECT_EQ(applied({}, *delta), instances_of(*catalog.answer("catalog", false)));
}

// Random changes of every kind; after each, the delta from every earlier index still
// remembered, applied to the answer at that index, must give the current answer.
TEST(Catalog, EveryDeltaAppliedToItsOldAnswerGivesTheCurrentOne) {
    core::ManualClock clock;
    registry::CatalogLimits limits;
    limits.change_log = 64;
    registry::Catalog catalog(clock, limits);
    std::map<std::uint64_t, std::map<std::string, json::value>> seen[2];  // by all, by index
    std::uint32_t rng = 12345;
    auto next = [&] { return rng = rng * 1103515245u + 12345u, (rng >> 16) % 1000; };
    for (int step = 0; step < 300; ++step) {
        auto id = "i" + std::to_string(next() % 12);
        switch (next() % 6) {
            case 0:
            case 1: {
                auto in = next() % 2 ? checked("svc", id, 9000 + next() % 3) : instance("svc", id, 9000);
                ASSERT_TRUE(catalog.register_instance(in));
                break;
            }
            case 2:
                (void)catalog.deregister("svc", id);
                break;
            case 3:
                (void)catalog.set_draining("svc", id);
                break;
            case 4: {
                static const char* statuses[] = {"passing", "warning", "critical"};
                (void)catalog.set_status("svc", id, statuses[next() % 3]);
                break;
            }
            case 5:
                clock.advance(std::chrono::milliseconds(next() % 3000));
                (void)catalog.heartbeat("svc", "i" + std::to_string(next() % 12));
                catalog.reap();
                break;
        }
        for (bool all : {false, true}) {
            auto current = catalog.answer("svc", all);
            auto now = instances_of(*current);
            for (const auto& [index, list] : seen[all]) {
                auto delta = catalog.changes_since("svc", all, index);
                if (!delta->delta) {
                    EXPECT_EQ(instances_of(*delta), now);
                    continue;
                }
                ASSERT_EQ(applied(list, *delta), now) << "step " << step << " since " << index;
            }
            seen[all][current->index] = std::move(now);
            if (seen[all].size() > 80) seen[all].erase(seen[all].begin());  // past the log anyway
        }
    }
}

TEST(Catalog, QueuedWritesAreAppliedOnlyOnceWritten) {
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    std::vector<std::string> changed;
    catalog.on_change([&](const std::string& s) { changed.push_back(s); });
    auto before = catalog.index();
    auto a = catalog.queue_register(instance("catalog", "a"));
    auto b = catalog.queue_register(instance("catalog", "b", 8081));
    auto gone = catalog.queue_deregister("catalog", "b");  // the same instance twice in one batch
    auto unknown = catalog.queue_draining("catalog", "nope");
    EXPECT_FALSE(a->done());
    EXPECT_EQ(catalog.index(), before);  // nothing is visible before it is written
    EXPECT_TRUE(catalog.snapshot("catalog", true).instances.empty());
    EXPECT_TRUE(changed.empty());

    catalog.write_pending();
    for (const auto& p : {a, b, gone, unknown}) EXPECT_TRUE(p->done());
    ASSERT_TRUE(a->result());
    ASSERT_TRUE(b->result());
    ASSERT_TRUE(gone->result());
    EXPECT_LT(*a->result(), *b->result());
    EXPECT_LT(*b->result(), *gone->result());
    EXPECT_EQ(unknown->result().error(), core::errc::not_found);
    EXPECT_EQ(listed_ids(catalog, "catalog"), std::vector<std::string>{"a"});
    EXPECT_EQ(catalog.service_index("catalog"), *gone->result());
    EXPECT_FALSE(changed.empty());

    auto invalid = catalog.queue_register(instance("catalog", "bad id"));
    EXPECT_TRUE(invalid->done());  // refused at once, never queued
    EXPECT_EQ(invalid->result().error(), core::errc::invalid_argument);
    EXPECT_NE(invalid->problem().find("instance id"), std::string::npos);
}

TEST(Catalog, AWriteIsInTheDatabaseWhenItIsDone) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    core::ManualClock clock;
    registry::Catalog catalog(clock, {}, open_db(path));
    auto pending = catalog.queue_register(instance("catalog", "c1"));
    catalog.write_pending();
    ASSERT_TRUE(pending->done());
    ASSERT_TRUE(pending->result());
    // Another connection, as after a crash right after the acknowledgement.
    auto other = open_db(path);
    auto rows = other->query("SELECT id FROM instances WHERE service = 'catalog'");
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ(rows->at(0).get<std::string>(0), "c1");
    auto stored = other->query_one("SELECT value FROM meta WHERE key = 'index'");
    ASSERT_TRUE(stored);
    EXPECT_GE(static_cast<std::uint64_t>(stored->get<std::int64_t>(0)), *pending->result());
}

TEST(Catalog, AWriteThatFailsChangesNothing) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    core::ManualClock clock;
    registry::Catalog catalog(clock, {}, open_db(path));
    ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
    auto index = catalog.index();
    ASSERT_TRUE(open_db(path)->exec("DROP TABLE instances"));
    std::string problem;
    auto r = catalog.register_instance(instance("catalog", "c2", 8081), &problem);
    EXPECT_FALSE(r);
    EXPECT_NE(problem.find("could not persist"), std::string::npos) << problem;
    EXPECT_EQ(catalog.index(), index);
    EXPECT_EQ(listed_ids(catalog, "catalog"), std::vector<std::string>{"c1"});
    EXPECT_FALSE(catalog.deregister("catalog", "c1"));
    EXPECT_EQ(listed_ids(catalog, "catalog"), std::vector<std::string>{"c1"});
}

TEST(Catalog, AReRegistrationQueuedBeforeAReapSurvivesARestart) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    core::ManualClock clock;
    {
        registry::Catalog catalog(clock, {}, open_db(path));
        ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
        clock.advance(6s);
        auto again = catalog.queue_register(instance("catalog", "c1", 8081));
        EXPECT_EQ(catalog.reap(), 1u);  // the old registration expires before the new one is written
        catalog.write_pending();
        ASSERT_TRUE(again->result());
        EXPECT_EQ(catalog.snapshot("catalog", false).instances.at(0).port, 8081);
    }
    registry::Catalog restarted(clock, {}, open_db(path));
    auto snap = restarted.snapshot("catalog", false);
    ASSERT_EQ(snap.instances.size(), 1u);
    EXPECT_EQ(snap.instances[0].port, 8081);
}

TEST(Catalog, AfterARestartOldIndexesGetTheFullList) {
    TempDir dir;
    auto path = (dir.path / "registry.db").string();
    core::ManualClock clock;
    std::uint64_t before = 0;
    {
        registry::Catalog catalog(clock, {}, open_db(path));
        ASSERT_TRUE(catalog.register_instance(instance("catalog", "c1")));
        before = catalog.service_index("catalog");
        ASSERT_TRUE(catalog.set_status("catalog", "c1", "warning"));  // not written on its own
    }
    registry::Catalog catalog(clock, {}, open_db(path));
    EXPECT_GT(catalog.service_index("catalog"), before + 1);  // past the unwritten status change
    auto answer = catalog.changes_since("catalog", false, before);
    EXPECT_FALSE(answer->delta);
    EXPECT_EQ(instances_of(*answer).size(), 1u);
}
