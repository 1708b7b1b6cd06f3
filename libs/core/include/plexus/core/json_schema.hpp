#pragma once
/// Validation of JSON values (settings read with yaml_to_json, documents from a config server)
/// against a documented subset of JSON Schema 2020-12, with messages in SettingsReader's words.
///
///     if (auto why = core::check_schema(schema); !why.empty()) throw std::invalid_argument(why);
///     for (const auto& e : core::validate(schema, doc)) log(core::to_string(e));
///
/// The keywords understood, and nothing else (any other keyword makes the schema invalid):
///
/// | keyword                  | value                                     | applies to  |
/// |--------------------------|-------------------------------------------|-------------|
/// | `type`                   | a name or a list of names: object, array, | every value |
/// |                          | string, integer, number, boolean, null    |             |
/// | `properties`             | object of schemas                         | objects     |
/// | `required`               | list of distinct names                    | objects     |
/// | `additionalProperties`   | true, false or a schema                   | objects     |
/// | `items`                  | one schema, for every item                | arrays      |
/// | `enum`                   | non-empty list of values                  | every value |
/// | `minimum`, `maximum`     | number (inclusive)                        | numbers     |
/// | `minLength`, `maxLength` | integer >= 0, in code points              | strings     |
/// | `minItems`, `maxItems`   | integer >= 0                              | arrays      |
/// | `format`                 | only "duration": 250ms, 5s, 2m, 1h        | strings     |
/// |                          | (core::parse_duration, not ISO 8601)      |             |
/// | `description`            | a string, ignored                         |             |
///
/// As in JSON Schema, a keyword that does not apply to a value's type is ignored (`minimum` on a
/// string), an integer is a number, and enum members and bounds compare numbers by value. Unlike
/// it, and like SettingsReader, a double is never an integer, even 5.0.
/// Free functions without shared state: safe to call from any thread.

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <vector>

namespace plexus::core {

/// One way a document breaks its schema. The reason never quotes the offending value (settings
/// hold secrets); it may name what the schema allows ("must be one of: a, b", "must be at most 5").
struct SchemaError {
    /// Where: a dotted path such as "clients.inventory.timeout", list items as "routes[2].path";
    /// "" for the document itself.
    std::string key;
    /// Why, e.g. "expected an integer", "must be at most 500", "unknown key", "is required".
    std::string reason;

    friend bool operator==(const SchemaError&, const SchemaError&) = default;
};

/// "key: reason", or the reason alone for the document itself.
std::string to_string(const SchemaError& e);

/// Checks a schema itself: empty when `validate` can use it, else why not, naming the place in
/// the schema ("properties.port.minimum: expected a number").
std::string check_schema(const boost::json::value& schema);

/// Every violation of `schema` by `doc`, in document order (an object's own problems, such as
/// missing required keys, before those of its keys), at most `limit` of them (0: all). A value of
/// the wrong type, or outside its enum, reports only that. Throws std::invalid_argument with
/// check_schema's reason when the schema is not usable.
std::vector<SchemaError> validate(const boost::json::value& schema, const boost::json::value& doc,
                                  std::size_t limit = 20);

}  // namespace plexus::core
