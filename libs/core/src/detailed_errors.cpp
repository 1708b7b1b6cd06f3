#include "plexus/core/detailed_errors.hpp"

namespace plexus::core {

namespace {
constexpr std::size_t kMaxDetails = 1024;
constexpr std::size_t kMaxDetailLength = 512;
}  // namespace

class DetailedErrors::Category final : public boost::system::error_category {
  public:
    Category(unsigned long long id, const char* name, std::string (*message)(int),
             std::string detail) noexcept
        : error_category(id), name_(name), message_(message), detail_(std::move(detail)) {}
    const char* name() const noexcept override { return name_; }
    std::string message(int ev) const override {
        return detail_.empty() ? message_(ev) : message_(ev) + ": " + detail_;
    }
    const std::string& detail() const noexcept { return detail_; }

  private:
    const char* name_;
    std::string (*message_)(int);
    std::string detail_;
};

DetailedErrors::DetailedErrors(unsigned long long id, const char* name, std::string (*message)(int))
    : id_(id),
      name_(name),
      message_(message),
      plain_(std::make_unique<Category>(id, name, message, std::string())) {}

DetailedErrors::~DetailedErrors() = default;

const boost::system::error_category& DetailedErrors::category() const noexcept { return *plain_; }

ErrorCode DetailedErrors::make(int value, std::string_view detail) const {
    if (detail.empty()) return {value, *plain_};
    if (detail.size() > kMaxDetailLength) detail = detail.substr(0, kMaxDetailLength);
    std::lock_guard lock(mutex_);
    auto it = detailed_.find(detail);
    if (it == detailed_.end()) {
        if (detailed_.size() >= kMaxDetails) return {value, *plain_};
        auto category = std::make_unique<Category>(id_, name_, message_, std::string(detail));
        it = detailed_.emplace(std::string(detail), std::move(category)).first;
    }
    return {value, *it->second};
}

std::string_view DetailedErrors::detail(const ErrorCode& ec) const noexcept {
    if (ec.category() != *plain_) return {};
    if (const auto* c = dynamic_cast<const Category*>(&ec.category())) return c->detail();
    return {};
}

}  // namespace plexus::core
