#pragma once
/// Errors of the store library: one `store::errc` enum and its category. Every failed SQLite call
/// becomes a `plexus::ErrorCode` whose value is a `store::errc` and whose `message()` carries
/// SQLite's own explanation (`sqlite3_errmsg`), for example
/// `constraint violated: UNIQUE constraint failed: users.email`.
///
/// Codes compare equal to their `errc` whatever detail they carry:
///
///     auto r = db.execute("INSERT INTO users(email) VALUES (?)", email);
///     if (r.error() == store::errc::constraint) { ... }   // a duplicate, an expected outcome
///
/// Thread-safe: codes and the category may be created, copied and read from any thread.

#include <string_view>

#include "plexus/core/result.hpp"

namespace plexus::store {

/// What went wrong, grouped by what a caller can do about it.
enum class errc {
    sql_error = 1,   ///< the SQL is wrong: syntax error, no such table or column (a bug)
    constraint,      ///< a UNIQUE, NOT NULL, CHECK or FOREIGN KEY constraint rejected a change
    busy,            ///< the database stayed locked by another connection past busy_timeout
    read_only,       ///< a write on a read-only database or connection
    cannot_open,     ///< the file cannot be opened or created, or WAL mode cannot be enabled
    io_error,        ///< the operating system reported an I/O error, or the disk is full
    corrupt,         ///< the file is not a database or is damaged
    misuse,          ///< the API was used wrongly: bind index out of range, value too big
    no_row,          ///< a query that must return one row returned none
    schema_too_new,  ///< the database was migrated by a newer program than this one
    other,           ///< any other SQLite failure (out of memory, interrupted, ...)
};

/// The category of `store::errc`, named "plexus.store"; a process-wide singleton.
const boost::system::error_category& store_category() noexcept;

/// An error code of `store_category()` without detail.
inline ErrorCode make_error_code(errc e) noexcept { return {static_cast<int>(e), store_category()}; }

/// An error code for `e` whose `message()` is the errc's message followed by `": " + detail`.
/// It compares equal to `make_error_code(e)`. Details are interned for the life of the process
/// (error codes keep a pointer to their category); to bound memory, after 1024 distinct details
/// further ones are dropped and the plain code is returned. Details longer than 512 bytes are cut.
ErrorCode make_error(errc e, std::string_view detail);

}  // namespace plexus::store

template <>
struct boost::system::is_error_code_enum<plexus::store::errc> : std::true_type {};
