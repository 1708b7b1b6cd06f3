#include "plexus/config/etcd_store.hpp"

#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "plexus/net/blocking.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/security/secrets.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::config {

namespace json = boost::json;
using Op = etcd::Compare::Op;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr std::int64_t kMaxVersion = std::numeric_limits<std::int64_t>::max();
// Records read per page while looking for a document's stable record at a revision.
constexpr std::int64_t kStablePage = 32;
// How long the feed waits before telling a follower again what it could not take.
constexpr milliseconds kFollowerRetry{500};
// The bound of one try of a write that an append or its settling makes.
constexpr milliseconds kWriteAttempt{1500};
// The pause before trying again a write that was certainly not applied.
constexpr milliseconds kRetryPause{100};
// How long the fence of an append whose outcome was unknown stays.
constexpr std::chrono::seconds kFenceLife{600};
// Beyond an operation's own bound, what the blocking wait leaves the io thread to answer.
constexpr milliseconds kWaitMargin{2000};

// ---- names

std::string escape(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (c == '%') {
            out += "%25";
        } else if (c == '/') {
            out += "%2F";
        } else {
            out += c;
        }
    }
    return out;
}

std::string unescape(std::string_view name) {
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '%' && name.substr(i, 3) == "%25") {
            out += '%';
            i += 2;
        } else if (name[i] == '%' && name.substr(i, 3) == "%2F") {
            out += '/';
            i += 2;
        } else {
            out += name[i];
        }
    }
    return out;
}

std::string inverted(std::int64_t version) {
    char text[24];
    std::snprintf(text, sizeof text, "%019lld", static_cast<long long>(kMaxVersion - version));
    return text;
}

std::optional<std::int64_t> number_of(std::string_view text) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return n;
}

// The store's keys under its prefix (see etcd_store.hpp).
struct Keys {
    std::string prefix;

    static std::string doc(const DocKey& k) { return escape(k.app) + "/" + escape(k.profile); }
    std::string counter() const { return prefix + "counter"; }
    std::string records(const DocKey& k) const { return prefix + "records/" + doc(k) + "/"; }
    std::string record(const DocKey& k, std::int64_t version) const { return records(k) + inverted(version); }
    std::string latest_dir() const { return prefix + "latest/"; }
    std::string latest(const DocKey& k) const { return latest_dir() + doc(k); }
    std::string stable_dir() const { return prefix + "stable/"; }
    std::string stable(const DocKey& k) const { return stable_dir() + doc(k); }
    std::string canary_dir() const { return prefix + "canary/"; }
    std::string canary(const DocKey& k) const { return canary_dir() + doc(k); }
    std::string records_dir() const { return prefix + "records/"; }
    std::string labels_dir() const { return prefix + "labels/"; }
    std::string label(std::string_view name) const { return labels_dir() + escape(name); }
    std::string schemas_dir() const { return prefix + "schemas/"; }
    std::string schema(std::string_view app) const { return schemas_dir() + escape(app); }
    std::string fence(std::string_view id) const { return prefix + "fences/" + std::string(id); }

    // The document a `latest/` key names.
    std::optional<DocKey> doc_of(std::string_view key, std::string_view dir) const {
        if (!key.starts_with(dir)) return std::nullopt;
        auto rest = key.substr(dir.size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos) return std::nullopt;
        return DocKey{unescape(rest.substr(0, slash)), unescape(rest.substr(slash + 1))};
    }
};

// ---- values

json::object record_json(const Record& r, const std::string& id) {
    json::object o{{"version", r.version},      {"app", r.key.app},   {"profile", r.key.profile},
                   {"kind", kind_name(r.kind)}, {"author", r.author}, {"message", r.message},
                   {"time_ms", r.time_ms},      {"source", r.source}, {"id", id}};
    if (r.content) o["content"] = *r.content;
    if (r.kind == Kind::canary) o["targets"] = targets_json(r.targets);
    return o;
}

std::string text_of(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t int_of(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v && v->is_int64() ? v->get_int64() : 0;
}

// A stored record and the id of the append that wrote it.
Result<std::pair<Record, std::string>> record_of(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return errc::malformed;
    const auto& o = v.get_object();
    Record r;
    r.version = int_of(o, "version");
    r.key = {text_of(o, "app"), text_of(o, "profile")};
    auto kind = kind_named(text_of(o, "kind"));
    if (!kind || r.version <= 0) return errc::malformed;
    r.kind = *kind;
    if (const auto* c = o.if_contains("content")) {
        if (!c->is_object()) return errc::malformed;
        r.content = c->get_object();
    }
    r.author = text_of(o, "author");
    r.message = text_of(o, "message");
    r.time_ms = int_of(o, "time_ms");
    r.source = int_of(o, "source");
    if (const auto* t = o.if_contains("targets"); t && t->is_object())
        r.targets = targets_of(t->get_object());
    return std::pair{std::move(r), text_of(o, "id")};
}

Result<Label> label_of(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return errc::malformed;
    const auto& o = v.get_object();
    return Label{text_of(o, "name"), int_of(o, "revision"), text_of(o, "author"), text_of(o, "message"),
                 int_of(o, "time_ms")};
}

Result<Schema> schema_of(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object() || !v.get_object().contains("schema")) return errc::malformed;
    const auto& o = v.get_object();
    return Schema{text_of(o, "app"), o.at("schema"), text_of(o, "author"), int_of(o, "time_ms")};
}

// The value of the only key a range found, or nullopt when it found none.
const etcd::KeyValue* only(const etcd::RangeResponse& r) { return r.kvs.empty() ? nullptr : &r.kvs.front(); }

// A number kept as a decimal value (a missing key is 0).
Result<std::int64_t> number_at(const etcd::RangeResponse& r) {
    const auto* kv = only(r);
    if (!kv) return std::int64_t{0};
    auto n = number_of(kv->value);
    if (!n) return errc::malformed;
    return *n;
}

// "Has the value `n`", where 0 is "does not exist".
etcd::Compare holds(std::string key, std::int64_t n) {
    if (n == 0) return etcd::Compare::version(std::move(key), Op::equal, 0);
    return etcd::Compare::with_value(std::move(key), Op::equal, std::to_string(n));
}

etcd::RangeRequest key_range(std::string key) {
    etcd::RangeRequest r;
    r.key = std::move(key);
    return r;
}

etcd::DeleteRequest key_delete(std::string key) {
    etcd::DeleteRequest d;
    d.key = std::move(key);
    return d;
}

Result<bool> failed(ErrorCode ec) { return {boost::system::in_place_error, ec}; }

milliseconds left_until(SteadyClock::time_point deadline) {
    return std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
}

ErrorCode out_of_time(std::string_view what) {
    return etcd::make_error(etcd::errc::timeout, std::string(what) + " did not end in time");
}

// ---- following

// What the watch hands to the thread that tells the follower.
struct FeedItem {
    enum class Type { record, metadata, reload };
    Type type = Type::record;
    Record record;
};

// Shared by the store, its watches (on the io thread) and the thread that tells the follower.
// Only the items, the current watch and the stop flag are shared; the follower itself is touched
// by the feed thread only. A watch pushes items only while it is the current one: a watch started
// after a reload supersedes any earlier one.
struct Feed {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<FeedItem> items;
    std::uint64_t current = 0;  // the number of the watch that feeds
    bool stopping = false;

    // False when `watch` is no longer the one that feeds (or the feed stopped).
    bool push(std::uint64_t watch, FeedItem item) {
        {
            std::lock_guard lock(mutex);
            if (stopping || watch != current) return false;
            items.push_back(std::move(item));
        }
        wake.notify_one();
        return true;
    }
    bool feeds(std::uint64_t watch) {
        std::lock_guard lock(mutex);
        return !stopping && watch == current;
    }
    bool stopped() {
        std::lock_guard lock(mutex);
        return stopping;
    }
    std::uint64_t next_watch() {
        std::lock_guard lock(mutex);
        return ++current;
    }
};

class EtcdStore final : public Store {
  public:
    EtcdStore(etcd::Settings settings, std::string prefix)
        : timeout_(settings.timeout),
          client_(std::move(settings)),
          keys_{std::move(prefix)},
          io_([this] { runtime_.run(); }) {}

    ~EtcdStore() override {
        stop_following();
        runtime_.stop();
        io_.join();
    }

    Result<Loaded> load() override { return wait(load_async(), timeout_ + kWaitMargin, "reading the store"); }

    Result<Loaded> load_metadata() override {
        return wait(load_metadata_async(), timeout_ + kWaitMargin, "reading labels and schemas");
    }

    Result<std::int64_t> append(const Record& record, std::int64_t expected) override {
        return wait(append_async(record, expected), 2 * timeout_ + kWaitMargin, "an append");
    }

    Result<std::vector<Record>> history(const DocKey& key, std::int64_t before, std::size_t limit) override {
        if (before < 0 || limit == 0) return std::vector<Record>();
        return wait(history_async(key, before, limit), timeout_ + kWaitMargin, "reading a history");
    }

    Result<std::optional<Record>> find(const DocKey& key, std::int64_t version) override {
        if (version <= 0) return std::optional<Record>();
        return wait(find_async(key, version), timeout_ + kWaitMargin, "reading a record");
    }

    Result<std::optional<Record>> stable_at(const DocKey& key, std::int64_t revision) override {
        if (revision <= 0) return std::optional<Record>();
        return wait(stable_at_async(key, revision), timeout_ + kWaitMargin, "reading a record");
    }

    Result<void> put_label(const Label& l) override {
        json::object o{{"name", l.name},
                       {"revision", l.revision},
                       {"author", l.author},
                       {"message", l.message},
                       {"time_ms", l.time_ms}};
        return put(keys_.label(l.name), json::serialize(o));
    }

    Result<bool> delete_label(const std::string& name) override {
        auto task = [](etcd::Client c, std::string key) -> net::Task<Result<bool>> {
            auto r = co_await c.delete_range(key_delete(std::move(key)));
            if (!r) co_return failed(r.error());
            co_return r->deleted > 0;
        }(client_, keys_.label(name));
        return wait(std::move(task), timeout_ + kWaitMargin, "deleting a label");
    }

    Result<void> put_schema(const Schema& s) override {
        json::object o{{"app", s.app}, {"schema", s.schema}, {"author", s.author}, {"time_ms", s.time_ms}};
        return put(keys_.schema(s.app), json::serialize(o));
    }

    void follow(Follower follower) override {
        if (feed_->stopped() || feeder_.joinable()) return;
        follower_ = std::move(follower);
        start_watch(loaded_at_ + 1);
        feeder_ = std::thread([this] { tell_follower(); });
    }

    void stop_following() override {
        {
            std::lock_guard lock(feed_->mutex);
            feed_->stopping = true;
            feed_->items.clear();
        }
        feed_->wake.notify_all();
        if (feeder_.joinable()) feeder_.join();
    }

  private:
    // Runs `task` on the io thread and waits for it at most `bound`.
    template <class T>
    Result<T> wait(net::Task<Result<T>> task, milliseconds bound, std::string_view what) {
        auto future = net::start(runtime_.executor(0), std::move(task));
        if (future.wait_for(bound) != std::future_status::ready)
            return Result<T>(boost::system::in_place_error, out_of_time(what));
        try {
            return future.get();
        } catch (const std::exception& e) {
            telemetry::error("config store call failed", {{"call", what}, {"error", e.what()}});
            return Result<T>(boost::system::in_place_error, errc::storage);
        }
    }

    Result<void> put(std::string key, std::string value) {
        auto task = [](etcd::Client c, std::string key, std::string value) -> net::Task<Result<void>> {
            auto r = co_await c.put(std::move(key), std::move(value));
            if (!r) co_return r.error();
            co_return Result<void>();
        }(client_, std::move(key), std::move(value));
        return wait(std::move(task), timeout_ + kWaitMargin, "a write");
    }

    // Everything load() answers, read in one transaction (one revision).
    net::Task<Result<Loaded>> load_async() {
        etcd::TxnRequest t;
        t.success = {key_range(keys_.counter()),
                     etcd::RangeRequest::with_prefix(keys_.latest_dir()),
                     etcd::RangeRequest::with_prefix(keys_.stable_dir()),
                     etcd::RangeRequest::with_prefix(keys_.canary_dir()),
                     etcd::RangeRequest::with_prefix(keys_.labels_dir()),
                     etcd::RangeRequest::with_prefix(keys_.schemas_dir())};
        auto r = co_await client_.txn(std::move(t));
        if (!r) co_return r.error();
        if (r->responses.size() != 6)
            co_return etcd::make_error(etcd::errc::bad_response, "a short txn answer");
        auto range = [&](std::size_t i) -> const etcd::RangeResponse& {
            return std::get<etcd::RangeResponse>(r->responses[i]);
        };
        Loaded out;
        auto counter = number_at(range(0));
        if (!counter) co_return counter.error();
        out.revision = *counter;
        for (const auto& kv : range(1).kvs) {
            auto key = keys_.doc_of(kv.key, keys_.latest_dir());
            auto version = number_of(kv.value);
            if (!key || !version) co_return errc::malformed;
            out.latest.push_back({std::move(*key), *version});
        }
        for (std::size_t i : {2u, 3u}) {
            for (const auto& kv : range(i).kvs) {
                auto rec = record_of(kv.value);
                if (!rec) co_return rec.error();
                (i == 2 ? out.stable : out.canary).push_back(std::move(rec->first));
            }
        }
        if (auto read = read_metadata(range(4), range(5), out); !read) co_return read.error();
        counter_ = out.revision;
        loaded_at_ = r->header.revision;
        co_return out;
    }

    // The labels and schemas alone, in one read-only transaction.
    net::Task<Result<Loaded>> load_metadata_async() {
        etcd::TxnRequest t;
        t.success = {etcd::RangeRequest::with_prefix(keys_.labels_dir()),
                     etcd::RangeRequest::with_prefix(keys_.schemas_dir())};
        auto r = co_await client_.txn(std::move(t));
        if (!r) co_return r.error();
        if (r->responses.size() != 2)
            co_return etcd::make_error(etcd::errc::bad_response, "a short txn answer");
        Loaded out;
        auto read = read_metadata(std::get<etcd::RangeResponse>(r->responses[0]),
                                  std::get<etcd::RangeResponse>(r->responses[1]), out);
        if (!read) co_return read.error();
        co_return out;
    }

    static Result<void> read_metadata(const etcd::RangeResponse& labels, const etcd::RangeResponse& schemas,
                                      Loaded& out) {
        for (const auto& kv : labels.kvs) {
            auto l = label_of(kv.value);
            if (!l) return l.error();
            out.labels.push_back(std::move(*l));
        }
        for (const auto& kv : schemas.kvs) {
            auto s = schema_of(kv.value);
            if (!s) return s.error();
            out.schemas.push_back(std::move(*s));
        }
        return {};
    }

    net::Task<Result<std::int64_t>> append_async(Record r, std::int64_t expected) {
        const auto start = SteadyClock::now();
        // New attempts until timeout_; settling one whose outcome etcd left open, until twice that.
        const auto attempts_end = start + timeout_;
        const auto settle_end = start + 2 * timeout_;
        auto id = security::random_token(16);
        ErrorCode last = out_of_time("an append");
        while (true) {
            auto left = left_until(attempts_end);
            if (left.count() <= 0) co_return last;
            const auto next = counter_ + 1;
            r.version = next;
            auto value = json::serialize(record_json(r, id));
            etcd::TxnRequest t;
            t.compare = {holds(keys_.latest(r.key), expected), holds(keys_.counter(), counter_),
                         etcd::Compare::version(keys_.fence(id), Op::equal, 0)};
            t.success = {etcd::PutRequest{keys_.record(r.key, next), value, 0, false},
                         etcd::PutRequest{keys_.latest(r.key), std::to_string(next), 0, false},
                         etcd::PutRequest{keys_.counter(), std::to_string(next), 0, false}};
            if (r.kind == Kind::canary) {
                t.success.push_back(etcd::PutRequest{keys_.canary(r.key), value, 0, false});
            } else if (r.kind == Kind::abort) {
                t.success.push_back(key_delete(keys_.canary(r.key)));
            } else {
                t.success.push_back(etcd::PutRequest{keys_.stable(r.key), value, 0, false});
                t.success.push_back(key_delete(keys_.canary(r.key)));
            }
            t.failure = {key_range(keys_.latest(r.key)), key_range(keys_.counter())};
            // A bounded attempt: a member still waiting for a leader that died holds a write until
            // etcd's own request timeout, long after a new leader could take it.
            auto done = co_await client_.with_timeout(std::min(left, kWriteAttempt)).txn(std::move(t));
            if (!done) {
                last = done.error();
                if (done.error() == etcd::errc::unavailable || done.error() == etcd::errc::timeout) {
                    // Refused before it was proposed, or never sent: certainly not applied.
                    co_await net::sleep_for(std::min(kRetryPause, left));
                    continue;
                }
                if (done.error() != etcd::errc::outcome_unknown) co_return done.error();
                auto applied = co_await settle(r.key, next, id, settle_end);
                if (!applied) co_return applied.error();
                if (*applied) {
                    counter_ = next;
                    co_return next;
                }
                telemetry::warn("config store: an append whose outcome etcd could not tell was not applied",
                                {{"version", next}});
                id = security::random_token(16);  // the old id's fence stays up
                continue;
            }
            if (done->succeeded) {
                counter_ = next;
                co_return next;
            }
            if (done->responses.size() != 2)
                co_return etcd::make_error(etcd::errc::bad_response, "a short txn answer");
            auto latest = number_at(std::get<etcd::RangeResponse>(done->responses[0]));
            auto counter = number_at(std::get<etcd::RangeResponse>(done->responses[1]));
            if (!latest) co_return latest.error();
            if (!counter) co_return counter.error();
            if (*latest != expected) co_return errc::conflict;
            if (*counter == counter_)
                co_return etcd::make_error(etcd::errc::bad_response,
                                           "an append failed its comparison but nothing it compares changed");
            // Another server wrote another document meanwhile: take the number after its.
            counter_ = *counter;
        }
    }

    // Whether the append `id` of version `version` applied, once it certainly cannot apply later;
    // an error when that cannot be told by `deadline`.
    net::Task<Result<bool>> settle(DocKey key, std::int64_t version, std::string id,
                                   SteadyClock::time_point deadline) {
        const auto too_late = [] {
            return out_of_time("settling an append whose outcome etcd could not tell");
        };
        auto attempt = [&] { return client_.with_timeout(std::min(left_until(deadline), kWriteAttempt)); };
        // The fence first: once it is written the append's transaction (which requires it absent)
        // cannot apply, so what the read below finds is final. It goes with a lease, long past
        // any time a transaction can still be on its way through the cluster. A put may be sent
        // again; a fence without a lease (when none can be granted) only costs a key.
        std::int64_t lease = 0;
        if (left_until(deadline).count() <= 0) co_return failed(too_late());
        if (auto granted = co_await attempt().lease_grant(kFenceLife)) lease = granted->id;
        while (true) {
            auto left = left_until(deadline);
            if (left.count() <= 0) co_return failed(too_late());
            auto fenced = co_await attempt().put(keys_.fence(id), "fence", lease);
            if (fenced) break;
            if (fenced.error() == etcd::errc::lease_not_found) {
                lease = 0;
                continue;
            }
            if (fenced.error() != etcd::errc::outcome_unknown && fenced.error() != etcd::errc::unavailable &&
                fenced.error() != etcd::errc::timeout)
                co_return failed(fenced.error());
            co_await net::sleep_for(std::min(kRetryPause, left));
        }
        auto left = left_until(deadline);
        if (left.count() <= 0) co_return failed(too_late());
        auto found = co_await client_.with_timeout(left).get(keys_.record(key, version));
        if (!found) co_return failed(found.error());
        bool applied = false;
        if (*found) {
            auto rec = record_of((*found)->value);
            applied = rec && rec->second == id;
        }
        co_return applied;
    }

    net::Task<Result<std::vector<Record>>> history_async(DocKey key, std::int64_t before, std::size_t limit) {
        etcd::RangeRequest q;
        q.key = before > 0 ? keys_.record(key, before - 1) : keys_.records(key);
        q.range_end = etcd::prefix_end(keys_.records(key));
        q.limit = static_cast<std::int64_t>(limit);
        auto r = co_await client_.range(std::move(q));
        if (!r) co_return r.error();
        std::vector<Record> out;
        for (const auto& kv : r->kvs) {
            auto rec = record_of(kv.value);
            if (!rec) co_return rec.error();
            out.push_back(std::move(rec->first));
        }
        co_return out;
    }

    net::Task<Result<std::optional<Record>>> find_async(DocKey key, std::int64_t version) {
        auto r = co_await client_.get(keys_.record(key, version));
        if (!r) co_return r.error();
        if (!*r) co_return std::optional<Record>();
        auto rec = record_of((*r)->value);
        if (!rec) co_return rec.error();
        co_return std::optional<Record>(std::move(rec->first));
    }

    net::Task<Result<std::optional<Record>>> stable_at_async(DocKey key, std::int64_t revision) {
        etcd::RangeRequest q;
        q.key = keys_.record(key, revision);
        q.range_end = etcd::prefix_end(keys_.records(key));
        q.limit = kStablePage;
        while (true) {
            auto r = co_await client_.range(q);
            if (!r) co_return r.error();
            for (const auto& kv : r->kvs) {
                auto rec = record_of(kv.value);
                if (!rec) co_return rec.error();
                if (is_stable(rec->first.kind)) co_return std::optional<Record>(std::move(rec->first));
            }
            if (!r->more || r->kvs.empty()) co_return std::optional<Record>();
            q.key = r->kvs.back().key + '\0';
            // Later pages at the first page's revision: a record appended meanwhile is newer anyway.
            q.revision = r->header.revision;
        }
    }

    // ---- following

    void start_watch(std::int64_t from) {
        net::spawn(runtime_.executor(0), watch(client_, keys_, feed_, feed_->next_watch(), from),
                   "config store watch");
    }

    static net::Task<void> watch(etcd::Client client, Keys keys, std::shared_ptr<Feed> feed,
                                 std::uint64_t number, std::int64_t from) {
        auto on_batch = [keys, feed, number](const etcd::WatchBatch& batch) {
            bool metadata = false;
            for (const auto& e : batch.events) {
                const auto& k = e.kv.key;
                if (k.starts_with(keys.labels_dir()) || k.starts_with(keys.schemas_dir())) {
                    metadata = true;
                } else if (k.starts_with(keys.records_dir()) && e.type == etcd::Event::Type::put) {
                    auto rec = record_of(e.kv.value);
                    if (!rec) {
                        telemetry::error("config store: a record cannot be read; it is left out",
                                         {{"key", k}, {"revision", e.kv.mod_revision}});
                        continue;
                    }
                    if (!feed->push(number, {FeedItem::Type::record, std::move(rec->first)})) return false;
                }
            }
            if (metadata) return feed->push(number, {FeedItem::Type::metadata, {}});
            return feed->feeds(number);
        };
        auto on_interrupted = [](const ErrorCode& why, std::size_t) {
            telemetry::warn("config store: the watch resumes on another member", {{"why", why.message()}});
        };
        std::string why;
        try {
            auto end = co_await client.watch(etcd::WatchRequest::with_prefix(keys.prefix, from), on_batch,
                                             on_interrupted);
            why =
                end.error.message() + " (oldest revision held: " + std::to_string(end.compact_revision) + ")";
        } catch (const std::exception& e) {
            why = e.what();
        }
        if (!feed->feeds(number)) co_return;
        telemetry::warn("config store: the watch ended; the server reloads everything", {{"why", why}});
        feed->push(number, {FeedItem::Type::reload, {}});
    }

    // The feed thread: tells the follower each item in order; what it could not take is told again.
    void tell_follower() {
        while (true) {
            FeedItem item;
            {
                std::unique_lock lock(feed_->mutex);
                feed_->wake.wait(lock, [&] { return feed_->stopping || !feed_->items.empty(); });
                if (feed_->stopping) return;
                item = std::move(feed_->items.front());
                feed_->items.pop_front();
                // One read of the labels and schemas answers every change to them queued so far.
                if (item.type == FeedItem::Type::metadata)
                    while (!feed_->items.empty() && feed_->items.front().type == FeedItem::Type::metadata)
                        feed_->items.pop_front();
            }
            bool done = false;
            try {
                switch (item.type) {
                    case FeedItem::Type::record:
                        follower_.on_record(item.record);
                        done = true;
                        break;
                    case FeedItem::Type::metadata:
                        done = follower_.on_metadata();
                        break;
                    case FeedItem::Type::reload:
                        done = follower_.on_reload();
                        if (done) start_watch(loaded_at_ + 1);
                        break;
                }
            } catch (const std::exception& e) {
                // A record the follower could not take: only a reload brings it back in step.
                telemetry::error("config store: a follower failed; it reloads everything",
                                 {{"error", e.what()}});
                if (item.type == FeedItem::Type::record) item = {FeedItem::Type::reload, {}};
            }
            if (done) continue;
            std::unique_lock lock(feed_->mutex);
            if (feed_->wake.wait_for(lock, kFollowerRetry, [&] { return feed_->stopping; })) return;
            feed_->items.push_front(std::move(item));
        }
    }

    const milliseconds timeout_;
    etcd::Client client_;
    const Keys keys_;
    // Touched only by the store's (serialised) callers, on the io thread while they wait.
    std::int64_t counter_ = 0;
    // The etcd revision of the last load(): the watch starts (again) just after it.
    std::atomic<std::int64_t> loaded_at_{0};
    std::shared_ptr<Feed> feed_ = std::make_shared<Feed>();
    Follower follower_;
    std::thread feeder_;
    net::Runtime runtime_{1};
    std::thread io_;  // last: it runs runtime_, which must exist first
};

}  // namespace

std::unique_ptr<Store> open_etcd_store(etcd::Settings cluster, std::string prefix) {
    if (cluster.members.empty()) throw std::invalid_argument("the etcd store needs at least one member");
    if (prefix.empty())
        throw std::invalid_argument("the etcd store needs a key prefix, such as /plexus/config/");
    if (prefix.back() != '/') prefix += '/';
    return std::make_unique<EtcdStore>(std::move(cluster), std::move(prefix));
}

}  // namespace plexus::config
