#pragma once
// Asio types as the net library uses them: concrete io_context executors everywhere.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "plexus/net/task.hpp"

namespace plexus::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;
using Resolver = asio::ip::basic_resolver<tcp, Executor>;

/// Completion token: resume the task with (error_code, results...) instead of throwing.
inline constexpr auto use_task = asio::as_tuple(asio::use_awaitable_t<Executor>{});
inline constexpr asio::use_awaitable_t<Executor> use_task_throw{};

}  // namespace plexus::net
