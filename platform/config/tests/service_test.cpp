// The config server's rules without HTTP: versions, history, diff, rollback, permissions, schema
// validation, canaries, labels, secrets, and what survives a restart (a SQLite file).

#include "plexus/config/service.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

#include "plexus/net/http.hpp"
#include "plexus/telemetry/log.hpp"

using namespace plexus;
using namespace plexus::config;
namespace json = boost::json;

namespace {

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

class ConfigServiceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        telemetry::set_log_level(telemetry::Level::warn);
        dir_ = std::filesystem::temp_directory_path() /
               ("plexus-config-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        open();
    }
    void TearDown() override {
        service_.reset();
        std::filesystem::remove_all(dir_);
    }
    void open() {
        service_.reset();
        auto store = open_sqlite_store((dir_ / "config.db").string());
        ASSERT_TRUE(store) << store.error().message();
        service_ = std::make_unique<ConfigService>(std::move(*store), SecretBox(std::string(32, 's')));
    }
    json::object config(const std::string& app, std::vector<std::string> profiles = {},
                        const std::string& instance = "", bool secrets = true) {
        return service_->view(app, profiles, instance, secrets).config;
    }

    std::filesystem::path dir_;
    std::unique_ptr<ConfigService> service_;
};

TEST_F(ConfigServiceTest, EveryChangeIsAVersionWithAuthorTimeAndMessageAndLayersMerge) {
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

TEST_F(ConfigServiceTest, PatchesSetAndRemovePropertiesAndAStaleBaseIsAConflict) {
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

TEST_F(ConfigServiceTest, HistoryDiffAndRollbackWhichIsItselfANewVersion) {
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

TEST_F(ConfigServiceTest, CallersWriteAndReadOnlyWhatTheirScopesAllow) {
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

TEST_F(ConfigServiceTest, SecretsAreEncryptedAtRestDecryptedOnlyForThoseAllowedAndMaskedInHistoryAndDiffs) {
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

TEST_F(ConfigServiceTest, AChangeTheSchemaRefusesChangesNothingAndNamesTheKey) {
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

TEST_F(ConfigServiceTest, ACanaryReachesItsInstancesFirstThenIsPromotedOrTakenBack) {
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

    auto again = service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 40), t);
    auto promoted = service_->promote(kAdmin, {"catalog", ""}, "");
    EXPECT_EQ(promoted.source, again.version);
    EXPECT_EQ(config("catalog", {}, "catalog-2").at("page"), json::value(40));
    EXPECT_FALSE(service_->view("catalog", {}, "catalog-1", true).canary);
}

TEST_F(ConfigServiceTest, APercentCanaryReachesAboutThatShareOfInstancesEachAlwaysTheSameWay) {
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

TEST_F(ConfigServiceTest, ACanaryTheSchemaRefusesIsRefusedToo) {
    service_->put_schema(
        kAdmin, "catalog",
        json::parse(R"({"type":"object","properties":{"page":{"type":"integer","maximum":100}}})"), nullptr);
    service_->write(kAdmin, {"catalog", ""}, content(R"({"page":20})"));
    Targets t;
    t.instances = {"catalog-1"};
    EXPECT_EQ(refusal([&] { service_->start_canary(kAdmin, {"catalog", ""}, setting("page", 1000), t); }),
              400);
}

TEST_F(ConfigServiceTest, LabelsPinAPastStateOfEveryDocument) {
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

TEST_F(ConfigServiceTest, EverythingSurvivesARestart) {
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

TEST_F(ConfigServiceTest, InstancesSayWhichVersionTheyRunAndWhyTheyRefusedOne) {
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

}  // namespace
