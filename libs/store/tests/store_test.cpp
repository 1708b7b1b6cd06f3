#include "plexus/store/store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

using namespace plexus;
using namespace plexus::store;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "plexus-store-test-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    fs::path path_;
};

Database open_or_die(const std::string& path, const OpenOptions& options = {}) {
    auto db = Database::open(path, options);
    if (!db) throw std::runtime_error(db.error().message());
    return std::move(*db);
}

Database memory_db() {
    auto db = Database::open_in_memory();
    if (!db) throw std::runtime_error(db.error().message());
    return std::move(*db);
}

}  // namespace

TEST(StoreError, DetailedCodesCompareEqualToTheirErrc) {
    auto ec = make_error(errc::busy, "database table is locked");
    EXPECT_EQ(ec, errc::busy);
    EXPECT_NE(ec, errc::constraint);
    EXPECT_EQ(ec, make_error_code(errc::busy));
    EXPECT_EQ(ec.message(), "database is locked: database table is locked");
    EXPECT_STREQ(ec.category().name(), "plexus.store");
    EXPECT_EQ(make_error(errc::busy, "database table is locked").category(), ec.category());
}

TEST(StoreValue, ConvertsAndRejectsWrongTypes) {
    EXPECT_EQ(Value(42).type(), ValueType::integer);
    EXPECT_EQ(Value(true).as<std::int64_t>(), 1);
    EXPECT_EQ(Value(2.5f).type(), ValueType::real);
    EXPECT_EQ(Value("x").type(), ValueType::text);
    EXPECT_EQ(Value(std::string_view("x")).as<std::string>(), "x");
    EXPECT_TRUE(Value(nullptr).is_null());
    EXPECT_TRUE(Value(std::optional<int>{}).is_null());
    EXPECT_EQ(Value(std::optional<int>{7}).as<int>(), 7);
    EXPECT_EQ(Value(3).as<double>(), 3.0);
    EXPECT_EQ(Value().as<std::optional<std::string>>(), std::nullopt);

    EXPECT_THROW(Value("7").as<std::int64_t>(), TypeMismatch);
    EXPECT_THROW(Value().as<std::int64_t>(), TypeMismatch);
    EXPECT_THROW(Value(1.5).as<std::int64_t>(), TypeMismatch);
    EXPECT_THROW(Value(std::int64_t{1} << 40).as<int>(), TypeMismatch);
    EXPECT_THROW(Value(-1).as<unsigned>(), TypeMismatch);
    EXPECT_THROW((void)Value(std::numeric_limits<std::uint64_t>::max()), std::out_of_range);
}

TEST(Database, OpensFilesInWalModeWithForeignKeys) {
    TempDir dir;
    auto db = open_or_die(dir.file("a.db"));
    auto mode = db.query_one("PRAGMA journal_mode");
    ASSERT_TRUE(mode) << mode.error().message();
    EXPECT_EQ(mode->get<std::string>(0), "wal");
    EXPECT_EQ(db.query_one("PRAGMA foreign_keys")->get<int>(0), 1);
    EXPECT_EQ(db.query_one("PRAGMA busy_timeout")->get<int>(0), 5000);
    EXPECT_TRUE(fs::exists(dir.file("a.db")));
}

TEST(Database, OpenFailuresNameTheFile) {
    TempDir dir;
    auto missing_dir = Database::open(dir.file("no/such/dir/a.db"));
    ASSERT_FALSE(missing_dir);
    EXPECT_EQ(missing_dir.error(), errc::cannot_open);
    EXPECT_NE(missing_dir.error().message().find("no/such/dir/a.db"), std::string::npos);

    OpenOptions no_create;
    no_create.create = false;
    auto absent = Database::open(dir.file("absent.db"), no_create);
    ASSERT_FALSE(absent);
    EXPECT_EQ(absent.error(), errc::cannot_open);

    std::ofstream(dir.file("junk.db")) << std::string(4096, 'x');
    auto junk = Database::open(dir.file("junk.db"));
    ASSERT_FALSE(junk);
    EXPECT_EQ(junk.error(), errc::corrupt) << junk.error().message();
    EXPECT_NE(junk.error().message().find("junk.db"), std::string::npos);
}

TEST(Database, BindsAndReadsEveryType) {
    auto db = memory_db();
    ASSERT_TRUE(db.exec("CREATE TABLE t(i INTEGER, r REAL, s TEXT, n TEXT)"));
    auto inserted = db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", std::int64_t{1} << 40, 2.5,
                               std::string("héllo\0x", 7), nullptr);
    ASSERT_TRUE(inserted) << inserted.error().message();
    EXPECT_EQ(*inserted, 1);
    EXPECT_EQ(db.last_insert_rowid(), 1);
    ASSERT_TRUE(
        db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", -3, 0.0, "", std::optional<std::string>("set")));

    auto rows = db.query("SELECT i, r, s, n FROM t WHERE i > ? ORDER BY i", -10);
    ASSERT_TRUE(rows) << rows.error().message();
    ASSERT_EQ(rows->size(), 2u);
    const auto& first = (*rows)[0];
    EXPECT_EQ(first.columns(), (std::vector<std::string>{"i", "r", "s", "n"}));
    EXPECT_EQ(first.get<std::int64_t>("i"), -3);
    EXPECT_EQ(first.get<std::string>("s"), "");
    EXPECT_EQ(first.get<std::optional<std::string>>("n"), "set");
    const auto& second = (*rows)[1];
    EXPECT_EQ(second.get<std::int64_t>(0), std::int64_t{1} << 40);
    EXPECT_EQ(second.get<double>(1), 2.5);
    EXPECT_EQ(second.get<std::string>(2), std::string("héllo\0x", 7));
    EXPECT_EQ(second.get<std::optional<std::string>>(3), std::nullopt);
    EXPECT_TRUE(second.at("n").is_null());

    EXPECT_THROW(second.get<std::int64_t>("s"), TypeMismatch);
    EXPECT_THROW(second.get<std::string>("n"), TypeMismatch);
    EXPECT_THROW(second.get<std::int64_t>("nope"), TypeMismatch);
    EXPECT_THROW(second.get<std::int64_t>(4), TypeMismatch);
}

TEST(Database, StatementsStepBindAndRunAgain) {
    auto db = memory_db();
    ASSERT_TRUE(
        db.exec("CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER); "
                "INSERT INTO kv VALUES ('a', 1), ('b', 2), ('c', 3);"));
    auto stmt = db.prepare("SELECT k, v FROM kv WHERE v >= ?1 ORDER BY k");
    ASSERT_TRUE(stmt) << stmt.error().message();
    ASSERT_TRUE(stmt->bind(1, 2));
    std::vector<std::string> keys;
    for (;;) {
        auto more = stmt->step();
        ASSERT_TRUE(more) << more.error().message();
        if (!*more) break;
        EXPECT_EQ(stmt->column_type("v"), ValueType::integer);
        keys.push_back(stmt->get<std::string>(0));
        EXPECT_GE(stmt->get<int>("v"), 2);
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(stmt->column_count(), 2);
    EXPECT_EQ(stmt->column_name(1), "v");

    const Value three[] = {3};
    auto bound = stmt->bind_all(three);
    ASSERT_TRUE(bound) << bound.error().message();
    auto rows = stmt->fetch_all();
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0].get<std::string>("k"), "c");

    auto update = db.prepare("UPDATE kv SET v = v + 10 WHERE k <> ?");
    ASSERT_TRUE(update);
    const Value keep[] = {"a"};
    ASSERT_TRUE(update->bind_all(keep));
    EXPECT_EQ(*update->run(), 2);
}

TEST(Database, ReportsSqlErrorsWithSqliteMessage) {
    auto db = memory_db();
    auto syntax = db.prepare("SELEC 1");
    ASSERT_FALSE(syntax);
    EXPECT_EQ(syntax.error(), errc::sql_error);
    EXPECT_NE(syntax.error().message().find("syntax error"), std::string::npos) << syntax.error().message();

    auto missing = db.query("SELECT * FROM nowhere");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("no such table: nowhere"), std::string::npos);

    auto two = db.prepare("SELECT 1; SELECT 2");
    ASSERT_FALSE(two);
    EXPECT_EQ(two.error(), errc::misuse);
    EXPECT_TRUE(db.prepare("SELECT 1; -- trailing comment\n"));

    auto count = db.query("SELECT ?, ?", 1);
    ASSERT_FALSE(count);
    EXPECT_EQ(count.error(), errc::misuse);

    auto stmt = db.prepare("SELECT ?");
    ASSERT_TRUE(stmt);
    auto out_of_range = stmt->bind(2, 1);
    ASSERT_FALSE(out_of_range);
    EXPECT_EQ(out_of_range.error(), errc::misuse);

    auto none = db.query_one("SELECT 1 WHERE 0");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error(), errc::no_row);
}

TEST(Database, ConstraintsAndForeignKeysAreEnforced) {
    auto db = memory_db();
    ASSERT_TRUE(db.exec(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL);"
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id));"));
    ASSERT_TRUE(db.execute("INSERT INTO users(email) VALUES (?)", "a@example.com"));
    auto duplicate = db.execute("INSERT INTO users(email) VALUES (?)", "a@example.com");
    ASSERT_FALSE(duplicate);
    EXPECT_EQ(duplicate.error(), errc::constraint);
    EXPECT_NE(duplicate.error().message().find("UNIQUE constraint failed: users.email"), std::string::npos)
        << duplicate.error().message();

    auto orphan = db.execute("INSERT INTO orders(user_id) VALUES (?)", 999);
    ASSERT_FALSE(orphan);
    EXPECT_EQ(orphan.error(), errc::constraint);
    EXPECT_NE(orphan.error().message().find("FOREIGN KEY"), std::string::npos);
}

TEST(Transaction, RollsBackUnlessCommitted) {
    auto db = memory_db();
    ASSERT_TRUE(db.exec("CREATE TABLE t(x INTEGER)"));
    {
        auto tx = db.begin();
        ASSERT_TRUE(tx) << tx.error().message();
        EXPECT_TRUE(db.in_transaction());
        ASSERT_TRUE(db.execute("INSERT INTO t VALUES (1)"));
    }
    EXPECT_FALSE(db.in_transaction());
    EXPECT_EQ(db.query_one("SELECT count(*) FROM t")->get<int>(0), 0);

    {
        auto tx = db.begin(TransactionKind::deferred);
        ASSERT_TRUE(tx);
        ASSERT_TRUE(db.execute("INSERT INTO t VALUES (2)"));
        auto nested = db.begin();
        ASSERT_FALSE(nested);
        EXPECT_EQ(nested.error(), errc::sql_error);
        ASSERT_TRUE(tx->commit());
        EXPECT_FALSE(tx->active());
        auto again = tx->commit();
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error(), errc::misuse);
    }
    EXPECT_EQ(db.query_one("SELECT count(*) FROM t")->get<int>(0), 1);

    auto tx = db.begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db.execute("DELETE FROM t"));
    ASSERT_TRUE(tx->rollback());
    EXPECT_EQ(db.query_one("SELECT count(*) FROM t")->get<int>(0), 1);
}

TEST(Transaction, SecondWriterGetsBusyAfterTimeoutAndReadersSeeCommits) {
    TempDir dir;
    auto writer = open_or_die(dir.file("shared.db"));
    OpenOptions quick;
    quick.busy_timeout = std::chrono::milliseconds(20);
    auto other = open_or_die(dir.file("shared.db"), quick);
    ASSERT_TRUE(writer.exec("CREATE TABLE t(x INTEGER)"));

    auto tx = writer.begin();
    ASSERT_TRUE(tx);
    ASSERT_TRUE(writer.execute("INSERT INTO t VALUES (1)"));
    auto blocked = other.begin();
    ASSERT_FALSE(blocked);
    EXPECT_EQ(blocked.error(), errc::busy) << blocked.error().message();
    // WAL: the reader is not blocked and sees the last committed state.
    EXPECT_EQ(other.query_one("SELECT count(*) FROM t")->get<int>(0), 0);
    ASSERT_TRUE(tx->commit());
    EXPECT_EQ(other.query_one("SELECT count(*) FROM t")->get<int>(0), 1);
}

TEST(Migrate, AppliesOnlyMissingStepsAndKeepsTheVersion) {
    TempDir dir;
    std::vector<std::string> steps = {
        "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "ALTER TABLE item ADD COLUMN price REAL; CREATE INDEX item_name ON item(name)",
    };
    {
        auto db = open_or_die(dir.file("m.db"));
        EXPECT_EQ(*db.schema_version(), 0);
        auto v = db.migrate(steps);
        ASSERT_TRUE(v) << v.error().message();
        EXPECT_EQ(*v, 2);
        ASSERT_TRUE(db.execute("INSERT INTO item(name, price) VALUES (?, ?)", "tea", 3.5));
        EXPECT_EQ(*db.migrate(steps), 2);  // nothing to do, data untouched
    }
    steps.push_back("ALTER TABLE item ADD COLUMN stock INTEGER NOT NULL DEFAULT 0");
    auto db = open_or_die(dir.file("m.db"));
    auto v = db.migrate(steps);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(*v, 3);
    auto row = db.query_one("SELECT name, price, stock FROM item");
    ASSERT_TRUE(row);
    EXPECT_EQ(row->get<std::string>("name"), "tea");
    EXPECT_EQ(row->get<int>("stock"), 0);
}

TEST(Migrate, FailedStepLeavesThePreviousVersion) {
    auto db = memory_db();
    std::vector<std::string> steps = {
        "CREATE TABLE a(x INTEGER)",
        "CREATE TABLE b(y INTEGER); INSERT INTO nowhere VALUES (1)",
    };
    auto v = db.migrate(steps);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error(), errc::sql_error);
    EXPECT_NE(v.error().message().find("migration to version 2"), std::string::npos) << v.error().message();
    EXPECT_NE(v.error().message().find("no such table: nowhere"), std::string::npos);
    EXPECT_EQ(*db.schema_version(), 1);
    EXPECT_FALSE(db.in_transaction());
    EXPECT_TRUE(db.query("SELECT * FROM a"));
    EXPECT_FALSE(db.query("SELECT * FROM b"));  // rolled back with its step
}

TEST(Migrate, RefusesADatabaseFromANewerProgram) {
    auto db = memory_db();
    ASSERT_TRUE(db.migrate({"CREATE TABLE a(x)", "CREATE TABLE b(x)"}));
    auto v = db.migrate({"CREATE TABLE a(x)"});
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error(), errc::schema_too_new);
    EXPECT_NE(v.error().message().find("schema version 2"), std::string::npos) << v.error().message();
}
