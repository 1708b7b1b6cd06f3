#pragma once
/// Configuration documents and how they combine, as Spring Cloud Config does it. A document
/// belongs to an application and an optional profile; `application` is the application every
/// other one inherits from. For application A and profiles p1,p2 the layers are, lowest first:
///
///     application < application-p1 < application-p2 < A < A-p1 < A-p2
///
/// and a later layer wins: maps merge key by key, anything else (a value, a list) is replaced,
/// and a null removes the key inherited from below. Pure functions, no I/O; thread-safe.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/json_merge.hpp"

namespace plexus::config {

/// The application every other one inherits from.
inline constexpr std::string_view kSharedApplication = "application";

/// One document's address: an application and a profile ("" for the application's base document).
struct DocKey {
    std::string app;
    std::string profile;
    /// Spring's name for the document: "catalog", "catalog-prod".
    std::string name() const { return profile.empty() ? app : app + "-" + profile; }
    auto operator<=>(const DocKey&) const = default;
};

/// Why `name` cannot be an application name (letters, digits, '.', '_', '-', starting with a
/// letter or digit, at most 100 characters; not a word the server's own paths use); empty if it can.
std::string app_name_problem(std::string_view name);
/// Likewise for one profile name.
std::string profile_name_problem(std::string_view name);
/// The profiles of "prod,eu" in order, each checked; empty with `why` when one is malformed.
std::vector<std::string> parse_profiles(std::string_view text, std::string& why);

/// The documents that make up `app` with `profiles`, lowest first (see the file comment).
std::vector<DocKey> layers(const std::string& app, const std::vector<std::string>& profiles);

/// `top` merged over `base` (see the file comment).
using core::merge_into;

/// One leaf of a document by its Spring-style property name: "server.port", "hosts[0]".
struct Property {
    std::string key;
    boost::json::value value;
};
/// The leaves of `doc`, nested maps joined with '.', list items as `[i]`; an empty map or list
/// is a leaf of its own. In document order.
std::vector<Property> flatten(const boost::json::object& doc);

/// Sets `key` ("a.b.c"; each part a map key) in `doc` to `value`, making the maps on the way;
/// false (with `why`) when a part on the way is a value, not a map, or the key is malformed.
bool set_path(boost::json::object& doc, std::string_view key, boost::json::value value, std::string& why);
/// Removes `key` ("a.b.c") from `doc`; whether it was there.
bool remove_path(boost::json::object& doc, std::string_view key);

/// One difference between two documents, by property.
struct Change {
    enum Op { added, removed, changed } op;
    std::string key;
    boost::json::value from;  ///< removed, changed: the old value
    boost::json::value to;    ///< added, changed: the new value
};
/// What turns `from` into `to`, property by property, in key order. Values are compared as
/// `same` says (by default: equal JSON).
std::vector<Change> diff(
    const boost::json::object& from, const boost::json::object& to,
    const std::function<bool(const boost::json::value&, const boost::json::value&)>& same = {});

}  // namespace plexus::config
