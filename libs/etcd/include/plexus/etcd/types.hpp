#pragma once
/// The values of the etcd v3 API as plain structs: what a call asks for and what it answers.
/// Keys and values are byte strings (any bytes; the client base64-encodes them on the wire);
/// revisions, versions and lease ids are 64-bit integers. Plain data, no I/O: thread-safe as any
/// value type is.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "plexus/core/result.hpp"

namespace plexus::etcd {

/// The response header every answer carries: which cluster and member answered, and the store's
/// revision when it answered.
struct ResponseHeader {
    std::uint64_t cluster_id = 0;
    std::uint64_t member_id = 0;
    std::int64_t revision = 0;  ///< the store's revision when the request was served
    std::uint64_t raft_term = 0;
};

/// One key as stored.
struct KeyValue {
    std::string key;
    std::string value;                 ///< empty for a keys_only range and in DELETE events
    std::int64_t create_revision = 0;  ///< revision of the write that created the key
    std::int64_t mod_revision = 0;     ///< revision of the last write to the key
    std::int64_t version = 0;          ///< writes since creation (1 after the first); 0 once deleted
    std::int64_t lease = 0;            ///< the lease the key is attached to, 0 for none
    friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

/// The end of the range of every key that starts with `prefix`: `prefix` with its last byte that
/// is not 0xff incremented and what follows dropped; "\0" (every key) when there is none.
std::string prefix_end(std::string_view prefix);

/// Reads keys: `key` alone, or the range [key, range_end). See prefix_end() for a prefix and
/// `range_end = std::string(1, '\0')` for every key from `key` on.
struct RangeRequest {
    std::string key;
    std::string range_end;      ///< empty: only `key`
    std::int64_t limit = 0;     ///< at most this many keys (0: no limit); RangeResponse::more says if cut
    std::int64_t revision = 0;  ///< read the store as of this revision (0: the latest)
    bool keys_only = false;     ///< leave values out
    bool count_only = false;    ///< only count the keys (RangeResponse::count), return none
    /// Serve from the answering member's own copy without asking the leader: cheaper, possibly
    /// stale. The default is a linearizable read.
    bool serializable = false;

    /// Every key that starts with `prefix`.
    static RangeRequest with_prefix(std::string prefix) {
        RangeRequest r;
        r.range_end = prefix_end(prefix);
        r.key = std::move(prefix);
        return r;
    }
};

struct RangeResponse {
    ResponseHeader header;
    std::vector<KeyValue> kvs;  ///< in key order
    bool more = false;          ///< the limit cut the answer short
    std::int64_t count = 0;     ///< keys in the whole range (not only those returned)
};

/// Writes `value` at `key`.
struct PutRequest {
    std::string key;
    std::string value;
    std::int64_t lease = 0;  ///< attach to this lease (0: none); the key goes when the lease does
    bool prev_kv = false;    ///< return the key as it was before
};

struct PutResponse {
    ResponseHeader header;  ///< header.revision is the revision of this write
    std::optional<KeyValue> prev_kv;
};

/// Deletes `key` alone, or the range [key, range_end).
struct DeleteRequest {
    std::string key;
    std::string range_end;  ///< empty: only `key`
    bool prev_kv = false;   ///< return the deleted keys

    /// Every key that starts with `prefix`.
    static DeleteRequest with_prefix(std::string prefix) {
        DeleteRequest r;
        r.range_end = prefix_end(prefix);
        r.key = std::move(prefix);
        return r;
    }
};

struct DeleteResponse {
    ResponseHeader header;
    std::int64_t deleted = 0;  ///< how many keys were deleted
    std::vector<KeyValue> prev_kvs;
};

/// One condition of a transaction: a property of `key` compared with an operand. A missing key
/// has version, create_revision and mod_revision 0, so `Compare::version(key, equal, 0)` means
/// "does not exist" (how writers create a key only once), and
/// `Compare::mod_revision(key, equal, seen)` means "nobody wrote it since I read it" (compare-and-swap).
struct Compare {
    enum class Target { value, version, create_revision, mod_revision, lease };
    enum class Op { equal, not_equal, greater, less };

    std::string key;
    std::string range_end;  ///< empty: only `key`; otherwise every key of [key, range_end) must match
    Target target = Target::version;
    Op op = Op::equal;
    std::string value;        ///< the operand for Target::value
    std::int64_t number = 0;  ///< the operand for the other targets

    static Compare with_value(std::string key, Op op, std::string value) {
        return {std::move(key), {}, Target::value, op, std::move(value), 0};
    }
    static Compare version(std::string key, Op op, std::int64_t v) {
        return {std::move(key), {}, Target::version, op, {}, v};
    }
    static Compare create_revision(std::string key, Op op, std::int64_t rev) {
        return {std::move(key), {}, Target::create_revision, op, {}, rev};
    }
    static Compare mod_revision(std::string key, Op op, std::int64_t rev) {
        return {std::move(key), {}, Target::mod_revision, op, {}, rev};
    }
    static Compare lease(std::string key, Op op, std::int64_t id) {
        return {std::move(key), {}, Target::lease, op, {}, id};
    }
};

/// One operation of a transaction's success or failure branch.
using TxnOp = std::variant<PutRequest, DeleteRequest, RangeRequest>;
/// The answer to one TxnOp, of the matching alternative.
using TxnOpResponse = std::variant<PutResponse, DeleteResponse, RangeResponse>;

/// If every comparison holds, runs `success`, otherwise `failure`, atomically at one revision.
/// A key may be written at most once per branch (etcd refuses the txn otherwise: errc::rejected).
struct TxnRequest {
    std::vector<Compare> compare;
    std::vector<TxnOp> success;
    std::vector<TxnOp> failure;
};

struct TxnResponse {
    ResponseHeader header;
    bool succeeded = false;                ///< every comparison held (the success branch ran)
    std::vector<TxnOpResponse> responses;  ///< one per op of the branch that ran, in order
};

/// A lease granted: keys attached to it are deleted when it expires or is revoked.
struct Lease {
    ResponseHeader header;
    std::int64_t id = 0;
    std::chrono::seconds ttl{0};  ///< the time to live granted (etcd may raise a small one)
};

/// What a member reports about itself (/v3/maintenance/status).
struct MemberStatus {
    ResponseHeader header;     ///< header.member_id is the answering member's id
    std::string version;       ///< etcd's version, "3.4.23"
    std::uint64_t leader = 0;  ///< member id of the leader as this member knows it (0: none)
    std::int64_t db_size = 0;
    std::uint64_t raft_index = 0;
    std::uint64_t raft_term = 0;
};

/// One change seen by a watch.
struct Event {
    enum class Type { put, del };
    Type type = Type::put;
    /// The key after the change. For a DELETE only key and mod_revision (the deleting revision)
    /// are set.
    KeyValue kv;
    std::optional<KeyValue> prev_kv;  ///< the key before the change, when WatchRequest::prev_kv
};

/// Follows `key` alone, or the range [key, range_end), from `start_revision` on.
struct WatchRequest {
    std::string key;
    std::string range_end;  ///< empty: only `key`
    /// The first revision to report. 0: changes after the store's current revision (fixed when the
    /// first member accepts the watch; resumptions continue from there).
    std::int64_t start_revision = 0;
    bool prev_kv = false;  ///< include each key's previous state in its event

    /// Every key that starts with `prefix`.
    static WatchRequest with_prefix(std::string prefix, std::int64_t start_revision = 0) {
        WatchRequest r;
        r.range_end = prefix_end(prefix);
        r.key = std::move(prefix);
        r.start_revision = start_revision;
        return r;
    }
};

/// The changes of one or more consecutive revisions, in revision order. Events of one revision
/// (one txn) always arrive in the same batch.
struct WatchBatch {
    std::int64_t revision = 0;  ///< the header revision: the store's revision when etcd sent the batch
    std::vector<Event> events;  ///< never empty
    std::size_t member = 0;     ///< index (in Settings::members) of the member that sent it
};

/// How a watch ended.
struct WatchEnd {
    /// Empty when the handler asked to stop. errc::compacted when the revision to continue from was
    /// compacted; errc::watch_canceled when etcd canceled the watch for another reason.
    ErrorCode error;
    /// With errc::compacted: the oldest revision still held. The caller reloads (a range, which
    /// answers with a header revision R) and watches again from R + 1.
    std::int64_t compact_revision = 0;
    /// The revision the watch would have continued from: one past the last event delivered.
    std::int64_t next_revision = 0;
};

}  // namespace plexus::etcd
