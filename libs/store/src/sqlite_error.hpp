#pragma once
// Private: turning SQLite result codes into store error codes.

#include <sqlite3.h>

#include <string_view>

#include "plexus/store/error.hpp"

namespace plexus::store::detail {

// The errc for a (possibly extended) SQLite result code.
errc from_sqlite(int rc) noexcept;

// An error for `rc` carrying sqlite3_errmsg(db) (or sqlite3_errstr(rc) without a connection),
// prefixed with `context` when given.
ErrorCode sqlite_error(sqlite3* db, int rc, std::string_view context = {});

// The detail text of a store error code ("" for plain codes and other categories).
std::string_view error_detail(const ErrorCode& ec) noexcept;

// The same store error with `context: ` put before its detail; other categories unchanged.
ErrorCode with_context(const ErrorCode& ec, std::string_view context);

}  // namespace plexus::store::detail
