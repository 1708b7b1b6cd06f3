#pragma once
// What the config service's suites wait with: an io thread, and waiting for a condition woken by
// a service's changes.

#include <chrono>

#include "plexus/config/service.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/testing.hpp"

namespace plexus::config::testing {

using Io = net::testing::RuntimeThread;

/// Waits until `pred` holds, woken by `service`'s changes; false when `limit` passes first.
template <class Pred>
bool eventually(Io& io, ConfigService& service, Pred pred, std::chrono::milliseconds limit) {
    using namespace std::chrono_literals;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
        auto seen = service.changed().epoch();
        if (pred()) return true;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        net::run_blocking(io.executor(), service.changed().wait(left, seen), left + 1s);
    }
}

}  // namespace plexus::config::testing
