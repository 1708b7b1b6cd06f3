#include "plexus/core/json_merge.hpp"

#include <boost/json/value.hpp>

namespace plexus::core {

void merge_into(boost::json::object& base, const boost::json::object& top) {
    for (const auto& kv : top) {
        if (kv.value().is_null()) {
            base.erase(kv.key());
            continue;
        }
        auto* mine = base.if_contains(kv.key());
        if (mine && mine->is_object() && kv.value().is_object())
            merge_into(mine->get_object(), kv.value().get_object());
        else
            base[kv.key()] = kv.value();
    }
}

}  // namespace plexus::core
