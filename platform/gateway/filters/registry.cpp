// The filters the gateway knows. A new filter adds its factory here (explicitly: static
// registration does not survive static libraries).

#include "auth/auth.hpp"
#include "cors/cors.hpp"
#include "headers/headers.hpp"
#include "ip_access/ip_access.hpp"
#include "rate_limit/rate_limit.hpp"

namespace plexus::gateway {

std::span<const FilterFactory* const> filter_factories() noexcept {
    static const FilterFactory* const kFactories[] = {
        &filters::auth_factory(),      &filters::cors_factory(),       &filters::headers_factory(),
        &filters::ip_access_factory(), &filters::rate_limit_factory(),
    };
    return kFactories;
}

}  // namespace plexus::gateway
