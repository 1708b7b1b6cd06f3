#include "plexus/store/error.hpp"

#include <string>

#include "plexus/core/detailed_errors.hpp"
#include "sqlite_error.hpp"

namespace plexus::store {
namespace {

// Every code of errors(), detailed or not, compares equal by this id.
constexpr unsigned long long kStoreCategoryId = 0x9b1d5e2a7c4f3608ULL;

std::string base_message(int ev) {
    switch (static_cast<errc>(ev)) {
        case errc::sql_error:
            return "SQL error";
        case errc::constraint:
            return "constraint violated";
        case errc::busy:
            return "database is locked";
        case errc::read_only:
            return "database is read-only";
        case errc::cannot_open:
            return "cannot open database";
        case errc::io_error:
            return "database I/O error";
        case errc::corrupt:
            return "database is damaged or not a database";
        case errc::misuse:
            return "store API misuse";
        case errc::no_row:
            return "no row";
        case errc::schema_too_new:
            return "database schema is newer than this program";
        case errc::other:
            return "database error";
    }
    return "unknown store error";
}

const core::DetailedErrors& errors() {
    static auto* e = new core::DetailedErrors(kStoreCategoryId, "plexus.store", base_message);
    return *e;  // never destroyed: error codes may outlive static destruction
}

}  // namespace

const boost::system::error_category& store_category() noexcept { return errors().category(); }

ErrorCode make_error(errc e, std::string_view detail) { return errors().make(static_cast<int>(e), detail); }

namespace detail {

std::string_view error_detail(const ErrorCode& ec) noexcept { return errors().detail(ec); }

ErrorCode with_context(const ErrorCode& ec, std::string_view context) {
    if (ec.category() != store_category()) return ec;
    auto inner = error_detail(ec);
    std::string detail(context);
    if (!inner.empty()) detail.append(": ").append(inner);
    return make_error(static_cast<errc>(ec.value()), detail);
}

}  // namespace detail
}  // namespace plexus::store
