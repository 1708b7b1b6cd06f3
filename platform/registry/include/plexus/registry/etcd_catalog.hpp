#pragma once
/// The registry's catalog on an etcd cluster, which several registries share: each serves every
/// instance any of them registered, and every watcher of any of them sees every change.
///
/// Keys, under a prefix P ("/plexus/registry/" by default):
///
///   P instances/<service>/<id>   the instance as the registry's JSON object (status, draining and
///                                check included), attached to the instance's own lease
///
/// Service and instance names are [A-Za-z0-9._-] (Catalog::validate), so they need no escaping.
///
/// - Indexes are etcd revisions: an index a watcher got from one registry means the same on the
///   others, so a client may move between them. A registry answers a write once its own copy has
///   applied it (read-your-writes on that registry).
/// - TTLs are leases. A registration grants a lease of the TTL rounded up to whole seconds and
///   writes the instance with it (a re-registration gets a new lease and revokes the one it
///   replaces). Heartbeats stay in memory on whichever registry receives them; every 250 ms each
///   registry renews the leases of the instances that had a heartbeat since their last renewal at
///   least a quarter of their TTL ago. An instance that stops heartbeating everywhere loses its
///   lease and etcd removes it, for every registry at once: within its TTL (rounded up) plus
///   etcd's lease check (about half a second) plus 250 ms.
/// - Status changes from active checks are written to etcd (compare-and-swap on the key's
///   revision, only while it is the same registration) and show when the watch brings them back.
///   Every registry runs the checks of every instance; each writes only a status that differs.
/// - Following: one watch on P instances/ from the revision of the first read. The client resumes
///   it on another member when one fails, from the last revision delivered: nothing is missed or
///   repeated. A compacted history (or a watch etcd canceled) makes the registry read the whole
///   catalog again (Catalog::replace_all): every watcher then gets a full list.
/// - A value that does not parse as an instance is logged with its key and left out; it is never
///   served.
///
/// Threading: the store runs the etcd client on an io thread of its own and renews leases on a
/// second thread; Catalog::write_pending() (the blocking pool) waits for writes with a bound of the
/// client's timeout plus 2 s.

#include <memory>
#include <string>

#include "plexus/etcd/client.hpp"
#include "plexus/registry/catalog.hpp"

namespace plexus::registry {

/// Where registries keep their catalog in etcd unless told otherwise.
inline constexpr const char* kDefaultEtcdPrefix = "/plexus/registry/";

/// The catalog's store on the etcd cluster of `cluster` under `prefix` (a '/' is added when it does
/// not end with one); give it to Catalog's SharedStore constructor, which reads the catalog.
/// Throws std::invalid_argument for an empty prefix or member list (a startup error).
std::unique_ptr<SharedStore> open_etcd_catalog(etcd::Settings cluster,
                                               std::string prefix = kDefaultEtcdPrefix);

}  // namespace plexus::registry
