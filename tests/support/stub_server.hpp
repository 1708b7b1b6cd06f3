#pragma once
// A loopback HTTP/1.1 server whose answers the test sets, independent of the library under test:
// one thread, one request per connection (answered with `Connection: close`), every request
// counted by path. Stops and joins in its destructor, even when a test fails.

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace plexus::test {

class StubServer {
  public:
    /// Listens on 127.0.0.1 at a free port; every request is answered `200 {}` until set_status().
    StubServer();
    ~StubServer();
    StubServer(const StubServer&) = delete;
    StubServer& operator=(const StubServer&) = delete;

    int port() const noexcept { return port_; }
    /// The status of every later answer. Thread-safe.
    void set_status(int status) noexcept { status_.store(status); }
    /// How many requests for `target` (path and query) have arrived so far. Thread-safe.
    int requests(const std::string& target) const;

  private:
    void serve();
    void answer(int fd);

    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<int> status_{200};
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::map<std::string, int> requests_;
    std::thread thread_;
};

}  // namespace plexus::test
