#pragma once
// Helpers shared by the in-process test suites (net, discovery, registry, gateway): bounded
// waits, a port nothing listens on, and waiting for tasks run on a Runtime.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"

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

/// The loopback address with `port`.
inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

// A blocking POSIX client socket whose reads are bounded by poll().
class RawSocket {
  public:
    enum class End { found, eof, reset, timeout };

    explicit RawSocket(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{static_cast<time_t>(kWait.count() / 1000), 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        auto addr = loopback(port);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) error_ = errno;
    }
    ~RawSocket() { ::close(fd_); }
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    bool connected() const { return error_ == 0; }
    int error() const { return error_; }

    bool send(std::string_view data) {
        while (!data.empty()) {
            auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // Reads until `needle` has arrived (if given), the peer closes, or `limit` passes.
    End read(std::string_view needle, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (true) {
            if (!needle.empty() && received_.find(needle) != std::string::npos) return End::found;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) return End::timeout;
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
            if (r <= 0) continue;  // EINTR or the deadline: checked above
            char buf[16 * 1024];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n == 0) return End::eof;
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                return End::reset;
            }
            received_.append(buf, static_cast<std::size_t>(n));
        }
    }
    End read_until(std::string_view needle) { return read(needle, kWait); }
    End read_to_end() { return read({}, kWait); }

    const std::string& received() const { return received_; }
    void clear() { received_.clear(); }

  private:
    int fd_ = -1;
    int error_ = 0;
    std::string received_;
};

inline std::ostream& operator<<(std::ostream& os, RawSocket::End e) {
    switch (e) {
        case RawSocket::End::found:
            return os << "found";
        case RawSocket::End::eof:
            return os << "eof";
        case RawSocket::End::reset:
            return os << "reset";
        case RawSocket::End::timeout:
            return os << "timeout";
    }
    return os;
}

/// An io runtime of `threads` io_contexts run on threads of its own until destroyed, for tests
/// that await tasks from the test's thread.
class RuntimeThread {
  public:
    explicit RuntimeThread(std::size_t threads = 1)
        : runtime_(threads), runner_([this] { runtime_.run(); }) {}
    ~RuntimeThread() {
        runtime_.stop();
        runner_.join();
    }
    RuntimeThread(const RuntimeThread&) = delete;
    RuntimeThread& operator=(const RuntimeThread&) = delete;

    Executor executor(std::size_t context = 0) const { return runtime_.executor(context); }
    Runtime& runtime() noexcept { return runtime_; }

    /// Starts `task` on io_context `context`.
    template <class T>
    std::future<T> start(Task<T> task, std::size_t context = 0) {
        return net::start(runtime_.executor(context), std::move(task));
    }
    /// Runs `task` and waits at most `limit` for its value (throws when it does not come).
    template <class T>
    T run(Task<T> task, std::size_t context = 0, std::chrono::milliseconds limit = kWait) {
        auto f = start(std::move(task), context);
        if (f.wait_for(limit) != std::future_status::ready) throw std::runtime_error("task timed out");
        return f.get();
    }

  private:
    Runtime runtime_;
    std::thread runner_;  // Runtime::run() runs context 0 here and the others on threads of its own
};

}  // namespace plexus::net::testing
