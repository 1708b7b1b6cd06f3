#pragma once
// `plexus gateway`: the edge server as a daemon.

#include <string>

namespace plexus::cli {

struct GatewayDaemonSettings {
    std::string listen = "127.0.0.1:8080";
    std::string registry;  ///< http://host:port; empty when every route has static upstreams
    std::string routes_file;
    bool trust_forwarded_for = false;
    std::size_t threads = 0;
};

/// Runs until SIGTERM/SIGINT (SIGHUP reloads the routes); returns the exit code.
int run_gateway(const GatewayDaemonSettings& settings);

}  // namespace plexus::cli
