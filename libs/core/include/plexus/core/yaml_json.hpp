#pragma once
/// YAML settings as JSON values and back, for tools that validate, store or serve settings as
/// JSON (a schema check, a config server) while people keep writing YAML.
///
///     auto doc = core::yaml_to_json(text, "gateway.yaml");   // throws SettingsError
///     auto problems = core::validate(schema, doc);
///     std::string again = core::json_to_yaml(doc);            // yaml_to_json(again) == doc
///
/// Plain (unquoted, untagged) scalars are typed as follows; every other scalar is a string:
///
/// | text                                               | JSON                               |
/// |----------------------------------------------------|------------------------------------|
/// | empty, `~`, `null` (yaml-cpp also: `Null`, `NULL`) | null                               |
/// | `true`, `false`                                    | bool                               |
/// | decimal digits with an optional sign               | int64; uint64 past it; else double |
/// | a `std::from_chars` float with an optional sign    | double (not inf or nan)            |
///
/// Quoted scalars, block scalars (`|`, `>`) and scalars tagged `!!str` stay strings whatever they
/// look like. Free functions without shared state: safe to call from any thread.

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "plexus/core/settings.hpp"

namespace plexus::core {

/// Parses one YAML document into JSON; an empty document (no content, or only `---`) is null.
/// Throws SettingsError, reading `name:line: key.path: reason` like SettingsReader, on a syntax
/// error, more than one document, a map key that is not a scalar, a duplicate key, a string or
/// key that is not UTF-8, a tag other than `!!str` (and `!!map`/`!!seq` on their kinds), nesting
/// deeper than 64 levels (an alias that contains itself), or aliases that expand the document
/// far beyond its own size. Reasons never quote the offending value.
boost::json::value yaml_to_json(std::string_view text, const std::string& name);

/// Block-style YAML that yaml_to_json reads back to an equal value. Strings (and keys) that would
/// read back as something else, or that YAML cannot hold unquoted, are double-quoted with
/// JSON-style escapes; empty maps and lists are written `{}` and `[]`; doubles always carry a
/// '.' or an exponent (`1.0`). Ends with a newline. Throws std::invalid_argument for a string or
/// key that is not UTF-8 and for a non-finite double, which YAML text cannot carry back.
std::string json_to_yaml(const boost::json::value& v);

}  // namespace plexus::core
