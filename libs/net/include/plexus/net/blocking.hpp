#pragma once
/// Waiting for a Task from a thread that is not an io thread (a control loop, a CLI command, a
/// test): the task runs on its io_context; the caller blocks on a future with a bound.

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <type_traits>

#include "plexus/net/task.hpp"

namespace plexus::net {

/// Runs `task` to completion and hands its value or exception to `promise`.
template <class T>
Task<void> deliver(Task<T> task, std::shared_ptr<std::promise<T>> promise) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(task);
            promise->set_value();
        } else {
            promise->set_value(co_await std::move(task));
        }
    } catch (...) {
        promise->set_exception(std::current_exception());
    }
}

/// Starts `task` on `ex`; the future gets its value or exception.
template <class T>
std::future<T> start(Executor ex, Task<T> task) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    spawn(ex, deliver(std::move(task), std::move(promise)), "blocking call");
    return future;
}

/// Runs `task` on `ex` and waits up to `timeout` for its value: nullopt when it did not finish in
/// time or threw. Must not be called from a thread of `ex`'s io_context (it would wait on itself).
template <class T>
std::optional<T> run_blocking(Executor ex, Task<T> task, std::chrono::milliseconds timeout) {
    auto future = start(ex, std::move(task));
    if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    try {
        return future.get();
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace plexus::net
