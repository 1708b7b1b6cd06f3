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
#include "plexus/net/testing.hpp"

namespace plexus::etcd::testing {

using namespace std::chrono_literals;

/// The bound of one awaited call in these suites (a call's own timeout is 5 s).
inline constexpr std::chrono::milliseconds kCallWait{15'000};

/// An io runtime on threads of its own, whose run() waits kCallWait.
class Io : public net::testing::RuntimeThread {
  public:
    using RuntimeThread::RuntimeThread;
    template <class T>
    T run(net::Task<T> task, std::size_t context = 0) {
        return RuntimeThread::run(std::move(task), context, kCallWait);
    }
};

inline WatchRequest watch_prefix(std::string prefix, std::int64_t start_revision) {
    return WatchRequest::with_prefix(std::move(prefix), start_revision);
}

}  // namespace plexus::etcd::testing
