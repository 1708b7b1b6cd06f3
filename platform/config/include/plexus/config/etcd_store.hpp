#pragma once
/// The config store on an etcd cluster, which several config servers share: each serves every
/// change any of them writes.
///
/// Keys, under a prefix P ("/plexus/config/" by default; app and profile names with '%' and '/'
/// percent-encoded):
///
///   P counter                        the last version written (decimal)
///   P records/<app>/<profile>/<inv>  every record, as JSON, <inv> = 19 digits of
///                                    INT64_MAX - version, so a document's records sort newest first
///   P latest/<app>/<profile>         the version of the document's latest record (decimal)
///   P stable/<app>/<profile>         a copy of its latest stable record (what load() reads)
///   P canary/<app>/<profile>         a copy of its pending canary, while there is one
///   P labels/<name>, P schemas/<app> each as JSON
///   P fences/<id>                    written only to settle an append whose outcome etcd left open
///                                    (with a lease of 10 minutes)
///
/// Versions come from the counter, not from etcd's revision: they stay 1, 2, 3... as with SQLite
/// (labels and schemas do not use up versions), and survive a restore into another cluster. An
/// append is one transaction: if `latest/<doc>` is still the version the writer based its change
/// on, the counter is still the value last read, and the append's fence is absent, it writes the
/// record at counter + 1, moves `latest`, `stable`/`canary` and the counter; otherwise it reads
/// both back. A stale `latest` is errc::conflict; a counter another server moved (it wrote
/// another document) is tried again with the next number. So two servers writing at once cannot
/// both win, and versions are unique and strictly increasing in etcd's commit order. The price:
/// every append in the cluster goes through that one counter, so under sustained writes through
/// several servers an append may take a few tries (each a round trip); configuration changes are
/// rare enough for that. A record is written twice in its transaction (record and copy), so a
/// document is bounded by half etcd's request limit (--max-request-bytes, 1.5 MiB by default).
///
/// Each write is tried for at most 1.5 s at a time (a member that still believes in a leader that
/// died holds a write until etcd's own request timeout, long after a new leader could take it);
/// one refused before it was proposed is tried again until Settings::timeout.
///
/// An append etcd cannot say the outcome of (etcd::errc::outcome_unknown) is never reported as
/// done on a guess: the store writes the append's fence (after which the transaction can no
/// longer apply), then reads the record's key. Its own id there: done. Otherwise: not applied,
/// and tried again while time remains. If even that cannot be settled, the append fails (the
/// change may still be there: followers learn of it from the watch).
///
/// Following: one watch on P from the revision load() read at. Records are told as they come;
/// label and schema changes ask the follower to read them again; a compacted history (or a watch
/// etcd canceled) asks it to load everything again, and the watch resumes from that load. The
/// client resumes the watch on another member by itself when one fails. load() reads the whole
/// current state (the latest stable record and pending canary of every document, labels, schemas)
/// in one read-only transaction, which keeps the snapshot consistent but is one answer in size.
///
/// Threading: the store runs the etcd client on an io thread of its own and waits for each call
/// with a bound (Settings::timeout per operation, twice that for an append that must be settled,
/// plus 2 s), so its blocking methods may be called from any thread but that io thread; like every
/// Store, calls must be serialised by the caller. Follower callbacks run on a third thread.
///
/// Errors: errc::conflict, errc::malformed (a key the store cannot read), errc::storage (an
/// unexpected failure, logged), otherwise etcd::errc codes whose message names the member.

#include <memory>
#include <string>

#include "plexus/config/store.hpp"
#include "plexus/etcd/client.hpp"

namespace plexus::config {

/// Where the config server keeps its keys in etcd unless told otherwise.
inline constexpr const char* kDefaultEtcdPrefix = "/plexus/config/";

/// A store on the etcd cluster of `cluster` under `prefix` (a '/' is added when it does not end
/// with one). Connects lazily: a cluster that cannot be reached shows in the first call (load()).
/// Throws std::invalid_argument for an empty prefix or member list (a startup error).
std::unique_ptr<Store> open_etcd_store(etcd::Settings cluster, std::string prefix = kDefaultEtcdPrefix);

}  // namespace plexus::config
