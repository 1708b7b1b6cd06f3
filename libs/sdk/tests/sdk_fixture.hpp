#pragma once
// The fixture of the SDK tests: a plexus::Service run in process on its own thread, as a
// service's main() runs it, its log lines captured, called with real HTTP on loopback.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "in_process_registry.hpp"
#include "plexus/identity/identity.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/telemetry/log.hpp"

namespace json = boost::json;
namespace net = plexus::net;
namespace telemetry = plexus::telemetry;
using namespace std::chrono_literals;
using namespace plexus::net::testing;
using plexus::Request;
using plexus::Response;
using plexus::Task;

namespace {

constexpr const char* kName = "sdk-test";

// The member `key` of a JSON object as JSON text, "" when absent: comparisons read as the wire.
inline std::string member(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v ? json::serialize(*v) : "";
}

inline json::object parse_object(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << text;
        return {};
    }
    return v.as_object();
}

// The value of the sample `series` (name and labels) in Prometheus text, if present.
inline std::optional<double> sample(const std::string& text, const std::string& series) {
    auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::strtod(text.c_str() + at + series.size() + 2, nullptr);
}

inline std::string header(const Response& res, std::string_view name) {
    return std::string(res.headers.get(name).value_or(""));
}

// Every log line, captured instead of written to stdout, while the object lives.
class LogCapture {
  public:
    LogCapture() {
        telemetry::set_log_sink([this](std::string_view line) {
            std::lock_guard lock(mutex_);
            lines_.emplace_back(line);
        });
    }
    ~LogCapture() { telemetry::set_log_sink({}); }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    // The lines whose "msg" is `msg`, parsed, in the order they were written.
    std::vector<json::object> with_msg(std::string_view msg) const {
        std::vector<std::string> lines;
        {
            std::lock_guard lock(mutex_);
            lines = lines_;
        }
        std::vector<json::object> found;
        for (const auto& line : lines) {
            boost::system::error_code ec;
            auto v = json::parse(line, ec);
            if (ec || !v.is_object()) continue;
            const auto* m = v.as_object().if_contains("msg");
            if (m && m->is_string() && m->as_string() == msg) found.push_back(v.as_object());
        }
        return found;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

// One fixture for the whole suite: a Service made per test (routes are added in the test body,
// before start()), a client runtime, and helpers to run, call and stop the service.
class SdkService : public ::testing::Test {
  protected:
    using Flags = std::map<std::string, std::string>;

    void SetUp() override {
        // Standalone unless a test says otherwise, whatever the environment running the tests.
        ::unsetenv("PLEXUS_REGISTRY");
        ::unsetenv("PLEXUS_CONFIG");
        static std::atomic<int> runs{0};
        data_dir_ = std::filesystem::temp_directory_path() /
                    ("plexus-sdk-test-" + std::to_string(::getpid()) + "-" + std::to_string(runs++));
        client_runner_ = std::thread([this] { client_.run(); });
    }

    void TearDown() override {
        if (runner_.joinable()) {
            // A test that failed before stopping its service: stop it so the next one starts clean.
            // Never a second SIGTERM: once run() has removed its handler, one would kill the process.
            if (serving_ && !sigterm_sent_) send_sigterm();
            wait_exit();
        }
        client_.stop();
        client_runner_.join();
        std::error_code ec;
        std::filesystem::remove_all(data_dir_, ec);
    }

    // The flags every test passes, with `overrides` replacing or adding some.
    std::vector<std::string> flags(const Flags& overrides = {}) const {
        Flags all{{"--listen", "127.0.0.1:0"},
                  {"--threads", "1"},
                  {"--log-level", "info"},  // the "listening" line carries the port
                  {"--data-dir", data_dir_.string()}};
        for (const auto& [k, v] : overrides) all[k] = v;
        std::vector<std::string> args{kName};
        for (const auto& [k, v] : all) {
            args.push_back(k);
            args.push_back(v);
        }
        return args;
    }

    // Starts svc.run(args) on its own thread.
    void launch(plexus::Service& svc, std::vector<std::string> args) {
        args_ = std::move(args);
        sigterm_sent_ = false;
        argv_.clear();
        for (auto& a : args_) argv_.push_back(a.data());
        argv_.push_back(nullptr);
        std::promise<int> done;
        exit_code_ = done.get_future();
        runner_ = std::thread([&svc, this, done = std::move(done)]() mutable {
            done.set_value(svc.run(static_cast<int>(args_.size()), argv_.data()));
        });
    }

    bool exited() const { return exit_code_.wait_for(0s) == std::future_status::ready; }

    // run()'s return value, waited for at most kWait; then the thread is joined. A service that
    // does not stop would leave a thread using this fixture: the run is over, so abort.
    int wait_exit() {
        if (exit_code_.wait_for(kWait) != std::future_status::ready) {
            std::fprintf(stderr, "service did not stop within %lld ms\n",
                         static_cast<long long>(kWait.count()));
            std::abort();
        }
        runner_.join();
        serving_ = false;
        return exit_code_.get();
    }

    // Runs the service and waits until it answers: its port is known and its SIGTERM handler is
    // installed (the runtime serves only after it installs it). Use with ASSERT_NO_FATAL_FAILURE.
    void start(const Flags& overrides = {}) {
        launch(svc_, flags(overrides));
        std::optional<json::object> line;
        ASSERT_TRUE(wait_until([&] {
            auto found = logs_.with_msg("listening");
            if (!found.empty()) line = found.front();
            return line || exited();
        })) << "no \"listening\" line within "
            << kWait.count() << " ms";
        ASSERT_TRUE(line) << "run() returned " << wait_exit() << " before listening";
        port_ = static_cast<std::uint16_t>(line->at("port").to_number<int>());
        ASSERT_NE(port_, 0);
        serving_ = true;
        auto live = call("GET", "/health/live");
        ASSERT_EQ(live.status, 200) << "the service does not answer on port " << port_;
    }

    // SIGTERM to this process, as a supervisor stops a service.
    void send_sigterm() {
        sigterm_sent_ = true;
        ::kill(::getpid(), SIGTERM);
    }

    // Stops the service as a supervisor does: run()'s return value.
    int stop() {
        send_sigterm();
        return wait_exit();
    }

    // Runs a service that should exit by itself (bad flags, failed startup): run()'s return value.
    // One that starts serving instead is stopped, and the test fails.
    int run_expecting_exit(plexus::Service& svc, std::vector<std::string> args) {
        launch(svc, std::move(args));
        bool listening = false;
        EXPECT_TRUE(wait_until([&] {
            listening = !logs_.with_msg("listening").empty();
            return listening || exited();
        }));
        if (listening && !exited()) {
            ADD_FAILURE() << "the service started serving";
            port_ =
                static_cast<std::uint16_t>(logs_.with_msg("listening").front().at("port").to_number<int>());
            serving_ = true;
            call("GET", "/health/live");  // served: the SIGTERM handler is in place
            return stop();
        }
        return wait_exit();
    }

    net::Endpoint endpoint() const { return {"127.0.0.1", port_}; }

    // One request to the service; a transport failure fails the test and gives status 0.
    Response call(std::string method, std::string target,
                  std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = {}) {
        std::string_view content_type = body.empty() ? "" : "application/json";
        auto req = net::make_request(std::move(method), std::move(target), std::move(body), content_type);
        for (const auto& [k, v] : headers) req.headers.set(k, v);
        auto r = net::run_blocking(client_.executor(0), send_owned(endpoint(), std::move(req), 5s), kWait);
        if (!r || !*r) {
            ADD_FAILURE() << "no answer from 127.0.0.1:" << port_ << ": "
                          << (r ? r->error().message() : std::string("timed out"));
            Response none;
            none.status = 0;
            return none;
        }
        return std::move(**r);
    }

    // Starts a request without waiting for its answer.
    std::future<plexus::Result<Response>> call_async(std::string target) {
        return net::start(client_.executor(0),
                          send_owned(endpoint(), net::make_request("GET", target), kWait));
    }

    LogCapture logs_;  // first: outlives the service's last line
    std::filesystem::path data_dir_;
    plexus::Service svc_{kName};
    std::uint16_t port_ = 0;
    bool serving_ = false;
    bool sigterm_sent_ = false;

  private:
    net::Runtime client_{1};
    std::thread client_runner_;
    std::vector<std::string> args_;
    std::vector<char*> argv_;
    std::future<int> exit_code_;
    std::thread runner_;
};

}  // namespace
