// The filters the gateway knows. A new filter adds its factory here (explicitly: static
// registration does not survive static libraries).

#include "headers/headers.hpp"
#include "ip_access/ip_access.hpp"

namespace plexus::gateway {

std::span<const FilterFactory* const> filter_factories() noexcept {
    static const FilterFactory* const kFactories[] = {
        &filters::headers_factory(),
        &filters::ip_access_factory(),
    };
    return kFactories;
}

}  // namespace plexus::gateway
