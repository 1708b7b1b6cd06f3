#include "plexus/config/store.hpp"

#include <boost/json.hpp>

namespace plexus::config {

namespace json = boost::json;

namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "plexus.config"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::conflict:
                return "the document changed since the version the change was based on";
            case errc::storage:
                return "the configuration store failed";
            case errc::malformed:
                return "a stored configuration record cannot be read";
        }
        return "unknown config error";
    }
};

}  // namespace

const boost::system::error_category& config_category() noexcept {
    static const Category category;
    return category;
}

std::string_view kind_name(Kind k) noexcept {
    switch (k) {
        case Kind::set:
            return "set";
        case Kind::rollback:
            return "rollback";
        case Kind::remove:
            return "remove";
        case Kind::canary:
            return "canary";
        case Kind::promote:
            return "promote";
        case Kind::abort:
            return "abort";
    }
    return "set";
}

std::optional<Kind> kind_named(std::string_view name) noexcept {
    for (auto k : {Kind::set, Kind::rollback, Kind::remove, Kind::canary, Kind::promote, Kind::abort})
        if (kind_name(k) == name) return k;
    return std::nullopt;
}

json::object targets_json(const Targets& t) {
    json::array names;
    for (const auto& i : t.instances) names.emplace_back(i);
    return json::object{{"instances", std::move(names)}, {"percent", t.percent}};
}

Targets targets_of(const json::object& o) {
    Targets t;
    if (const auto* names = o.if_contains("instances"); names && names->is_array())
        for (const auto& n : names->get_array())
            if (n.is_string()) t.instances.emplace_back(n.get_string());
    if (const auto* p = o.if_contains("percent"); p && p->is_int64())
        t.percent = static_cast<int>(p->get_int64());
    return t;
}

}  // namespace plexus::config
