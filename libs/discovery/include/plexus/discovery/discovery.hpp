#pragma once
/// A local, always-current view of services' healthy instances, fed by blocking watches on the
/// registry (changes arrive as pushes, not by polling), and load-balancing policies over it.
///
///     discovery::Discovery disco(registry_client, executor);
///     auto picked = disco.pick("inventory");           // nullopt: no healthy instance
///     discovery::InFlight guard(picked->state);        // counts an in-flight request
///
/// Thread-safe: snapshots are immutable and swapped atomically; any thread may read them.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plexus/core/snapshot.hpp"
#include "plexus/discovery/registry_client.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/resilience/outlier.hpp"

namespace plexus::discovery {

enum class Policy { round_robin, least_request };
/// "round_robin" or "least_request"; nullopt otherwise.
std::optional<Policy> parse_policy(std::string_view text) noexcept;

/// Per-instance state that survives snapshot swaps: the in-flight count for least_request and
/// the outlier-detection state (consecutive errors, ejection).
struct InstanceState {
    std::atomic<std::int64_t> in_flight{0};
    resilience::HostHealth health;
};

/// An instance in a snapshot.
struct Target {
    InstanceInfo info;
    std::shared_ptr<InstanceState> state;
};

/// An immutable list of a service's healthy instances.
struct InstanceList {
    std::uint64_t index = 0;
    bool loaded = false;  ///< false until the first answer from the registry arrived
    std::vector<Target> targets;
};

/// Counts a request against an instance while it lives (for least_request).
class InFlight {
  public:
    InFlight() = default;
    explicit InFlight(std::shared_ptr<InstanceState> s) : state_(std::move(s)) {
        if (state_) state_->in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    InFlight(InFlight&& o) noexcept : state_(std::move(o.state_)) {}
    InFlight& operator=(InFlight&& o) noexcept {
        release();
        state_ = std::move(o.state_);
        return *this;
    }
    ~InFlight() { release(); }

  private:
    void release() {
        if (state_) state_->in_flight.fetch_sub(1, std::memory_order_relaxed);
        state_.reset();
    }
    std::shared_ptr<InstanceState> state_;
};

/// Chooses among a list's targets. Thread-safe (atomics only).
class Balancer {
  public:
    explicit Balancer(Policy policy = Policy::round_robin) : policy_(policy) {}
    /// The chosen target, skipping the ids in `exclude`; nullptr if none is left. With an
    /// outlier detector, ejected instances are skipped too while any other is eligible.
    const Target* pick(const InstanceList& list, const std::vector<std::string>& exclude = {},
                       const resilience::OutlierDetector* outlier = nullptr);
    Policy policy() const noexcept { return policy_.load(std::memory_order_relaxed); }
    void set_policy(Policy p) noexcept { policy_.store(p, std::memory_order_relaxed); }

  private:
    std::atomic<Policy> policy_;
    std::atomic<std::uint64_t> next_{0};
};

/// The local view of many services.
class Discovery {
  public:
    /// Watches run on `ex` (any io_context of the process).
    Discovery(RegistryClient client, net::Executor ex);
    ~Discovery();
    Discovery(const Discovery&) = delete;
    Discovery& operator=(const Discovery&) = delete;

    /// The current healthy instances of `service`; starts watching it on first use (the first
    /// snapshot then has loaded == false).
    std::shared_ptr<const InstanceList> instances(const std::string& service);
    /// Like instances(), but waits up to `timeout` for the first answer from the registry.
    net::Task<std::shared_ptr<const InstanceList>> ready(const std::string& service,
                                                         std::chrono::milliseconds timeout);
    /// Picks an instance with the service's balancer (policy set by set_policy, default
    /// round_robin). Returns a copy (the target stays valid after later swaps).
    std::optional<Target> pick(const std::string& service, const std::vector<std::string>& exclude = {},
                               const resilience::OutlierDetector* outlier = nullptr);
    /// The service's balancer (lives as long as this Discovery); with instances(), a pick that
    /// copies nothing: the target stays valid while the caller holds the list.
    Balancer& balancer(const std::string& service);
    void set_policy(const std::string& service, Policy policy);
    /// Stops every watch (at shutdown). Idempotent.
    void stop();
    /// Signalled after any snapshot changes.
    net::Signal& changed() noexcept { return *changed_; }

  private:
    struct Entry;
    std::shared_ptr<Entry> entry(const std::string& service);
    static net::Task<void> watch_loop(std::shared_ptr<Entry> entry, RegistryClient client,
                                      std::shared_ptr<std::atomic<bool>> stopped,
                                      std::shared_ptr<net::Signal> changed);

    RegistryClient client_;
    net::Executor ex_;
    using EntryMap = std::map<std::string, std::shared_ptr<Entry>, std::less<>>;
    std::mutex mutex_;  // serialises adding entries; lookups read the snapshot without it
    core::SnapshotCell<EntryMap> entries_;
    std::shared_ptr<std::atomic<bool>> stopped_;
    std::shared_ptr<net::Signal> changed_;
};

}  // namespace plexus::discovery
