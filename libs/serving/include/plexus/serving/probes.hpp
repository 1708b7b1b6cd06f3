#pragma once
/// The endpoints every daemon serves for its supervisor and for Prometheus: `GET /health/live`
/// (the process answers), `GET /health/ready` (it can serve: 200, or 503 while `ready` says no)
/// and `GET /metrics` (the registry in Prometheus text format 0.0.4).

#include <functional>

#include "plexus/net/router.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::serving {

/// Adds the three routes to `router`. `metrics` must outlive the router's use; `ready`, when
/// given, is called at every readiness probe (keep it quick and non-blocking).
void add_probe_routes(net::Router& router, telemetry::Registry& metrics, std::function<bool()> ready = {});

}  // namespace plexus::serving
