#pragma once
/// Client of an etcd v3 cluster (3.4 and later) through its JSON gateway on the members' client
/// URLs: keys (range, put, delete, txn), leases and watches. It is what the registry's catalog
/// and the config server's store use when they run against etcd.
///
/// Members and failover. The client knows every member and sends each call to the one that
/// answered last. A call moves on to the next member when the one it tried refused the
/// connection or answered that it cannot serve now ("no leader", "not capable", "too many
/// requests"); once every member has failed it waits a little (Settings::retry_backoff, doubling
/// up to a second) and goes round again, until the call's timeout. Reads (range, a read-only txn,
/// status, lease keepalive) also move on when a connection breaks or a member fails mid-call.
/// Writes (put, delete, a txn that writes, lease grant and revoke) are never sent twice once a
/// member may have applied them: a write whose connection broke, or that etcd gave up on
/// ("request timed out", "leader changed"), ends with errc::outcome_unknown. Callers that must
/// know write with a txn (compare create_revision or mod_revision) and read back.
///
/// Every request carries gRPC metadata `hasleader: true`, so a member that knows it has no leader
/// refuses a call at once ("no leader") instead of holding it until etcd's own request timeout,
/// and cancels the watches it serves (within about five seconds). Right after a leader dies the
/// other members still believe in it for up to an election timeout; a write sent to one of them
/// then waits for the new leader or ends as errc::outcome_unknown.
///
/// Threading: a Client is cheap to copy (copies share the member list and which member answered
/// last) and may be used from any io_context at the same time; each call runs on the io_context
/// of the task that awaits it and uses its keep-alive pool. The calls copy their arguments and
/// what they need of the client into the task they return, so a task may be kept and awaited
/// later and the Client may be destroyed first.
///
/// Errors: `Result`s and codes of `etcd::errc` (see error.hpp) whose message names the member and
/// quotes etcd.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/result.hpp"
#include "plexus/etcd/error.hpp"
#include "plexus/etcd/types.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/task.hpp"

namespace plexus::etcd {

struct Settings {
    /// The cluster's members (client URLs). At least one.
    std::vector<net::Endpoint> members;
    /// The bound of one call, every member it tries included.
    std::chrono::milliseconds timeout{5000};
    /// The bound of one attempt of a read on one member, so a member that hangs leaves time to
    /// ask another. Writes use the whole remaining time of the call.
    std::chrono::milliseconds read_attempt_timeout{2000};
    /// The first pause after every member failed once; it doubles per round, up to a second.
    std::chrono::milliseconds retry_backoff{50};
    /// A watch stream that brings nothing (no event, no progress notification) for this long is
    /// assumed dead and resumed on the next member. etcd sends a progress notification on idle
    /// watches every 10 minutes by default (`--experimental-watch-progress-notify-interval`), so a
    /// quiet watch is re-established this often: cheap, one request.
    std::chrono::milliseconds watch_idle_timeout{60'000};
};

/// Parses a comma-separated list of member client URLs, "http://127.0.0.1:2379,127.0.0.1:22379"
/// (the scheme is optional; https is not supported). errc::rejected naming the entry that does
/// not parse, or for an empty list.
Result<std::vector<net::Endpoint>> parse_members(std::string_view list);

/// Called with each batch of events a watch delivers, on the watch's io_context thread; must not
/// block. Returning false ends the watch (WatchEnd::error empty).
using WatchHandler = std::function<bool(const WatchBatch& batch)>;

/// Told each time a watch lost its stream and is about to resume (on the thread of the watch):
/// `why` is errc::unavailable naming the member (`member`, an index into Client::members()) and
/// what happened, for logs and metrics. Must not block.
using WatchInterruptionHandler = std::function<void(const ErrorCode& why, std::size_t member)>;

class Client {
  public:
    /// Throws std::invalid_argument when `settings.members` is empty (a startup error).
    explicit Client(Settings settings);
    /// The members as parse_members() reads them and default settings otherwise; throws
    /// std::invalid_argument with parse_members()'s message when the list does not parse.
    explicit Client(std::string_view members);

    /// A client sharing this one's members whose calls are bounded by `timeout` instead.
    Client with_timeout(std::chrono::milliseconds timeout) const;

    const std::vector<net::Endpoint>& members() const noexcept;
    /// The index of the member the next call will try first (the one that answered last).
    std::size_t preferred_member() const noexcept;

    // Keys.

    /// Reads a key or a range of keys (linearizable unless `serializable`). errc::compacted or
    /// errc::future_revision when `revision` is out of the store's window.
    net::Task<Result<RangeResponse>> range(RangeRequest request) const;
    /// One key, or nullopt when it does not exist.
    net::Task<Result<std::optional<KeyValue>>> get(std::string key) const;
    /// Writes a key. errc::lease_not_found when `lease` does not exist.
    net::Task<Result<PutResponse>> put(PutRequest request) const;
    /// Writes `key` = `value` (attached to `lease` unless 0).
    net::Task<Result<PutResponse>> put(std::string key, std::string value, std::int64_t lease = 0) const;
    /// Deletes a key or a range of keys.
    net::Task<Result<DeleteResponse>> delete_range(DeleteRequest request) const;
    /// Runs a transaction: the comparisons, then the success or the failure ops, at one revision.
    /// The way to compare-and-swap: compare the mod_revision read earlier, put on success.
    net::Task<Result<TxnResponse>> txn(TxnRequest request) const;

    // Leases.

    /// Grants a lease of `ttl` (etcd raises very short TTLs to its minimum).
    net::Task<Result<Lease>> lease_grant(std::chrono::seconds ttl) const;
    /// Refreshes a lease once; Lease::ttl is the time it has again. errc::lease_not_found when it
    /// expired or was revoked.
    net::Task<Result<Lease>> lease_keep_alive_once(std::int64_t id) const;
    /// Revokes a lease and deletes the keys attached to it. errc::lease_not_found when it does not
    /// exist.
    net::Task<ErrorCode> lease_revoke(std::int64_t id) const;

    // Cluster.

    /// What member `member` (an index into members()) says about itself; that member only, no
    /// failover. Throws std::out_of_range for an index past members() (a programming error).
    net::Task<Result<MemberStatus>> status(std::size_t member) const;

    // Watch.

    /// Follows the keys of `request` and calls `on_batch` with every batch of changes, in revision
    /// order, each event exactly once. Runs until `on_batch` returns false, etcd cancels the
    /// watch, or its io_context stops (the task is then abandoned with it). An exception thrown by
    /// `on_batch` ends the watch and comes out of the task.
    ///
    /// A broken stream, a member that goes away or stops answering (watch_idle_timeout), or one
    /// that loses its leader, does not end it: it resumes on the next member (the same backoff as
    /// calls when every member fails) from one past the last revision delivered, so nothing is lost
    /// or repeated; `on_interrupted`, when given, is told each time. It ends with errc::compacted
    /// when that revision (or the start revision) has been compacted, giving
    /// WatchEnd::compact_revision; with errc::watch_canceled when etcd cancels it for another
    /// reason.
    ///
    /// Each watch has a connection of its own (net::stream), not one of the keep-alive pool.
    net::Task<WatchEnd> watch(WatchRequest request, WatchHandler on_batch,
                              WatchInterruptionHandler on_interrupted = {}) const;

    struct State;

  private:
    Client(std::shared_ptr<State> state, std::chrono::milliseconds timeout);
    std::shared_ptr<State> state_;
    std::chrono::milliseconds timeout_;
};

}  // namespace plexus::etcd
