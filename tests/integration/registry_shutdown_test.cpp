// The registry stopped by SIGTERM while it works: instances registering and expiring (the reaper
// deleting them from SQLite on the blocking pool) and watches waiting. Every stop must be clean
// and prompt: exit status 0, never a crash or a hang. Before run() waited for offloaded work, a
// reaper job could still walk the catalog the daemon had just destroyed.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;

namespace {

// The value of a counter without labels in Prometheus text, or -1.
double metric(const std::string& text, const std::string& name) {
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
}

}  // namespace

TEST(RegistryShutdown, StopsCleanlyWhileInstancesRegisterExpireAndAreWatched) {
    TempDir dir;
    for (int cycle = 0; cycle < 5; ++cycle) {
        SCOPED_TRACE("cycle " + std::to_string(cycle));
        int port = free_port();
        Process registry({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:" + std::to_string(port),
                          "--data-dir", dir.path() + "/registry"},
                         {}, dir.path() + "/registry-" + std::to_string(cycle) + ".log");
        ASSERT_TRUE(eventually([&] { return http_get(port, "/health/ready").status == 200; }))
            << registry.log();

        std::atomic<bool> done{false};
        std::vector<std::thread> load;
        for (int t = 0; t < 2; ++t) {  // registrations that expire a second later
            load.emplace_back([&, t] {
                for (int i = 0; !done; ++i) {
                    http("PUT", port,
                         "/v1/services/s" + std::to_string(i % 4) + "/instances/c" + std::to_string(cycle) +
                             "-" + std::to_string(t) + "-" + std::to_string(i),
                         R"({"address":"127.0.0.1","port":9000,"ttl_ms":1000})", {},
                         std::chrono::milliseconds(2000));
                }
            });
        }
        for (int w = 0; w < 4; ++w) {  // watches that wait for the next change
            load.emplace_back([&, w] {
                while (!done) {
                    http("GET", port, "/v1/services/s" + std::to_string(w) + "?index=1000000000&wait=5s", {},
                         {}, std::chrono::milliseconds(7000));
                }
            });
        }
        // Stop once the reaper is at work: instances have expired and more keep expiring.
        EXPECT_TRUE(eventually([&] {
            return metric(http_get(port, "/metrics").body, "plexus_registry_expired_total") > 0;
        })) << registry.log();
        registry.signal(SIGTERM);
        int status = registry.wait();
        done = true;
        for (auto& t : load) t.join();
        ASSERT_EQ(status, 0) << registry.log();
    }
}
