#pragma once
/// The store library in one include: `Database`, `Statement`, `Transaction`, `Value`, `Row` and
/// `store::errc`. See database.hpp for the usage and thread-safety rules.

#include "plexus/store/database.hpp"
#include "plexus/store/error.hpp"
#include "plexus/store/value.hpp"
