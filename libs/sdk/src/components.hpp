#pragma once
// The order a service's components start in, and stopping them, for Service::run.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "plexus/service.hpp"

namespace plexus::detail {

/// The components in an order that starts each after its dependencies (otherwise as added), or
/// why there is none (a duplicate name, a missing dependency, a cycle).
std::variant<std::vector<std::shared_ptr<Component>>, std::string> start_order(
    const std::vector<std::shared_ptr<Component>>& added);

/// Stops `started` last first; an exception is logged and the others still stop.
Task<void> stop_components(std::vector<std::shared_ptr<Component>> started);

}  // namespace plexus::detail
