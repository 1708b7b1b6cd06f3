#pragma once
/// The process's I/O runtime: one io_context per core, each run by one thread, so every
/// connection lives on one thread and needs no locks.

#include <csignal>
#include <functional>
#include <memory>
#include <vector>

#include "plexus/net/task.hpp"

namespace plexus::net {

class Runtime {
  public:
    /// `threads` io_contexts (0 = one per core).
    explicit Runtime(std::size_t threads = 0);
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    std::size_t size() const noexcept;
    /// The executor of io_context `i` (0 ≤ i < size()).
    Executor executor(std::size_t i) const;
    boost::asio::io_context& context(std::size_t i) const;

    /// Calls `fn(signal_number)` on io_context 0's thread each time one of `signals` arrives.
    /// Must be called before `run()`.
    void on_signals(std::vector<int> signals, std::function<void(int)> fn);

    /// Runs every io_context (context 0 on the calling thread) until `stop()`. Thread-safe to call
    /// `stop()` from any thread or handler.
    void run();
    /// Stops every io_context; `run()` returns once their threads have exited and every job its
    /// tasks offloaded (net::offload) has finished, so what those jobs use may be destroyed then.
    void stop();

  private:
    void wait_for_offloads() const;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::net
