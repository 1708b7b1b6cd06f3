#include "plexus/etcd/error.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace plexus::etcd {
namespace {

// Categories with a non-zero id compare equal by id, so every detailed category below is "the"
// etcd category for comparisons; only message() differs.
constexpr unsigned long long kEtcdCategoryId = 0x5e7cd0a13b9f4a21ULL;
constexpr std::size_t kMaxDetails = 1024;
constexpr std::size_t kMaxDetailLength = 512;

std::string base_message(int ev) {
    switch (static_cast<errc>(ev)) {
        case errc::unavailable:
            return "unavailable";
        case errc::timeout:
            return "timed out";
        case errc::outcome_unknown:
            return "outcome unknown";
        case errc::compacted:
            return "revision compacted";
        case errc::future_revision:
            return "future revision";
        case errc::lease_not_found:
            return "lease not found";
        case errc::rejected:
            return "rejected by etcd";
        case errc::bad_response:
            return "bad response from etcd";
        case errc::watch_canceled:
            return "watch canceled";
    }
    return "unknown etcd error";
}

class EtcdCategory : public boost::system::error_category {
  public:
    EtcdCategory() noexcept : error_category(kEtcdCategoryId) {}
    const char* name() const noexcept override { return "plexus.etcd"; }
    std::string message(int ev) const override { return base_message(ev); }
};

class DetailedCategory final : public EtcdCategory {
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

const boost::system::error_category& etcd_category() noexcept {
    static const EtcdCategory category;
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

std::string_view error_detail(const ErrorCode& ec) noexcept {
    if (const auto* d = dynamic_cast<const DetailedCategory*>(&ec.category())) return d->detail();
    return {};
}

}  // namespace plexus::etcd
