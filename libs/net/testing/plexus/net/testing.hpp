#pragma once
// Helpers shared by the in-process test suites (net, discovery, registry, gateway): bounded
// waits, a port nothing listens on, and waiting for tasks run on a Runtime.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"

namespace plexus::net::testing {

using namespace std::chrono_literals;
using net::deliver;
using net::start;

/// The bound of every wait in the in-process suites.
inline constexpr std::chrono::milliseconds kWait = 10s;

inline std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
}

/// Waits until `pred` holds, checking every few milliseconds, for at most `limit`.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = kWait) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// A task's outcome, waited for at most kWait (throws when it does not come).
template <class T>
T wait(std::future<T>& future) {
    if (future.wait_for(kWait) != std::future_status::ready) throw std::runtime_error("task timed out");
    return future.get();
}

/// Sends a request it owns, so nothing refers to the caller's locals while the task runs.
inline Task<Result<Response>> send_owned(Endpoint ep, Request req, std::chrono::milliseconds timeout) {
    Response res;
    auto ec = co_await send(ep, req, res, timeout);
    if (ec) co_return ec;
    co_return res;
}

/// A loopback port nothing listens on (bound, not listening: connections are refused), reserved
/// while the object lives.
class ClosedPort {
  public:
    ClosedPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    ~ClosedPort() { ::close(fd_); }
    ClosedPort(const ClosedPort&) = delete;
    ClosedPort& operator=(const ClosedPort&) = delete;

    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    Endpoint endpoint() const { return {"127.0.0.1", port_}; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace plexus::net::testing
