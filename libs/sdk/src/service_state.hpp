#pragma once
// What one Service and its Clients share: the state behind plexus/service.hpp, for service.cpp
// and the SDK's other files.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "access.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/snapshot.hpp"
#include "plexus/discovery/discovery.hpp"
#include "plexus/resilience/fault.hpp"
#include "plexus/resilience/upstream.hpp"
#include "plexus/service.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::auth {
class Verifier;
}

namespace plexus::detail {

struct RouteDef {
    std::string method;
    std::string pattern;
    RouteHandler handler;
    std::size_t max_body;
    RouteAccess access{};
};

// What a client's calls use, swapped as one: the call policy and the upstream's guards (breaker,
// bulkhead, outlier detection, retry budget), which a call holds while it runs.
struct InForce {
    resilience::CallPolicy call;
    std::shared_ptr<resilience::Upstream> upstream;
};

// What the copies of one Client share.
struct ClientState {
    std::string service;
    // What code set (set_policy): the settings' `clients.<service>` is laid over it at every change.
    resilience::CallPolicy code_call;
    resilience::UpstreamPolicy code_upstream;
    // Code's, then the settings'; put in force (`live`) when running.
    resilience::CallPolicy call;
    resilience::UpstreamPolicy upstream;
    std::function<Response(const CallFailure&)> fallback;
    core::SnapshotCell<InForce> live;  // what calls use: set at run(), swapped by /-/faults and settings
    ClientCredential credential;       // its token source made at run()
    ClientState() { code_call.timeout = call.timeout = std::chrono::milliseconds(5000); }
};

struct ServiceState {
    std::string name;
    std::string instance_id;
    std::string data_dir;
    std::vector<RouteDef> routes;
    std::function<bool()> readiness;
    std::vector<std::pair<std::string, std::function<bool()>>> readiness_checks;
    std::map<std::string, std::string> metadata;
    std::vector<std::function<void()>> on_start;
    std::vector<std::shared_ptr<Component>> components;  // as added
    std::unique_ptr<discovery::Discovery> discovery;
    std::atomic<bool> ready{false};
    telemetry::Registry* metrics = &telemetry::default_registry();
    telemetry::CounterFamily* requests = nullptr;
    telemetry::HistogramFamily* latency = nullptr;
    telemetry::CounterFamily* client_errors = nullptr;
    std::mutex clients_mutex;  // guards `clients` and `running`; clients may be made at any time
    std::map<std::string, std::shared_ptr<ClientState>, std::less<>> clients;
    bool running = false;  // the clients' policies are in force (set by run())
    std::unique_ptr<resilience::Metrics> resilience_metrics;
    std::unique_ptr<resilience::UpstreamSet> upstreams;
    core::SnapshotCell<resilience::FaultSettings> inbound_fault;
    AccessFlags access;                                   // --identity, --issuer, --audience, --credentials
    std::shared_ptr<auth::Verifier> verifier;             // set at run() when a route requires a credential
    std::vector<std::shared_ptr<SettingsSlot>> settings;  // Service::settings, in order
    std::string settings_error;                           // a bad declaration, reported by run()

    // Puts a client's policies in force; clients_mutex held. An empty string, or the problem.
    std::string activate(const std::string& name, ClientState& cs) {
        auto bad = resilience::check(cs.call);
        if (!bad) bad = resilience::check(cs.upstream);
        if (bad) return *bad;
        if (auto no = cs.credential.activate(access); !no.empty()) return no;
        put_in_force(name, cs);
        return {};
    }

    // Makes calls use the client's policies `call` and `upstream` (with `fault` instead of the
    // policy's when given: one injected through /-/faults); clients_mutex held.
    void put_in_force(const std::string& name, ClientState& cs,
                      const resilience::FaultSettings* fault = nullptr) {
        auto next = std::make_shared<InForce>(InForce{cs.call, upstreams->get(name, cs.upstream)});
        if (fault) next->call.fault = *fault;
        cs.live.store(std::move(next));
    }
};

/// Reads `clients: {<service>: <policy>}` from `r` over the policies set in code (each checked;
/// a client the service does not have is an error); returns what puts them in force, in every
/// client, once everything else of the settings loaded too.
std::function<void()> read_clients(const std::shared_ptr<ServiceState>& state, core::SettingsReader& r);

}  // namespace plexus::detail
