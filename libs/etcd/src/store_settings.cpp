#include "plexus/etcd/store_settings.hpp"

namespace plexus::etcd {

void read_store_settings(core::SettingsReader& r, std::string& store, std::string& members,
                         std::string& prefix) {
    if (r.field("store", store) && store != "sqlite" && store != "etcd")
        r.fail("store", "must be sqlite or etcd");
    r.field("etcd", members);
    r.field("etcd_prefix", prefix);
}

std::optional<Settings> cluster_of(const std::string& store, const std::string& members,
                                   const std::string& prefix, std::string& why) {
    why.clear();
    if (store == "sqlite") return std::nullopt;
    if (store != "etcd") {
        why = "--store must be sqlite or etcd, not '" + store + "'";
        return std::nullopt;
    }
    auto parsed = parse_members(members);
    if (!parsed) {
        why = "--store etcd needs --etcd URL[,URL...]: " + parsed.error().message();
        return std::nullopt;
    }
    if (prefix.empty()) {
        why = "--etcd-prefix cannot be empty";
        return std::nullopt;
    }
    Settings cluster;
    cluster.members = std::move(*parsed);
    return cluster;
}

}  // namespace plexus::etcd
