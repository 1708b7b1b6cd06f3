#include "plexus/net/runtime.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "asio.hpp"

namespace plexus::net {

namespace {
std::function<void(const char*, std::exception_ptr)>& exception_hook() {
    static std::function<void(const char*, std::exception_ptr)> hook = [](const char* what,
                                                                          std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "plexus: unhandled exception in %s: %s\n", what, ex.what());
        } catch (...) {
            std::fprintf(stderr, "plexus: unhandled exception in %s\n", what);
        }
    };
    return hook;
}

asio::thread_pool& blocking_pool() {
    static asio::thread_pool pool(2);
    return pool;
}

// Offloaded jobs not yet finished, by the io_context whose task awaits each. A Runtime neither
// returns from run() nor destroys its contexts while one of its jobs runs: the job may touch
// what the runtime's owner destroys next (a daemon's catalog), and it posts its completion to
// the context.
class Offloads {
  public:
    void begin(const asio::io_context* ctx) {
        std::lock_guard lock(mutex_);
        ++running_[ctx];
    }
    void end(const asio::io_context* ctx) {
        std::lock_guard lock(mutex_);
        if (--running_[ctx] == 0) {
            running_.erase(ctx);
            idle_.notify_all();
        }
    }
    void wait(const asio::io_context* ctx) {
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [&] { return !running_.contains(ctx); });
    }

  private:
    std::mutex mutex_;
    std::condition_variable idle_;
    std::unordered_map<const asio::io_context*, std::size_t> running_;
};

Offloads& offloads() {
    static Offloads o;
    return o;
}
}  // namespace

void set_unhandled_exception_hook(std::function<void(const char*, std::exception_ptr)> hook) {
    exception_hook() = std::move(hook);
}

void spawn(Executor ex, Task<void> task, const char* what) {
    asio::co_spawn(ex, std::move(task), [what](std::exception_ptr e) {
        if (e) exception_hook()(what, e);
    });
}

Task<void> sleep_for(std::chrono::milliseconds d) {
    Timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(use_task);
}

Task<void> offload_call(std::function<void()> fn) {
    auto ex = co_await asio::this_coro::executor;
    std::exception_ptr error;
    co_await asio::async_initiate<const asio::use_awaitable_t<Executor>, void()>(
        [&](auto handler) {
            const auto* ctx = &ex.context();
            offloads().begin(ctx);
            asio::post(blocking_pool(), [&, ex, ctx, handler = std::move(handler)]() mutable {
                try {
                    fn();
                } catch (...) {
                    error = std::current_exception();
                }
                asio::post(ex, std::move(handler));
                offloads().end(ctx);  // after the post: the context is alive until then
            });
        },
        asio::use_awaitable_t<Executor>{});
    if (error) std::rethrow_exception(error);
}

struct Runtime::Impl {
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<asio::executor_work_guard<Executor>> guards;
    std::unique_ptr<asio::signal_set> signals;
    std::function<void(int)> on_signal;

    void wait_signal() {
        signals->async_wait([this](boost::system::error_code ec, int sig) {
            if (ec) return;
            on_signal(sig);
            wait_signal();
        });
    }
};

Runtime::Runtime(std::size_t threads) : impl_(std::make_unique<Impl>()) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < threads; ++i) {
        // Sockets are only ever touched by their own io_context's thread, so the reactor's
        // per-descriptor locks can go; posting from other threads (offload, Signal) stays safe.
        impl_->contexts.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
        impl_->guards.emplace_back(impl_->contexts.back()->get_executor());
    }
}

Runtime::~Runtime() {
    stop();
    wait_for_offloads();
    // Destroy pending work on each context before the contexts themselves.
    impl_->signals.reset();
    impl_->guards.clear();
    impl_->contexts.clear();
}

std::size_t Runtime::size() const noexcept { return impl_->contexts.size(); }
Executor Runtime::executor(std::size_t i) const { return impl_->contexts.at(i)->get_executor(); }
asio::io_context& Runtime::context(std::size_t i) const { return *impl_->contexts.at(i); }

void Runtime::on_signals(std::vector<int> signals, std::function<void(int)> fn) {
    impl_->signals = std::make_unique<asio::signal_set>(*impl_->contexts[0]);
    for (int s : signals) impl_->signals->add(s);
    impl_->on_signal = std::move(fn);
    impl_->wait_signal();
}

void Runtime::run() {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < impl_->contexts.size(); ++i) {
        threads.emplace_back([ctx = impl_->contexts[i].get()] { ctx->run(); });
    }
    impl_->contexts[0]->run();
    for (auto& t : threads) t.join();
    wait_for_offloads();
}

void Runtime::wait_for_offloads() const {
    for (const auto& ctx : impl_->contexts) offloads().wait(ctx.get());
}

void Runtime::stop() {
    for (auto& ctx : impl_->contexts) ctx->stop();
}

}  // namespace plexus::net
