#include "plexus/net/signal.hpp"

#include <list>
#include <mutex>

#include "asio.hpp"

namespace plexus::net {

namespace {
struct Waiter {
    Executor ex;
    Timer* timer;
    bool notified = false;
};
}  // namespace

struct Signal::Impl {
    mutable std::mutex mutex;
    std::list<std::shared_ptr<Waiter>> waiters;
    std::uint64_t epoch = 0;
};

Signal::Signal() : impl_(std::make_shared<Impl>()) {}
Signal::~Signal() = default;

Task<bool> Signal::wait(std::chrono::milliseconds timeout) { co_return co_await wait(timeout, epoch()); }

Task<bool> Signal::wait(std::chrono::milliseconds timeout, std::uint64_t since) {
    auto ex = co_await asio::this_coro::executor;
    Timer timer(ex, timeout);
    auto w = std::make_shared<Waiter>(Waiter{ex, &timer});
    std::list<std::shared_ptr<Waiter>>::iterator it;
    {
        std::lock_guard lock(impl_->mutex);
        // Checked under the lock notify_all() takes: a notify is either counted here or finds us
        // in the list.
        if (impl_->epoch != since) co_return true;
        it = impl_->waiters.insert(impl_->waiters.end(), w);
    }
    co_await timer.async_wait(use_task);
    {
        std::lock_guard lock(impl_->mutex);
        impl_->waiters.erase(it);
        w->timer = nullptr;
    }
    co_return w->notified;
}

std::uint64_t Signal::epoch() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->epoch;
}

void Signal::notify_all() {
    std::lock_guard lock(impl_->mutex);
    ++impl_->epoch;
    for (auto& w : impl_->waiters) {
        if (w->notified) continue;
        w->notified = true;
        // The timer belongs to the waiter's io_context: cancel it there.
        asio::post(w->ex, [impl = impl_, w] {
            std::lock_guard lock(impl->mutex);
            if (w->timer) w->timer->cancel();
        });
    }
}

std::size_t Signal::waiters() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->waiters.size();
}

}  // namespace plexus::net
