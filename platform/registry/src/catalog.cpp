#include "plexus/registry/catalog.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <set>
#include <stdexcept>

#include "plexus/store/database.hpp"
#include "plexus/telemetry/log.hpp"

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

// Shared catalogs: how long a status written to the store may take to come back before the same
// change is written again (the write may have failed).
constexpr std::chrono::seconds kStatusRetry{2};

const std::vector<std::string> kMigrations = {
    R"(CREATE TABLE instances (
         service TEXT NOT NULL, id TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
         tags TEXT NOT NULL, metadata TEXT NOT NULL, ttl_ms INTEGER NOT NULL, draining INTEGER NOT NULL,
         PRIMARY KEY (service, id));
       CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);)",
    // The instance's active check as its registration JSON object; '' for none.
    "ALTER TABLE instances ADD COLUMN health_check TEXT NOT NULL DEFAULT ''",
};

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

// The statements a write needs; prepared per transaction.
const char* const kUpsert =
    "INSERT INTO instances (service, id, address, port, tags, metadata, ttl_ms, draining, health_check) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, id) DO UPDATE SET "
    "address = excluded.address, port = excluded.port, tags = excluded.tags, "
    "metadata = excluded.metadata, ttl_ms = excluded.ttl_ms, draining = excluded.draining, "
    "health_check = excluded.health_check";
const char* const kDelete = "DELETE FROM instances WHERE service = ? AND id = ?";
const char* const kIndex =
    "INSERT INTO meta (key, value) VALUES ('index', ?) ON CONFLICT (key) DO UPDATE SET value = "
    "excluded.value";

Result<void> write_upsert(store::Database& db, const discovery::InstanceInfo& in) {
    json::array tags;
    for (const auto& t : in.tags) tags.emplace_back(t);
    json::object md;
    for (const auto& [k, v] : in.metadata) md[k] = v;
    auto r = db.execute(kUpsert, in.service, in.id, in.address, static_cast<std::int64_t>(in.port),
                        json::serialize(tags), json::serialize(md), static_cast<std::int64_t>(in.ttl.count()),
                        static_cast<std::int64_t>(in.draining),
                        in.check ? discovery::health_check_to_json(*in.check) : std::string());
    if (!r) return r.error();
    return {};
}

Result<void> write_index(store::Database& db, std::uint64_t index) {
    auto r = db.execute(kIndex, static_cast<std::int64_t>(index));
    if (!r) return r.error();
    return {};
}

std::shared_ptr<const std::string> json_of(const discovery::InstanceInfo& in) {
    return std::make_shared<const std::string>(discovery::instance_to_json(in));
}

std::string json_string(std::string_view s) { return json::serialize(json::string_view(s)); }

// {"service":S,"instances":[...],"index":N}, the pieces joined without parsing them again.
std::string full_body(std::string_view service, const std::vector<std::shared_ptr<const std::string>>& pieces,
                      std::uint64_t index) {
    auto name = json_string(service);
    std::size_t size = name.size() + 64;
    for (const auto& p : pieces) size += p->size() + 1;
    std::string body;
    body.reserve(size);
    body += R"({"service":)";
    body += name;
    body += R"(,"instances":[)";
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        if (i) body += ',';
        body += *pieces[i];
    }
    body += R"(],"index":)";
    body += std::to_string(index);
    body += '}';
    return body;
}

}  // namespace

bool PendingWrite::done() const {
    std::lock_guard lock(mutex_);
    return done_;
}

Result<std::uint64_t> PendingWrite::result() const {
    std::lock_guard lock(mutex_);
    return result_;
}

std::string PendingWrite::problem() const {
    std::lock_guard lock(mutex_);
    return problem_;
}

void PendingWrite::finish(Result<std::uint64_t> r, std::string problem) {
    std::lock_guard lock(mutex_);
    result_ = std::move(r);
    problem_ = std::move(problem);
    done_ = true;
}

struct Catalog::Op {
    enum Kind { upsert, remove, drain } kind;
    std::string service, id;
    discovery::InstanceInfo instance;  // upsert: the registration
    std::shared_ptr<const std::string> json;
    std::shared_ptr<PendingWrite> pending = std::make_shared<PendingWrite>();
};

Catalog::Catalog(core::Clock& clock, CatalogLimits limits, std::unique_ptr<store::Database> db)
    : clock_(clock), limits_(limits), db_(std::move(db)) {
    if (!db_) return;
    if (auto r = db_->migrate(kMigrations); !r) {
        throw std::runtime_error("registry database: " + r.error().message());
    }
    auto rows = db_->query(
        "SELECT service, id, address, port, tags, metadata, ttl_ms, draining, health_check FROM instances");
    if (!rows) throw std::runtime_error("registry database: " + rows.error().message());
    if (auto idx = db_->query_one("SELECT value FROM meta WHERE key = 'index'")) {
        index_ = static_cast<std::uint64_t>(idx->get<std::int64_t>(0)) + kRestartGap;
        // Written now: a crash before the next write must not hand out this run's first indexes
        // again after the next restart.
        if (auto r = write_index(*db_, index_); !r) {
            throw std::runtime_error("registry database: " + r.error().message());
        }
    }
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
        auto& s = services_[in.service];
        auto text = json_of(in);
        auto expires = now + in.ttl;
        put(s, std::move(in), std::move(text), expires);
    }
    // Nothing before this index is remembered: older indexes get full answers.
    for (auto& [name, s] : services_) s.index = s.floor = index_;
    start_index_ = index_;
}

Catalog::Catalog(core::Clock& clock, CatalogLimits limits, std::unique_ptr<SharedStore> store)
    : clock_(clock), limits_(limits), shared_(std::move(store)) {
    if (!shared_) throw std::invalid_argument("a shared catalog needs its store");
    shared_->start(*this);
}

Catalog::~Catalog() { stop_following(); }

void Catalog::stop_following() {
    if (shared_) shared_->stop();
}

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

std::uint64_t Catalog::bump(ServiceState& s, const std::vector<std::string>& ids) {
    ++index_;
    index_dirty_ = true;
    s.index = index_;
    for (const auto& id : ids) bump_to(s, index_, id);
    return index_;
}

Catalog::Entry& Catalog::put(ServiceState& s, discovery::InstanceInfo in,
                             std::shared_ptr<const std::string> json, core::SteadyTime expires) {
    auto [it, added] = s.instances.try_emplace(in.id);
    if (!added && it->second.info.check) --s.checked;
    if (in.check) ++s.checked;
    it->second = Entry{};
    it->second.info = std::move(in);
    it->second.json = std::move(json);
    it->second.expires = expires;
    it->second.registration = ++registrations_;
    return it->second;
}

void Catalog::bump_to(ServiceState& s, std::uint64_t index, const std::string& id) {
    index_ = std::max(index_, index);
    s.index = std::max(s.index, index);
    s.log.push_back(Change{index, id});
    while (s.log.size() > limits_.change_log) {
        s.floor = s.log.front().index;
        s.log.pop_front();
    }
    s.full[0].reset();
    s.full[1].reset();
    s.deltas.clear();
}

void Catalog::erase(ServiceState& s, std::map<std::string, Entry>::iterator it) {
    if (it->second.info.check) --s.checked;
    s.instances.erase(it);
}

Catalog::ServiceState& Catalog::state(const std::string& service) {
    auto [it, added] = services_.try_emplace(service);
    // A service seen for the first time had no instances at any index of this run.
    if (added) it->second.floor = start_index_;
    return it->second;
}

std::shared_ptr<PendingWrite> Catalog::enqueue(std::shared_ptr<Op> op) {
    auto pending = op->pending;
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(op));
    return pending;
}

std::shared_ptr<PendingWrite> Catalog::queue_register(discovery::InstanceInfo in) {
    auto op = std::make_shared<Op>();
    op->kind = Op::upsert;
    in.draining = false;
    if (in.check) in.status = "passing";  // the check decides from here on
    if (auto why = validate(in); !why.empty()) {
        op->pending->finish(core::errc::invalid_argument, std::move(why));
        return op->pending;
    }
    op->service = in.service;
    op->id = in.id;
    op->json = json_of(in);
    op->instance = std::move(in);
    return enqueue(std::move(op));
}

std::shared_ptr<PendingWrite> Catalog::queue_deregister(std::string service, std::string id) {
    auto op = std::make_shared<Op>();
    op->kind = Op::remove;
    op->service = std::move(service);
    op->id = std::move(id);
    return enqueue(std::move(op));
}

std::shared_ptr<PendingWrite> Catalog::queue_draining(std::string service, std::string id) {
    auto op = std::make_shared<Op>();
    op->kind = Op::drain;
    op->service = std::move(service);
    op->id = std::move(id);
    return enqueue(std::move(op));
}

void Catalog::write_pending() {
    std::vector<std::string> changed;
    {
        std::lock_guard writer(writer_mutex_);
        std::vector<std::shared_ptr<Op>> batch;
        {
            std::lock_guard lock(queue_mutex_);
            batch.swap(queue_);
        }
        // Each part touches an instance at most once, so what is decided for an op before the
        // commit still holds when it is applied after it.
        std::vector<std::shared_ptr<Op>> part;
        std::set<std::pair<std::string_view, std::string_view>> keys;
        for (auto& op : batch) {
            if (!keys.emplace(op->service, op->id).second) {
                write_part(part, changed);
                part.clear();
                keys.clear();
                keys.emplace(op->service, op->id);
            }
            part.push_back(op);
        }
        if (!part.empty()) write_part(part, changed);
    }
    notify(changed);
}

void Catalog::write_part(const std::vector<std::shared_ptr<Op>>& part, std::vector<std::string>& changed) {
    // Decide under the lock: only writers (this one, holding writer_mutex_) add or remove
    // instances, so what exists now still exists after the commit.
    std::vector<std::size_t> writes;                         // positions in `part`
    std::vector<discovery::InstanceInfo> rows(part.size());  // drain: the row to write
    std::uint64_t index_after;
    {
        std::lock_guard lock(mutex_);
        for (std::size_t i = 0; i < part.size(); ++i) {
            const auto& op = *part[i];
            // Shared: the store decides (this copy may not have another registry's change yet).
            if (op.kind != Op::upsert && !shared_) {
                auto s = services_.find(op.service);
                const Entry* e = nullptr;
                if (s != services_.end()) {
                    if (auto it = s->second.instances.find(op.id); it != s->second.instances.end())
                        e = &it->second;
                }
                if (!e) {
                    op.pending->finish(core::errc::not_found);
                    continue;
                }
                if (op.kind == Op::drain) {
                    if (e->info.draining) {
                        op.pending->finish(s->second.index);
                        continue;
                    }
                    rows[i] = e->info;
                    rows[i].draining = true;
                }
            }
            writes.push_back(i);
        }
        index_after = index_ + writes.size();
    }
    if (writes.empty()) return;
    if (shared_) return write_shared(part, writes);

    if (db_) {
        auto fail = [&](const ErrorCode& ec) {
            for (auto i : writes) part[i]->pending->finish(ec, "could not persist: " + ec.message());
        };
        auto tx = db_->begin();
        if (!tx) return fail(tx.error());
        for (auto i : writes) {
            const auto& op = *part[i];
            Result<void> r;
            switch (op.kind) {
                case Op::upsert:
                    r = write_upsert(*db_, op.instance);
                    break;
                case Op::drain:
                    r = write_upsert(*db_, rows[i]);
                    break;
                case Op::remove: {
                    auto d = db_->execute(kDelete, op.service, op.id);
                    if (!d) r = d.error();
                    break;
                }
            }
            if (!r) return fail(r.error());
        }
        if (auto r = write_index(*db_, index_after); !r) return fail(r.error());
        if (auto r = tx->commit(); !r) return fail(r.error());
    }

    std::vector<std::pair<const Op*, std::uint64_t>> results;
    {
        std::lock_guard lock(mutex_);
        auto now = clock_.now();
        for (auto i : writes) {
            const auto* op = part[i].get();
            auto& s = state(op->service);
            switch (op->kind) {
                case Op::upsert:
                    put(s, op->instance, op->json, now + op->instance.ttl);
                    break;
                case Op::remove:
                    erase(s, s.instances.find(op->id));
                    break;
                case Op::drain: {
                    auto& e = s.instances.find(op->id)->second;
                    e.info.draining = true;
                    e.json = json_of(e.info);
                    break;
                }
            }
            results.emplace_back(op, bump(s, {op->id}));
            if (std::find(changed.begin(), changed.end(), op->service) == changed.end())
                changed.push_back(op->service);
        }
        // Status changes made meanwhile are past index_after: written by the next write or reap.
        index_dirty_ = !db_ || index_ > index_after;
    }
    for (auto& [op, index] : results) op->pending->finish(index);
}

void Catalog::write_shared(const std::vector<std::shared_ptr<Op>>& part,
                           const std::vector<std::size_t>& writes) {
    using Kind = SharedStore::Write::Kind;
    std::vector<SharedStore::Write> ws;
    ws.reserve(writes.size());
    for (auto i : writes) {
        const auto& op = *part[i];
        SharedStore::Write w;
        switch (op.kind) {
            case Op::upsert:
                w.kind = Kind::upsert;
                w.instance = op.instance;
                break;
            case Op::drain:
            case Op::remove:
                w.kind = op.kind == Op::drain ? Kind::drain : Kind::remove;
                w.instance.service = op.service;
                w.instance.id = op.id;
                break;
        }
        ws.push_back(std::move(w));
    }
    auto results = shared_->write(ws);
    std::uint64_t last = 0;
    for (const auto& r : results)
        if (r.revision) last = std::max(last, *r.revision);
    if (last) {
        // Answered once this copy has the change and its listeners were told: a read or watch
        // right after sees it, as with a catalog alone.
        std::unique_lock lock(mutex_);
        if (!applied_.wait_for(lock, shared_->timeout(), [&] { return announced_ >= last; })) {
            telemetry::warn(
                "registry: a write is in the store but not yet seen by this registry",
                {{"revision", static_cast<std::int64_t>(last)}, {"seen", static_cast<std::int64_t>(index_)}});
        }
    }
    for (std::size_t k = 0; k < writes.size(); ++k) {
        auto& pending = *part[writes[k]]->pending;
        if (k >= results.size()) {
            pending.finish(core::errc::io_error, "the catalog's store gave no answer");
        } else if (results[k].revision) {
            pending.finish(*results[k].revision);
        } else {
            pending.finish(results[k].revision.error(), results[k].problem);
        }
    }
}

void Catalog::replace_all(std::uint64_t revision, std::vector<StoredInstance> all) {
    std::vector<std::string> changed;
    std::uint64_t applied;
    {
        std::lock_guard lock(mutex_);
        auto now = clock_.now();
        index_ = std::max(index_, revision);
        std::map<std::string, std::vector<StoredInstance*>> by_service;
        for (auto& [name, s] : services_) by_service[name];
        for (auto& st : all)
            if (st.instance) by_service[st.service].push_back(&st);
        for (auto& [name, items] : by_service) {
            auto& s = state(name);
            std::map<std::string, Entry> old;
            old.swap(s.instances);
            s.checked = 0;
            for (auto* st : items) {
                auto prev = old.find(st->id);
                bool same = prev != old.end() && prev->second.lease == st->lease;
                auto ttl = st->instance->ttl;
                auto& e = put(s, std::move(*st->instance), std::move(st->json), now + ttl);
                e.lease = st->lease;
                e.renewed = now;
                if (same) {
                    e.registration = prev->second.registration;
                    e.beat = prev->second.beat;
                    e.expires = prev->second.expires;
                }
            }
            // What changed in between is not known: every watcher gets the whole list.
            s.index = s.floor = index_;
            s.log.clear();
            s.full[0].reset();
            s.full[1].reset();
            s.deltas.clear();
            changed.push_back(name);
        }
        start_index_ = index_;
        applied = index_;
    }
    announce(changed, applied);
}

void Catalog::apply(std::vector<StoredInstance> changes) {
    std::vector<std::string> changed;
    std::uint64_t applied;
    {
        std::lock_guard lock(mutex_);
        auto now = clock_.now();
        for (auto& c : changes) {
            auto& s = state(c.service);
            auto it = s.instances.find(c.id);
            if (!c.instance) {
                if (it != s.instances.end()) erase(s, it);
            } else if (it != s.instances.end() && it->second.lease == c.lease) {
                // The same registration: its status or draining changed.
                auto& e = it->second;
                e.pending_status.clear();
                if (e.info.check) --s.checked;
                if (c.instance->check) ++s.checked;
                e.info = std::move(*c.instance);
                e.json = std::move(c.json);
            } else {
                auto ttl = c.instance->ttl;
                auto& e = put(s, std::move(*c.instance), std::move(c.json), now + ttl);
                e.lease = c.lease;
                e.renewed = now;
            }
            bump_to(s, c.revision, c.id);
            if (std::find(changed.begin(), changed.end(), c.service) == changed.end())
                changed.push_back(c.service);
        }
        applied = index_;
    }
    announce(changed, applied);
}

void Catalog::announce(const std::vector<std::string>& services, std::uint64_t applied) {
    notify(services);
    {
        std::lock_guard lock(mutex_);
        announced_ = std::max(announced_, applied);
    }
    applied_.notify_all();
}

std::vector<std::int64_t> Catalog::leases_due() {
    std::vector<std::int64_t> due;
    std::lock_guard lock(mutex_);
    auto now = clock_.now();
    for (auto& [name, s] : services_) {
        for (auto& [id, e] : s.instances) {
            if (!e.beat || e.lease == 0 || now - e.renewed < e.info.ttl / 4) continue;
            e.beat = false;
            e.renewed = now;
            due.push_back(e.lease);
        }
    }
    return due;
}

Result<std::uint64_t> Catalog::written(const std::shared_ptr<PendingWrite>& pending, std::string* problem) {
    if (!pending->done()) write_pending();
    auto r = pending->result();
    if (!r && problem) *problem = pending->problem();
    return r;
}

Result<std::uint64_t> Catalog::register_instance(discovery::InstanceInfo in, std::string* problem) {
    return written(queue_register(std::move(in)), problem);
}

Result<std::uint64_t> Catalog::deregister(const std::string& service, const std::string& id) {
    return written(queue_deregister(service, id));
}

Result<std::uint64_t> Catalog::set_draining(const std::string& service, const std::string& id) {
    return written(queue_draining(service, id));
}

Result<void> Catalog::heartbeat(const std::string& service, const std::string& id) {
    std::lock_guard lock(mutex_);
    auto s = services_.find(service);
    if (s == services_.end()) return core::errc::not_found;
    auto i = s->second.instances.find(id);
    if (i == s->second.instances.end()) return core::errc::not_found;
    i->second.expires = clock_.now() + i->second.info.ttl;
    i->second.beat = true;
    return {};
}

std::size_t Catalog::reap() {
    if (shared_) return 0;  // the store removes an instance when its lease runs out
    std::vector<std::string> changed;
    std::vector<std::pair<std::string, std::string>> removed;
    {
        // In turn with the writes: a registration written but not yet applied must not be
        // deleted from the database by a reap of the registration it replaces.
        std::lock_guard writer(writer_mutex_);
        std::uint64_t index;
        bool write_index_only;
        {
            std::lock_guard lock(mutex_);
            auto now = clock_.now();
            for (auto& [name, s] : services_) {
                std::vector<std::string> ids;
                for (auto i = s.instances.begin(); i != s.instances.end();) {
                    if (i->second.expires <= now) {
                        ids.push_back(i->first);
                        removed.emplace_back(name, i->first);
                        auto next = std::next(i);
                        erase(s, i);
                        i = next;
                    } else {
                        ++i;
                    }
                }
                if (!ids.empty()) {
                    bump(s, ids);
                    changed.push_back(name);
                }
            }
            index = index_;
            write_index_only = index_dirty_;
        }
        if (db_ && (!removed.empty() || write_index_only)) {
            // A failure leaves rows that come back at the next start, each with a fresh TTL:
            // they expire again unless their instance heartbeats.
            bool ok = false;
            if (auto tx = db_->begin()) {
                ok = true;
                for (const auto& [service, id] : removed) ok = ok && db_->execute(kDelete, service, id);
                ok = ok && write_index(*db_, index) && tx->commit();
            }
            if (ok) {
                std::lock_guard lock(mutex_);
                if (index_ == index) index_dirty_ = false;
            }
        }
    }
    if (!changed.empty()) notify(changed);
    return removed.size();
}

Result<bool> Catalog::set_status(const std::string& service, const std::string& id, const std::string& status,
                                 std::uint64_t registration) {
    if (status != "passing" && status != "warning" && status != "critical")
        return core::errc::invalid_argument;
    {
        std::lock_guard lock(mutex_);
        auto s = services_.find(service);
        if (s == services_.end()) return core::errc::not_found;
        auto i = s->second.instances.find(id);
        if (i == s->second.instances.end()) return core::errc::not_found;
        if (registration != 0 && i->second.registration != registration) return core::errc::not_found;
        if (i->second.info.status == status) return false;
        if (shared_) {
            // Written to the store; applied when the store tells every registry.
            auto& e = i->second;
            auto now = clock_.now();
            if (e.pending_status == status && now - e.pending_since < kStatusRetry) return false;
            e.pending_status = status;
            e.pending_since = now;
            shared_->write_status(service, id, status, e.lease);
            return true;
        }
        i->second.info.status = status;
        i->second.json = json_of(i->second.info);
        bump(s->second, {id});
    }
    notify({service});
    return true;
}

discovery::ServiceSnapshot Catalog::snapshot(const std::string& service, bool all) const {
    std::lock_guard lock(mutex_);
    discovery::ServiceSnapshot snap;
    auto s = services_.find(service);
    snap.index = s == services_.end() ? index_ : s->second.index;
    if (s == services_.end()) return snap;
    for (const auto& [id, e] : s->second.instances) {
        if (!all && !discovery::in_discovery(e.info)) continue;
        snap.instances.push_back(e.info);
    }
    return snap;
}

AnswerPtr Catalog::answer(const std::string& service, bool all) const {
    std::vector<std::shared_ptr<const std::string>> pieces;
    std::uint64_t index;
    {
        std::lock_guard lock(mutex_);
        auto s = services_.find(service);
        if (s == services_.end()) {
            return std::make_shared<const Answer>(Answer{index_, full_body(service, {}, index_), false});
        }
        if (auto cached = s->second.full[all]) return cached;
        index = s->second.index;
        pieces.reserve(s->second.instances.size());
        for (const auto& [id, e] : s->second.instances) {
            if (all || discovery::in_discovery(e.info)) pieces.push_back(e.json);
        }
    }
    // Joined outside the lock; two readers of a new index may both join it, one keeps it.
    auto built = std::make_shared<const Answer>(Answer{index, full_body(service, pieces, index), false});
    std::lock_guard lock(mutex_);
    auto s = services_.find(service);
    if (s->second.index == index && !s->second.full[all]) s->second.full[all] = built;
    return built;
}

AnswerPtr Catalog::changes_since(const std::string& service, bool all, std::uint64_t since) const {
    std::vector<std::shared_ptr<const std::string>> changed;
    std::vector<std::string> removed;
    std::uint64_t index;
    {
        std::lock_guard lock(mutex_);
        auto s = services_.find(service);
        // Unknown service, changes forgotten, or an index this service never had (from another
        // registry, or one whose state was lost): the whole list.
        if (s == services_.end() || since < s->second.floor || since > s->second.index)
            index = 0;
        else {
            const auto& st = s->second;
            if (auto c = st.deltas.find({since, all}); c != st.deltas.end()) return c->second;
            index = st.index;
            auto first = std::upper_bound(st.log.begin(), st.log.end(), since,
                                          [](std::uint64_t v, const Change& c) { return v < c.index; });
            std::set<std::string_view> ids;
            for (auto c = first; c != st.log.end(); ++c) ids.insert(c->id);
            for (auto id : ids) {
                auto it = st.instances.find(std::string(id));
                if (it != st.instances.end() && (all || discovery::in_discovery(it->second.info)))
                    changed.push_back(it->second.json);
                else
                    removed.emplace_back(id);
            }
        }
    }
    if (index == 0) return answer(service, all);

    std::string body =
        R"({"service":)" + json_string(service) + R"(,"since":)" + std::to_string(since) + R"(,"changed":[)";
    for (std::size_t i = 0; i < changed.size(); ++i) {
        if (i) body += ',';
        body += *changed[i];
    }
    body += R"(],"removed":[)";
    for (std::size_t i = 0; i < removed.size(); ++i) {
        if (i) body += ',';
        body += json_string(removed[i]);
    }
    body += R"(],"index":)" + std::to_string(index) + "}";
    auto built = std::make_shared<const Answer>(Answer{index, std::move(body), true});
    std::lock_guard lock(mutex_);
    auto& st = services_.find(service)->second;
    // Every watcher at the same index shares this answer; watchers hold a few distinct `since`s.
    if (st.index == index && st.deltas.size() < 16) st.deltas.emplace(std::make_pair(since, all), built);
    return built;
}

std::uint64_t Catalog::service_index(const std::string& service) const {
    std::lock_guard lock(mutex_);
    auto s = services_.find(service);
    return s == services_.end() ? index_ : s->second.index;
}

std::vector<ServiceSummary> Catalog::services() const {
    std::lock_guard lock(mutex_);
    std::vector<ServiceSummary> out;
    for (const auto& [name, s] : services_) {
        if (s.instances.empty()) continue;  // kept for its index and changes, not listed
        ServiceSummary sum{name, s.instances.size(), 0, s.index};
        for (const auto& [id, e] : s.instances) sum.healthy += discovery::in_discovery(e.info);
        out.push_back(std::move(sum));
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
    if (s == services_.end() || s->second.checked == 0) return out;
    for (const auto& [id, e] : s->second.instances) {
        if (e.info.check) out.push_back(CheckTarget{e.info, e.registration});
    }
    return out;
}

void Catalog::on_change(std::function<void(const std::string&)> fn) {
    std::lock_guard lock(mutex_);
    on_change_.push_back(std::move(fn));
}

void Catalog::notify(const std::vector<std::string>& services) {
    if (services.empty()) return;
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
