#include <boost/json.hpp>

#include "plexus/config/store.hpp"
#include "plexus/store/database.hpp"

namespace plexus::config {

namespace json = boost::json;

namespace {

constexpr const char* kColumns =
    "version, app, profile, kind, content, author, message, time_ms, source, targets";

Result<Record> record_of(const store::Row& row) {
    Record r;
    r.version = row.get<std::int64_t>(0);
    r.key = {row.get<std::string>(1), row.get<std::string>(2)};
    auto kind = kind_named(row.get<std::string>(3));
    if (!kind) return errc::malformed;
    r.kind = *kind;
    if (auto content = row.get<std::optional<std::string>>(4)) {
        boost::system::error_code ec;
        auto v = json::parse(*content, ec);
        if (ec || !v.is_object()) return errc::malformed;
        r.content = std::move(v.get_object());
    }
    r.author = row.get<std::string>(5);
    r.message = row.get<std::string>(6);
    r.time_ms = row.get<std::int64_t>(7);
    r.source = row.get<std::int64_t>(8);
    if (auto targets = row.get<std::optional<std::string>>(9)) {
        boost::system::error_code ec;
        auto v = json::parse(*targets, ec);
        if (ec || !v.is_object()) return errc::malformed;
        r.targets = targets_of(v.get_object());
    }
    return r;
}

Result<std::vector<Record>> records_of(Result<std::vector<store::Row>> rows) {
    if (!rows) return rows.error();
    std::vector<Record> out;
    for (const auto& row : *rows) {
        auto r = record_of(row);
        if (!r) return r.error();
        out.push_back(std::move(*r));
    }
    return out;
}

class SqliteStore final : public Store {
  public:
    explicit SqliteStore(store::Database db) : db_(std::move(db)) {}

    Result<void> migrate() {
        auto v = db_.migrate({
            "CREATE TABLE record(version INTEGER PRIMARY KEY, app TEXT NOT NULL, profile TEXT NOT NULL, "
            "kind TEXT NOT NULL, content TEXT, author TEXT NOT NULL, message TEXT NOT NULL, "
            "time_ms INTEGER NOT NULL, source INTEGER NOT NULL, targets TEXT);"
            "CREATE INDEX record_doc ON record(app, profile, version);"
            "CREATE TABLE label(name TEXT PRIMARY KEY, revision INTEGER NOT NULL, author TEXT NOT NULL, "
            "message TEXT NOT NULL, time_ms INTEGER NOT NULL);"
            "CREATE TABLE schema(app TEXT PRIMARY KEY, schema TEXT NOT NULL, author TEXT NOT NULL, "
            "time_ms INTEGER NOT NULL);",
        });
        if (!v) return v.error();
        return {};
    }

    Result<Loaded> load() override {
        Loaded out;
        auto rev = db_.query_one("SELECT COALESCE(MAX(version), 0) FROM record");
        if (!rev) return rev.error();
        out.revision = rev->get<std::int64_t>(0);
        auto stable = records_of(db_.query(
            std::string("SELECT ") + kColumns +
            " FROM record r WHERE version = (SELECT MAX(version) FROM record s WHERE s.app = r.app AND "
            "s.profile = r.profile AND s.kind IN ('set','rollback','remove','promote'))"));
        if (!stable) return stable.error();
        out.stable = std::move(*stable);
        auto canary = records_of(
            db_.query(std::string("SELECT ") + kColumns +
                      " FROM record r WHERE kind = 'canary' AND version = (SELECT "
                      "MAX(version) FROM record s WHERE s.app = r.app AND s.profile = r.profile)"));
        if (!canary) return canary.error();
        out.canary = std::move(*canary);
        auto latest = db_.query("SELECT app, profile, MAX(version) FROM record GROUP BY app, profile");
        if (!latest) return latest.error();
        for (const auto& row : *latest)
            out.latest.push_back(
                {{row.get<std::string>(0), row.get<std::string>(1)}, row.get<std::int64_t>(2)});
        auto labels = db_.query("SELECT name, revision, author, message, time_ms FROM label ORDER BY name");
        if (!labels) return labels.error();
        for (const auto& row : *labels)
            out.labels.push_back({row.get<std::string>(0), row.get<std::int64_t>(1), row.get<std::string>(2),
                                  row.get<std::string>(3), row.get<std::int64_t>(4)});
        auto schemas = db_.query("SELECT app, schema, author, time_ms FROM schema ORDER BY app");
        if (!schemas) return schemas.error();
        for (const auto& row : *schemas) {
            boost::system::error_code ec;
            auto v = json::parse(row.get<std::string>(1), ec);
            if (ec) return errc::malformed;
            out.schemas.push_back(
                {row.get<std::string>(0), std::move(v), row.get<std::string>(2), row.get<std::int64_t>(3)});
        }
        return out;
    }

    Result<std::int64_t> append(const Record& r, std::int64_t expected) override {
        auto tx = db_.begin();
        if (!tx) return tx.error();
        auto latest =
            db_.query_one("SELECT COALESCE(MAX(version), 0) FROM record WHERE app = ? AND profile = ?",
                          r.key.app, r.key.profile);
        if (!latest) return latest.error();
        if (latest->get<std::int64_t>(0) != expected) return errc::conflict;
        std::optional<std::string> content, targets;
        if (r.content) content = json::serialize(*r.content);
        if (r.kind == Kind::canary) targets = json::serialize(targets_json(r.targets));
        auto ins = db_.execute(
            "INSERT INTO record(app, profile, kind, content, author, message, time_ms, source, targets) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            r.key.app, r.key.profile, std::string(kind_name(r.kind)), content, r.author, r.message, r.time_ms,
            r.source, targets);
        if (!ins) return ins.error();
        auto version = db_.last_insert_rowid();
        if (auto c = tx->commit(); !c) return c.error();
        return version;
    }

    Result<std::vector<Record>> history(const DocKey& key, std::int64_t before, std::size_t limit) override {
        return records_of(
            db_.query(std::string("SELECT ") + kColumns +
                          " FROM record WHERE app = ? AND profile = ? AND (? = 0 OR version < ?) "
                          "ORDER BY version DESC LIMIT ?",
                      key.app, key.profile, before, before, static_cast<std::int64_t>(limit)));
    }

    Result<std::optional<Record>> find(const DocKey& key, std::int64_t version) override {
        return one(db_.query(
            std::string("SELECT ") + kColumns + " FROM record WHERE app = ? AND profile = ? AND version = ?",
            key.app, key.profile, version));
    }

    Result<std::optional<Record>> stable_at(const DocKey& key, std::int64_t revision) override {
        return one(db_.query(std::string("SELECT ") + kColumns +
                                 " FROM record WHERE app = ? AND profile = ? AND version <= ? AND kind IN "
                                 "('set','rollback','remove','promote') ORDER BY version DESC LIMIT 1",
                             key.app, key.profile, revision));
    }

    Result<void> put_label(const Label& l) override {
        auto r = db_.execute(
            "INSERT OR REPLACE INTO label(name, revision, author, message, time_ms) VALUES (?, ?, ?, ?, ?)",
            l.name, l.revision, l.author, l.message, l.time_ms);
        if (!r) return r.error();
        return {};
    }

    Result<bool> delete_label(const std::string& name) override {
        auto r = db_.execute("DELETE FROM label WHERE name = ?", name);
        if (!r) return Result<bool>(boost::system::in_place_error, r.error());
        return *r > 0;
    }

    Result<void> put_schema(const Schema& s) override {
        auto r =
            db_.execute("INSERT OR REPLACE INTO schema(app, schema, author, time_ms) VALUES (?, ?, ?, ?)",
                        s.app, json::serialize(s.schema), s.author, s.time_ms);
        if (!r) return r.error();
        return {};
    }

  private:
    static Result<std::optional<Record>> one(Result<std::vector<store::Row>> rows) {
        auto records = records_of(std::move(rows));
        if (!records) return records.error();
        if (records->empty()) return std::optional<Record>();
        return std::optional<Record>(std::move(records->front()));
    }

    store::Database db_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
    store::OpenOptions options;
    options.sync_every_commit = true;  // a change is acknowledged only once it survives power loss
    auto db = path == ":memory:" ? store::Database::open_in_memory() : store::Database::open(path, options);
    if (!db) return db.error();
    auto s = std::make_unique<SqliteStore>(std::move(*db));
    if (auto m = s->migrate(); !m) return m.error();
    return std::unique_ptr<Store>(std::move(s));
}

}  // namespace plexus::config
