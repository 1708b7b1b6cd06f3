#include <utility>

#include "plexus/resilience/retry.hpp"
#include "service_state.hpp"

namespace plexus::detail {

namespace {
bool same_fault(const resilience::FaultSettings& a, const resilience::FaultSettings& b) {
    return a.delay_percent == b.delay_percent && a.delay == b.delay && a.abort_percent == b.abort_percent &&
           a.abort_status == b.abort_status;
}
}  // namespace

std::function<void()> read_clients(const std::shared_ptr<ServiceState>& state, core::SettingsReader& r) {
    auto& st = *state;
    using Policies = std::pair<resilience::CallPolicy, resilience::UpstreamPolicy>;
    std::map<std::string, Policies> read;
    std::lock_guard lock(st.clients_mutex);
    r.each_entry("clients", [&](const std::string& name, core::SettingsReader& c) {
        if (c.describing()) {
            Policies any;
            resilience::read_policy(c, any.first, any.second);
            return;
        }
        auto it = st.clients.find(name);
        if (it == st.clients.end()) c.fail("", "this service has no client for '" + name + "'");
        Policies p{it->second->code_call, it->second->code_upstream};
        resilience::read_policy(c, p.first, p.second);
        if (auto bad = resilience::check(p.first)) c.fail("", *bad);
        if (auto bad = resilience::check(p.second)) c.fail("", *bad);
        read[name] = std::move(p);
    });
    return [state, read = std::move(read)] {
        auto& st = *state;
        std::lock_guard lock(st.clients_mutex);
        for (auto& [name, cs] : st.clients) {
            auto it = read.find(name);
            auto fault_before = cs->call.fault;
            cs->call = it != read.end() ? it->second.first : cs->code_call;
            cs->upstream = it != read.end() ? it->second.second : cs->code_upstream;
            if (!st.running) continue;
            // A fault injected through /-/faults stays, unless the settings change the fault.
            auto live = cs->live.load();
            bool keep = live && same_fault(fault_before, cs->call.fault);
            st.put_in_force(name, *cs, keep ? &live->call.fault : nullptr);
        }
    };
}

}  // namespace plexus::detail
