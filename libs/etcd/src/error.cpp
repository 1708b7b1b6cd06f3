#include "plexus/etcd/error.hpp"

#include <string>

#include "plexus/core/detailed_errors.hpp"

namespace plexus::etcd {
namespace {

// Every code of errors(), detailed or not, compares equal by this id.
constexpr unsigned long long kEtcdCategoryId = 0x5e7cd0a13b9f4a21ULL;

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

const core::DetailedErrors& errors() {
    static auto* e = new core::DetailedErrors(kEtcdCategoryId, "plexus.etcd", base_message);
    return *e;  // never destroyed: error codes may outlive static destruction
}

}  // namespace

const boost::system::error_category& etcd_category() noexcept { return errors().category(); }

ErrorCode make_error(errc e, std::string_view detail) { return errors().make(static_cast<int>(e), detail); }

std::string_view error_detail(const ErrorCode& ec) noexcept { return errors().detail(ec); }

}  // namespace plexus::etcd
