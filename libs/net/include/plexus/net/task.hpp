#pragma once
/// The coroutine type of Plexus. Every function that does I/O returns `Task<T>`, a C++20
/// coroutine bound to the concrete executor of one `io_context` (one per core), so no type-erased
/// executor is copied on the request path. A Task runs on the thread of the io_context that
/// spawned it and stays there unless it explicitly offloads work.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <type_traits>

namespace plexus::net {

/// The executor of one io_context.
using Executor = boost::asio::io_context::executor_type;

/// A coroutine returning T, run by an io_context.
template <class T>
using Task = boost::asio::awaitable<T, Executor>;

/// Starts `task` on `ex` without waiting for it. An exception escaping the task is reported to
/// the unhandled-exception hook (default: one line on stderr) naming `what`; it never vanishes.
void spawn(Executor ex, Task<void> task, const char* what);

/// Replaces the hook told about exceptions escaping spawned tasks. Call at startup only.
void set_unhandled_exception_hook(std::function<void(const char* what, std::exception_ptr)> hook);

/// Suspends the calling task for `d` (timer on its own executor). Cancelled by executor stop.
Task<void> sleep_for(std::chrono::milliseconds d);

/// Runs blocking work (SQLite, fsync, file reads) on a small process-wide pool and resumes the
/// calling task on its own executor when it is done. Exceptions thrown by `fn` are rethrown.
Task<void> offload_call(std::function<void()> fn);

namespace detail {
template <class R>
Task<R> offload_result(std::function<R()> fn) {
    std::optional<R> out;
    std::function<void()> call = [&] { out.emplace(fn()); };
    co_await offload_call(call);
    co_return std::move(*out);
}
}  // namespace detail

/// `offload_call` for any callable, returning its value: `co_await offload([&] { ... })`.
/// The callable is moved into the blocking pool's job before the caller suspends.
template <class F>
Task<std::invoke_result_t<F&>> offload(F&& fn) {
    using R = std::invoke_result_t<F&>;
    if constexpr (std::is_void_v<R>) {
        return offload_call(std::function<void()>(std::move(fn)));
    } else {
        return detail::offload_result<R>(std::function<R()>(std::move(fn)));
    }
}


}  // namespace plexus::net
