#include "plexus/store/error.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sqlite_error.hpp"

namespace plexus::store {
namespace {

// Categories with a non-zero id compare equal by id, so every detailed category below is "the"
// store category for comparisons; only message() differs.
constexpr unsigned long long kStoreCategoryId = 0x9b1d5e2a7c4f3608ULL;
constexpr std::size_t kMaxDetails = 1024;
constexpr std::size_t kMaxDetailLength = 512;

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

class StoreCategory : public boost::system::error_category {
  public:
    StoreCategory() noexcept : error_category(kStoreCategoryId) {}
    const char* name() const noexcept override { return "plexus.store"; }
    std::string message(int ev) const override { return base_message(ev); }
};

class DetailedCategory final : public StoreCategory {
  public:
    explicit DetailedCategory(std::string detail) : detail_(std::move(detail)) {}
    std::string message(int ev) const override { return base_message(ev) + ": " + detail_; }
    const std::string& detail() const noexcept { return detail_; }

  private:
    std::string detail_;
};

struct DetailTable {
    std::mutex mutex;
    std::map<std::string, std::unique_ptr<DetailedCategory>, std::less<>> categories;
};

DetailTable& details() {
    static auto* table = new DetailTable;  // never destroyed: error codes may outlive static destruction
    return *table;
}

}  // namespace

const boost::system::error_category& store_category() noexcept {
    static const StoreCategory category;
    return category;
}

ErrorCode make_error(errc e, std::string_view detail) {
    if (detail.empty()) return make_error_code(e);
    if (detail.size() > kMaxDetailLength) detail = detail.substr(0, kMaxDetailLength);
    auto& table = details();
    std::lock_guard lock(table.mutex);
    auto it = table.categories.find(detail);
    if (it == table.categories.end()) {
        if (table.categories.size() >= kMaxDetails) return make_error_code(e);
        auto category = std::make_unique<DetailedCategory>(std::string(detail));
        it = table.categories.emplace(std::string(detail), std::move(category)).first;
    }
    return {static_cast<int>(e), *it->second};
}

namespace detail {

std::string_view error_detail(const ErrorCode& ec) noexcept {
    if (const auto* d = dynamic_cast<const DetailedCategory*>(&ec.category())) return d->detail();
    return {};
}

ErrorCode with_context(const ErrorCode& ec, std::string_view context) {
    if (ec.category() != store_category()) return ec;
    auto inner = error_detail(ec);
    std::string detail(context);
    if (!inner.empty()) detail.append(": ").append(inner);
    return make_error(static_cast<errc>(ec.value()), detail);
}

}  // namespace detail
}  // namespace plexus::store
