#pragma once
// Per-io_context deadline enforcement for sockets. Instead of arming a timer per request, each
// connection publishes a deadline; one timer per io_context wakes every kTick and closes the
// sockets whose deadline has passed (their pending operations then fail with
// operation_aborted and the owner sees `expired`). Publishing a deadline is a store.

#include <chrono>

#include "asio.hpp"

namespace plexus::net {

class Sweeper;

/// A deadline for one socket; register it with Sweeper::add, remove before the socket dies.
struct Deadline {
    std::chrono::steady_clock::time_point at = std::chrono::steady_clock::time_point::max();
    Socket* socket = nullptr;
    bool expired = false;
    Deadline* prev = nullptr;
    Deadline* next = nullptr;
    Sweeper* owner = nullptr;

    void set(std::chrono::steady_clock::time_point t) noexcept { at = t; }
    void set_after(std::chrono::milliseconds d) noexcept { at = std::chrono::steady_clock::now() + d; }
    void clear() noexcept { at = std::chrono::steady_clock::time_point::max(); }
};

class Sweeper : public asio::execution_context::service {
  public:
    using key_type = Sweeper;
    static inline asio::execution_context::id id;
    static constexpr std::chrono::milliseconds kTick{20};

    explicit Sweeper(asio::execution_context& ctx);
    static Sweeper& of(const Executor& ex);

    void add(Deadline& d);
    void remove(Deadline& d) noexcept;

  private:
    void shutdown() override;
    void arm();
    void tick();

    asio::io_context& io_;
    std::unique_ptr<asio::steady_timer> timer_;
    Deadline head_;  // sentinel of a circular list
    bool armed_ = false;
    bool stopped_ = false;
};

/// Registers a deadline for the lifetime of a scope.
class DeadlineScope {
  public:
    DeadlineScope(const Executor& ex, Deadline& d, Socket& s) : d_(d) {
        d_.socket = &s;
        d_.expired = false;
        Sweeper::of(ex).add(d_);
    }
    ~DeadlineScope() {
        if (d_.owner) d_.owner->remove(d_);
    }
    DeadlineScope(const DeadlineScope&) = delete;
    DeadlineScope& operator=(const DeadlineScope&) = delete;

  private:
    Deadline& d_;
};

}  // namespace plexus::net
