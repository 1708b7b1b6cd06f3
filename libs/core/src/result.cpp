#include "plexus/core/result.hpp"

namespace plexus::core {
namespace {
class CoreCategory final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "plexus.core"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::invalid_argument:
                return "invalid argument";
            case errc::not_found:
                return "not found";
            case errc::io_error:
                return "input/output error";
        }
        return "unknown core error";
    }
};
}  // namespace

const boost::system::error_category& core_category() noexcept {
    static const CoreCategory category;
    return category;
}
}  // namespace plexus::core
