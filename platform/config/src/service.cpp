#include "plexus/config/service.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <set>
#include <stdexcept>

#include "plexus/core/json_schema.hpp"
#include "plexus/net/http.hpp"
#include "plexus/serving/request_scope.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::config {

namespace json = boost::json;
using net::HttpError;

namespace {

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

void check_key(const DocKey& key) {
    if (auto why = app_name_problem(key.app); !why.empty()) throw HttpError(400, "Bad Request", why);
    if (!key.profile.empty())
        if (auto why = profile_name_problem(key.profile); !why.empty())
            throw HttpError(400, "Bad Request", why);
}

[[noreturn]] void storage_failed(const ErrorCode& ec) {
    telemetry::error("config store failed", {{"error", ec.message()}});
    throw HttpError(500, "Internal Server Error", "the configuration store failed: " + ec.message());
}

// The record a pick takes by default: the stable one, or a canary for its instance.
ConfigService::Pick for_instance(std::string instance) {
    return [instance = std::move(instance)](const auto& d) -> const Record* {
        if (d.canary && ConfigService::in_canary(d.canary->targets, d.canary->version, instance))
            return d.canary.get();
        return d.stable.get();
    };
}

}  // namespace

bool Caller::admin() const { return anonymous_admin || serving::has_scope(scope, "plexus:admin"); }

bool Caller::may_write(std::string_view app) const {
    return admin() || serving::has_scope(scope, "config:write") ||
           serving::has_scope(scope, "config:write:" + std::string(app));
}

bool Caller::may_read(std::string_view app) const {
    return may_write(app) || serving::has_scope(scope, "config:read") ||
           serving::has_scope(scope, "config:read:" + std::string(app));
}

bool Caller::may_read_secrets(std::string_view app) const {
    return admin() || serving::has_scope(scope, "config:secrets") ||
           serving::has_scope(scope, "config:secrets:" + std::string(app));
}

namespace {

// What a record does to its document as served.
void apply_record(ConfigService::DocState& d, const Record& rec) {
    auto held = std::make_shared<const Record>(rec);
    if (rec.kind == Kind::canary) {
        d.canary = held;
    } else if (rec.kind == Kind::abort) {
        d.canary.reset();
    } else {
        d.stable = held;
        d.canary.reset();
    }
}

}  // namespace

std::shared_ptr<ConfigService::State> ConfigService::state_of(Loaded loaded) {
    auto s = std::make_shared<State>();
    s->revision = loaded.revision;
    for (auto& r : loaded.stable) {
        auto& d = s->docs[r.key];
        d.stable = std::make_shared<const Record>(std::move(r));
    }
    for (auto& r : loaded.canary) {
        auto& d = s->docs[r.key];
        d.canary = std::make_shared<const Record>(std::move(r));
    }
    for (auto& [key, v] : loaded.latest) s->docs[key].latest = v;
    for (auto& l : loaded.labels) s->labels.emplace(l.name, std::move(l));
    for (auto& sc : loaded.schemas) s->schemas.emplace(sc.app, std::move(sc));
    return s;
}

ConfigService::ConfigService(std::unique_ptr<Store> store, SecretBox secrets, core::Clock& clock)
    : store_(std::move(store)), secrets_(std::move(secrets)), clock_(clock) {
    auto loaded = store_->load();
    if (!loaded) throw std::runtime_error("cannot load the configuration: " + loaded.error().message());
    state_.store(state_of(std::move(*loaded)));
    store_->follow(Follower{
        .on_record = [this](const Record& r) { follow_record(r); },
        .on_metadata = [this] { return reload(false); },
        .on_reload = [this] { return reload(true); },
    });
}

ConfigService::~ConfigService() { store_->stop_following(); }

void ConfigService::follow_record(const Record& r) {
    std::lock_guard lock(write_mutex_);
    auto s = state();
    // Held already: this server wrote it (the watch echoes its own commits) or a reload read it.
    if (auto it = s->docs.find(r.key); it != s->docs.end() && it->second.latest >= r.version) return;
    install(std::make_shared<State>(*s), r, "configuration changed through another server");
}

void ConfigService::install(std::shared_ptr<State> next, const Record& r, std::string_view how) {
    auto& d = next->docs[r.key];
    apply_record(d, r);
    d.latest = r.version;
    // Records of other servers not followed yet may be older than this one; none is newer.
    next->revision = std::max(next->revision, r.version);
    state_.store(std::move(next));
    changed_.notify_all();
    telemetry::info(how, {{"application", r.key.app},
                          {"profile", r.key.profile},
                          {"version", r.version},
                          {"kind", std::string(kind_name(r.kind))},
                          {"author", r.author}});
}

bool ConfigService::reload(bool everything) {
    std::lock_guard lock(write_mutex_);
    // Labels and schemas alone are read again as they are: not every document.
    auto loaded = everything ? store_->load() : store_->load_metadata();
    if (!loaded) {
        telemetry::warn("cannot read the configuration store again; trying later",
                        {{"error", loaded.error().message()}});
        return false;
    }
    auto fresh = state_of(std::move(*loaded));
    if (!everything) {
        auto next = std::make_shared<State>(*state());
        next->labels = std::move(fresh->labels);
        next->schemas = std::move(fresh->schemas);
        fresh = std::move(next);
    } else {
        telemetry::info("configuration reloaded from the store", {{"revision", fresh->revision}});
    }
    state_.store(std::move(fresh));
    changed_.notify_all();
    return true;
}

std::int64_t ConfigService::now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall().time_since_epoch()).count();
}

bool ConfigService::in_canary(const Targets& targets, std::int64_t version, std::string_view instance) {
    if (instance.empty()) return false;
    if (std::find(targets.instances.begin(), targets.instances.end(), instance) != targets.instances.end())
        return true;
    return targets.percent > 0 &&
           static_cast<int>(fnv1a(std::string(instance) + "#" + std::to_string(version)) % 100) <
               targets.percent;
}

// ---- reads

View ConfigService::merged(const State& s, const std::string& app, const std::vector<std::string>& profiles,
                           const Pick& pick, bool secrets) const {
    View v;
    v.app = app;
    v.profiles = profiles;
    for (const auto& key : layers(app, profiles)) {
        auto it = s.docs.find(key);
        if (it == s.docs.end()) continue;
        const Record* r = pick(it->second);
        if (!r) continue;
        v.version = std::max(v.version, r->version);
        if (r == it->second.canary.get()) v.canary = true;
        if (!r->content) continue;
        auto content = *r->content;
        if (secrets)
            secrets_.open_all(content, key.app);
        else
            SecretBox::mask_all(content);
        merge_into(v.config, content);
        v.sources.insert(v.sources.begin(), {key, std::move(content)});
    }
    return v;
}

View ConfigService::view(const std::string& app, const std::vector<std::string>& profiles,
                         const std::string& instance, bool secrets) const {
    return merged(*state(), app, profiles, for_instance(instance), secrets);
}

std::int64_t ConfigService::version_of(const std::string& app, const std::vector<std::string>& profiles,
                                       const std::string& instance) const {
    auto s = state();
    std::int64_t version = 0;
    for (const auto& key : layers(app, profiles)) {
        auto it = s->docs.find(key);
        if (it == s->docs.end()) continue;
        const auto& d = it->second;
        const Record* r = d.canary && in_canary(d.canary->targets, d.canary->version, instance)
                              ? d.canary.get()
                              : d.stable.get();
        if (r) version = std::max(version, r->version);
    }
    return version;
}

json::array ConfigService::documents() const {
    auto s = state();
    json::array out;
    for (const auto& [key, d] : s->docs) {
        if (!d.stable && !d.canary) continue;
        json::object o{{"application", key.app}, {"profile", key.profile}, {"name", key.name()}};
        if (d.stable) {
            o["version"] = d.stable->version;
            o["kind"] = kind_name(d.stable->kind);
            o["author"] = d.stable->author;
            o["time"] = core::rfc3339(core::SystemTime(std::chrono::milliseconds(d.stable->time_ms)), true);
            o["deleted"] = !d.stable->content.has_value();
        }
        if (d.canary) {
            json::array names;
            for (const auto& n : d.canary->targets.instances) names.emplace_back(n);
            o["canary"] = json::object{{"version", d.canary->version},
                                       {"instances", std::move(names)},
                                       {"percent", d.canary->targets.percent},
                                       {"author", d.canary->author}};
        }
        out.push_back(std::move(o));
    }
    return out;
}

json::array ConfigService::labels() const {
    auto s = state();
    json::array out;
    for (const auto& [name, l] : s->labels)
        out.push_back(json::object{
            {"name", name},
            {"revision", l.revision},
            {"author", l.author},
            {"message", l.message},
            {"time", core::rfc3339(core::SystemTime(std::chrono::milliseconds(l.time_ms)), true)}});
    return out;
}

std::optional<json::value> ConfigService::schema(const std::string& app) const {
    auto s = state();
    auto it = s->schemas.find(app);
    if (it == s->schemas.end()) return std::nullopt;
    return it->second.schema;
}

std::int64_t ConfigService::revision() const { return state()->revision; }

// ---- blocking reads

View ConfigService::view_at(const std::string& app, const std::vector<std::string>& profiles,
                            const std::string& label, bool secrets) const {
    auto s = state();
    std::int64_t revision = 0;
    if (auto it = s->labels.find(label); it != s->labels.end()) {
        revision = it->second.revision;
    } else {
        auto [end, ec] = std::from_chars(label.data(), label.data() + label.size(), revision);
        if (ec != std::errc{} || end != label.data() + label.size() || revision <= 0)
            throw HttpError(404, "Not Found", "no label '" + label + "' (labels: plexus config labels)");
    }
    State then;
    {
        std::lock_guard lock(write_mutex_);
        for (const auto& key : layers(app, profiles)) {
            auto r = store_->stable_at(key, revision);
            if (!r) storage_failed(r.error());
            if (*r) then.docs[key].stable = std::make_shared<const Record>(std::move(**r));
        }
    }
    auto v = merged(then, app, profiles, [](const DocState& d) { return d.stable.get(); }, secrets);
    v.label = label;
    return v;
}

Record ConfigService::document(const DocKey& key, std::int64_t version) const {
    check_key(key);
    if (version == 0) {
        auto s = state();
        auto it = s->docs.find(key);
        if (it == s->docs.end() || !it->second.stable)
            throw HttpError(404, "Not Found", "no document " + key.name());
        return *it->second.stable;
    }
    std::lock_guard lock(write_mutex_);
    auto r = store_->find(key, version);
    if (!r) storage_failed(r.error());
    if (!*r) throw HttpError(404, "Not Found", key.name() + " has no version " + std::to_string(version));
    return std::move(**r);
}

std::vector<Record> ConfigService::history(const DocKey& key, std::int64_t before, std::size_t limit) const {
    check_key(key);
    Result<std::vector<Record>> r;
    {
        std::lock_guard lock(write_mutex_);
        r = store_->history(key, before, limit);
    }
    if (!r) storage_failed(r.error());
    for (auto& rec : *r)
        if (rec.content) SecretBox::mask_all(*rec.content);
    return std::move(*r);
}

std::vector<Change> ConfigService::diff(const DocKey& key, std::int64_t from, std::int64_t to) const {
    auto b = document(key, to);
    Record a;
    if (from == 0) {
        std::lock_guard lock(write_mutex_);
        auto r = store_->stable_at(key, b.version - 1);
        if (!r) storage_failed(r.error());
        if (*r) a = std::move(**r);
    } else {
        a = document(key, from);
    }
    auto changes = config::diff(
        a.content.value_or(json::object()), b.content.value_or(json::object()),
        [&](const json::value& x, const json::value& y) { return secrets_.same(x, y, key.app); });
    for (auto& c : changes) {
        if (SecretBox::is_secret(c.from)) c.from = json::string(kMasked);
        if (SecretBox::is_secret(c.to)) c.to = json::string(kMasked);
    }
    return changes;
}

// ---- writes

namespace {

json::object apply_edit(const Edit& edit, const json::object& current) {
    json::object out = edit.content ? *edit.content : current;
    for (const auto& [key, value] : edit.set) {
        std::string why;
        if (value.is_null())
            remove_path(out, key);
        else if (!set_path(out, key, value, why))
            throw HttpError(400, "Bad Request", why);
    }
    return out;
}

// `expected` is the version the writer read: the stable record's, which reads answer (a canary
// aborted after it adds a later record that no read shows).
void check_expected(std::int64_t expected, const ConfigService::DocState* d, const DocKey& key) {
    std::int64_t shown = d && d->stable ? d->stable->version : 0;
    if (expected >= 0 && expected != shown)
        throw HttpError(409, "Conflict",
                        key.name() + " is at version " + std::to_string(shown) + ", not " +
                            std::to_string(expected) + ": read it again and reapply the change");
}

}  // namespace

Record ConfigService::commit(const Caller& caller, Record r, const State& current) {
    if (r.content) {
        std::string why;
        if (!secrets_.seal(*r.content, r.key.app, why)) throw HttpError(400, "Bad Request", why);
    }
    r.author = caller.name.empty() ? "anonymous" : caller.name;
    r.time_ms = now_ms();
    auto next = std::make_shared<State>(current);
    auto& d = next->docs[r.key];
    const auto expected = d.latest;
    apply_record(d, r);
    validate(*next, r.key);
    auto version = store_->append(r, expected);
    if (!version) {
        if (version.error() == errc::conflict)
            throw HttpError(409, "Conflict",
                            r.key.name() + " was changed meanwhile: read it again and reapply the change");
        storage_failed(version.error());
    }
    r.version = *version;
    install(std::move(next), r, "configuration changed");
    return r;
}

void ConfigService::validate(const State& s, const DocKey& changed) const {
    std::vector<std::string> apps;
    if (changed.app == kSharedApplication) {
        for (const auto& [app, schema] : s.schemas) apps.push_back(app);
    } else if (s.schemas.contains(changed.app)) {
        apps.push_back(changed.app);
    }
    for (const auto& app : apps) {
        const auto& schema = s.schemas.find(app)->second.schema;
        std::set<std::string> profiles;
        bool canaries = false;
        for (const auto& [key, d] : s.docs) {
            if (key.app != app && key.app != kSharedApplication) continue;
            if (!key.profile.empty()) profiles.insert(key.profile);
            canaries = canaries || d.canary;
        }
        std::vector<std::vector<std::string>> combos{{}};
        for (const auto& p : profiles) combos.push_back({p});
        std::vector<Pick> picks{[](const DocState& d) { return d.stable.get(); }};
        if (canaries)
            picks.push_back([](const DocState& d) { return d.canary ? d.canary.get() : d.stable.get(); });
        for (const auto& profile : combos) {
            for (const auto& pick : picks) {
                auto v = merged(s, app, profile, pick, true);
                auto errors = core::validate(schema, v.config, 10);
                if (errors.empty()) continue;
                std::string detail = "the change would give " + app +
                                     (profile.empty() ? std::string() : " (profile " + profile[0] + ")") +
                                     " settings its schema refuses: ";
                for (std::size_t i = 0; i < errors.size(); ++i)
                    detail += (i ? "; " : "") +
                              (errors[i].key.empty() ? std::string("(root)") : errors[i].key) + ": " +
                              errors[i].reason;
                throw HttpError(400, "Bad Request", detail);
            }
        }
    }
}

namespace {

// A write's first checks: the document's name, and the caller's right to change it (403 saying
// what `doing` needs).
void need_write(const Caller& caller, const DocKey& key, const std::string& doing) {
    check_key(key);
    if (!caller.may_write(key.app))
        throw HttpError(403, "Forbidden", doing + " needs scope config:write:" + key.app);
}

// The document as served, or null for one never written.
const ConfigService::DocState* doc_in(const std::map<DocKey, ConfigService::DocState>& docs,
                                      const DocKey& key) {
    auto it = docs.find(key);
    return it == docs.end() ? nullptr : &it->second;
}

// Nothing but promote and abort changes a document while a canary of it is out.
void refuse_during_canary(const ConfigService::DocState* d, const DocKey& key) {
    if (d && d->canary)
        throw HttpError(409, "Conflict",
                        key.name() + " has a canary pending (version " + std::to_string(d->canary->version) +
                            "): promote or abort it first");
}

}  // namespace

Record ConfigService::write(const Caller& caller, const DocKey& key, Edit edit) {
    need_write(caller, key, "writing " + key.app);
    return edited(caller, key, std::move(edit), Kind::set, {});
}

Record ConfigService::start_canary(const Caller& caller, const DocKey& key, Edit edit, Targets targets) {
    need_write(caller, key, "a canary");
    if (targets.instances.empty() && targets.percent <= 0)
        throw HttpError(400, "Bad Request", "a canary needs instances or a percent above 0");
    if (targets.percent < 0 || targets.percent > 100)
        throw HttpError(400, "Bad Request", "percent must be between 0 and 100");
    return edited(caller, key, std::move(edit), Kind::canary, std::move(targets));
}

Record ConfigService::edited(const Caller& caller, const DocKey& key, Edit edit, Kind kind, Targets targets) {
    std::lock_guard lock(write_mutex_);
    auto s = state();
    const DocState* d = doc_in(s->docs, key);
    refuse_during_canary(d, key);
    check_expected(edit.expected, d, key);
    Record r;
    r.key = key;
    r.kind = kind;
    r.message = edit.message;
    r.targets = std::move(targets);
    r.content = apply_edit(edit, d && d->stable && d->stable->content ? *d->stable->content : json::object());
    return commit(caller, std::move(r), *s);
}

Record ConfigService::remove(const Caller& caller, const DocKey& key, std::string message,
                             std::int64_t expected) {
    need_write(caller, key, "deleting");
    std::lock_guard lock(write_mutex_);
    auto s = state();
    const DocState* d = doc_in(s->docs, key);
    if (!d || !d->stable || !d->stable->content)
        throw HttpError(404, "Not Found", "no document " + key.name());
    refuse_during_canary(d, key);
    check_expected(expected, d, key);
    Record r;
    r.key = key;
    r.kind = Kind::remove;
    r.message = std::move(message);
    return commit(caller, std::move(r), *s);
}

Record ConfigService::rollback(const Caller& caller, const DocKey& key, std::int64_t version,
                               std::string message) {
    need_write(caller, key, "rolling back");
    auto target = document(key, version);  // before the lock: document() takes it
    std::lock_guard lock(write_mutex_);
    if (target.kind == Kind::abort) {
        // An abort has no content of its own: the document then stood at the stable content the
        // abort returned to, not deleted.
        auto stable = store_->stable_at(key, version);
        if (!stable) storage_failed(stable.error());
        target.content = *stable ? std::move((*stable)->content) : std::nullopt;
    }
    auto s = state();
    refuse_during_canary(doc_in(s->docs, key), key);
    Record r;
    r.key = key;
    r.source = version;
    r.content = std::move(target.content);  // a remove's none: rolling back to it deletes again
    r.kind = r.content ? Kind::rollback : Kind::remove;
    r.message = message.empty() ? "rollback to version " + std::to_string(version) : std::move(message);
    return commit(caller, std::move(r), *s);
}

Record ConfigService::end_canary(const Caller& caller, const DocKey& key, Kind kind, std::string message) {
    const char* what = kind == Kind::promote ? "promote" : "abort";
    need_write(caller, key, what);
    std::lock_guard lock(write_mutex_);
    auto s = state();
    auto it = s->docs.find(key);
    if (it == s->docs.end() || !it->second.canary)
        throw HttpError(404, "Not Found", key.name() + " has no canary pending");
    Record r;
    r.key = key;
    r.kind = kind;
    r.source = it->second.canary->version;
    if (kind == Kind::promote) r.content = it->second.canary->content;  // an abort has none
    r.message =
        message.empty() ? std::string(what) + " canary " + std::to_string(r.source) : std::move(message);
    return commit(caller, std::move(r), *s);
}

Record ConfigService::promote(const Caller& caller, const DocKey& key, std::string message) {
    return end_canary(caller, key, Kind::promote, std::move(message));
}

Record ConfigService::abort_canary(const Caller& caller, const DocKey& key, std::string message) {
    return end_canary(caller, key, Kind::abort, std::move(message));
}

void ConfigService::put_schema(const Caller& caller, const std::string& app, json::value schema,
                               std::vector<std::string>* problems) {
    if (auto why = app_name_problem(app); !why.empty() && app != kSharedApplication)
        throw HttpError(400, "Bad Request", why);
    if (!caller.may_read(app))
        throw HttpError(403, "Forbidden", "publishing a schema needs scope config:read:" + app);
    if (auto why = core::check_schema(schema); !why.empty())
        throw HttpError(400, "Bad Request", "the schema: " + why);
    auto tell = [&](const State& with_schema) {
        if (!problems) return;
        try {
            validate(with_schema, DocKey{app, ""});
        } catch (const HttpError& e) {
            problems->push_back(e.what());
        }
    };
    std::lock_guard lock(write_mutex_);
    auto s = state();
    if (auto it = s->schemas.find(app); it != s->schemas.end() && it->second.schema == schema) {
        tell(*s);  // every instance publishes its schema at start: each one is told, not only the first
        return;
    }
    Schema sc{app, std::move(schema), caller.name.empty() ? "anonymous" : caller.name, now_ms()};
    if (auto r = store_->put_schema(sc); !r) storage_failed(r.error());
    auto next = std::make_shared<State>(*s);
    next->schemas.insert_or_assign(app, sc);
    tell(*next);
    state_.store(std::move(next));
    telemetry::info("configuration schema published", {{"application", app}, {"author", sc.author}});
}

void ConfigService::put_label(const Caller& caller, const std::string& name, std::int64_t revision,
                              std::string message) {
    if (!caller.admin() && !serving::has_scope(caller.scope, "config:write"))
        throw HttpError(403, "Forbidden", "labels need scope config:write");
    if (!profile_name_problem(name).empty())
        throw HttpError(
            400, "Bad Request",
            "a label name must be letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "at most 100 characters");
    if (std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw HttpError(400, "Bad Request", "a label name cannot be a number (numbers name revisions)");
    std::lock_guard lock(write_mutex_);
    auto s = state();
    if (s->revision == 0)
        throw HttpError(409, "Conflict", "nothing has been written yet: there is no revision to label");
    if (revision == 0) revision = s->revision;
    if (revision < 0 || revision > s->revision)
        throw HttpError(400, "Bad Request", "revision must be between 1 and " + std::to_string(s->revision));
    Label l{name, revision, caller.name.empty() ? "anonymous" : caller.name, std::move(message), now_ms()};
    if (auto r = store_->put_label(l); !r) storage_failed(r.error());
    auto next = std::make_shared<State>(*s);
    next->labels.insert_or_assign(name, l);
    state_.store(std::move(next));
}

bool ConfigService::delete_label(const Caller& caller, const std::string& name) {
    if (!caller.admin() && !serving::has_scope(caller.scope, "config:write"))
        throw HttpError(403, "Forbidden", "labels need scope config:write");
    std::lock_guard lock(write_mutex_);
    auto r = store_->delete_label(name);
    if (!r) storage_failed(r.error());
    auto next = std::make_shared<State>(*state());
    next->labels.erase(name);
    state_.store(std::move(next));
    return *r;
}

// ---- instances

namespace {
constexpr std::int64_t kForgetAfterMs = 10 * 60 * 1000;
constexpr std::size_t kMaxInstancesPerApp = 10'000;
}  // namespace

void ConfigService::seen(const std::string& app, const std::string& instance, const std::string& profiles,
                         std::int64_t version) {
    if (instance.empty()) return;
    auto now = now_ms();
    std::lock_guard lock(seen_mutex_);
    auto& apps = seen_[app];
    auto it = apps.find(instance);
    if (it == apps.end()) {
        if (apps.size() >= kMaxInstancesPerApp) {
            auto oldest = std::min_element(apps.begin(), apps.end(), [](const auto& a, const auto& b) {
                return a.second.seen_ms < b.second.seen_ms;
            });
            apps.erase(oldest);
        }
        it = apps.emplace(instance, Seen{}).first;
        it->second.report.instance = instance;
    }
    it->second.report.profiles = profiles;
    // What it was sent, until it says what it made of it (a report keeps its own versions).
    if (!it->second.report.time_ms) it->second.report.offered = version;
    it->second.seen_ms = now;
}

void ConfigService::report(const std::string& app, InstanceReport report) {
    auto instance = report.instance;
    seen(app, instance, report.profiles, 0);
    std::lock_guard lock(seen_mutex_);
    auto& entry = seen_[app][instance];
    report.time_ms = now_ms();
    entry.report = std::move(report);
    entry.seen_ms = entry.report.time_ms;
}

std::vector<InstanceReport> ConfigService::instances(const std::string& app) const {
    auto now = now_ms();
    std::vector<InstanceReport> out;
    std::lock_guard lock(seen_mutex_);
    auto it = seen_.find(app);
    if (it == seen_.end()) return out;
    for (const auto& [id, s] : it->second)
        if (now - s.seen_ms <= kForgetAfterMs) out.push_back(s.report);
    return out;
}

}  // namespace plexus::config
