#pragma once
/// Settings loaded from YAML into plain structs. The reader is told, key by key, what a struct
/// expects; any key the file has but nobody asked for, a value of the wrong type, or a missing
/// required key throws `SettingsError` whose message reads `file:line: key.path: reason`.
///
///     auto r = SettingsReader::from_file("gateway.yaml");
///     r.field("listen", s.listen, Need::required);
///     r.field("timeout", s.timeout);                       // "5s", "250ms"
///     r.each("routes", [&](SettingsReader& route) { ... }); // a list of maps
///     r.done();                                             // unknown keys are an error
///
/// Only the wiring layer (daemon entry points, the CLI) reads files; libraries take the structs.
/// Not thread-safe: one reader is used by one thread at startup.
///
/// The same loader code can describe what it reads as a JSON Schema (the subset that
/// plexus/core/json_schema.hpp checks), so that a program publishes exactly what it accepts:
///
///     auto d = SettingsReader::describer();
///     load_gateway_settings(d, ignored);   // the loader above, unchanged
///     boost::json::object schema = d.schema();
///
/// In describe mode nothing is read: every field call records a property and returns false,
/// `section` and `each` run their callback once on a describing child, `each_entry` once with the
/// name "*", `has()` is false and `done()` does nothing. So a loader must call `fail()` only
/// after a field call returned true or `has()` did (a check of a value no field read would fail
/// on the struct's defaults; see `fail()`), and keys it reads only when `has()` is true are left
/// out of the schema. Reading accepts a few spellings the schema refuses: any scalar where a
/// string is expected (`name: 123`), a quoted number or boolean (`port: "80"`), and an empty
/// value (`key:`), read as an absent key.
///
/// | loader call                        | schema of the property                            |
/// |------------------------------------|---------------------------------------------------|
/// | std::string, bool, double          | {"type": "string"}, "boolean", "number"           |
/// | int with lo, hi                    | {"type": "integer", "minimum": lo, "maximum": hi} |
/// | int without                        | the same with int's own limits                    |
/// | std::int64_t                       | {"type": "integer"}                               |
/// | std::chrono::milliseconds          | {"type": "string", "format": "duration"}          |
/// | std::vector<std::string>           | {"type": "array", "items": {"type": "string"}}    |
/// | std::map<std::string, std::string> | {"type": "object",                                |
/// |                                    |  "additionalProperties": {"type": "string"}}      |
/// | section                            | the child's object schema                         |
/// | each                               | {"type": "array", "items": the child's}           |
/// | each_entry                         | {"type": "object", "additionalProperties": ...}   |
///
/// Every object a reader describes (the child's above) has "additionalProperties": false, as
/// done() refuses unknown keys, and lists its Need::required keys under "required".

#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace plexus::core {

/// A configuration problem a person can act on; `what()` names file, line and key.
class SettingsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

enum class Need { optional, required };

class SettingsReader {
  public:
    /// Reads and parses a YAML file; throws SettingsError if it cannot be read or parsed.
    static SettingsReader from_file(const std::string& path);
    /// Parses YAML text; `name` stands for the file in messages.
    static SettingsReader from_text(std::string_view text, std::string name);
    /// Reads a JSON object (a document from a config server, say) by the same rules and with the
    /// same messages as YAML, less the line: `name: key.path: reason`. A value is read from its
    /// JSON text as a YAML scalar is (a number where a string is expected reads as its digits,
    /// as `name: 123` does); a double is never an integer (5.0 is not 5); null is an absent key.
    /// Throws SettingsError when `doc` is neither an object nor null, or nests more than 64
    /// levels deep.
    static SettingsReader from_json(const boost::json::value& doc, std::string name);
    /// A reader in describe mode (see above): loader calls on it build `schema()`.
    static SettingsReader describer();

    ~SettingsReader();
    SettingsReader(SettingsReader&&) noexcept;
    SettingsReader& operator=(SettingsReader&&) noexcept;

    /// Scalar fields. Absent optional keys leave `out` unchanged.
    bool field(std::string_view key, std::string& out, Need need = Need::optional);
    bool field(std::string_view key, bool& out, Need need = Need::optional);
    bool field(std::string_view key, int& out, Need need = Need::optional);
    bool field(std::string_view key, std::int64_t& out, Need need = Need::optional);
    bool field(std::string_view key, double& out, Need need = Need::optional);
    bool field(std::string_view key, std::chrono::milliseconds& out, Need need = Need::optional);
    bool field(std::string_view key, std::vector<std::string>& out, Need need = Need::optional);
    bool field(std::string_view key, std::map<std::string, std::string>& out, Need need = Need::optional);
    /// An integer that must lie in [lo, hi].
    bool field(std::string_view key, int& out, int lo, int hi, Need need = Need::optional);

    /// A nested map, read by `fn`; `done()` is called on it afterwards.
    bool section(std::string_view key, const std::function<void(SettingsReader&)>& fn,
                 Need need = Need::optional);
    /// A list of maps; `fn` reads each element; `done()` is called on each.
    bool each(std::string_view key, const std::function<void(SettingsReader&)>& fn,
              Need need = Need::optional);
    /// A map of maps (name → settings); `fn` reads each entry; `done()` is called on each.
    bool each_entry(std::string_view key,
                    const std::function<void(const std::string& name, SettingsReader&)>& fn,
                    Need need = Need::optional);

    /// Whether this reader describes (see above) rather than reads.
    bool describing() const noexcept;
    /// Whether the map has `key` with a non-empty value; false in describe mode.
    bool has(std::string_view key) const;
    /// Throws SettingsError naming this position and `key` with `reason`; an empty `key` names
    /// this map itself. In describe mode nothing was read, so nothing can be wrong: a call there
    /// is a bug of the loader (a check of a value no field call returned), and throws
    /// std::logic_error naming the key path and `reason`.
    [[noreturn]] void fail(std::string_view key, std::string_view reason) const;
    /// Fails on the first key in this map that no call above asked for; nothing in describe mode.
    void done();

    /// The JSON Schema of everything asked of this describing reader so far: an object schema
    /// with "additionalProperties": false. Throws std::logic_error on a reader that reads.
    boost::json::object schema() const;

  private:
    struct Impl;
    explicit SettingsReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::core
