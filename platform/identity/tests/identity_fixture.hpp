#pragma once
// A fixture that runs the identity server in process behind a real HTTP server on loopback.
// Every wait is bounded by kWait.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "plexus/identity/identity.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/security/jwt.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

using namespace plexus;
using namespace plexus::net::testing;
namespace json = boost::json;

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

class IdentityTest : public ::testing::Test {
  protected:
    void SetUp() override {
        static std::atomic<int> runs{0};
        dir_ = std::filesystem::temp_directory_path() /
               ("plexus-identity-test-" + std::to_string(::getpid()) + "-" + std::to_string(runs++));
        telemetry::set_log_sink([this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_ += line;
        });
        runner_ = std::thread([this] { runtime_.run(); });
        start();
        admin_secret_ = std::string(admin_credentials().at("client_secret").as_string());
    }
    void TearDown() override {
        stop();
        runtime_.stop();
        runner_.join();
        telemetry::set_log_sink({});
        std::filesystem::remove_all(dir_);
    }

    void start() {
        identity::Settings s;
        s.data_dir = dir_.string();
        s.issuer = "http://127.0.0.1:8080/auth/";  // a trailing slash is dropped
        s.audience = "shop";
        s.provision = provision_;
        metrics_ = std::make_unique<telemetry::Registry>();
        server_ = std::make_unique<identity::Server>(s, *metrics_, *clock_);
        router_ = std::make_unique<net::Router>();
        server_->add_routes(*router_);
        http_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_->handler(),
                                              router_->body_limit_fn());
        http_->start();
    }
    void stop() {
        server_->stop_watches();  // ends revocation long polls, which the shutdown waits for
        auto done = std::make_shared<std::promise<void>>();
        auto f = done->get_future();
        http_->shutdown([done] { done->set_value(); });
        f.wait_for(kWait);
        http_.reset();
        server_.reset();
    }
    void restart() {
        stop();
        start();
    }

    net::Response call(std::string method, std::string target, std::string body = {},
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
        auto req = net::make_request(std::move(method), std::move(target), std::move(body));
        for (const auto& [k, v] : headers) req.headers.set(k, v);
        auto r = net::run_blocking(runtime_.executor(0),
                                   send_owned({"127.0.0.1", http_->port()}, std::move(req), kWait), kWait);
        if (!r || !*r) throw std::runtime_error("no answer");
        return std::move(**r);
    }
    static std::string basic(std::string_view id, std::string_view secret) {
        std::string user_pass = std::string(id) + ":" + std::string(secret);
        // standard base64 with padding
        auto url = security::base64url_encode(user_pass);
        for (auto& c : url) c = c == '-' ? '+' : c == '_' ? '/' : c;
        while (url.size() % 4) url += '=';
        return "Basic " + url;
    }
    net::Response form(std::string target, std::string body,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
        headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
        return call("POST", std::move(target), std::move(body), std::move(headers));
    }
    json::object admin_credentials() const {
        std::ifstream in(server_->admin_credentials_file());
        std::stringstream text;
        text << in.rdbuf();
        return json::parse(text.str()).as_object();
    }
    // The first admin's secret, read from its file at the first start (a restart writes none).
    const std::string& admin_secret() const { return admin_secret_; }
    std::string token_for(std::string_view id, std::string_view secret, std::string extra = {}) {
        auto r =
            form("/token", "grant_type=client_credentials" + extra, {{"Authorization", basic(id, secret)}});
        if (r.status != 200) throw std::runtime_error("no token: " + r.body);
        return std::string(json::parse(r.body).at("access_token").as_string());
    }
    json::object introspect(std::string_view token) {
        auto r = form("/introspect", "token=" + std::string(token),
                      {{"Authorization", basic("plexus-admin", admin_secret())}});
        return json::parse(r.body).as_object();
    }
    std::string logs() {
        std::lock_guard lock(log_mutex_);
        return log_;
    }

    std::filesystem::path dir_;
    net::Runtime runtime_{1};
    std::thread runner_;
    std::unique_ptr<telemetry::Registry> metrics_;
    core::Clock* clock_ = &core::Clock::real();  // set before start() to drive time
    std::vector<identity::Provisioned> provision_;  // set before restart()
    std::unique_ptr<identity::Server> server_;
    std::unique_ptr<net::Router> router_;
    std::unique_ptr<net::Server> http_;
    std::mutex log_mutex_;
    std::string log_;
    std::string admin_secret_;
};
