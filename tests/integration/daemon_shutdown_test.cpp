// Every daemon besides the registry (see registry_shutdown_test.cpp) stopped by SIGTERM while it
// works, as deployed: one I/O thread per core, its state on disk, registered in a registry (which
// it leaves before draining), and clients hammering it before, during and after the signal.
// Each stop must be clean and prompt: exit status 0 within the bound of every wait, never a crash
// or a hang, cycle after cycle.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/http.hpp"
#include "support/process.hpp"
#include "support/stub_server.hpp"

using namespace plexus::test;

namespace {

constexpr int kCycles = 12;
constexpr int kLoadThreads = 4;
// Successful (2xx) answers the load must have had before the signal: the daemon is doing its
// work, not just started. Cycle by cycle the signal comes at another point of the load.
int answers_before_stop(int cycle) { return 10 + 25 * (cycle % 4); }

// A short client timeout: a request the daemon drops at shutdown must not hold the load up.
constexpr std::chrono::milliseconds kRequestTimeout{3000};

struct Daemon {
    Process process;
    int port = 0;
};

// One request of the load on `port`; returns the HTTP status (0: no answer).
using Load = std::function<int(int port, int thread, int i)>;

class DaemonShutdown : public ::testing::Test {
  protected:
    void SetUp() override {
        registry_port = free_port();
        registry = Process({PLEXUS_BIN, "registry", "--listen", "127.0.0.1:" + std::to_string(registry_port),
                            "--data-dir", dir.path() + "/registry"},
                           {}, dir.path() + "/registry.log");
        ASSERT_TRUE(eventually([&] { return http_get(registry_port, "/health/ready").status == 200; }))
            << registry.log();
    }

    std::string registry_url() const { return "http://127.0.0.1:" + std::to_string(registry_port); }

    // `start(cycle)` starts the daemon and returns it once it answers /health/ready. Each cycle
    // puts load on it, sends SIGTERM while the load goes on, and expects a prompt exit 0.
    void stop_under_load_cycles(const std::function<Daemon(int cycle)>& start, const Load& load) {
        for (int cycle = 0; cycle < kCycles; ++cycle) {
            SCOPED_TRACE("cycle " + std::to_string(cycle));
            auto daemon = start(cycle);
            ASSERT_NE(daemon.port, 0) << daemon.process.log();
            std::atomic<bool> done{false};
            std::atomic<int> answered{0};
            std::vector<std::thread> threads;
            for (int t = 0; t < kLoadThreads; ++t) {
                threads.emplace_back([&, t] {
                    for (int i = 0; !done; ++i) {
                        auto status = load(daemon.port, t, i);
                        if (status >= 200 && status < 300) ++answered;
                    }
                });
            }
            bool busy = eventually([&] { return answered.load() >= answers_before_stop(cycle); });
            daemon.process.signal(SIGTERM);
            int status = daemon.process.wait();  // -1: still running after kWait
            done = true;
            for (auto& t : threads) t.join();
            ASSERT_TRUE(busy) << "the load got " << answered.load() << " 2xx answers\n"
                              << daemon.process.log();
            ASSERT_EQ(status, 0) << daemon.process.log();
        }
    }

    // Waits for the daemon to answer /health/ready on `port`.
    static bool ready(int port) {
        return eventually([&] { return http_get(port, "/health/ready").status == 200; });
    }

    TempDir dir;
    int registry_port = 0;
    Process registry;
};

}  // namespace

TEST_F(DaemonShutdown, IdentityStopsCleanlyWhileIssuingAndCheckingTokens) {
    auto credentials = dir.path() + "/client.json";
    stop_under_load_cycles(
        [&](int cycle) {
            Daemon d;
            d.port = free_port();
            auto url = "http://127.0.0.1:" + std::to_string(d.port);
            d.process = Process({PLEXUS_BIN, "identity", "--listen", "127.0.0.1:" + std::to_string(d.port),
                                 "--data-dir", dir.path() + "/identity", "--issuer", url, "--registry",
                                 registry_url(), "--provision", "load:inventory:write=" + credentials},
                                {}, dir.path() + "/identity-" + std::to_string(cycle) + ".log");
            if (!ready(d.port)) d.port = 0;
            return d;
        },
        [&](int port, int thread, int i) {
            static thread_local ClientCredentials client;
            if (client.id.empty()) {
                std::ifstream in(credentials);
                client = credentials_of(std::string(std::istreambuf_iterator<char>(in), {}));
            }
            switch ((thread + i) % 3) {
                case 0:
                    return client_credentials(port, "/token", client).status;
                case 1:
                    return http("GET", port, "/jwks", {}, {}, kRequestTimeout).status;
                default: {
                    // Token requests write to the database on the blocking pool: the jobs a stop
                    // must wait for before the store is closed.
                    auto token = access_token_of(client_credentials(port, "/token", client));
                    return http("POST", port, "/introspect",
                                "token=" + token + "&client_id=" + client.id +
                                    "&client_secret=" + client.secret,
                                {{"Content-Type", "application/x-www-form-urlencoded"}}, kRequestTimeout)
                        .status;
                }
            }
        });
}

TEST_F(DaemonShutdown, LimitsStopsCleanlyWhileLeasingTokens) {
    stop_under_load_cycles(
        [&](int cycle) {
            Daemon d;
            d.port = free_port();
            d.process =
                Process({PLEXUS_BIN, "limits", "--listen", "127.0.0.1:" + std::to_string(d.port), "--threads",
                         std::to_string(std::max(2u, std::thread::hardware_concurrency()))},
                        {}, dir.path() + "/limits-" + std::to_string(cycle) + ".log");
            if (!ready(d.port)) d.port = 0;
            return d;
        },
        [&](int port, int thread, int i) {
            auto bucket = "b" + std::to_string((thread * 7919 + i) % 500);
            return http("POST", port, "/v1/leases",
                        R"({"leases":[{"bucket":")" + bucket +
                            R"(","requests":100,"per_ms":1000,"burst":100,"want":5}]})",
                        {{"Content-Type", "application/json"}}, kRequestTimeout)
                .status;
        });
}

TEST_F(DaemonShutdown, GatewayStopsCleanlyWhileProxying) {
    StubServer upstream;
    auto routes = dir.path() + "/routes.yaml";
    {
        std::ofstream out(routes);
        out << "routes:\n  - name: only\n    match:\n      prefix: /api\n    upstreams: [\"127.0.0.1:"
            << upstream.port() << "\"]\n";
    }
    int admin_port = 0;
    stop_under_load_cycles(
        [&](int cycle) {
            Daemon d;
            d.port = free_port();
            admin_port = free_port();
            d.process = Process({PLEXUS_BIN, "gateway", "--listen", "127.0.0.1:" + std::to_string(d.port),
                                 "--admin-listen", "127.0.0.1:" + std::to_string(admin_port), "--registry",
                                 registry_url(), "--routes", routes, "--threads", "0"},
                                {}, dir.path() + "/gateway-" + std::to_string(cycle) + ".log");
            if (!ready(d.port)) d.port = 0;
            return d;
        },
        [&](int port, int thread, int i) {
            if (i % 10 == 9) return http("GET", admin_port, "/metrics", {}, {}, kRequestTimeout).status;
            return http("GET", port, "/api/items/" + std::to_string(i), {}, {}, kRequestTimeout).status;
        });
}

TEST_F(DaemonShutdown, ConfigServerStopsCleanlyWhileWritingAndWatching) {
    stop_under_load_cycles(
        [&](int cycle) {
            Daemon d;
            auto log = dir.path() + "/config-" + std::to_string(cycle) + ".log";
            d.process =
                Process({PLEXUS_BIN, "config", "serve", "--anonymous", "--data-dir", dir.path() + "/config",
                         "--listen", "127.0.0.1:0", "--registry", registry_url()},
                        {}, log);
            // Port 0: the daemon names the one it got in its "listening" line.
            static const std::regex listening(R"("config server listening".*"port":(\d+))");
            eventually([&] {
                std::smatch m;
                auto text = d.process.log();
                if (std::regex_search(text, m, listening)) d.port = std::stoi(m[1]);
                return d.port != 0;
            });
            if (d.port && !ready(d.port)) d.port = 0;
            return d;
        },
        [&](int port, int thread, int i) {
            auto app = "app" + std::to_string(thread);
            if (i % 3 == 2) {
                // A watch that waits for the next change (or is answered by the shutdown).
                return http("GET", port, "/v1/config/" + app + "/default?version=1000000&wait=5s", {}, {},
                            std::chrono::milliseconds(7000))
                    .status;
            }
            if (i % 3 == 1)
                return http("GET", port, "/v1/config/" + app + "/default", {}, {}, kRequestTimeout).status;
            return http("PUT", port, "/v1/documents/" + app,
                        R"({"content":{"step":)" + std::to_string(i) + R"(,"name":"load"}})",
                        {{"Content-Type", "application/json"}}, kRequestTimeout)
                .status;
        });
}
