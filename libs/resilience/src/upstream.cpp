#include "plexus/resilience/upstream.hpp"

#include <boost/json/array.hpp>

#include "plexus/core/duration.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::resilience {
namespace {

bool same(const BreakerSettings& a, const BreakerSettings& b) noexcept {
    return a.enabled == b.enabled && a.window == b.window && a.size == b.size &&
           a.minimum_calls == b.minimum_calls && a.failure_rate == b.failure_rate &&
           a.slow_call_rate == b.slow_call_rate && a.slow_call_duration == b.slow_call_duration &&
           a.open_for == b.open_for && a.half_open_calls == b.half_open_calls;
}

bool same(const BulkheadSettings& a, const BulkheadSettings& b) noexcept {
    return a.max_concurrent == b.max_concurrent;
}

bool same(const OutlierSettings& a, const OutlierSettings& b) noexcept {
    return a.enabled == b.enabled && a.consecutive_errors == b.consecutive_errors &&
           a.base_ejection == b.base_ejection && a.max_ejection == b.max_ejection &&
           a.max_ejection_percent == b.max_ejection_percent;
}

bool same(const BudgetSettings& a, const BudgetSettings& b) noexcept {
    return a.ratio == b.ratio && a.min_per_second == b.min_per_second && a.window == b.window;
}

std::string duration_text(std::chrono::milliseconds d) { return core::format_duration(d); }

boost::json::object breaker_settings_json(const BreakerSettings& s) {
    return {
        {"enabled", s.enabled},
        {"window", s.window == WindowType::count ? "count" : "time"},
        {"size", s.size},
        {"minimum_calls", s.minimum_calls},
        {"failure_rate", s.failure_rate},
        {"slow_call_rate", s.slow_call_rate},
        {"slow_call_duration", duration_text(s.slow_call_duration)},
        {"open_for", duration_text(s.open_for)},
        {"half_open_calls", s.half_open_calls},
    };
}

}  // namespace

bool operator==(const UpstreamPolicy& a, const UpstreamPolicy& b) noexcept {
    return same(a.breaker, b.breaker) && same(a.bulkhead, b.bulkhead) && same(a.outlier, b.outlier) &&
           same(a.retry_budget, b.retry_budget);
}

// ---- Metrics ----

Metrics::Metrics(telemetry::Registry& registry)
    : breaker_state(&registry.gauge("plexus_circuit_breaker_state",
                                    "Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 disabled.",
                                    {"breaker"})),
      breaker_transitions(&registry.counter("plexus_circuit_breaker_transitions_total",
                                            "Circuit breaker state changes.", {"breaker", "from", "to"})),
      breaker_not_permitted(&registry.counter("plexus_circuit_breaker_not_permitted_total",
                                              "Calls refused by a circuit breaker.", {"breaker"})),
      retries(&registry.counter("plexus_retries_total", "Retried attempts.", {"upstream"})),
      budget_exhausted(&registry.counter("plexus_retry_budget_exhausted_total",
                                         "Retries not made because the retry budget was spent.",
                                         {"upstream"})),
      bulkhead_rejected(&registry.counter("plexus_bulkhead_rejected_total",
                                          "Calls refused because the bulkhead was full.", {"upstream"})),
      ejections(&registry.counter("plexus_outlier_ejections_total",
                                  "Instances ejected from load balancing by outlier detection.",
                                  {"upstream"})),
      deadline_expired(&registry.counter("plexus_deadline_expired_total",
                                         "Requests whose deadline budget ran out before a call.", {"where"})),
      registry_(&registry),
      expired_inbound_(&deadline_expired->labels({"inbound"})),
      expired_outbound_(&deadline_expired->labels({"outbound"})) {}

void Metrics::count_deadline_expired(bool inbound) noexcept {
    (inbound ? expired_inbound_ : expired_outbound_)->inc();
}

// ---- MeteredBreaker ----

MeteredBreaker::MeteredBreaker(std::string name, BreakerSettings settings, Metrics& metrics,
                               core::Clock& clock)
    : breaker_(std::move(name), settings, clock),
      not_permitted_(&metrics.breaker_not_permitted->labels({breaker_.name()})) {
    auto* gauge = &metrics.breaker_state->labels({breaker_.name()});
    gauge->set(static_cast<double>(breaker_.state()));
    breaker_.on_transition([gauge, transitions = metrics.breaker_transitions, name = breaker_.name()](
                               BreakerState from, BreakerState to) {
        gauge->set(static_cast<double>(to));
        transitions->labels({name, to_string(from), to_string(to)}).inc();
    });
}

void MeteredBreaker::count_not_permitted() noexcept { not_permitted_->inc(); }

boost::json::object MeteredBreaker::to_json() const {
    const auto s = breaker_.stats();
    return {
        {"name", breaker_.name()},
        {"state", to_string(s.state)},
        {"failure_rate", s.failure_rate},
        {"slow_call_rate", s.slow_call_rate},
        {"buffered_calls", s.buffered_calls},
        {"failed_calls", s.failed_calls},
        {"slow_calls", s.slow_calls},
        {"not_permitted", s.not_permitted},
        {"settings", breaker_settings_json(breaker_.settings())},
    };
}

// ---- Upstream ----

Upstream::Upstream(std::string name, UpstreamPolicy policy, Metrics& metrics, core::Clock& clock)
    : name_(std::move(name)),
      policy_(std::move(policy)),
      breaker_(name_, policy_.breaker, metrics, clock),
      bulkhead_(policy_.bulkhead),
      budget_(policy_.retry_budget, clock),
      outlier_(policy_.outlier, clock),
      retries_(&metrics.retries->labels({name_})),
      budget_exhausted_(&metrics.budget_exhausted->labels({name_})),
      bulkhead_rejected_(&metrics.bulkhead_rejected->labels({name_})),
      ejections_(&metrics.ejections->labels({name_})) {}

void Upstream::count_retry() noexcept { retries_->inc(); }
void Upstream::count_budget_exhausted() noexcept { budget_exhausted_->inc(); }
void Upstream::count_bulkhead_rejected() noexcept { bulkhead_rejected_->inc(); }
void Upstream::count_ejection() noexcept { ejections_->inc(); }

boost::json::object Upstream::to_json() const {
    const auto& budget = policy_.retry_budget;
    return {
        {"name", name_},
        {"breaker", breaker_.to_json()},
        {"bulkhead",
         {{"max_concurrent", bulkhead_.settings().max_concurrent},
          {"in_use", bulkhead_.in_use()},
          {"rejected", bulkhead_.rejected()}}},
        {"retry_budget",
         {{"ratio", budget.ratio},
          {"min_per_second", budget.min_per_second},
          {"window", duration_text(budget.window)},
          {"requests", budget_.requests()},
          {"retries", budget_.retries()}}},
        {"outlier", {{"enabled", policy_.outlier.enabled}, {"total_ejections", outlier_.total_ejections()}}},
    };
}

// ---- UpstreamSet ----

UpstreamSet::UpstreamSet(Metrics& metrics, core::Clock& clock) : metrics_(&metrics), clock_(&clock) {}

UpstreamSet::~UpstreamSet() = default;

std::shared_ptr<Upstream> UpstreamSet::get(const std::string& name, const UpstreamPolicy& policy) {
    std::lock_guard lock(mutex_);
    auto it = upstreams_.find(name);
    if (it != upstreams_.end() && it->second->policy() == policy) return it->second;
    auto fresh = std::make_shared<Upstream>(name, policy, *metrics_, *clock_);
    upstreams_.insert_or_assign(name, fresh);
    return fresh;
}

std::shared_ptr<MeteredBreaker> UpstreamSet::breaker(const std::string& name,
                                                     const BreakerSettings& settings) {
    std::lock_guard lock(mutex_);
    auto it = breakers_.find(name);
    if (it != breakers_.end() && same(it->second->get().settings(), settings)) return it->second;
    auto fresh = std::make_shared<MeteredBreaker>(name, settings, *metrics_, *clock_);
    breakers_.insert_or_assign(name, fresh);
    return fresh;
}

std::shared_ptr<Upstream> UpstreamSet::find(std::string_view name) const {
    std::lock_guard lock(mutex_);
    auto it = upstreams_.find(name);
    return it == upstreams_.end() ? nullptr : it->second;
}

boost::json::object UpstreamSet::to_json() const {
    std::lock_guard lock(mutex_);
    boost::json::array upstreams;
    for (const auto& [name, u] : upstreams_) upstreams.push_back(u->to_json());
    boost::json::array breakers;
    for (const auto& [name, b] : breakers_) breakers.push_back(b->to_json());
    return {{"upstreams", std::move(upstreams)}, {"breakers", std::move(breakers)}};
}

}  // namespace plexus::resilience
