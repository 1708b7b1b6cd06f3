#include "plexus/registry/catalog.hpp"

#include <boost/json.hpp>
#include <stdexcept>

#include "plexus/store/database.hpp"

namespace plexus::registry {

namespace json = boost::json;

namespace {

bool valid_name(std::string_view s, std::size_t max) {
    // "." and ".." are path steps, not names: a URL with them is not the instance's URL.
    if (s.empty() || s.size() > max || s == "." || s == "..") return false;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

const std::vector<std::string> kMigrations = {
    R"(CREATE TABLE instances (
         service TEXT NOT NULL, id TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
         tags TEXT NOT NULL, metadata TEXT NOT NULL, ttl_ms INTEGER NOT NULL, draining INTEGER NOT NULL,
         PRIMARY KEY (service, id));
       CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);)",
    // The instance's active check as its registration JSON object; '' for none.
    "ALTER TABLE instances ADD COLUMN health_check TEXT NOT NULL DEFAULT ''",
};

bool listed(const discovery::InstanceInfo& in) {
    return !in.draining && (in.status == "passing" || in.status == "warning");
}

std::string validate_check(const discovery::HealthCheck& c) {
    using std::chrono::milliseconds;
    if (c.http.empty() || c.http.front() != '/' || c.http.size() > 1024) {
        return "check.http must be a path starting with '/' (at most 1024 characters)";
    }
    for (char ch : c.http) {
        if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
            return "check.http contains invalid characters";
    }
    if (c.interval < milliseconds(100) || c.interval > milliseconds(600'000)) {
        return "check.interval_ms must be between 100 and 600000";
    }
    if (c.timeout <= milliseconds(0) || c.timeout > c.interval) {
        return "check.timeout_ms must be greater than 0 and at most check.interval_ms";
    }
    if (c.healthy_threshold < 1 || c.healthy_threshold > 10) {
        return "check.healthy_threshold must be between 1 and 10";
    }
    if (c.unhealthy_threshold < 1 || c.unhealthy_threshold > 10) {
        return "check.unhealthy_threshold must be between 1 and 10";
    }
    return {};
}

}  // namespace

Catalog::Catalog(core::Clock& clock, CatalogLimits limits, std::unique_ptr<store::Database> db)
    : clock_(clock), limits_(limits), db_(std::move(db)) {
    if (!db_) return;
    if (auto r = db_->migrate(kMigrations); !r) {
        throw std::runtime_error("registry database: " + r.error().message());
    }
    auto rows = db_->query(
        "SELECT service, id, address, port, tags, metadata, ttl_ms, draining, health_check FROM instances");
    if (!rows) throw std::runtime_error("registry database: " + rows.error().message());
    auto now = clock_.now();
    for (const auto& row : *rows) {
        discovery::InstanceInfo in;
        in.service = row.get<std::string>(0);
        in.id = row.get<std::string>(1);
        in.address = row.get<std::string>(2);
        in.port = row.get<std::uint16_t>(3);
        in.tags = json::value_to<std::vector<std::string>>(json::parse(row.get<std::string>(4)));
        in.metadata =
            json::value_to<std::map<std::string, std::string>>(json::parse(row.get<std::string>(5)));
        in.ttl = std::chrono::milliseconds(row.get<std::int64_t>(6));
        in.draining = row.get<bool>(7);
        if (auto check = row.get<std::string>(8); !check.empty()) {
            auto parsed = discovery::health_check_from_json(check);
            if (!parsed) {
                throw std::runtime_error("registry database: the check of " + in.service + "/" + in.id +
                                         " does not parse: " + check);
            }
            in.check = std::move(*parsed);
        }
        auto expires = now + in.ttl;
        auto service = in.service, id = in.id;
        services_[service][id] = Entry{std::move(in), expires, ++registrations_};
    }
    if (auto idx = db_->query_one("SELECT value FROM meta WHERE key = 'index'")) {
        index_ = static_cast<std::uint64_t>(idx->get<std::int64_t>(0)) + 1;
    }
    for (const auto& [name, _] : services_) service_index_[name] = index_;
}

Catalog::~Catalog() = default;

std::string Catalog::validate(const discovery::InstanceInfo& in) const {
    if (!valid_name(in.service, 63))
        return "service name must be 1-63 characters of [A-Za-z0-9._-], not . or ..";
    if (!valid_name(in.id, 128)) return "instance id must be 1-128 characters of [A-Za-z0-9._-], not . or ..";
    if (in.address.empty() || in.address.size() > 253) return "address is required (at most 253 characters)";
    for (char c : in.address) {
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@')
            return "address contains invalid characters";
    }
    if (in.port == 0) return "port must be between 1 and 65535";
    if (in.ttl < limits_.min_ttl || in.ttl > limits_.max_ttl) {
        return "ttl_ms must be between " + std::to_string(limits_.min_ttl.count()) + " and " +
               std::to_string(limits_.max_ttl.count());
    }
    if (in.tags.size() > limits_.max_tags)
        return "too many tags (at most " + std::to_string(limits_.max_tags) + ")";
    std::size_t bytes = 0;
    for (const auto& t : in.tags) bytes += t.size();
    for (const auto& [k, v] : in.metadata) bytes += k.size() + v.size();
    if (bytes > limits_.max_metadata_bytes) {
        return "tags and metadata exceed " + std::to_string(limits_.max_metadata_bytes) + " bytes";
    }
    if (in.status != "passing" && in.status != "warning" && in.status != "critical") {
        return "status must be passing, warning or critical";
    }
    if (in.check) return validate_check(*in.check);
    return {};
}

std::uint64_t Catalog::bump(const std::string& service) {
    ++index_;
    service_index_[service] = index_;
    return index_;
}

Result<void> Catalog::persist_upsert(const discovery::InstanceInfo& in) {
    if (!db_) return {};
    json::array tags;
    for (const auto& t : in.tags) tags.emplace_back(t);
    json::object md;
    for (const auto& [k, v] : in.metadata) md[k] = v;
    auto r = db_->execute(
        "INSERT INTO instances (service, id, address, port, tags, metadata, ttl_ms, draining, health_check) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, id) DO UPDATE SET "
        "address = excluded.address, port = excluded.port, tags = excluded.tags, "
        "metadata = excluded.metadata, ttl_ms = excluded.ttl_ms, draining = excluded.draining, "
        "health_check = excluded.health_check",
        in.service, in.id, in.address, static_cast<std::int64_t>(in.port), json::serialize(tags),
        json::serialize(md), static_cast<std::int64_t>(in.ttl.count()),
        static_cast<std::int64_t>(in.draining),
        in.check ? discovery::health_check_to_json(*in.check) : std::string());
    if (!r) return r.error();
    return {};
}

Result<void> Catalog::persist_delete(const std::string& service, const std::string& id) {
    if (!db_) return {};
    auto r = db_->execute("DELETE FROM instances WHERE service = ? AND id = ?", service, id);
    if (!r) return r.error();
    return {};
}

void Catalog::persist_index() {
    if (!db_) return;
    (void)db_->execute(
        "INSERT INTO meta (key, value) VALUES ('index', ?) ON CONFLICT (key) DO UPDATE SET "
        "value = excluded.value",
        static_cast<std::int64_t>(index_));
}

Result<std::uint64_t> Catalog::register_instance(discovery::InstanceInfo in, std::string* problem) {
    if (auto why = validate(in); !why.empty()) {
        if (problem) *problem = why;
        return core::errc::invalid_argument;
    }
    in.draining = false;
    if (in.check) in.status = "passing";  // the check decides from here on
    std::uint64_t idx;
    auto service = in.service;
    {
        std::lock_guard lock(mutex_);
        if (auto r = persist_upsert(in); !r) {
            if (problem) *problem = "could not persist: " + r.error().message();
            return r.error();
        }
        auto expires = clock_.now() + in.ttl;
        auto id = in.id;
        services_[service][id] = Entry{std::move(in), expires, ++registrations_};
        idx = bump(service);
        persist_index();
    }
    notify({service});
    return idx;
}

Result<void> Catalog::heartbeat(const std::string& service, const std::string& id) {
    std::lock_guard lock(mutex_);
    auto s = services_.find(service);
    if (s == services_.end()) return core::errc::not_found;
    auto i = s->second.find(id);
    if (i == s->second.end()) return core::errc::not_found;
    i->second.expires = clock_.now() + i->second.info.ttl;
    return {};
}

Result<std::uint64_t> Catalog::deregister(const std::string& service, const std::string& id) {
    std::uint64_t idx;
    {
        std::lock_guard lock(mutex_);
        auto s = services_.find(service);
        if (s == services_.end() || !s->second.contains(id)) return core::errc::not_found;
        if (auto r = persist_delete(service, id); !r) return r.error();
        s->second.erase(id);
        if (s->second.empty()) services_.erase(s);
        idx = bump(service);
        persist_index();
    }
    notify({service});
    return idx;
}

Result<std::uint64_t> Catalog::set_draining(const std::string& service, const std::string& id) {
    std::uint64_t idx;
    {
        std::lock_guard lock(mutex_);
        auto s = services_.find(service);
        if (s == services_.end()) return core::errc::not_found;
        auto i = s->second.find(id);
        if (i == s->second.end()) return core::errc::not_found;
        if (i->second.info.draining) return service_index_[service];
        i->second.info.draining = true;
        if (auto r = persist_upsert(i->second.info); !r) return r.error();
        idx = bump(service);
        persist_index();
    }
    notify({service});
    return idx;
}

std::size_t Catalog::reap() {
    std::vector<std::string> changed;
    std::size_t removed = 0;
    {
        std::lock_guard lock(mutex_);
        auto now = clock_.now();
        for (auto s = services_.begin(); s != services_.end();) {
            bool touched = false;
            for (auto i = s->second.begin(); i != s->second.end();) {
                if (i->second.expires <= now) {
                    (void)persist_delete(s->first, i->first);
                    i = s->second.erase(i);
                    ++removed;
                    touched = true;
                } else {
                    ++i;
                }
            }
            if (touched) {
                bump(s->first);
                changed.push_back(s->first);
            }
            s = s->second.empty() ? services_.erase(s) : std::next(s);
        }
        if (removed) persist_index();
    }
    if (!changed.empty()) notify(changed);
    return removed;
}

Result<bool> Catalog::set_status(const std::string& service, const std::string& id, const std::string& status,
                                 std::uint64_t registration) {
    if (status != "passing" && status != "warning" && status != "critical")
        return core::errc::invalid_argument;
    {
        std::lock_guard lock(mutex_);
        auto s = services_.find(service);
        if (s == services_.end()) return core::errc::not_found;
        auto i = s->second.find(id);
        if (i == s->second.end()) return core::errc::not_found;
        if (registration != 0 && i->second.registration != registration) return core::errc::not_found;
        if (i->second.info.status == status) return false;
        i->second.info.status = status;
        bump(service);
        persist_index();
    }
    notify({service});
    return true;
}

discovery::ServiceSnapshot Catalog::snapshot(const std::string& service, bool all) const {
    std::lock_guard lock(mutex_);
    discovery::ServiceSnapshot snap;
    auto idx = service_index_.find(service);
    snap.index = idx == service_index_.end() ? index_ : idx->second;
    auto s = services_.find(service);
    if (s == services_.end()) return snap;
    for (const auto& [id, e] : s->second) {
        if (!all && !listed(e.info)) continue;
        snap.instances.push_back(e.info);
    }
    return snap;
}

std::uint64_t Catalog::service_index(const std::string& service) const {
    std::lock_guard lock(mutex_);
    auto idx = service_index_.find(service);
    return idx == service_index_.end() ? index_ : idx->second;
}

std::vector<ServiceSummary> Catalog::services() const {
    std::lock_guard lock(mutex_);
    std::vector<ServiceSummary> out;
    for (const auto& [name, instances] : services_) {
        ServiceSummary s{name, instances.size(), 0, service_index_.at(name)};
        for (const auto& [id, e] : instances) s.healthy += listed(e.info);
        out.push_back(std::move(s));
    }
    return out;
}

std::uint64_t Catalog::index() const {
    std::lock_guard lock(mutex_);
    return index_;
}

std::vector<CheckTarget> Catalog::check_targets(const std::string& service) const {
    std::lock_guard lock(mutex_);
    std::vector<CheckTarget> out;
    auto s = services_.find(service);
    if (s == services_.end()) return out;
    for (const auto& [id, e] : s->second) {
        if (e.info.check) out.push_back(CheckTarget{e.info, e.registration});
    }
    return out;
}

void Catalog::on_change(std::function<void(const std::string&)> fn) {
    std::lock_guard lock(mutex_);
    on_change_.push_back(std::move(fn));
}

void Catalog::notify(const std::vector<std::string>& services) {
    std::vector<std::function<void(const std::string&)>> fns;
    {
        std::lock_guard lock(mutex_);
        fns = on_change_;
    }
    for (const auto& s : services) {
        for (const auto& fn : fns) fn(s);
    }
}

}  // namespace plexus::registry
