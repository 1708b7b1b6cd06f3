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

    bool has(std::string_view key) const;
    /// Throws SettingsError naming this position and `key` with `reason`; an empty `key` names
    /// this map itself.
    [[noreturn]] void fail(std::string_view key, std::string_view reason) const;
    /// Fails on the first key in this map that no call above asked for.
    void done();

  private:
    struct Impl;
    explicit SettingsReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace plexus::core
