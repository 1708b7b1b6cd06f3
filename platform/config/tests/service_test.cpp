// The config server's rules without HTTP: versions, history, diff, rollback, permissions, schema
// validation, canaries, labels, secrets, and what survives a restart. Every rule runs against each
// store: a SQLite file, and a single-member etcd cluster on loopback (one per test binary, a key
// prefix per test). Then how a server follows a store other servers write too: records, labels and
// schemas written elsewhere, its own records coming back, a reload; and, on etcd, two servers
// sharing one cluster, one of which loses its feed to a compaction. Every wait is bounded by kWait.

#include "plexus/config/service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "config_waits.hpp"
#include "plexus/config/etcd_store.hpp"
#include "plexus/etcd/testing.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/telemetry/log.hpp"

using namespace plexus;
using namespace plexus::config;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// The bound of every wait for something another thread does.
constexpr std::chrono::milliseconds kWait{10'000};

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

// The status a refusal answers with (0 when `fn` does not throw HttpError).
template <class Fn>
int refusal(Fn&& fn, std::string* detail = nullptr) {
    try {
        fn();
    } catch (const net::HttpError& e) {
        if (detail) *detail = e.what();
        return e.status();
    }
    return 0;
}

Edit content(std::string_view text, std::string message = "") {
    Edit e;
    e.content = obj(text);
    e.message = std::move(message);
    return e;
}

Edit setting(std::string key, json::value v) {
    Edit e;
    e.set.emplace_back(std::move(key), std::move(v));
    return e;
}

const Caller kAdmin{"alice", "plexus:admin"};
const Caller kCatalogReader{"shop-catalog", "config:read:catalog"};
const Caller kCatalogService{"shop-catalog", "config:read:catalog config:secrets:catalog"};
const Caller kCatalogWriter{"bob", "config:write:catalog"};

etcd::testing::EtcdCluster& shared_etcd() { return etcd::testing::shared_cluster(); }

// A key prefix of the running test's own.
std::string test_prefix(std::string_view extra = "") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return etcd::testing::unique_prefix(std::string(info->test_suite_name()) + "." + info->name() +
                                        std::string(extra));
}

using plexus::config::testing::Io;

template <class Pred>
bool eventually(Io& io, ConfigService& service, Pred pred, std::chrono::milliseconds limit = kWait) {
    return plexus::config::testing::eventually(io, service, pred, limit);
}

// A store another server shares: it passes every call to the store underneath, but keeps what
// follow() is given, so that a test can play the feed (a record written elsewhere, the server's
// own record coming back, a reload) or hand it to the store's real feed later.
class Tap final : public Store {
  public:
    explicit Tap(std::shared_ptr<Store> inner) : inner_(std::move(inner)) {}
    Result<Loaded> load() override { return inner_->load(); }
    Result<Loaded> load_metadata() override { return inner_->load_metadata(); }
    Result<std::int64_t> append(const Record& r, std::int64_t expected) override {
        return inner_->append(r, expected);
    }
    Result<std::vector<Record>> history(const DocKey& key, std::int64_t before, std::size_t limit) override {
        return inner_->history(key, before, limit);
    }
    Result<std::optional<Record>> find(const DocKey& key, std::int64_t version) override {
        return inner_->find(key, version);
    }
    Result<std::optional<Record>> stable_at(const DocKey& key, std::int64_t revision) override {
        return inner_->stable_at(key, revision);
    }
    Result<void> put_label(const Label& l) override { return inner_->put_label(l); }
    Result<bool> delete_label(const std::string& name) override { return inner_->delete_label(name); }
    Result<void> put_schema(const Schema& s) override { return inner_->put_schema(s); }
    void follow(Follower f) override { follower = std::move(f); }
    void stop_following() override { inner_->stop_following(); }

    /// Hands the follower to the store underneath: its real feed, from its last load() on.
    void start_feed() { inner_->follow(follower); }

    Follower follower;

  private:
    std::shared_ptr<Store> inner_;
};

enum class Backend { sqlite, etcd };

class ConfigServiceTest : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        telemetry::set_log_level(telemetry::Level::warn);
        std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        for (auto& c : name)
            if (c == '/') c = '.';
        dir_ = std::filesystem::temp_directory_path() /
               ("plexus-config-" + std::to_string(::getpid()) + "-" + name);
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        if (GetParam() == Backend::etcd) prefix_ = test_prefix();
        open();
    }
    void TearDown() override {
        service_.reset();
        std::filesystem::remove_all(dir_);
    }
    std::unique_ptr<Store> new_store() {
        if (GetParam() == Backend::etcd) return open_etcd_store(shared_etcd().client_settings(), prefix_);
        auto store = open_sqlite_store((dir_ / "config.db").string());
        if (!store) throw std::runtime_error(store.error().message());
        return std::move(*store);
    }
    void open() {
        service_.reset();
        service_ = std::make_unique<ConfigService>(new_store(), SecretBox(std::string(32, 's')));
    }
    // Opens the service over a Tap of a store the test shares (as another server would).
    Tap& open_tapped() {
        service_.reset();
        shared_ = std::shared_ptr<Store>(new_store());
        auto tap = std::make_unique<Tap>(shared_);
        auto& t = *tap;
        service_ = std::make_unique<ConfigService>(std::move(tap), SecretBox(std::string(32, 's')));
        return t;
    }
    json::object config(const std::string& app, std::vector<std::string> profiles = {},
                        const std::string& instance = "", bool secrets = true) {
        return service_->view(app, profiles, instance, secrets).config;
    }

    std::filesystem::path dir_;
    std::string prefix_;
    std::shared_ptr<Store> shared_;
    std::unique_ptr<ConfigService> service_;
};

TEST_P(ConfigServiceTest, EveryChangeIsAVersionWithAuthorTimeAndMessageAndLayersMerge) {
    auto v1 = service_->write(kAdmin, {"application", ""},
                              content(R"({"log":{"level":"info"},"page":10})", "defaults"));
    auto v2 = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20,"cache":"5s"})"));
    auto v3 = service_->write(kAdmin, {"catalog", "prod"}, content(R"({"cache":"30s"})"));
    EXPECT_LT(v1.version, v2.version);
    EXPECT_LT(v2.version, v3.version);
    EXPECT_EQ(v1.author, "alice");
    EXPECT_EQ(v1.message, "defaults");
    EXPECT_GT(v1.time_ms, 0);

    EXPECT_EQ(config("catalog"), obj(R"({"log":{"level":"info"},"page":20,"cache":"5s"})"));
    auto prod = service_->view("catalog", {"prod"}, "", true);
    EXPECT_EQ(prod.config, obj(R"({"log":{"level":"info"},"page":20,"cache":"30s"})"));
    EXPECT_EQ(prod.version, v3.version);
    ASSERT_EQ(prod.sources.size(), 3u);  // highest first, only those that exist
    EXPECT_EQ(prod.sources[0].first.name(), "catalog-prod");
    EXPECT_EQ(prod.sources[2].first.name(), "application");
    // Other applications inherit only the shared layer.
    EXPECT_EQ(config("inventory"), obj(R"({"log":{"level":"info"},"page":10})"));
    EXPECT_EQ(service_->version_of("inventory", {}, ""), v1.version);
}

TEST_P(ConfigServiceTest, PatchesSetAndRemovePropertiesAndAStaleBaseIsAConflict) {
    auto v1 = service_->write(kAdmin, {"catalog", ""}, content(R"({"db":{"pool":4,"url":"x"}})"));
    Edit e = setting("db.pool", 8);
    e.set.emplace_back("db.url", nullptr);
    e.set.emplace_back("feature.new", true);
    e.expected = v1.version;
    auto v2 = service_->write(kAdmin, {"catalog", ""}, e);
    EXPECT_EQ(config("catalog"), obj(R"({"db":{"pool":8},"feature":{"new":true}})"));
    e.expected = v1.version;  // based on what is no longer there
    std::string detail;
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, e); }, &detail), 409);
    EXPECT_NE(detail.find(std::to_string(v2.version)), std::string::npos) << detail;
    Edit fresh = content(R"({"a":1})");
    fresh.expected = 0;  // must not exist yet
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, fresh); }), 409);
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"inventory", ""}, fresh); }), 0);
}

TEST_P(ConfigServiceTest, HistoryDiffAndRollbackWhichIsItselfANewVersion) {
    auto v1 = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":10,"cache":"5s"})", "first"));
    auto v2 = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":50,"retries":3})", "second"));
    auto history = service_->history({"catalog", ""}, 0, 10);
    ASSERT_EQ(history.size(), 2u);
    EXPECT_EQ(history[0].version, v2.version);
    EXPECT_EQ(history[1].message, "first");
    EXPECT_EQ(service_->history({"catalog", ""}, v2.version, 10).size(), 1u);  // paging

    auto d = service_->diff({"catalog", ""}, 0, 0);  // the latest change
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0].key, "cache");
    EXPECT_EQ(d[0].op, Change::removed);
    EXPECT_EQ(d[1].key, "page");
    EXPECT_EQ(d[1].from, json::value(10));
    EXPECT_EQ(d[1].to, json::value(50));
    EXPECT_EQ(d[2].key, "retries");

    auto back = service_->rollback(kCatalogWriter, {"catalog", ""}, v1.version, "");
    EXPECT_GT(back.version, v2.version);
    EXPECT_EQ(back.kind, Kind::rollback);
    EXPECT_EQ(back.source, v1.version);
    EXPECT_EQ(back.author, "bob");
    EXPECT_EQ(config("catalog"), obj(R"({"page":10,"cache":"5s"})"));
    EXPECT_EQ(service_->history({"catalog", ""}, 0, 10).size(), 3u);
    EXPECT_EQ(refusal([&] { service_->rollback(kAdmin, {"catalog", ""}, 999, ""); }), 404);

    auto gone = service_->remove(kAdmin, {"catalog", ""}, "retire");
    EXPECT_EQ(config("catalog"), json::object());
    EXPECT_EQ(service_->version_of("catalog", {}, ""), gone.version);
    EXPECT_EQ(refusal([&] { service_->remove(kAdmin, {"catalog", ""}, ""); }), 404);
    service_->rollback(kAdmin, {"catalog", ""}, v2.version, "");
    EXPECT_EQ(config("catalog"), obj(R"({"page":50,"retries":3})"));
}

TEST_P(ConfigServiceTest, CallersWriteAndReadOnlyWhatTheirScopesAllow) {
    EXPECT_EQ(refusal([&] { service_->write(kCatalogReader, {"catalog", ""}, content(R"({"a":1})")); }), 403);
    EXPECT_EQ(refusal([&] { service_->write(kCatalogWriter, {"inventory", ""}, content(R"({"a":1})")); }),
              403);
    EXPECT_EQ(refusal([&] { service_->write(kCatalogWriter, {"application", ""}, content(R"({"a":1})")); }),
              403);
    EXPECT_EQ(refusal([&] { service_->write(kCatalogWriter, {"catalog", "prod"}, content(R"({"a":1})")); }),
              0);
    EXPECT_TRUE(kCatalogReader.may_read("catalog"));
    EXPECT_FALSE(kCatalogReader.may_read("inventory"));
    EXPECT_FALSE(kCatalogReader.may_read_secrets("catalog"));
    EXPECT_TRUE(kCatalogService.may_read_secrets("catalog"));
    EXPECT_FALSE(kCatalogService.may_read_secrets("inventory"));
    EXPECT_TRUE(Caller({"x", "config:read"}).may_read("anything"));
    EXPECT_FALSE(Caller({"x", "config:read:catalogue"}).may_read("catalog"));  // whole words only
    EXPECT_EQ(refusal([&] { service_->put_label(kCatalogWriter, "release-1", 0, ""); }), 403);
}

TEST_P(ConfigServiceTest, SecretsAreEncryptedAtRestDecryptedOnlyForThoseAllowedAndMaskedInHistoryAndDiffs) {
    service_->write(kAdmin, {"catalog", ""}, content(R"({"db":{"password":"{cipher}hunter2"}})"));
    auto stored = service_->document({"catalog", ""}, 0);
    auto text = json::serialize(*stored.content);
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
    EXPECT_NE(text.find("{cipher}a1:"), std::string::npos);
    EXPECT_EQ(config("catalog", {}, "", true).at("db").at("password"), json::value("hunter2"));
    EXPECT_EQ(config("catalog", {}, "", false).at("db").at("password"), json::value(kMasked));

    service_->write(kAdmin, {"catalog", ""}, setting("db.password", "{cipher}correct horse"));
    auto d = service_->diff({"catalog", ""}, 0, 0);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].op, Change::changed);
    EXPECT_EQ(d[0].from, json::value(kMasked));
    EXPECT_EQ(d[0].to, json::value(kMasked));
    // Re-encrypting the same plaintext is no change, though its ciphertext differs.
    auto before = service_->document({"catalog", ""}, 0);
    service_->write(kAdmin, {"catalog", ""}, setting("db.password", "{cipher}correct horse"));
    auto after = service_->document({"catalog", ""}, 0);
    EXPECT_NE(before.content->at("db").at("password"), after.content->at("db").at("password"));
    EXPECT_TRUE(service_->diff({"catalog", ""}, before.version, after.version).empty());
    for (const auto& r : service_->history({"catalog", ""}, 0, 10))
        if (r.content) EXPECT_EQ(json::serialize(*r.content).find("{cipher}a1:"), std::string::npos);
    // The stored form written back as read keeps the value.
    Edit back;
    back.content = *after.content;
    service_->write(kAdmin, {"catalog", ""}, back);
    EXPECT_EQ(config("catalog").at("db").at("password"), json::value("correct horse"));
}

TEST_P(ConfigServiceTest, AChangeTheSchemaRefusesChangesNothingAndNamesTheKey) {
    auto schema = json::parse(R"({"type":"object","additionalProperties":false,
        "properties":{"page":{"type":"integer","minimum":1,"maximum":500},"cache":{"type":"string","format":"duration"},
                      "log":{"type":"object"}}})");
    std::vector<std::string> problems;
    service_->put_schema(kCatalogReader, "catalog", schema, &problems);
    EXPECT_TRUE(problems.empty());
    auto good = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20,"cache":"5s"})"));
    std::string detail;
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, setting("page", 9000)); }, &detail),
              400);
    EXPECT_NE(detail.find("page"), std::string::npos) << detail;
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", "prod"}, content(R"({"cache":"soon"})")); },
                      &detail),
              400);
    EXPECT_NE(detail.find("cache"), std::string::npos) << detail;
    EXPECT_NE(detail.find("prod"), std::string::npos) << detail;
    // The shared layer reaches catalog too: an unknown key there is refused for catalog's sake.
    EXPECT_EQ(
        refusal([&] { service_->write(kAdmin, {"application", ""}, content(R"({"typo":1})")); }, &detail),
        400);
    EXPECT_NE(detail.find("typo"), std::string::npos) << detail;
    EXPECT_EQ(service_->version_of("catalog", {}, ""), good.version);
    EXPECT_EQ(service_->revision(), good.version);
    EXPECT_EQ(config("catalog"), obj(R"({"page":20,"cache":"5s"})"));
    // A schema the current settings fail is kept, and the publisher is told.
    service_->put_schema(kCatalogReader, "catalog", json::parse(R"({"type":"object","required":["db"]})"),
                         &problems);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("db"), std::string::npos);
    EXPECT_EQ(refusal([&] {
                  service_->put_schema(kCatalogReader, "catalog", json::parse(R"({"type":"thing"})"),
                                       nullptr);
              }),
              400);
    EXPECT_EQ(refusal([&] { service_->put_schema(kCatalogReader, "inventory", schema, nullptr); }), 403);
}

TEST_P(ConfigServiceTest, ACanaryReachesItsInstancesFirstThenIsPromotedOrTakenBack) {
    auto stable = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    Targets t;
    t.instances = {"catalog-1"};
    auto canary = service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 30), t);
    EXPECT_EQ(config("catalog", {}, "catalog-1").at("page"), json::value(30));
    EXPECT_TRUE(service_->view("catalog", {}, "catalog-1", true).canary);
    EXPECT_EQ(config("catalog", {}, "catalog-2").at("page"), json::value(20));
    EXPECT_EQ(service_->version_of("catalog", {}, "catalog-1"), canary.version);
    EXPECT_EQ(service_->version_of("catalog", {}, "catalog-2"), stable.version);
    // Nothing else changes the document while the canary is out.
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, setting("page", 1)); }), 409);
    EXPECT_EQ(refusal([&] { service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 1), t); }), 409);

    auto aborted = service_->abort_canary(kAdmin, {"catalog", ""}, "");
    EXPECT_EQ(aborted.kind, Kind::abort);
    EXPECT_EQ(config("catalog", {}, "catalog-1").at("page"), json::value(20));
    EXPECT_EQ(service_->version_of("catalog", {}, "catalog-1"), stable.version);  // differs from the canary's
    EXPECT_EQ(refusal([&] { service_->promote(kAdmin, {"catalog", ""}, ""); }), 404);
    // A change based on the version a read shows (the stable one, not the abort after it) is taken.
    auto read = service_->document({"catalog", ""}, 0);
    EXPECT_EQ(read.version, stable.version);
    auto based = setting("page", 21);
    based.expected = read.version;
    auto after = service_->write(kAdmin, {"catalog", ""}, based);
    based.expected = read.version;  // stale now
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, based); }), 409);
    EXPECT_EQ(service_->document({"catalog", ""}, 0).version, after.version);

    auto again = service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 40), t);
    auto promoted = service_->promote(kAdmin, {"catalog", ""}, "");
    EXPECT_EQ(promoted.source, again.version);
    EXPECT_EQ(config("catalog", {}, "catalog-2").at("page"), json::value(40));
    EXPECT_FALSE(service_->view("catalog", {}, "catalog-1", true).canary);
}

TEST_P(ConfigServiceTest, APercentCanaryReachesAboutThatShareOfInstancesEachAlwaysTheSameWay) {
    Targets t;
    t.percent = 25;
    int in = 0;
    for (int i = 0; i < 1000; ++i) {
        auto id = "catalog-" + std::to_string(i);
        bool first = ConfigService::in_canary(t, 7, id);
        EXPECT_EQ(first, ConfigService::in_canary(t, 7, id));
        in += first;
    }
    EXPECT_GT(in, 180);
    EXPECT_LT(in, 320);
    EXPECT_FALSE(ConfigService::in_canary(t, 7, ""));  // an instance that does not say who it is
    EXPECT_EQ(refusal([&] { service_->start_canary(kAdmin, {"catalog", ""}, setting("a", 1), Targets{}); }),
              400);
}

TEST_P(ConfigServiceTest, ACanaryTheSchemaRefusesIsRefusedToo) {
    service_->put_schema(
        kAdmin, "catalog",
        json::parse(R"({"type":"object","properties":{"page":{"type":"integer","maximum":100}}})"), nullptr);
    service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    Targets t;
    t.instances = {"catalog-1"};
    EXPECT_EQ(refusal([&] { service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 1000), t); }),
              400);
}

TEST_P(ConfigServiceTest, LabelsPinAPastStateOfEveryDocument) {
    service_->write(kAdmin, {"application", ""}, content(R"({"log":"info"})"));
    auto v = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    service_->put_label(kAdmin, "release-1", 0, "first release");
    service_->write(kAdmin, {"catalog", ""}, content(R"({"page":99})"));
    service_->write(kAdmin, {"application", ""}, content(R"({"log":"debug"})"));
    auto then = service_->view_at("catalog", {}, "release-1", true);
    EXPECT_EQ(then.config, obj(R"({"log":"info","page":20})"));
    EXPECT_EQ(then.version, v.version);
    EXPECT_EQ(service_->view_at("catalog", {}, std::to_string(v.version), true).config, then.config);
    EXPECT_EQ(refusal([&] { service_->view_at("catalog", {}, "nope", true); }), 404);
    EXPECT_EQ(refusal([&] { service_->put_label(kAdmin, "42", 0, ""); }), 400);
    EXPECT_EQ(refusal([&] { service_->put_label(kAdmin, "future", 9999, ""); }), 400);
    EXPECT_TRUE(service_->delete_label(kAdmin, "release-1"));
    EXPECT_FALSE(service_->delete_label(kAdmin, "release-1"));
}

TEST_P(ConfigServiceTest, EverythingSurvivesARestart) {
    service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20,"pw":"{cipher}s"})"));
    Targets t;
    t.instances = {"catalog-1"};
    auto canary = service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 30), t);
    service_->put_label(kAdmin, "r1", 0, "");
    service_->put_schema(kAdmin, "catalog", json::parse(R"({"type":"object"})"), nullptr);
    auto revision = service_->revision();
    open();
    EXPECT_EQ(service_->revision(), revision);
    EXPECT_EQ(config("catalog", {}, "catalog-1"), obj(R"({"page":30,"pw":"s"})"));
    EXPECT_EQ(config("catalog", {}, "catalog-2"), obj(R"({"page":20,"pw":"s"})"));
    EXPECT_EQ(service_->labels().size(), 1u);
    EXPECT_TRUE(service_->schema("catalog"));
    // The abort after a restart is checked against the document's latest record (the canary).
    EXPECT_EQ(service_->abort_canary(kAdmin, {"catalog", ""}, "").source, canary.version);
    EXPECT_EQ(config("catalog", {}, "catalog-1").at("page"), json::value(20));
}

TEST_P(ConfigServiceTest, InstancesSayWhichVersionTheyRunAndWhyTheyRefusedOne) {
    service_->seen("catalog", "catalog-1", "prod", 7);
    InstanceReport r;
    r.instance = "catalog-2";
    r.profiles = "prod";
    r.offered = 8;
    r.running = 7;
    r.applied = false;
    r.error = "page: must be at most 500";
    service_->report("catalog", r);
    auto list = service_->instances("catalog");
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].instance, "catalog-1");
    EXPECT_EQ(list[0].offered, 7);
    EXPECT_EQ(list[1].running, 7);
    EXPECT_FALSE(list[1].applied);
    EXPECT_EQ(list[1].error, "page: must be at most 500");
    EXPECT_TRUE(service_->instances("inventory").empty());
}

// ---- following a store other servers write too

// A record another server appends to the shared store, as it would write it.
Record written_elsewhere(Store& store, DocKey key, std::string_view text, std::int64_t expected) {
    Record r;
    r.key = std::move(key);
    r.kind = Kind::set;
    r.content = obj(text);
    r.author = "carol";
    r.time_ms = 1;
    auto v = store.append(r, expected);
    if (!v) throw std::runtime_error("the other server's append failed: " + v.error().message());
    r.version = *v;
    return r;
}

TEST_P(ConfigServiceTest, ChangesAnotherServerWroteAreRefusedAsABaseThenServedAndWakeWatches) {
    auto& tap = open_tapped();
    auto mine = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    auto theirs = written_elsewhere(*shared_, {"catalog", ""}, R"({"page":30})", mine.version);
    // Not followed yet: a change based on what this server still serves is refused by the store.
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, setting("page", 1)); }), 409);
    EXPECT_EQ(config("catalog").at("page"), json::value(20));

    auto epoch = service_->changed().epoch();
    tap.follower.on_record(theirs);
    EXPECT_GT(service_->changed().epoch(), epoch) << "watches are woken";
    EXPECT_EQ(config("catalog").at("page"), json::value(30));
    EXPECT_EQ(service_->version_of("catalog", {}, ""), theirs.version);
    EXPECT_EQ(service_->revision(), theirs.version);
    Edit next = setting("page", 40);
    next.expected = theirs.version;
    auto after = service_->write(kAdmin, {"catalog", ""}, next);
    EXPECT_GT(after.version, theirs.version);
    auto history = service_->history({"catalog", ""}, 0, 10);
    ASSERT_EQ(history.size(), 3u);
    EXPECT_EQ(history[1].author, "carol");
}

TEST_P(ConfigServiceTest, ItsOwnRecordsComingBackLateAreNotAppliedAgain) {
    auto& tap = open_tapped();
    service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    Targets t;
    t.instances = {"catalog-1"};
    auto canary = service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 30), t);
    auto aborted = service_->abort_canary(kAdmin, {"catalog", ""}, "");
    auto epoch = service_->changed().epoch();
    auto revision = service_->revision();
    tap.follower.on_record(canary);  // applied again, it would bring the aborted canary back
    tap.follower.on_record(aborted);
    EXPECT_EQ(config("catalog", {}, "catalog-1").at("page"), json::value(20));
    EXPECT_FALSE(service_->view("catalog", {}, "catalog-1", true).canary);
    EXPECT_EQ(service_->revision(), revision);
    EXPECT_EQ(service_->changed().epoch(), epoch);
}

TEST_P(ConfigServiceTest, LabelsAndSchemasWrittenElsewhereAreReadAgainAndAReloadReplacesEverything) {
    auto& tap = open_tapped();
    auto v = service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    ASSERT_TRUE(shared_->put_label({"release-1", v.version, "carol", "first", 1}));
    ASSERT_TRUE(shared_->put_schema(
        {"catalog", json::parse(R"({"type":"object","properties":{"page":{"maximum":100}}})"), "carol", 1}));
    EXPECT_TRUE(service_->labels().empty());
    ASSERT_TRUE(tap.follower.on_metadata());
    ASSERT_EQ(service_->labels().size(), 1u);
    EXPECT_EQ(service_->labels()[0].at("name"), "release-1");
    EXPECT_EQ(refusal([&] { service_->write(kAdmin, {"catalog", ""}, setting("page", 1000)); }), 400)
        << "the schema published elsewhere is enforced here";
    ASSERT_TRUE(shared_->delete_label("release-1").value());
    ASSERT_TRUE(tap.follower.on_metadata());
    EXPECT_TRUE(service_->labels().empty());

    // What the feed never told is there after a reload.
    auto theirs = written_elsewhere(*shared_, {"inventory", ""}, R"({"stock":5})", 0);
    auto epoch = service_->changed().epoch();
    ASSERT_TRUE(tap.follower.on_reload());
    EXPECT_GT(service_->changed().epoch(), epoch);
    EXPECT_EQ(config("inventory"), obj(R"({"stock":5})"));
    EXPECT_EQ(service_->revision(), theirs.version);
    EXPECT_EQ(config("catalog"), obj(R"({"page":20})"));
    EXPECT_TRUE(service_->schema("catalog"));
}

INSTANTIATE_TEST_SUITE_P(Stores, ConfigServiceTest, ::testing::Values(Backend::sqlite, Backend::etcd),
                         [](const auto& info) { return info.param == Backend::sqlite ? "sqlite" : "etcd"; });

// ---- several servers on one etcd cluster

class ConfigOnEtcd : public ::testing::Test {
  protected:
    void SetUp() override { telemetry::set_log_level(telemetry::Level::warn); }
};

SecretBox test_key() { return SecretBox(std::string(32, 's')); }

std::unique_ptr<ConfigService> server_on(const std::string& prefix) {
    return std::make_unique<ConfigService>(open_etcd_store(shared_etcd().client_settings(), prefix),
                                           test_key());
}

// The cluster's revision now, asked without the client under test.
std::int64_t etcd_revision(etcd::testing::EtcdCluster& cluster) {
    auto a = cluster.post(0, "/v3/kv/range", R"({"key":"AA=="})");
    if (a.status != 200) throw std::runtime_error("etcd range failed: " + a.body + a.error);
    return std::stoll(std::string(json::parse(a.body).at("header").at("revision").as_string()));
}

TEST_F(ConfigOnEtcd, TwoServersServeEachOthersChangesLabelsAndSchemas) {
    auto prefix = test_prefix();
    auto a = server_on(prefix);
    auto b = server_on(prefix);
    Io io;
    auto v1 = a->write(kAdmin, {"catalog", ""}, content(R"({"page":20,"pw":"{cipher}hunter2"})"));
    ASSERT_TRUE(eventually(io, *b, [&] { return b->version_of("catalog", {}, "") == v1.version; }));
    EXPECT_EQ(b->view("catalog", {}, "", true).config, obj(R"({"page":20,"pw":"hunter2"})"));

    // Both base a change on v1: the first to reach the store wins, the other is refused.
    Edit on_v1 = setting("page", 30);
    on_v1.expected = v1.version;
    auto v2 = b->write(kAdmin, {"catalog", ""}, on_v1);
    EXPECT_EQ(refusal([&] { a->write(kAdmin, {"catalog", ""}, on_v1); }), 409);
    ASSERT_TRUE(eventually(io, *a, [&] { return a->version_of("catalog", {}, "") == v2.version; }));
    EXPECT_EQ(a->view("catalog", {}, "", true).config.at("page"), json::value(30));

    a->put_label(kAdmin, "release-1", v2.version, "first");
    ASSERT_TRUE(eventually(io, *b, [&] { return b->labels().size() == 1; }));
    EXPECT_EQ(b->view_at("catalog", {}, "release-1", true).config.at("page"), json::value(30));
    b->put_schema(kCatalogReader, "catalog",
                  json::parse(R"({"type":"object","properties":{"page":{"maximum":100}}})"), nullptr);
    ASSERT_TRUE(eventually(io, *a, [&] { return a->schema("catalog").has_value(); }));
    EXPECT_EQ(refusal([&] { a->write(kAdmin, {"catalog", ""}, setting("page", 1000)); }), 400);
    EXPECT_TRUE(b->delete_label(kAdmin, "release-1"));
    ASSERT_TRUE(eventually(io, *a, [&] { return a->labels().empty(); }));

    // A canary started on one server reaches its instances through the other, and its abort too.
    Targets t;
    t.instances = {"catalog-1"};
    auto canary = a->start_canary(kAdmin, {"catalog", ""}, setting("page", 50), t);
    ASSERT_TRUE(
        eventually(io, *b, [&] { return b->version_of("catalog", {}, "catalog-1") == canary.version; }));
    EXPECT_EQ(b->view("catalog", {}, "catalog-1", true).config.at("page"), json::value(50));
    auto aborted = b->abort_canary(kAdmin, {"catalog", ""}, "");
    EXPECT_EQ(aborted.source, canary.version);
    ASSERT_TRUE(eventually(io, *a, [&] { return a->revision() == aborted.version; }));
    EXPECT_EQ(a->view("catalog", {}, "catalog-1", true).config.at("page"), json::value(30));
    EXPECT_EQ(a->documents(), b->documents());
    EXPECT_EQ(a->history({"catalog", ""}, 0, 10).size(), 4u);
}

TEST_F(ConfigOnEtcd, AServerWhoseFeedWasCompactedAwayReloadsEverythingAndFollowsOn) {
    auto prefix = test_prefix();
    auto& cluster = shared_etcd();
    Io io;
    auto a = server_on(prefix);
    auto shared = std::shared_ptr<Store>(open_etcd_store(cluster.client_settings(), prefix));
    auto tap = std::make_unique<Tap>(shared);
    auto& feed = *tap;
    ConfigService b(std::move(tap), test_key());  // loaded; its feed not started yet

    auto v1 = a->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    a->put_label(kAdmin, "release-1", v1.version, "");
    cluster.compact(etcd_revision(cluster));
    feed.start_feed();  // from b's load on: compacted away
    ASSERT_TRUE(eventually(io, b, [&] { return b.version_of("catalog", {}, "") == v1.version; }));
    EXPECT_EQ(b.labels().size(), 1u);
    auto v2 = a->write(kAdmin, {"catalog", ""}, setting("page", 30));
    ASSERT_TRUE(eventually(io, b, [&] { return b.version_of("catalog", {}, "") == v2.version; }));
    EXPECT_EQ(b.view("catalog", {}, "", true).config.at("page"), json::value(30));
}

// An etcd member behind a proxy that can lose the answer to the next transaction that writes:
// after passing it on (so it applied) or instead of passing it on (so it did not). Either way it
// answers what etcd answers for a request it gave up on, which the client reports as
// outcome_unknown.
class LossyProxy {
  public:
    enum class Loss { none, after_applying, before_applying };

    explicit LossyProxy(net::Endpoint member) : member_(std::move(member)) {
        server_ = std::make_unique<net::Server>(
            runtime_, net::ServerSettings{},
            [this](net::Request& req, net::Response& res) -> net::Task<void> { co_await forward(req, res); });
        server_->start();
        runner_ = std::thread([this] { runtime_.run(); });
    }
    ~LossyProxy() {
        runtime_.stop();
        runner_.join();
    }
    net::Endpoint endpoint() const { return {"127.0.0.1", server_->port()}; }
    void lose_next(Loss loss) { loss_ = loss; }
    int writing_txns() const { return writing_txns_; }

  private:
    net::Task<void> forward(net::Request& req, net::Response& res) {
        Loss loss = Loss::none;
        if (req.path() == "/v3/kv/txn" && req.body.find("request_put") != std::string::npos) {
            ++writing_txns_;
            loss = loss_.exchange(Loss::none);
        }
        if (loss != Loss::before_applying) {
            auto r = co_await net::fetch(member_, "POST", req.target, req.body, "application/json", 5s);
            if (!r) {
                res.json(502, R"({"error":"proxy","message":"proxy","code":14})");
                co_return;
            }
            res.json(r->status, r->body);
        }
        if (loss != Loss::none)
            res.json(
                503,
                R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14})");
    }

    net::Endpoint member_;
    std::atomic<Loss> loss_{Loss::none};
    std::atomic<int> writing_txns_{0};
    net::Runtime runtime_{1};
    std::unique_ptr<net::Server> server_;
    std::thread runner_;
};

TEST_F(ConfigOnEtcd, AnAppendWhoseAnswerWasLostIsSettledNotGuessed) {
    LossyProxy proxy(shared_etcd().endpoint(0));
    etcd::Settings through_proxy;
    through_proxy.members = {proxy.endpoint()};
    auto store = open_etcd_store(through_proxy, test_prefix());
    ASSERT_TRUE(store->load());
    DocKey key{"catalog", ""};
    Record r;
    r.key = key;
    r.content = obj(R"({"page":1})");

    // Applied, answer lost: the record is found under the append's id, so it is reported done.
    proxy.lose_next(LossyProxy::Loss::after_applying);
    auto v1 = store->append(r, 0);
    ASSERT_TRUE(v1) << v1.error().message();
    EXPECT_EQ(proxy.writing_txns(), 1);

    // Not applied, answer lost: the fence keeps it from applying late, and it is tried again.
    r.content = obj(R"({"page":2})");
    proxy.lose_next(LossyProxy::Loss::before_applying);
    auto v2 = store->append(r, *v1);
    ASSERT_TRUE(v2) << v2.error().message();
    EXPECT_EQ(proxy.writing_txns(), 3);
    EXPECT_GT(*v2, *v1);

    // Exactly one record each, in order, and the document's latest version is the second.
    auto history = store->history(key, 0, 10);
    ASSERT_TRUE(history);
    ASSERT_EQ(history->size(), 2u);
    EXPECT_EQ((*history)[0].version, *v2);
    EXPECT_EQ((*history)[0].content, obj(R"({"page":2})"));
    EXPECT_EQ((*history)[1].version, *v1);
    EXPECT_EQ((*history)[1].content, obj(R"({"page":1})"));
    EXPECT_EQ(store->append(r, *v1).error(), make_error_code(errc::conflict));
    auto loaded = store->load();
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->revision, *v2);
    ASSERT_EQ(loaded->latest.size(), 1u);
    EXPECT_EQ(loaded->latest[0].second, *v2);
}

}  // namespace
