#include "plexus/store/database.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>
#include <thread>
#include <utility>

#include "sqlite_error.hpp"

namespace plexus::store {

namespace detail {

errc from_sqlite(int rc) noexcept {
    switch (rc & 0xff) {
        case SQLITE_ERROR:
            return errc::sql_error;
        case SQLITE_CONSTRAINT:
            return errc::constraint;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return errc::busy;
        case SQLITE_READONLY:
            return errc::read_only;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
            return errc::cannot_open;
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_PROTOCOL:
        case SQLITE_NOLFS:
            return errc::io_error;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return errc::corrupt;
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
        case SQLITE_TOOBIG:
        case SQLITE_MISMATCH:
            return errc::misuse;
        default:
            return errc::other;
    }
}

ErrorCode sqlite_error(sqlite3* db, int rc, std::string_view context) {
    // sqlite3_errmsg describes the last failed call on this connection, which is the one we are
    // reporting; without a connection only the generic text for the code is known.
    std::string detail(context);
    if (!detail.empty()) detail += ": ";
    detail += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return make_error(from_sqlite(rc), detail);
}

}  // namespace detail

namespace {

using detail::sqlite_error;

// SQL quoted into error messages, cut so that messages stay one readable line.
std::string sql_context(std::string_view sql) {
    constexpr std::size_t kMax = 120;
    std::string s = "in \"";
    for (char c : sql.substr(0, kMax)) s += (c == '\n' || c == '\t') ? ' ' : c;
    if (sql.size() > kMax) s += "...";
    s += '"';
    return s;
}

bool is_memory_path(std::string_view path) {
    return path.empty() || path == ":memory:" || path.starts_with("file::memory:");
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) || s.front() == ';')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

}  // namespace

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), columns_(std::move(other.columns_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        stmt_ = std::exchange(other.stmt_, nullptr);
        columns_ = std::move(other.columns_);
    }
    return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Result<void> Statement::bind(int index, const Value& value) {
    sqlite3_reset(stmt_);  // SQLite refuses bindings on a statement that has been stepped
    int rc = SQLITE_OK;
    switch (value.type()) {
        case ValueType::null:
            rc = sqlite3_bind_null(stmt_, index);
            break;
        case ValueType::integer:
            rc = sqlite3_bind_int64(stmt_, index, std::get<std::int64_t>(value.storage()));
            break;
        case ValueType::real:
            rc = sqlite3_bind_double(stmt_, index, std::get<double>(value.storage()));
            break;
        case ValueType::text: {
            const auto& text = std::get<std::string>(value.storage());
            rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
            break;
        }
    }
    if (rc != SQLITE_OK) {
        return sqlite_error(sqlite3_db_handle(stmt_), rc,
                            "binding parameter " + std::to_string(index) + " " + sql_context(sql()));
    }
    return {};
}

Result<void> Statement::bind_all(std::span<const Value> values) {
    const int expected = sqlite3_bind_parameter_count(stmt_);
    if (values.size() != static_cast<std::size_t>(expected)) {
        return make_error(errc::misuse, "the statement has " + std::to_string(expected) + " parameters, " +
                                            std::to_string(values.size()) + " values given " +
                                            sql_context(sql()));
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (auto r = bind(static_cast<int>(i + 1), values[i]); !r) return r;
    }
    return {};
}

Result<bool> Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // result<bool> is not implicitly constructible from an error_code (error_code converts to bool).
    return Result<bool>(boost::system::in_place_error,
                        sqlite_error(sqlite3_db_handle(stmt_), rc, sql_context(sql())));
}

void Statement::reset() noexcept {
    // The return value repeats the error of the last step, which step() already reported.
    sqlite3_reset(stmt_);
}

Result<std::vector<Row>> Statement::fetch_all() {
    reset();
    std::vector<Row> rows;
    for (;;) {
        auto more = step();
        if (!more) return more.error();
        if (!*more) break;
        rows.push_back(row());
    }
    return rows;
}

Result<std::int64_t> Statement::run() {
    reset();
    for (;;) {
        auto more = step();
        if (!more) return more.error();
        if (!*more) break;
    }
    return static_cast<std::int64_t>(sqlite3_changes64(sqlite3_db_handle(stmt_)));
}

int Statement::column_count() const noexcept { return sqlite3_column_count(stmt_); }

std::string Statement::column_name(int index) const {
    if (index < 0 || index >= column_count()) {
        throw TypeMismatch("column " + std::to_string(index) + " out of range (the statement has " +
                           std::to_string(column_count()) + ")");
    }
    const char* name = sqlite3_column_name(stmt_, index);
    return name != nullptr ? name : "";
}

int Statement::index_of(Column column) const {
    const int count = column_count();
    if (column.by_name()) {
        for (int i = 0; i < count; ++i) {
            const char* name = sqlite3_column_name(stmt_, i);
            if (name != nullptr && column.name() == name) return i;
        }
        throw TypeMismatch("no column named '" + std::string(column.name()) + "' " + sql_context(sql()));
    }
    if (column.index() >= static_cast<std::size_t>(count)) {
        throw TypeMismatch("column " + std::to_string(column.index()) + " out of range (the statement has " +
                           std::to_string(count) + ")");
    }
    return static_cast<int>(column.index());
}

ValueType Statement::column_type(Column column) const {
    switch (sqlite3_column_type(stmt_, index_of(column))) {
        case SQLITE_INTEGER:
            return ValueType::integer;
        case SQLITE_FLOAT:
            return ValueType::real;
        case SQLITE_NULL:
            return ValueType::null;
        default:
            return ValueType::text;  // TEXT and BLOB
    }
}

Value Statement::value(Column column) const {
    const int i = index_of(column);
    switch (sqlite3_column_type(stmt_, i)) {
        case SQLITE_INTEGER:
            return Value(static_cast<std::int64_t>(sqlite3_column_int64(stmt_, i)));
        case SQLITE_FLOAT:
            return Value(sqlite3_column_double(stmt_, i));
        case SQLITE_NULL:
            return Value();
        case SQLITE_BLOB: {
            const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
            return Value(std::string(data != nullptr ? data : "", sqlite3_column_bytes(stmt_, i)));
        }
        default: {
            const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
            return Value(std::string(data != nullptr ? data : "", sqlite3_column_bytes(stmt_, i)));
        }
    }
}

Row Statement::row() const {
    const int count = column_count();
    if (!columns_ || columns_->size() != static_cast<std::size_t>(count)) {
        auto names = std::make_shared<std::vector<std::string>>();
        for (int i = 0; i < count; ++i) names->push_back(column_name(i));
        columns_ = std::move(names);
    }
    std::vector<Value> values;
    values.reserve(count);
    for (int i = 0; i < count; ++i) values.push_back(value(i));
    return Row(columns_, std::move(values));
}

std::string_view Statement::sql() const noexcept {
    const char* text = sqlite3_sql(stmt_);
    return text != nullptr ? text : "";
}

// ---- Transaction ----

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
    if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0)
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Result<void> Transaction::commit() {
    if (db_ == nullptr) return make_error(errc::misuse, "commit: the transaction is no longer active");
    int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        auto error = sqlite_error(db_, rc, "commit");
        if (sqlite3_get_autocommit(db_) != 0) db_ = nullptr;  // SQLite rolled it back already
        return error;
    }
    db_ = nullptr;
    return {};
}

Result<void> Transaction::rollback() {
    if (db_ == nullptr) return make_error(errc::misuse, "rollback: the transaction is no longer active");
    if (sqlite3_get_autocommit(db_) != 0) {  // SQLite rolled it back after an error
        db_ = nullptr;
        return {};
    }
    int rc = sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, "rollback");
    db_ = nullptr;
    return {};
}

// ---- Database ----

Result<Database> Database::open(const std::string& path, const OpenOptions& options) {
    int flags = SQLITE_OPEN_NOMUTEX;  // one owner per connection (documented), no per-call mutex
    if (options.read_only) {
        flags |= SQLITE_OPEN_READONLY;
    } else {
        flags |= SQLITE_OPEN_READWRITE;
        if (options.create) flags |= SQLITE_OPEN_CREATE;
    }
    if (path.starts_with("file:")) flags |= SQLITE_OPEN_URI;
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    Database db(raw, path);  // closes the handle on every return below, even a failed open's
    const std::string context = "open '" + path + "'";
    if (rc != SQLITE_OK) return sqlite_error(raw, rc, context);
    sqlite3_extended_result_codes(raw, 1);

    auto timeout = std::clamp<std::chrono::milliseconds::rep>(options.busy_timeout.count(), 0,
                                                              std::numeric_limits<int>::max());
    sqlite3_busy_timeout(raw, static_cast<int>(timeout));

    if (auto r = db.exec("PRAGMA foreign_keys = ON"); !r) return detail::with_context(r.error(), context);
    auto fk = db.query_one("PRAGMA foreign_keys");
    if (!fk) return detail::with_context(fk.error(), context);
    if (fk->get<std::int64_t>(0) != 1) {
        return make_error(errc::cannot_open, context + ": this SQLite does not enforce foreign keys");
    }

    if (!options.read_only && !is_memory_path(path)) {
        // Switching a fresh file to WAL needs an exclusive lock and SQLite does not call the busy
        // handler for it, so replicas opening the same new database at once retry here.
        auto mode = db.query_one("PRAGMA journal_mode = WAL");
        auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
        while (!mode && std::chrono::steady_clock::now() < give_up &&
               (sqlite3_errcode(raw) & 0xff) == SQLITE_BUSY) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            mode = db.query_one("PRAGMA journal_mode = WAL");
        }
        if (!mode) return detail::with_context(mode.error(), context);
        auto name = mode->get<std::string>(0);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        if (name != "wal") {
            return make_error(errc::cannot_open,
                              context + ": cannot enable WAL mode (journal_mode stays '" + name + "')");
        }
    }
    const char* sync =
        options.sync_every_commit ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
    if (auto r = db.exec(sync); !r) return detail::with_context(r.error(), context);
    return db;
}

Result<Database> Database::open_in_memory() { return open(":memory:"); }

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Database& Database::operator=(Database&& other) noexcept {
    if (this != &other) {
        close();
        db_ = std::exchange(other.db_, nullptr);
        path_ = std::move(other.path_);
    }
    return *this;
}

Database::~Database() { close(); }

void Database::close() noexcept {
    // close_v2 defers the close until leftover statements are finalised instead of failing.
    if (db_ != nullptr) sqlite3_close_v2(std::exchange(db_, nullptr));
}

Result<void> Database::exec(std::string_view sql) {
    // sqlite3_exec needs a terminated string; string_view may not be.
    const std::string text(sql);
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql_context(sql));
    return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        return make_error(errc::misuse, "SQL text too long");
    }
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql_context(sql));
    if (raw == nullptr) return make_error(errc::misuse, "no SQL statement " + sql_context(sql));
    Statement stmt(raw);

    // Anything after the first statement would be silently ignored by SQLite; refuse it unless it
    // is only whitespace, semicolons or comments (which compile to no statement).
    auto rest = trim(std::string_view(tail, sql.data() + sql.size() - tail));
    if (!rest.empty()) {
        sqlite3_stmt* extra = nullptr;
        rc = sqlite3_prepare_v2(db_, rest.data(), static_cast<int>(rest.size()), &extra, nullptr);
        sqlite3_finalize(extra);
        if (rc != SQLITE_OK || extra != nullptr) {
            return make_error(errc::misuse,
                              "prepare() takes one statement, use exec() for several " + sql_context(sql));
        }
    }
    return stmt;
}

Result<std::vector<Row>> Database::query_values(std::string_view sql, std::span<const Value> params) {
    auto stmt = prepare(sql);
    if (!stmt) return stmt.error();
    if (auto r = stmt->bind_all(params); !r) return r.error();
    return stmt->fetch_all();
}

Result<Row> Database::query_one_values(std::string_view sql, std::span<const Value> params) {
    auto stmt = prepare(sql);
    if (!stmt) return stmt.error();
    if (auto r = stmt->bind_all(params); !r) return r.error();
    auto more = stmt->step();
    if (!more) return more.error();
    if (!*more) return make_error(errc::no_row, sql_context(sql));
    return stmt->row();
}

Result<std::int64_t> Database::execute_values(std::string_view sql, std::span<const Value> params) {
    auto stmt = prepare(sql);
    if (!stmt) return stmt.error();
    if (auto r = stmt->bind_all(params); !r) return r.error();
    return stmt->run();
}

Result<Transaction> Database::begin(TransactionKind kind) {
    const char* sql = kind == TransactionKind::deferred    ? "BEGIN DEFERRED"
                      : kind == TransactionKind::exclusive ? "BEGIN EXCLUSIVE"
                                                           : "BEGIN IMMEDIATE";
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, sql);
    return Transaction(db_);
}

Result<int> Database::schema_version() {
    auto row = query_one("PRAGMA user_version");
    if (!row) return row.error();
    return row->get<int>(0);
}

Result<int> Database::migrate(const std::vector<std::string>& steps) {
    const auto target = static_cast<int>(steps.size());
    for (;;) {
        auto tx = begin(TransactionKind::immediate);
        if (!tx) return detail::with_context(tx.error(), "migration");
        auto version = schema_version();
        if (!version) return detail::with_context(version.error(), "migration");
        if (*version > target) {
            return make_error(errc::schema_too_new, "'" + path_ + "' is at schema version " +
                                                        std::to_string(*version) + ", this program knows " +
                                                        std::to_string(target));
        }
        if (*version == target) {
            if (auto r = tx->commit(); !r) return detail::with_context(r.error(), "migration");
            return target;
        }
        const std::string context = "migration to version " + std::to_string(*version + 1);
        if (auto r = exec(steps[*version]); !r) return detail::with_context(r.error(), context);
        if (auto r = exec("PRAGMA user_version = " + std::to_string(*version + 1)); !r) {
            return detail::with_context(r.error(), context);
        }
        if (auto r = tx->commit(); !r) return detail::with_context(r.error(), context);
    }
}

std::int64_t Database::last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_); }

bool Database::in_transaction() const noexcept { return db_ != nullptr && sqlite3_get_autocommit(db_) == 0; }

}  // namespace plexus::store
