#pragma once
/// A small, safe wrapper over an embedded SQLite database: one connection, prepared statements
/// with positional parameters, materialised rows, RAII transactions and numbered migrations.
///
///     auto db = store::Database::open(data_dir + "/catalog.db");
///     if (!db) return db.error();                      // message names the file and SQLite's reason
///     if (auto v = db->migrate({"CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
///                               "ALTER TABLE item ADD COLUMN price REAL"}); !v) return v.error();
///     auto tx = db->begin();
///     db->execute("INSERT INTO item(name, price) VALUES (?, ?)", "tea", 3.5);
///     tx->commit();
///     auto rows = db->query("SELECT id, name FROM item WHERE price < ?", 10);
///     for (const auto& row : *rows) use(row.get<std::int64_t>("id"), row.get<std::string>(1));
///
/// Errors: every operation that touches SQLite returns `plexus::Result`; the error is a
/// `store::errc` whose message includes SQLite's `sqlite3_errmsg` (see error.hpp). Reading a column
/// as the wrong type throws `TypeMismatch` (a bug, see value.hpp).
///
/// Thread safety: a `Database` (and the statements and transactions made from it) is NOT
/// thread-safe. Use one `Database` per thread or per owner — SQLite connections are cheap, and in
/// WAL mode readers on other connections are not blocked by a writer. Distinct `Database`
/// objects may be used concurrently, also on the same file and from several processes.
///
/// Blocking: every call does file I/O and may wait up to `busy_timeout` for another connection's
/// lock. Do not call it on an I/O thread; run it on a blocking pool and await the result.

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/result.hpp"
#include "plexus/store/error.hpp"
#include "plexus/store/value.hpp"

// SQLite's handles, kept opaque so that sqlite3.h stays out of our public headers.
struct sqlite3;
struct sqlite3_stmt;

namespace plexus::store {

/// How a database is opened.
struct OpenOptions {
    /// How long an operation waits for another connection's lock before failing with errc::busy.
    std::chrono::milliseconds busy_timeout{5000};
    /// Create the file if it does not exist (its directory must exist).
    bool create = true;
    /// Open read-only: writes fail with errc::read_only, the journal mode is left unchanged.
    bool read_only = false;
    /// `PRAGMA synchronous = FULL` (fsync the WAL on every commit) instead of NORMAL. NORMAL is
    /// safe against application crashes but may lose the last commits on power loss.
    bool sync_every_commit = false;
};

/// How a transaction takes its lock.
enum class TransactionKind {
    deferred,   ///< lock on first access; may fail with errc::busy when upgrading to write
    immediate,  ///< take the write lock at BEGIN (waiting up to busy_timeout); the default
    exclusive,  ///< like immediate; in WAL mode the same
};

/// A compiled SQL statement. Made by `Database::prepare`; must not outlive its Database.
/// Parameters are positional and 1-based (`?`, or `?N` for index N); columns are 0-based.
/// Not thread-safe. Move-only.
class Statement {
  public:
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    /// Finalises the statement.
    ~Statement();

    /// Binds `value` to the 1-based parameter `index`; resets the statement first (binding starts a
    /// new run). errc::misuse if `index` is out of range.
    Result<void> bind(int index, const Value& value);
    /// Resets the statement, clears all bindings, then binds `values` to parameters 1..n. errc::misuse if
    /// `values` does not have exactly as many entries as the statement has parameters.
    Result<void> bind_all(std::span<const Value> values);

    /// Runs the statement to the next row: true when a row is available (read it with the
    /// column accessors), false when the statement is done. Errors are SQLite's.
    Result<bool> step();
    /// Makes the statement ready to run again from the start; bindings are kept.
    void reset() noexcept;

    /// Steps to the end and returns every row. Starts with `reset()`.
    Result<std::vector<Row>> fetch_all();
    /// Steps to the end, discarding any rows, and returns the number of rows changed (for INSERT,
    /// UPDATE, DELETE). Starts with `reset()`.
    Result<std::int64_t> run();

    /// Number of columns in a result row.
    int column_count() const noexcept;
    /// The name of the 0-based column `index`; throws TypeMismatch if out of range.
    std::string column_name(int index) const;
    // The column accessors below read the current row: call them only after step() returned true.

    /// The storage class of column `column` in the current row.
    ValueType column_type(Column column) const;
    /// Column `column` of the current row, copied out. Throws TypeMismatch for a bad column.
    Value value(Column column) const;
    /// Column `column` of the current row as `T` (see `Value::as`); throws TypeMismatch.
    template <class T>
    T get(Column column) const {
        return value(column).as<T>();
    }
    /// The current row, copied out.
    Row row() const;

    /// The SQL text the statement was prepared from.
    std::string_view sql() const noexcept;

  private:
    friend class Database;
    explicit Statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    int index_of(Column column) const;

    sqlite3_stmt* stmt_ = nullptr;
    mutable std::shared_ptr<const std::vector<std::string>> columns_;  // built on first row()
};

/// A transaction that rolls back unless committed. Made by `Database::begin`; must not outlive
/// its Database; not thread-safe; move-only. Transactions do not nest: `begin` while one is
/// active fails with errc::sql_error.
class Transaction {
  public:
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    /// Rolls back if still active. A failed ROLLBACK cannot be reported here; the connection then
    /// stays inside the transaction and the next `begin` fails, which surfaces it.
    ~Transaction();

    /// Commits. On failure the transaction stays active (and rolls back on destruction) unless
    /// SQLite already rolled it back.
    Result<void> commit();
    /// Rolls back now.
    Result<void> rollback();
    /// True until commit or rollback succeeded.
    bool active() const noexcept { return db_ != nullptr; }

  private:
    friend class Database;
    explicit Transaction(sqlite3* db) noexcept : db_(db) {}
    sqlite3* db_ = nullptr;
};

/// One connection to one SQLite database. Opened in WAL mode with foreign keys enforced and a
/// busy timeout. Not thread-safe (see the file comment); move-only; closes on destruction.
class Database {
  public:
    /// Opens (by default creating) the database file at `path`, or an in-memory database for
    /// ":memory:". Sets busy_timeout, `foreign_keys = ON`, `journal_mode = WAL` (not for in-memory
    /// or read-only databases) and `synchronous`. Errors: errc::cannot_open naming the path (also
    /// when WAL cannot be enabled, e.g. on a network file system), errc::corrupt for a file that is
    /// not a database, errc::busy if another connection holds the lock past busy_timeout.
    static Result<Database> open(const std::string& path, const OpenOptions& options = {});
    /// A private in-memory database, gone when closed. Useful in tests.
    static Result<Database> open_in_memory();

    Database(Database&& other) noexcept;
    Database& operator=(Database&& other) noexcept;
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;
    /// Closes the connection. An active Transaction or live Statement must be destroyed first.
    ~Database();

    /// Runs one or more `;`-separated statements without parameters, discarding any rows.
    Result<void> exec(std::string_view sql);
    /// Compiles one statement. Text after the first statement is an error (errc::misuse).
    Result<Statement> prepare(std::string_view sql);

    /// Prepares `sql`, binds `params` to its parameters 1..n and returns all rows.
    template <class... Params>
    Result<std::vector<Row>> query(std::string_view sql, const Params&... params) {
        const Value values[] = {Value(params)..., Value()};
        return query_values(sql, std::span<const Value>(values, sizeof...(Params)));
    }
    /// Like `query`, but the query must return at least one row: the first one, or errc::no_row.
    template <class... Params>
    Result<Row> query_one(std::string_view sql, const Params&... params) {
        const Value values[] = {Value(params)..., Value()};
        return query_one_values(sql, std::span<const Value>(values, sizeof...(Params)));
    }
    /// Prepares `sql`, binds `params`, runs it and returns the number of rows it changed.
    template <class... Params>
    Result<std::int64_t> execute(std::string_view sql, const Params&... params) {
        const Value values[] = {Value(params)..., Value()};
        return execute_values(sql, std::span<const Value>(values, sizeof...(Params)));
    }
    /// `query` with parameters given as a span.
    Result<std::vector<Row>> query_values(std::string_view sql, std::span<const Value> params);
    /// `query_one` with parameters given as a span.
    Result<Row> query_one_values(std::string_view sql, std::span<const Value> params);
    /// `execute` with parameters given as a span.
    Result<std::int64_t> execute_values(std::string_view sql, std::span<const Value> params);

    /// Starts a transaction (BEGIN DEFERRED/IMMEDIATE/EXCLUSIVE). errc::busy if the write lock
    /// is not obtained within busy_timeout; errc::sql_error if a transaction is already active.
    Result<Transaction> begin(TransactionKind kind = TransactionKind::immediate);

    /// Brings the schema up to date. `steps[i]` is the SQL (one or more statements) that moves the
    /// schema from version i to i+1; the version is kept in `PRAGMA user_version`. Each missing
    /// step runs in its own IMMEDIATE transaction together with the version bump, so a failed step
    /// leaves the database at the previous version; the version is re-read inside each transaction
    /// so that several processes may migrate the same file at once. Steps must not use statements
    /// that cannot run in a transaction (VACUUM, `PRAGMA journal_mode`). Never edit a released
    /// step: append a new one. Returns the resulting version (== steps.size()). Errors: the failing
    /// step's error, prefixed with "migration <i>"; errc::schema_too_new if the database is
    /// already at a version above steps.size().
    Result<int> migrate(const std::vector<std::string>& steps);
    /// The current `PRAGMA user_version`.
    Result<int> schema_version();

    /// The rowid of the last successful INSERT on this connection.
    std::int64_t last_insert_rowid() const noexcept;
    /// True while a transaction is open on this connection.
    bool in_transaction() const noexcept;
    /// The path given to `open`.
    const std::string& path() const noexcept { return path_; }

  private:
    Database(sqlite3* db, std::string path) noexcept : db_(db), path_(std::move(path)) {}
    void close() noexcept;

    sqlite3* db_ = nullptr;
    std::string path_;
};

}  // namespace plexus::store
