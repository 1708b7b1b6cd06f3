#pragma once
// A real registry in process (catalog without a database, its HTTP API, a two-thread runtime on
// loopback port 0) and helpers that run tasks on that runtime. Every wait is bounded by kWait.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>

#include "plexus/core/clock.hpp"
#include "plexus/discovery/registry_client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/testing.hpp"
#include "plexus/registry/catalog.hpp"
#include "plexus/registry/registry.hpp"
#include "plexus/store/database.hpp"  // completes the type of Catalog's defaulted database argument
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::discovery::test {

using namespace plexus::net::testing;

using namespace std::chrono_literals;

// Runs the task `make()` returns, keeping `make` (and what it captured by value) alive in this
// frame until the task is done: nothing refers to the test's locals while the task runs.
template <class F>
auto owned(F make) -> decltype(make()) {
    co_return co_await make();
}

inline InstanceInfo instance(std::string service, std::string id, std::uint16_t port) {
    InstanceInfo in;
    in.service = std::move(service);
    in.id = std::move(id);
    in.address = "127.0.0.1";
    in.port = port;
    in.ttl = 30s;
    return in;
}

// The registry daemon's parts wired as registry::run() wires them, minus signals, persistence and
// the reaper (the clock is manual, so nothing expires).
class InProcessRegistry {
  public:
    InProcessRegistry() {
        telemetry::set_log_level(telemetry::Level::warn);
        api_.add_routes(router_);
        server_ = std::make_unique<net::Server>(runtime_, net::ServerSettings{}, router_.handler(),
                                                router_.body_limit_fn());
        server_->start();
        runner_ = std::thread([this] { runtime_.run(); });
    }
    // Terminal stop: blocking watches still pending are destroyed with the runtime's work.
    ~InProcessRegistry() {
        runtime_.stop();
        runner_.join();
        server_.reset();
    }
    InProcessRegistry(const InProcessRegistry&) = delete;
    InProcessRegistry& operator=(const InProcessRegistry&) = delete;

    net::Endpoint endpoint() const { return {"127.0.0.1", server_->port()}; }
    RegistryClient client() const { return RegistryClient(endpoint()); }

    // The client's calls against this registry, waited for (each bounded by kWait).
    ErrorCode register_instance(InstanceInfo in) {
        return run(owned([c = client(), in] { return c.register_instance(in); }));
    }
    ErrorCode heartbeat(std::string service, std::string id) {
        return run(owned([c = client(), service, id] { return c.heartbeat(service, id); }));
    }
    ErrorCode deregister(std::string service, std::string id) {
        return run(owned([c = client(), service, id] { return c.deregister(service, id); }));
    }
    ErrorCode set_draining(std::string service, std::string id) {
        return run(owned([c = client(), service, id] { return c.set_draining(service, id); }));
    }
    registry::Catalog& catalog() { return catalog_; }
    net::Executor executor(std::size_t context) const { return runtime_.executor(context); }

    // Blocking watches the registry is holding right now.
    double watchers() {
        return metrics_.gauge("plexus_registry_watchers", "Blocking watches currently waiting")
            .labels()
            .value();
    }

    // Starts `task` on io_context `context` without waiting for it.
    template <class T>
    std::future<T> start(net::Task<T> task, std::size_t context = 0) {
        auto promise = std::make_shared<std::promise<T>>();
        auto future = promise->get_future();
        net::spawn(runtime_.executor(context), deliver(std::move(task), promise), "test task");
        return future;
    }

    // Runs `task` to completion (at most kWait) and returns its value.
    template <class T>
    T run(net::Task<T> task, std::size_t context = 0) {
        auto future = start(std::move(task), context);
        return wait(future);
    }

  private:
    core::ManualClock clock_;
    registry::Catalog catalog_{clock_, registry::CatalogLimits{}};
    telemetry::Registry metrics_;
    registry::Api api_{catalog_, metrics_, 60s};
    net::Router router_;
    net::Runtime runtime_{2};
    std::unique_ptr<net::Server> server_;
    std::thread runner_;
};

}  // namespace plexus::discovery::test
