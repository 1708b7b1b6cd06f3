// Settings a service declares (Service::settings) from its --config file and a real config
// server (platform/config in process, anonymous, on loopback): loaded before the service starts,
// changes pushed by the server's watch applied live, refusals kept out and reported back, the
// schema published so the server refuses what the service could not load.

#include <gtest/gtest.h>

#include <fstream>

#include "plexus/config/config.hpp"
#include "plexus/service.hpp"
#include "sdk_fixture.hpp"

namespace {

namespace config = plexus::config;

struct Paging {
    int page_size = 20;
    std::chrono::milliseconds cache{5000};
    std::string banner = "hello";
};

void load_paging(plexus::core::SettingsReader& r, Paging& p) {
    r.field("page_size", p.page_size, 1, 500);
    r.field("cache", p.cache);
    r.field("banner", p.banner);
}

const config::Caller kAdmin{"tester", "", true};

class LiveSettingsTest : public SdkService {
  protected:
    void SetUp() override {
        SdkService::SetUp();
        ::unsetenv("PLEXUS_CONFIG_SERVER");
        ::unsetenv("PLEXUS_PROFILES");
        std::filesystem::create_directories(data_dir_);
        auto store = config::open_sqlite_store((data_dir_ / "config.db").string());
        ASSERT_TRUE(store);
        service_ = std::make_unique<config::ConfigService>(std::move(*store), config::SecretBox());
        api_ = std::make_unique<config::Api>(*service_, nullptr, metrics_, std::chrono::seconds(60));
        api_->add_routes(router_);
        server_ = std::make_unique<net::Server>(server_runtime_, net::ServerSettings{}, router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        server_runner_ = std::thread([this] { server_runtime_.run(); });
    }
    void TearDown() override {
        SdkService::TearDown();
        api_->stop_watches();
        server_runtime_.stop();
        server_runner_.join();
        server_.reset();
        api_.reset();
        service_.reset();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

    std::int64_t write(std::string_view yaml, std::string profile = "") {
        config::Edit e;
        e.content = json::parse(yaml).as_object();
        return service_->write(kAdmin, {kName, std::move(profile)}, e).version;
    }

    // The instance's report, once one with `offered` == version has arrived.
    std::optional<config::InstanceReport> report_of(std::int64_t version) {
        std::optional<config::InstanceReport> found;
        wait_until([&] {
            for (const auto& r : service_->instances(kName))
                if (r.offered == version && r.time_ms) found = r;
            return found.has_value();
        });
        return found;
    }

    telemetry::Registry metrics_;
    net::Router router_;
    net::Runtime server_runtime_{1};
    std::thread server_runner_;
    std::unique_ptr<config::ConfigService> service_;
    std::unique_ptr<config::Api> api_;
    std::unique_ptr<net::Server> server_;
};

TEST_F(LiveSettingsTest, TheServerOverlaysTheFileAndAPushedChangeIsAppliedLive) {
    auto file = data_dir_ / "settings.yaml";
    std::ofstream(file) << "paging:\n  page_size: 10\n  banner: from the file\n";
    write(R"({"paging":{"page_size":30}})");
    auto paging = svc_.settings<Paging>("paging", load_paging);
    std::mutex seen_mutex;
    std::vector<std::pair<int, int>> seen;
    paging.on_change([&](const Paging& before, const Paging& after) {
        std::lock_guard lock(seen_mutex);
        seen.emplace_back(before.page_size, after.page_size);
    });
    svc_.get("/page", [&](Request&) -> Task<Response> {
        co_return plexus::json_response(200, std::to_string(paging.get()->page_size));
    });
    ASSERT_NO_FATAL_FAILURE(start({{"--config", file.string()}, {"--config-server", url()}}));
    EXPECT_EQ(paging.get()->page_size, 30);            // the server over the file
    EXPECT_EQ(paging.get()->banner, "from the file");  // the file over the defaults
    EXPECT_EQ(call("GET", "/page").body, "30");
    ASSERT_TRUE(service_->schema(kName)) << "the service published its settings' schema";

    auto v = write(R"({"paging":{"page_size":45,"cache":"2s"}})");
    ASSERT_TRUE(wait_until([&] { return paging.get()->page_size == 45; }));
    EXPECT_EQ(paging.get()->cache, std::chrono::milliseconds(2000));
    EXPECT_EQ(call("GET", "/page").body, "45");
    {
        std::lock_guard lock(seen_mutex);
        ASSERT_EQ(seen.size(), 1u);  // not called for the values it started with
        EXPECT_EQ(seen[0], std::make_pair(30, 45));
    }
    auto r = report_of(v);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->applied);
    EXPECT_EQ(r->running, v);
    EXPECT_EQ(stop(), 0);
}

TEST_F(LiveSettingsTest, AChangeTheServiceRefusesKeepsTheOldValuesAndIsReported) {
    write(R"({"paging":{"page_size":30}})");
    auto paging = svc_.settings<Paging>("paging", load_paging);
    std::atomic<int> undone{0};
    paging.on_change([&](const Paging& before, const Paging& after) {
        if (after.page_size == 99) throw std::runtime_error("99 rows do not fit the page");
        if (before.page_size == 99) ++undone;
    });
    std::atomic<int> second_called{0};
    paging.on_change([&](const Paging&, const Paging&) { ++second_called; });
    ASSERT_NO_FATAL_FAILURE(start({{"--config-server", url()}}));
    auto refused = write(R"({"paging":{"page_size":99}})");
    auto r = report_of(refused);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->applied);
    EXPECT_NE(r->error.find("99 rows do not fit the page"), std::string::npos) << r->error;
    EXPECT_LT(r->running, refused);
    EXPECT_EQ(paging.get()->page_size, 30);
    EXPECT_EQ(second_called.load(), 0);
    auto good = write(R"({"paging":{"page_size":40}})");
    ASSERT_TRUE(wait_until([&] { return paging.get()->page_size == 40; }));
    EXPECT_TRUE(report_of(good)->applied);
    EXPECT_EQ(second_called.load(), 1);
    EXPECT_EQ(stop(), 0);
}

TEST_F(LiveSettingsTest, APushedChangeKeepsAFaultInjectedThroughTheFaultsEndpoint) {
    write(R"({"paging":{"page_size":30}})");
    auto paging = svc_.settings<Paging>("paging", load_paging);
    svc_.client("inventory");
    ASSERT_NO_FATAL_FAILURE(start({{"--config-server", url()}}));
    auto put =
        call("PUT", "/-/faults", {}, R"({"clients":{"inventory":{"abort_percent":100,"abort_status":503}}})");
    ASSERT_EQ(put.status, 200) << put.body;

    write(R"({"paging":{"page_size":31}})");  // nothing about the client
    ASSERT_TRUE(wait_until([&] { return paging.get()->page_size == 31; }));
    auto faults = json::parse(call("GET", "/-/faults").body);
    EXPECT_EQ(faults.at("clients").at("inventory").at("abort_percent").to_number<double>(), 100)
        << json::serialize(faults);

    // A change of the client's own fault replaces the injected one.
    write(R"({"paging":{"page_size":31},"clients":{"inventory":{"fault":{"abort":{"percent":10}}}}})");
    ASSERT_TRUE(wait_until([&] {
        auto f = json::parse(call("GET", "/-/faults").body);
        return f.at("clients").at("inventory").at("abort_percent").to_number<double>() == 10;
    }));
    EXPECT_EQ(stop(), 0);
}

TEST_F(LiveSettingsTest, AChangeToAnotherSectionLeavesASectionAndItsCallbacksAlone) {
    write(R"({"paging":{"page_size":30},"banner":{"banner":"a"}})");
    auto paging = svc_.settings<Paging>("paging", load_paging);
    auto banner = svc_.settings<Paging>("banner", load_paging);
    std::atomic<int> paging_told{0};
    paging.on_change([&](const Paging&, const Paging&) { ++paging_told; });
    ASSERT_NO_FATAL_FAILURE(start({{"--config-server", url()}}));
    auto values = paging.get();

    write(R"({"paging":{"page_size":30},"banner":{"banner":"b"}})");
    ASSERT_TRUE(wait_until([&] { return banner.get()->banner == "b"; }));
    EXPECT_EQ(paging_told.load(), 0);
    EXPECT_EQ(paging.get(), values);  // the same values, not a copy loaded again

    write(R"({"paging":{"page_size":31},"banner":{"banner":"b"}})");
    ASSERT_TRUE(wait_until([&] { return paging.get()->page_size == 31; }));
    EXPECT_EQ(paging_told.load(), 1);
    EXPECT_EQ(stop(), 0);
}

TEST_F(LiveSettingsTest, ThePublishedSchemaMakesTheServerRefuseWhatTheServiceCouldNotLoad) {
    auto paging = svc_.settings<Paging>("paging", load_paging);
    ASSERT_NO_FATAL_FAILURE(start({{"--config-server", url()}}));
    ASSERT_TRUE(wait_until([&] { return service_->schema(kName).has_value(); }));
    auto before = service_->revision();
    for (auto bad :
         {R"({"paging":{"page_size":9000}})", R"({"paging":{"cache":"soon"}})", R"({"pagnig":{}})"}) {
        int status = 0;
        try {
            write(bad);
        } catch (const plexus::HttpError& e) {
            status = e.status();
        }
        EXPECT_EQ(status, 400) << bad;
    }
    EXPECT_EQ(service_->revision(), before);  // nothing went live
    EXPECT_EQ(paging.get()->page_size, 20);
    EXPECT_EQ(stop(), 0);
}

TEST_F(LiveSettingsTest, SettingsThatDoNotLoadStopStartup) {
    write(R"({"paging":{"page_size":"many"}})");  // before any schema: the server cannot know
    auto paging = svc_.settings<Paging>("paging", load_paging);
    EXPECT_EQ(run_expecting_exit(svc_, flags({{"--config-server", url()}})), 1);
    auto refusals = logs_.with_msg("cannot start with the config server's settings");
    ASSERT_FALSE(refusals.empty());
    auto error = std::string(refusals[0].at("error").as_string());
    EXPECT_NE(error.find("paging.page_size"), std::string::npos) << error;
    EXPECT_NE(error.find("config server"), std::string::npos) << error;

    // A file problem is named by file, line and key, before anything starts.
    auto file = data_dir_ / "bad.yaml";
    std::ofstream(file) << "paging:\n  page_size: 10\n  colour: blue\n";
    plexus::Service other{kName};
    other.settings<Paging>("paging", load_paging);
    EXPECT_EQ(run_expecting_exit(other, flags({{"--config", file.string()}})), 2);
}

TEST_F(LiveSettingsTest, DeclaringASectionTwiceOrCalledClientsIsABadStart) {
    svc_.settings<Paging>("paging", load_paging);
    svc_.settings<Paging>("paging", load_paging);
    EXPECT_EQ(run_expecting_exit(svc_, flags()), 2);
    plexus::Service other{kName};
    other.settings<Paging>("clients", load_paging);
    EXPECT_EQ(run_expecting_exit(other, flags()), 2);
}

}  // namespace
