#pragma once
/// Errors of the etcd library: one `etcd::errc` enum and its category, "plexus.etcd". A failed
/// call returns a `plexus::ErrorCode` whose value is an `etcd::errc` and whose `message()` says
/// which member answered and what etcd said, for example
/// `unavailable: member 127.0.0.1:2379: etcdserver: no leader (grpc code 14)`.
///
/// Codes compare equal to their `errc` whatever detail they carry:
///
///     auto r = co_await client.keep_alive_once(lease);
///     if (r.error() == etcd::errc::lease_not_found) { ... }   // expired: grant a new one
///
/// Thread-safe: codes and the category may be created, copied and read from any thread.

#include <string_view>

#include "plexus/core/result.hpp"

namespace plexus::etcd {

/// What went wrong, grouped by what a caller can do about it.
enum class errc {
    /// No member could serve the call before its timeout: every one refused the connection,
    /// dropped it, or answered "unavailable" (no leader, not capable, overloaded).
    unavailable = 1,
    /// The call's time ran out while a member was working on it.
    timeout,
    /// A write was sent but no answer says whether it was applied: the connection broke, the
    /// time ran out, or etcd gave up waiting for consensus ("request timed out", "leader
    /// changed"). It was not repeated; read the key to find out.
    outcome_unknown,
    /// The revision asked for has been compacted away (range or watch). For a watch, the oldest
    /// revision still held is in `WatchEnd::compact_revision`.
    compacted,
    /// The revision asked for is newer than the store's current revision.
    future_revision,
    /// The lease does not exist: never granted, expired or revoked.
    lease_not_found,
    /// etcd refused the request itself (invalid argument, duplicate key in a txn, permission,
    /// request too large); repeating it will not help.
    rejected,
    /// The answer is not what the etcd v3 JSON gateway sends.
    bad_response,
    /// etcd canceled a watch for a reason other than compaction (the reason is in the message).
    watch_canceled,
};

/// The category of `etcd::errc`, named "plexus.etcd"; a process-wide singleton.
const boost::system::error_category& etcd_category() noexcept;

/// An error code of `etcd_category()` without detail.
inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), etcd_category()}; }

/// An error code for `e` whose `message()` is the errc's message followed by `": " + detail`. It
/// compares equal to `make_error_code(e)`. Details are interned for the life of the process (error
/// codes keep a pointer to their category); after 1024 distinct details further ones are dropped
/// and the plain code is returned. Details longer than 512 bytes are cut.
ErrorCode make_error(errc e, std::string_view detail);

/// The detail `make_error` attached to `ec` ("" for none or another category).
std::string_view error_detail(const ErrorCode& ec) noexcept;

}  // namespace plexus::etcd

template <>
struct boost::system::is_error_code_enum<plexus::etcd::errc> : std::true_type {};
