#pragma once
// The stores the registry's suites run on: a catalog of one registry alone (memory), and one
// shared through a real etcd member on loopback (one per test binary, a key prefix per test).

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "plexus/etcd/testing.hpp"
#include "plexus/registry/catalog.hpp"
#include "plexus/registry/etcd_catalog.hpp"
#include "plexus/store/database.hpp"  // completes the type of Catalog's database argument

namespace plexus::registry::testing {

enum class Store { alone, etcd };

inline std::string store_name(const ::testing::TestParamInfo<Store>& info) {
    return info.param == Store::etcd ? "etcd" : "alone";
}

inline auto all_stores() { return ::testing::Values(Store::alone, Store::etcd); }

/// A catalog on `store`; on etcd under a key prefix of the running test's own.
inline std::unique_ptr<Catalog> new_catalog(core::Clock& clock, Store store, CatalogLimits limits = {}) {
    if (store == Store::alone) return std::make_unique<Catalog>(clock, limits);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    auto prefix = etcd::testing::unique_prefix(std::string(info->test_suite_name()) + "." + info->name());
    return std::make_unique<Catalog>(
        clock, limits, open_etcd_catalog(etcd::testing::shared_cluster().client_settings(), prefix));
}

}  // namespace plexus::registry::testing
