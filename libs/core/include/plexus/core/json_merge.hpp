#pragma once
/// Layering JSON documents, as settings are layered (a file, then a config server, then flags):
/// `top` merged over `base` — maps merge key by key, anything else (a value, a list) is
/// replaced, and a null in `top` removes the key from `base`.

#include <boost/json/object.hpp>

namespace plexus::core {

void merge_into(boost::json::object& base, const boost::json::object& top);

}  // namespace plexus::core
