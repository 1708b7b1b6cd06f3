#pragma once
/// The registry's catalog: which instances of which services exist, whether they are healthy,
/// and a monotonically increasing index that blocking watches compare against.
///
/// Instances that miss their TTL are removed by `reap()`. Every mutation that matters after a
/// restart (register, deregister, draining) is written to SQLite before it is applied and
/// acknowledged; heartbeats and health status live in memory only, so restored instances must
/// heartbeat again within their TTL and start "passing" until checked again.
///
/// Writes go through one queue: `queue_register()` and friends only enqueue (never block, any
/// thread), and `write_pending()` (blocking: the blocking pool) writes everything queued in one
/// transaction, then applies it in memory and completes each PendingWrite. Only one writer runs at
/// a time; whoever calls write_pending() while another runs waits for it and then finds its own
/// write done. No disk work ever happens under the lock that heartbeats, reads and status changes
/// take, so a slow commit or a WAL checkpoint delays registrations only.
///
/// Answers to GET /v1/services/{service} are serialised once per service index and shared: each
/// instance's JSON is kept from the moment it changes, a full answer is those pieces joined (once,
/// by the first reader of that index), and a delta answer (`changes_since()`) lists only the
/// instances that changed after a given index.
///
/// Thread-safe. The lock is held for in-memory work only (microseconds; a full answer's pieces
/// are collected under it, joined outside).
///
/// Shared catalogs. With a SharedStore (etcd, see etcd_catalog.hpp) instead of a database, the
/// store is the authority and several registries share it: this catalog is a copy the store keeps
/// up to date (replace_all(), apply()), indexes are the store's revisions (so they mean the same
/// on every registry sharing it), registrations, draining, deregistrations and status changes are
/// written to the store and answered once this copy has applied them, and an instance's TTL is a
/// lease in the store that heartbeats keep alive (leases_due()): the lease running out removes the
/// instance for every registry, so reap() has nothing to do.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/core/result.hpp"
#include "plexus/discovery/registry_client.hpp"

namespace plexus::store {
class Database;
}

namespace plexus::registry {

struct CatalogLimits {
    std::chrono::milliseconds min_ttl{1000};
    std::chrono::milliseconds max_ttl{600'000};
    std::size_t max_metadata_bytes = 4096;
    std::size_t max_tags = 32;
    /// How many changes per service are remembered for delta answers; a watcher further behind
    /// gets the full list.
    std::size_t change_log = 4096;
};

/// A service as listed by `services()`.
struct ServiceSummary {
    std::string name;
    std::size_t instances = 0;
    std::size_t healthy = 0;  ///< in discovery: "passing" or "warning", and not draining
    std::uint64_t index = 0;
};

/// An instance whose registration declares an active health check, as `check_targets()` lists it.
struct CheckTarget {
    discovery::InstanceInfo instance;  ///< `instance.check` is set
    /// Tells registrations apart: every register_instance() (and every restored instance) gets a
    /// new number, so a re-registration is seen even when its fields did not change.
    std::uint64_t registration = 0;
};

/// One answer to GET /v1/services/{service}: the JSON body and the index it carries. Immutable;
/// shared by every request that gets the same answer.
struct Answer {
    std::uint64_t index = 0;
    std::string body;
    bool delta = false;  ///< a delta answer (changed and removed instances), not the full list
};
using AnswerPtr = std::shared_ptr<const Answer>;

/// A queued durable change (see Catalog::queue_register). Its result is set by the writer;
/// read it after write_pending() returned (or done() is true).
class PendingWrite {
  public:
    bool done() const;
    /// The index after the change, or: core::errc::not_found (deregister/draining of an unknown
    /// instance), the store's error when the write failed (problem() says so).
    Result<std::uint64_t> result() const;
    /// For a person: why the write failed; empty on success.
    std::string problem() const;

  private:
    friend class Catalog;
    void finish(Result<std::uint64_t> r, std::string problem = {});
    mutable std::mutex mutex_;
    bool done_ = false;
    Result<std::uint64_t> result_{std::uint64_t{0}};
    std::string problem_;
};

class Catalog;

/// One instance as a shared store holds it, or its removal (see Catalog::apply()).
struct StoredInstance {
    std::string service, id;
    std::uint64_t revision = 0;  ///< the store's revision of this change
    /// The instance, or nullopt when it was removed (deregistered, or its lease ran out).
    std::optional<discovery::InstanceInfo> instance;
    /// instance_to_json(*instance): the value as stored, kept as the catalog's piece of answers.
    std::shared_ptr<const std::string> json;
    std::int64_t lease = 0;  ///< the lease that keeps it; a new lease is a new registration
};

/// The store of a catalog that several registries share (etcd: etcd_catalog.hpp).
class SharedStore {
  public:
    virtual ~SharedStore() = default;

    /// A durable change, as the catalog decided it under its lock.
    struct Write {
        enum class Kind { upsert, remove, drain } kind = Kind::upsert;
        /// upsert: the registration; remove and drain: service and id only (the store reads the
        /// instance as it is there).
        discovery::InstanceInfo instance;
    };
    /// The revision a write took effect at; core::errc::not_found when the instance (remove,
    /// drain) was gone; another error with the problem for a person.
    struct Written {
        Result<std::uint64_t> revision{std::uint64_t{0}};
        std::string problem;
    };

    /// Reads the whole catalog into `catalog` (Catalog::replace_all) and then keeps it up to date
    /// (Catalog::apply, in revision order; again replace_all when the store cannot say what
    /// changed) and keeps the leases of instances that heartbeat alive (Catalog::leases_due)
    /// until stop(). Blocking (the first read). Throws std::runtime_error when the store cannot
    /// be read.
    virtual void start(Catalog& catalog) = 0;
    /// Stops touching the catalog; on return nothing the store started calls into it any more.
    virtual void stop() = 0;
    /// Writes `writes` (each on another instance). Blocking; bounded by the store's timeout. One
    /// answer per write, in order.
    virtual std::vector<Written> write(const std::vector<Write>& writes) = 0;
    /// Sets an instance's status if it is still the registration of `lease`. Never blocks: the
    /// write happens in the background and shows when the store tells the catalog (a failure is
    /// logged; the next check tries again).
    virtual void write_status(std::string service, std::string id, std::string status,
                              std::int64_t lease) = 0;
    /// How long write() may take at most (the catalog waits that long for its copy to catch up).
    virtual std::chrono::milliseconds timeout() const = 0;
};

class Catalog {
  public:
    /// `db` may be null (nothing persisted). With a database, the stored catalog is loaded and
    /// every restored instance gets a fresh TTL from `clock.now()`; the index starts past every
    /// index handed out before (see kRestartGap). Throws std::runtime_error if the database
    /// cannot be read or migrated.
    Catalog(core::Clock& clock, CatalogLimits limits, std::unique_ptr<store::Database> db = nullptr);
    /// A catalog shared through `store` (see "Shared catalogs" above): reads it (blocking) and
    /// follows it. Throws std::runtime_error when the store cannot be read.
    Catalog(core::Clock& clock, CatalogLimits limits, std::unique_ptr<SharedStore> store);
    /// Stops the shared store first: nothing it started reaches the catalog afterwards.
    ~Catalog();
    Catalog(const Catalog&) = delete;
    Catalog& operator=(const Catalog&) = delete;

    /// The stored index lags the live one by the changes since the last write (status changes are
    /// not written each); a restart adds this much so that no index is ever handed out twice.
    static constexpr std::uint64_t kRestartGap = 1u << 20;

    /// Checks an instance for registration; an error message for a person, or empty if valid.
    std::string validate(const discovery::InstanceInfo& instance) const;

    /// Queues adding or replacing an instance (its draining flag off; with a check it starts
    /// "passing"). Never blocks. Invalid instances are refused at once (the PendingWrite is done,
    /// core::errc::invalid_argument, problem() from validate()).
    std::shared_ptr<PendingWrite> queue_register(discovery::InstanceInfo instance);
    /// Queues a deregistration (core::errc::not_found if unknown when written). Never blocks.
    std::shared_ptr<PendingWrite> queue_deregister(std::string service, std::string id);
    /// Queues marking an instance draining (already draining: done with the current index, no
    /// change). Never blocks.
    std::shared_ptr<PendingWrite> queue_draining(std::string service, std::string id);
    /// Writes every queued change in one transaction, then applies them and announces them.
    /// Blocking (disk): call it on the blocking pool. On return, every write queued before the
    /// call is done. Thread-safe; one writer at a time.
    void write_pending();

    /// queue_register() + write_pending(): blocking. Returns the new index, or an error if the
    /// instance is invalid (see validate()) or could not be persisted.
    Result<std::uint64_t> register_instance(discovery::InstanceInfo instance, std::string* problem = nullptr);
    /// queue_deregister() + write_pending(): blocking.
    Result<std::uint64_t> deregister(const std::string& service, const std::string& id);
    /// queue_draining() + write_pending(): blocking.
    Result<std::uint64_t> set_draining(const std::string& service, const std::string& id);

    /// Renews the TTL; core::errc::not_found if unknown. Memory only: never blocks.
    Result<void> heartbeat(const std::string& service, const std::string& id);
    /// Removes every instance whose TTL has passed; returns how many. Blocking (it deletes them
    /// from the database, in turn with write_pending(), and writes the index): the blocking pool.
    std::size_t reap();
    /// Sets an instance's status ("passing", "warning" or "critical"). With `registration` other
    /// than 0, only if the instance is still that registration (see CheckTarget). Returns whether
    /// the status changed; a change bumps the service's index and is announced like any other.
    /// Memory only, never blocks (the status is not persisted; the index is, by the next write or
    /// reap). Errors: core::errc::not_found if the instance (or that registration) is gone,
    /// core::errc::invalid_argument for another status.
    Result<bool> set_status(const std::string& service, const std::string& id, const std::string& status,
                            std::uint64_t registration = 0);

    /// The service's instances and its index (the global index if the service was never seen).
    /// Without `all`, only the instances in discovery: "passing" or "warning", and not draining.
    discovery::ServiceSnapshot snapshot(const std::string& service, bool all) const;
    /// The answer to GET /v1/services/{service}[?all=true] at the current index:
    /// {"service":..., "instances":[...], "index":N}. Built once per index and shared.
    AnswerPtr answer(const std::string& service, bool all) const;
    /// What changed after index `since`: {"service":..., "since":S, "changed":[...],
    /// "removed":["id",...], "index":N} where `changed` holds the instances (listed ones without
    /// `all`) that were added or changed, and `removed` the ids that left (or left discovery).
    /// Applied to the answer the caller had at `since`, it gives the answer at N. When the
    /// changes after `since` are no longer remembered (see CatalogLimits::change_log; a restart
    /// forgets them all) or `since` is not an index of this service, the full answer instead.
    AnswerPtr changes_since(const std::string& service, bool all, std::uint64_t since) const;
    std::uint64_t service_index(const std::string& service) const;
    std::vector<ServiceSummary> services() const;
    std::uint64_t index() const;
    /// The service's instances that declare a health check (draining ones included).
    std::vector<CheckTarget> check_targets(const std::string& service) const;

    // For a SharedStore (see "Shared catalogs"); called from the store's own thread.

    /// The store's whole catalog at `revision` replaces this one's: every service's index becomes
    /// `revision` (a watcher cannot tell what changed in between), its changes are forgotten.
    void replace_all(std::uint64_t revision, std::vector<StoredInstance> instances);
    /// Applies the store's changes, in revision order (each past the last applied).
    void apply(std::vector<StoredInstance> changes);
    /// The leases of instances that had a heartbeat since their lease was last renewed, at least
    /// a quarter of their TTL ago: the store renews them now. Marks them renewed.
    std::vector<std::int64_t> leases_due();
    /// Shared catalogs: stops following the store, so the catalog no longer changes by itself
    /// (listeners are called no more unless a caller changes it). Call it before destroying what
    /// listens to the catalog. Idempotent; the destructor calls it.
    void stop_following();

    /// Adds a listener, called (outside the lock, on the thread that made the change) with the
    /// service's name after each change. Listeners are never removed: each must stay valid as
    /// long as the catalog changes.
    void on_change(std::function<void(const std::string&)> fn);

  private:
    struct Entry {
        discovery::InstanceInfo info;
        std::shared_ptr<const std::string> json;  // instance_to_json(info)
        core::SteadyTime expires;
        std::uint64_t registration = 0;
        // Shared catalogs: the lease, whether a heartbeat came since it was last renewed, when.
        std::int64_t lease = 0;
        bool beat = false;
        core::SteadyTime renewed{};
        // A status written to the store and not yet back, and since when: asked again only after
        // kStatusRetry (so one change is made, and counted, once).
        std::string pending_status;
        core::SteadyTime pending_since{};
    };
    struct Change {
        std::uint64_t index;
        std::string id;
    };
    struct ServiceState {
        std::map<std::string, Entry> instances;
        std::uint64_t index = 0;
        // Every change with an index above `floor` is in `log`, oldest first.
        std::uint64_t floor = 0;
        std::deque<Change> log;
        std::size_t checked = 0;                                             // instances with a check
        mutable AnswerPtr full[2];                                           // by `all`, for `index`
        mutable std::map<std::pair<std::uint64_t, bool>, AnswerPtr> deltas;  // by (since, all)
    };
    struct Op;

    // With mutex_ held:
    std::uint64_t bump(ServiceState& s, const std::vector<std::string>& ids);
    // Shared catalogs: records a change at the store's revision `index`.
    void bump_to(ServiceState& s, std::uint64_t index, const std::string& id);
    Entry& put(ServiceState& s, discovery::InstanceInfo in, std::shared_ptr<const std::string> json,
               core::SteadyTime expires);
    void erase(ServiceState& s, std::map<std::string, Entry>::iterator it);
    ServiceState& state(const std::string& service);

    std::shared_ptr<PendingWrite> enqueue(std::shared_ptr<Op> op);
    // Writes what is queued unless `pending` is done already; its result.
    Result<std::uint64_t> written(const std::shared_ptr<PendingWrite>& pending,
                                  std::string* problem = nullptr);
    // With writer_mutex_ held: writes and applies ops that each touch another instance; adds the
    // services changed to `changed`.
    void write_part(const std::vector<std::shared_ptr<Op>>& part, std::vector<std::string>& changed);
    void notify(const std::vector<std::string>& services);
    // Shared catalogs: notify(), then records that the changes up to `applied` were told.
    void announce(const std::vector<std::string>& services, std::uint64_t applied);
    // Shared catalogs: writes a part through the store, waits for this copy to apply it.
    void write_shared(const std::vector<std::shared_ptr<Op>>& part, const std::vector<std::size_t>& writes);

    core::Clock& clock_;
    CatalogLimits limits_;
    std::unique_ptr<store::Database> db_;  // used by the writer only (writer_mutex_)
    std::unique_ptr<SharedStore> shared_;  // instead of db_: a catalog several registries share

    std::mutex writer_mutex_;  // one writer at a time; never taken while mutex_ is held
    std::mutex queue_mutex_;
    std::vector<std::shared_ptr<Op>> queue_;

    mutable std::mutex mutex_;         // the in-memory catalog
    std::condition_variable applied_;  // shared catalogs: announced_ moved (with mutex_)
    std::uint64_t announced_ = 0;      // shared catalogs: changes up to here applied and told
    std::uint64_t index_ = 1;
    std::uint64_t start_index_ = 1;  // index_ when this catalog was made
    bool index_dirty_ = false;       // index_ changed since it was last written
    std::map<std::string, ServiceState> services_;
    std::uint64_t registrations_ = 0;
    std::vector<std::function<void(const std::string&)>> on_change_;
};

}  // namespace plexus::registry
