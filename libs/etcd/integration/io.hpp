#pragma once
// What the etcd integration suites share: an io runtime to run the client's tasks on, a bounded
// wait for each, and small request builders.

#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "plexus/etcd/client.hpp"
#include "plexus/etcd/testing.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/runtime.hpp"

namespace plexus::etcd::testing {

using namespace std::chrono_literals;

/// The bound of one awaited call in these suites (a call's own timeout is 5 s).
inline constexpr std::chrono::milliseconds kCallWait{15'000};

/// An io runtime of `threads` io_contexts, run on threads of its own until destroyed.
class Io {
  public:
    explicit Io(std::size_t threads = 1) : runtime_(threads), runner_([this] { runtime_.run(); }) {}
    ~Io() {
        runtime_.stop();
        runner_.join();
    }
    Io(const Io&) = delete;
    Io& operator=(const Io&) = delete;

    net::Executor executor(std::size_t i = 0) const { return runtime_.executor(i); }

    /// Starts `task` on io_context `context`.
    template <class T>
    std::future<T> start(net::Task<T> task, std::size_t context = 0) {
        return net::start(runtime_.executor(context), std::move(task));
    }
    /// Runs `task` and waits at most kCallWait for its value (throws when it does not come).
    template <class T>
    T run(net::Task<T> task, std::size_t context = 0) {
        auto f = start(std::move(task), context);
        if (f.wait_for(kCallWait) != std::future_status::ready)
            throw std::runtime_error("etcd call did not end in time");
        return f.get();
    }

  private:
    net::Runtime runtime_;
    std::thread runner_;  // Runtime::run() runs context 0 here and the others on threads of its own
};

inline RangeRequest range_of(std::string key) {
    RangeRequest r;
    r.key = std::move(key);
    return r;
}

inline WatchRequest watch_prefix(std::string prefix, std::int64_t start_revision) {
    return WatchRequest::with_prefix(std::move(prefix), start_revision);
}

}  // namespace plexus::etcd::testing
