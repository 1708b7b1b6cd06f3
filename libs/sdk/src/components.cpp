#include "components.hpp"

#include <algorithm>
#include <functional>
#include <map>

#include "plexus/telemetry/log.hpp"

namespace plexus::detail {

// The components in an order that starts each after its dependencies (stable: otherwise as
// added), or why there is none.
std::variant<std::vector<std::shared_ptr<Component>>, std::string> start_order(
    const std::vector<std::shared_ptr<Component>>& added) {
    std::map<std::string, std::size_t, std::less<>> index;
    for (std::size_t i = 0; i < added.size(); ++i) {
        if (!index.emplace(added[i]->name(), i).second)
            return "two components are called '" + added[i]->name() + "'";
    }
    std::vector<std::vector<std::string>> deps(added.size());
    for (std::size_t i = 0; i < added.size(); ++i) {
        deps[i] = added[i]->depends_on();
        for (const auto& d : deps[i]) {
            if (!index.count(d))
                return "component '" + added[i]->name() + "' depends on '" + d + "', which was not added";
        }
    }
    enum class Mark { none, visiting, done };
    std::vector<Mark> mark(added.size(), Mark::none);
    std::vector<std::shared_ptr<Component>> order;
    std::vector<std::string> path;
    std::string cycle;
    std::function<bool(std::size_t)> visit = [&](std::size_t i) {
        if (mark[i] == Mark::done) return true;
        path.push_back(added[i]->name());
        if (mark[i] == Mark::visiting) {
            auto from = std::find(path.begin(), path.end(), added[i]->name());
            for (auto it = from; it != path.end(); ++it) cycle += (it == from ? "" : " -> ") + *it;
            return false;
        }
        mark[i] = Mark::visiting;
        for (const auto& d : deps[i]) {
            if (!visit(index.find(d)->second)) return false;
        }
        mark[i] = Mark::done;
        path.pop_back();
        order.push_back(added[i]);
        return true;
    };
    for (std::size_t i = 0; i < added.size(); ++i) {
        if (!visit(i)) return "components depend on each other in a cycle: " + cycle;
    }
    return order;
}

// Stops `started` last first; an exception is logged and the others still stop.
Task<void> stop_components(std::vector<std::shared_ptr<Component>> started) {
    for (auto it = started.rbegin(); it != started.rend(); ++it) {
        std::string error;
        try {
            co_await (*it)->stop();
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (error.empty())
            telemetry::info("component stopped", {{"component", (*it)->name()}});
        else
            telemetry::error("component failed to stop", {{"component", (*it)->name()}, {"error", error}});
    }
}

}  // namespace plexus::detail
