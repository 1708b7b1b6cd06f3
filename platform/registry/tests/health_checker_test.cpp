// Active health checks in process: a catalog (no database, manual clock), a HealthChecker over a
// two-thread runtime, and a backend on loopback port 0 whose answers the test sets. Checks run
// every 100 ms; every wait is bounded by kWait. The suite runs on a catalog alone and on one
// shared through etcd, where status changes are written to etcd and come back through its watch.

#include "plexus/registry/health_checker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "catalog_stores.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/registry/catalog.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace std::chrono_literals;
using namespace plexus::net::testing;

namespace {

// What the backend answers, and what it was asked.
struct Backend {
    std::atomic<int> status{200};
    std::atomic<int> delay_ms{0};
    std::atomic<int> hits{0};
    std::mutex mutex;
    std::vector<std::string> paths;

    std::size_t hits_on(const std::string& path) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count(paths.begin(), paths.end(), path));
    }
};

using registry::testing::Store;

class HealthCheckerTest : public ::testing::TestWithParam<Store> {
  protected:
    void SetUp() override {
        telemetry::set_log_level(telemetry::Level::info);
        telemetry::set_log_sink([this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_.emplace_back(line);
        });
        backend_ = std::make_shared<Backend>();
        server_ = std::make_unique<net::Server>(
            runtime_, net::ServerSettings{},
            [b = backend_](net::Request& req, net::Response& res) -> net::Task<void> {
                ++b->hits;
                {
                    std::lock_guard lock(b->mutex);
                    b->paths.emplace_back(req.target);
                }
                if (int d = b->delay_ms.load()) co_await net::sleep_for(std::chrono::milliseconds(d));
                res.json(b->status.load(), "{}");
            });
        server_->start();
        checker_ = std::make_unique<registry::HealthChecker>(*catalog_, metrics_, runtime_);
        runner_ = std::thread([this] { runtime_.run(); });
    }

    void TearDown() override {
        checker_->stop();
        catalog_->stop_following();
        runtime_.stop();
        if (runner_.joinable()) runner_.join();
        telemetry::set_log_sink({});
        telemetry::set_log_level(telemetry::Level::warn);
    }

    discovery::InstanceInfo instance(std::string id, std::string path = "/health/ready", int unhealthy = 2,
                                     int healthy = 1, std::uint16_t port = 0) {
        discovery::InstanceInfo in;
        in.service = "svc";
        in.id = std::move(id);
        in.address = "127.0.0.1";
        in.port = port ? port : server_->port();
        in.ttl = 30s;
        in.check = discovery::HealthCheck{std::move(path), 100ms, 50ms, healthy, unhealthy};
        return in;
    }

    void put(const discovery::InstanceInfo& in) {
        std::string why;
        ASSERT_TRUE(catalog_->register_instance(in, &why)) << why;
    }

    std::string status(const std::string& id) {
        for (const auto& in : catalog_->snapshot("svc", true).instances) {
            if (in.id == id) return in.status;
        }
        return "gone";
    }

    bool becomes(const std::string& id, const std::string& wanted) {
        return wait_until([&] { return status(id) == wanted; });
    }

    std::uint64_t checks(const char* result) {
        return metrics_
            .counter("plexus_registry_health_checks_total", "Active health checks by result", {"result"})
            .labels({result})
            .value();
    }

    std::uint64_t changes(const char* to) {
        return metrics_
            .counter("plexus_registry_status_changes_total",
                     "Instance status changes made by active health checks", {"status"})
            .labels({to})
            .value();
    }

    bool logged(const std::string& text) {
        std::lock_guard lock(log_mutex_);
        for (const auto& line : log_) {
            if (line.find(text) != std::string::npos) return true;
        }
        return false;
    }

    core::ManualClock clock_;
    std::unique_ptr<registry::Catalog> catalog_ = registry::testing::new_catalog(clock_, GetParam());
    telemetry::Registry metrics_;
    net::Runtime runtime_{2};
    std::shared_ptr<Backend> backend_;
    std::unique_ptr<net::Server> server_;
    std::unique_ptr<registry::HealthChecker> checker_;
    std::thread runner_;
    std::mutex log_mutex_;
    std::vector<std::string> log_;
};

}  // namespace

TEST_P(HealthCheckerTest, FailuresMakeAnInstanceCriticalAndPassesBringItBack) {
    put(instance("a"));
    EXPECT_EQ(checker_->loops(), 1u);
    ASSERT_TRUE(wait_until([&] { return checks("pass") >= 1; })) << "the first check never ran";
    EXPECT_EQ(status("a"), "passing");

    auto before = catalog_->service_index("svc");
    backend_->status = 503;
    ASSERT_TRUE(becomes("a", "critical"));
    EXPECT_GE(checks("fail"), 2u);  // unhealthy_threshold 2
    EXPECT_GT(catalog_->service_index("svc"), before);
    EXPECT_TRUE(catalog_->snapshot("svc", false).instances.empty());
    // The change is counted just after the catalog took it.
    EXPECT_TRUE(wait_until([&] { return changes("critical") == 1u; })) << changes("critical");
    EXPECT_TRUE(wait_until([&] { return logged("GET /health/ready answered 503"); }));

    backend_->status = 204;
    ASSERT_TRUE(becomes("a", "passing"));
    EXPECT_EQ(catalog_->snapshot("svc", false).instances.size(), 1u);
    EXPECT_TRUE(wait_until([&] { return changes("passing") == 1u; })) << changes("passing");
}

TEST_P(HealthCheckerTest, TheFirstCheckRunsRightAway) {
    auto in = instance("a");
    in.check->interval = 10min;  // far beyond kWait: only an immediate first check is seen
    put(in);
    EXPECT_TRUE(wait_until([&] { return backend_->hits >= 1; }));
}

TEST_P(HealthCheckerTest, OneFailureBelowTheThresholdChangesNothing) {
    put(instance("a", "/health/ready", 10));
    backend_->status = 500;
    auto fails = checks("fail");
    ASSERT_TRUE(wait_until([&] { return checks("fail") >= fails + 3; }));
    EXPECT_EQ(status("a"), "passing");
    EXPECT_EQ(changes("critical"), 0u);
}

TEST_P(HealthCheckerTest, TooManyRequestsIsAWarningAtOnceAndStaysListed) {
    put(instance("a", "/health/ready", 10));  // a failure would take ten checks: 429 takes one
    ASSERT_TRUE(wait_until([&] { return checks("pass") >= 1; }));
    backend_->status = 429;
    ASSERT_TRUE(becomes("a", "warning"));
    EXPECT_GE(checks("warning"), 1u);
    EXPECT_TRUE(wait_until([&] { return changes("warning") == 1u; })) << changes("warning");
    auto listed = catalog_->snapshot("svc", false).instances;
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].status, "warning");
    backend_->status = 200;
    EXPECT_TRUE(becomes("a", "passing"));
}

TEST_P(HealthCheckerTest, HealthyThresholdNeedsThatManyPassesInARow) {
    put(instance("a", "/health/ready", 1, 3));
    backend_->status = 503;
    ASSERT_TRUE(becomes("a", "critical"));
    auto passes = checks("pass");
    backend_->status = 200;
    ASSERT_TRUE(becomes("a", "passing"));
    EXPECT_GE(checks("pass"), passes + 3);
}

TEST_P(HealthCheckerTest, ATimeoutIsAFailure) {
    backend_->delay_ms = 1000;
    put(instance("a", "/health/ready", 1));
    ASSERT_TRUE(becomes("a", "critical"));
    EXPECT_TRUE(wait_until([&] { return logged("GET /health/ready timed out after 50ms"); }));
}

TEST_P(HealthCheckerTest, ARefusedConnectionIsAFailure) {
    ClosedPort closed;
    put(instance("a", "/health/ready", 1, 1, closed.port()));
    ASSERT_TRUE(becomes("a", "critical"));
    EXPECT_TRUE(wait_until([&] { return logged("connection refused"); }));
}

TEST_P(HealthCheckerTest, DeregistrationStopsTheChecks) {
    put(instance("a"));
    ASSERT_TRUE(wait_until([&] { return backend_->hits >= 2; }));
    ASSERT_TRUE(catalog_->deregister("svc", "a"));
    int hits = backend_->hits;
    EXPECT_EQ(checker_->loops(), 0u);
    // Nothing happens for ten intervals but, at most, the one check that was already in flight.
    std::this_thread::sleep_for(1s);
    EXPECT_LE(backend_->hits, hits + 1);
}

// Reaping is the catalog's own only when alone: on etcd the lease removes the instance (a
// deregistration, as the test above).
class HealthCheckerAloneTest : public HealthCheckerTest {};

TEST_P(HealthCheckerAloneTest, ReapedInstancesAreNoLongerChecked) {
    put(instance("a"));
    ASSERT_TRUE(wait_until([&] { return backend_->hits >= 1; }));
    clock_.advance(31s);
    ASSERT_EQ(catalog_->reap(), 1u);
    EXPECT_EQ(checker_->loops(), 0u);
}

TEST_P(HealthCheckerTest, ReRegistrationWithAnotherCheckReplacesTheLoop) {
    put(instance("a", "/old"));
    ASSERT_TRUE(wait_until([&] { return backend_->hits_on("/old") >= 1; }));
    backend_->status = 503;
    ASSERT_TRUE(becomes("a", "critical"));

    put(instance("a", "/new"));
    EXPECT_EQ(status("a"), "passing");  // a re-registration starts passing
    EXPECT_EQ(checker_->loops(), 1u);
    auto old_hits = backend_->hits_on("/old");
    ASSERT_TRUE(wait_until([&] { return backend_->hits_on("/new") >= 5; }));
    EXPECT_LE(backend_->hits_on("/old"), old_hits + 1);  // at most the check that was in flight
    EXPECT_TRUE(becomes("a", "critical"));               // the new loop's own two failures

    // Re-registered without a check: no loop, and nothing moves its status any more.
    auto plain = instance("a");
    plain.check.reset();
    put(plain);
    EXPECT_EQ(checker_->loops(), 0u);
}

TEST_P(HealthCheckerTest, StopEndsEveryLoop) {
    put(instance("a"));
    put(instance("b"));
    ASSERT_TRUE(wait_until([&] { return backend_->hits >= 2; }));
    checker_->stop();
    EXPECT_EQ(checker_->loops(), 0u);
    put(instance("c"));  // changes after stop start nothing
    EXPECT_EQ(checker_->loops(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, HealthCheckerTest, registry::testing::all_stores(),
                         registry::testing::store_name);
INSTANTIATE_TEST_SUITE_P(Stores, HealthCheckerAloneTest, ::testing::Values(Store::alone),
                         registry::testing::store_name);

TEST(HealthChecker, ChecksInstancesAlreadyInTheCatalog) {
    telemetry::set_log_level(telemetry::Level::error);
    core::ManualClock clock;
    registry::Catalog catalog(clock, {});
    telemetry::Registry metrics;
    ClosedPort closed;
    discovery::InstanceInfo in;
    in.service = "svc";
    in.id = "restored";
    in.address = "127.0.0.1";
    in.port = closed.port();
    in.check = discovery::HealthCheck{"/health/ready", 100ms, 50ms, 1, 1};
    ASSERT_TRUE(catalog.register_instance(in));
    net::Runtime runtime(1);
    registry::HealthChecker checker(catalog, metrics, runtime);
    EXPECT_EQ(checker.loops(), 1u);
    std::thread runner([&] { runtime.run(); });
    EXPECT_TRUE(
        wait_until([&] { return catalog.snapshot("svc", true).instances.at(0).status == "critical"; }));
    checker.stop();
    runtime.stop();
    runner.join();
}
