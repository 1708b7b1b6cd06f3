#pragma once
/// The endpoints every daemon serves for its supervisor and for Prometheus: `GET /health/live`
/// (the process answers), `GET /health/ready` (it can serve: 200, or 503 while `ready` says no)
/// and `GET /metrics` (the registry in Prometheus text format 0.0.4).

#include <functional>
#include <memory>
#include <string_view>

#include "plexus/net/client.hpp"
#include "plexus/net/router.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::serving {

/// Adds the three routes to `router`. `metrics` must outlive the router's use; `ready`, when
/// given, is called at every readiness probe (keep it quick and non-blocking).
void add_probe_routes(net::Router& router, telemetry::Registry& metrics, std::function<bool()> ready = {});

/// A daemon's listener: `router` served on `at`, started; null after logging "cannot listen"
/// with `listen` (the flag as given) and the reason. `router` must outlive the server.
std::unique_ptr<net::Server> start_listener(net::Runtime& runtime, const net::Endpoint& at,
                                            net::Router& router, std::string_view listen);

}  // namespace plexus::serving
