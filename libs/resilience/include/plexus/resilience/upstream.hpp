#pragma once
/// The resilience state shared by every call to one upstream — its circuit breaker, bulkhead,
/// retry budget and outlier detector — with their metrics, and the set of a process's upstreams
/// (shown on its admin endpoint).
///
///     resilience::Metrics metrics(registry);
///     resilience::UpstreamSet upstreams(metrics);
///     auto inv = upstreams.get("inventory", policy);    // created once, then shared
///     if (!inv->breaker().try_acquire()) { inv->count_not_permitted(); ... }
///
/// Metrics (label `upstream` or `breaker`):
///   plexus_circuit_breaker_state (0 closed, 1 open, 2 half-open, 3 disabled)
///   plexus_circuit_breaker_transitions_total{breaker,from,to}
///   plexus_circuit_breaker_not_permitted_total
///   plexus_retries_total, plexus_retry_budget_exhausted_total
///   plexus_bulkhead_rejected_total, plexus_outlier_ejections_total
///   plexus_deadline_expired_total{where="inbound"|"outbound"}

#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "plexus/core/clock.hpp"
#include "plexus/resilience/breaker.hpp"
#include "plexus/resilience/bulkhead.hpp"
#include "plexus/resilience/outlier.hpp"
#include "plexus/resilience/retry.hpp"
#include "plexus/resilience/settings.hpp"

namespace plexus::telemetry {
class Registry;
class Counter;
class Gauge;
class CounterFamily;
class GaugeFamily;
}  // namespace plexus::telemetry

namespace plexus::resilience {

/// The metric families, registered once per process registry.
class Metrics {
  public:
    explicit Metrics(telemetry::Registry& registry);
    telemetry::Registry& registry() const noexcept { return *registry_; }

    telemetry::GaugeFamily* breaker_state;
    telemetry::CounterFamily* breaker_transitions;
    telemetry::CounterFamily* breaker_not_permitted;
    telemetry::CounterFamily* retries;
    telemetry::CounterFamily* budget_exhausted;
    telemetry::CounterFamily* bulkhead_rejected;
    telemetry::CounterFamily* ejections;
    telemetry::CounterFamily* deadline_expired;

    /// Counts a request that arrived with an expired budget (inbound) or whose budget ran out
    /// before an outbound call could be made (outbound).
    void count_deadline_expired(bool inbound) noexcept;

  private:
    telemetry::Registry* registry_;
    telemetry::Counter* expired_inbound_;
    telemetry::Counter* expired_outbound_;
};

/// A breaker wired to the metrics: its state gauge and transition counters follow it.
class MeteredBreaker {
  public:
    MeteredBreaker(std::string name, BreakerSettings settings, Metrics& metrics, core::Clock& clock);
    CircuitBreaker& get() noexcept { return breaker_; }
    /// Counts a call the breaker refused.
    void count_not_permitted() noexcept;
    boost::json::object to_json() const;

  private:
    CircuitBreaker breaker_;
    telemetry::Counter* not_permitted_;
};

class Upstream {
  public:
    Upstream(std::string name, UpstreamPolicy policy, Metrics& metrics, core::Clock& clock = core::Clock::real());

    const std::string& name() const noexcept { return name_; }
    const UpstreamPolicy& policy() const noexcept { return policy_; }
    CircuitBreaker& breaker() noexcept { return breaker_.get(); }
    Bulkhead& bulkhead() noexcept { return bulkhead_; }
    RetryBudget& budget() noexcept { return budget_; }
    OutlierDetector& outlier() noexcept { return outlier_; }

    void count_not_permitted() noexcept { breaker_.count_not_permitted(); }
    void count_retry() noexcept;
    void count_budget_exhausted() noexcept;
    void count_bulkhead_rejected() noexcept;
    void count_ejection() noexcept;

    /// {"name", "breaker": {...}, "bulkhead": {...}, "retry_budget": {...}, "outlier": {...}}
    boost::json::object to_json() const;

  private:
    std::string name_;
    UpstreamPolicy policy_;
    MeteredBreaker breaker_;
    Bulkhead bulkhead_;
    RetryBudget budget_;
    OutlierDetector outlier_;
    telemetry::Counter* retries_;
    telemetry::Counter* budget_exhausted_;
    telemetry::Counter* bulkhead_rejected_;
    telemetry::Counter* ejections_;
};

/// A process's upstreams and extra (per-route) breakers by name. Entries live as long as the
/// set: a reload that changes an upstream's policy replaces the entry only when the policy
/// differs (its state then starts afresh). Thread-safe; lookups take a mutex, so callers keep
/// the reference they got (e.g. in a compiled route table) instead of looking up per request.
class UpstreamSet {
  public:
    explicit UpstreamSet(Metrics& metrics, core::Clock& clock = core::Clock::real());
    ~UpstreamSet();

    /// The upstream called `name`, created with `policy` if new (or if its policy changed).
    std::shared_ptr<Upstream> get(const std::string& name, const UpstreamPolicy& policy);
    /// A standalone breaker called `name` (e.g. one route's), created if new or changed.
    std::shared_ptr<MeteredBreaker> breaker(const std::string& name, const BreakerSettings& settings);
    /// The upstream called `name` if it exists.
    std::shared_ptr<Upstream> find(std::string_view name) const;

    /// {"upstreams": [...], "breakers": [...]} sorted by name.
    boost::json::object to_json() const;
    Metrics& metrics() const noexcept { return *metrics_; }

  private:
    Metrics* metrics_;
    core::Clock* clock_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Upstream>, std::less<>> upstreams_;
    std::map<std::string, std::shared_ptr<MeteredBreaker>, std::less<>> breakers_;
};

}  // namespace plexus::resilience
