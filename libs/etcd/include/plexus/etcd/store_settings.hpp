#pragma once
/// How a daemon that can keep its state in SQLite or in etcd (the registry, the config server) is
/// told which: the settings keys `store` ("sqlite" or "etcd"), `etcd` (the members' client URLs)
/// and `etcd_prefix`, with the flags of the same names. One reader and one check for every such
/// daemon.

#include <optional>
#include <string>

#include "plexus/core/settings.hpp"
#include "plexus/etcd/client.hpp"

namespace plexus::etcd {

/// Reads the keys `store`, `etcd` and `etcd_prefix` present in `r`. Throws core::SettingsError
/// for a store other than sqlite or etcd.
void read_store_settings(core::SettingsReader& r, std::string& store, std::string& members,
                         std::string& prefix);

/// The cluster the settings name: nullopt for store "sqlite" (and `why` empty); the cluster for
/// "etcd"; nullopt with `why` for settings that cannot work (for a person, naming the flag).
std::optional<Settings> cluster_of(const std::string& store, const std::string& members,
                                   const std::string& prefix, std::string& why);

}  // namespace plexus::etcd
