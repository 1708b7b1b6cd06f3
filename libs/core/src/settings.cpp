#include "plexus/core/settings.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "plexus/core/duration.hpp"
#include "plexus/core/files.hpp"
#include "settings_text.hpp"
#include "utf8.hpp"

namespace plexus::core {

namespace {

using detail::is_utf8;

// JSON as the YAML nodes SettingsReader reads, so that the same rules and messages apply: every
// scalar as the text it would have in YAML (strings tagged "!" as quoted scalars are; doubles
// always with a '.' or an exponent, so that no integer field takes 5.0 for 5).
YAML::Node node_of(const boost::json::value& v, const std::string& name, const std::string& path, int depth) {
    if (depth > detail::kMaxSettingsDepth) {
        throw SettingsError(detail::settings_message(
            name, 0, path, "nested more than " + std::to_string(detail::kMaxSettingsDepth) + " levels deep"));
    }
    switch (v.kind()) {
        case boost::json::kind::null:
            return YAML::Node(YAML::NodeType::Null);
        case boost::json::kind::bool_:
            return YAML::Node(v.get_bool() ? "true" : "false");
        case boost::json::kind::int64:
            return YAML::Node(std::to_string(v.get_int64()));
        case boost::json::kind::uint64:
            return YAML::Node(std::to_string(v.get_uint64()));
        case boost::json::kind::double_:
            if (!std::isfinite(v.get_double())) {
                throw SettingsError(detail::settings_message(name, 0, path, "is not a finite number"));
            }
            return YAML::Node(detail::format_double(v.get_double()));
        case boost::json::kind::string: {
            YAML::Node n(std::string(v.get_string()));
            n.SetTag("!");
            return n;
        }
        case boost::json::kind::array: {
            YAML::Node n(YAML::NodeType::Sequence);
            std::size_t i = 0;
            for (const auto& item : v.get_array()) {
                n.push_back(node_of(item, name, path + "[" + std::to_string(i++) + "]", depth + 1));
            }
            return n;
        }
        case boost::json::kind::object: {
            YAML::Node n(YAML::NodeType::Map);
            for (const auto& kv : v.get_object()) {
                std::string key(kv.key());
                auto value = node_of(kv.value(), name, path.empty() ? key : path + "." + key, depth + 1);
                YAML::Node key_node(key);
                key_node.SetTag("!");
                n.force_insert(key_node, value);
            }
            return n;
        }
    }
    return YAML::Node(YAML::NodeType::Null);
}

}  // namespace

struct SettingsReader::Impl {
    YAML::Node node;
    std::string file;
    std::string path;  // dotted path of this map, "" at the top
    std::set<std::string, std::less<>> asked;
    // Describe mode: the schemas of the keys asked for, in the order asked, and the required ones.
    bool describing = false;
    boost::json::object properties;
    boost::json::array required;

    std::string key_path(std::string_view key) const {
        if (key.empty()) return path;  // the map itself
        return path.empty() ? std::string(key) : path + "." + std::string(key);
    }
    int line_of(const YAML::Node& n) const { return n.Mark().line >= 0 ? n.Mark().line + 1 : 0; }

    [[noreturn]] void fail_at(const YAML::Node& at, std::string_view key, std::string_view reason) const {
        throw SettingsError(detail::settings_message(file, line_of(at), key_path(key), reason));
    }

    // Records `key` with `schema` in describe mode; false, as nothing was read.
    bool describe(std::string_view key, boost::json::object schema, Need need) {
        properties[key] = std::move(schema);
        auto listed = [&](const boost::json::value& r) { return r.is_string() && r.get_string() == key; };
        if (need == Need::required && std::none_of(required.begin(), required.end(), listed)) {
            required.emplace_back(key);
        }
        return false;
    }

    boost::json::object schema() const {
        boost::json::object out{{"type", "object"}};
        if (!properties.empty()) out["properties"] = properties;
        if (!required.empty()) out["required"] = required;
        out["additionalProperties"] = false;
        return out;
    }

    // The value under `key`, or an undefined node (after checking requiredness).
    YAML::Node get(std::string_view key, Need need) {
        asked.emplace(key);
        YAML::Node v = node[std::string(key)];
        if ((!v.IsDefined() || v.IsNull()) && need == Need::required) fail_at(node, key, "is required");
        if (v.IsDefined() && v.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
        return v;
    }

    // Every string read is UTF-8 (yaml-cpp passes other bytes through), so that what settings
    // hold can be written as JSON (the gateway's /-/routes, logs) and echoed in errors.
    std::string scalar(const YAML::Node& v, std::string_view key, std::string_view expected) const {
        if (!v.IsScalar()) fail_at(v, key, "expected " + std::string(expected));
        if (!is_utf8(v.Scalar())) fail_at(v, key, "is not valid UTF-8");
        return v.Scalar();
    }

    // The text of a map's key. YAML allows any node as a key ("[a, b]: 1", "? {x: y}"), which
    // would not convert to a string.
    std::string key_of(const YAML::Node& k) const {
        if (!k.IsScalar()) fail_at(k, "", "a key must be a plain string, not a list, a map or empty");
        auto text = k.Scalar();
        if (!is_utf8(text)) fail_at(k, "", "a key is not valid UTF-8");
        return text;
    }

    SettingsReader child(const YAML::Node& n, std::string child_path) const {
        auto impl = std::make_unique<Impl>();
        impl->node = n;
        impl->file = file;
        impl->path = std::move(child_path);
        impl->describing = describing;
        return SettingsReader(std::move(impl));
    }
};

SettingsReader::SettingsReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SettingsReader::~SettingsReader() = default;
SettingsReader::SettingsReader(SettingsReader&&) noexcept = default;
SettingsReader& SettingsReader::operator=(SettingsReader&&) noexcept = default;

SettingsReader SettingsReader::from_text(std::string_view text, std::string name) {
    auto impl = std::make_unique<Impl>();
    impl->file = std::move(name);
    try {
        impl->node = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        throw SettingsError(impl->file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!impl->node.IsDefined() || impl->node.IsNull()) impl->node = YAML::Node(YAML::NodeType::Map);
    if (!impl->node.IsMap()) {
        throw SettingsError(impl->file + ":" + std::to_string(impl->line_of(impl->node)) +
                            ": the document must be a map of keys");
    }
    return SettingsReader(std::move(impl));
}

SettingsReader SettingsReader::from_json(const boost::json::value& doc, std::string name) {
    if (!doc.is_object() && !doc.is_null()) {
        throw SettingsError(detail::settings_message(name, 0, "", "the document must be a map of keys"));
    }
    auto impl = std::make_unique<Impl>();
    impl->node = doc.is_null() ? YAML::Node(YAML::NodeType::Map) : node_of(doc, name, "", 0);
    impl->file = std::move(name);
    return SettingsReader(std::move(impl));
}

SettingsReader SettingsReader::describer() {
    auto impl = std::make_unique<Impl>();
    impl->node = YAML::Node(YAML::NodeType::Map);
    impl->file = "(describe)";
    impl->describing = true;
    return SettingsReader(std::move(impl));
}

boost::json::object SettingsReader::schema() const {
    if (!impl_->describing)
        throw std::logic_error("SettingsReader::schema() needs a reader from describer()");
    return impl_->schema();
}

SettingsReader SettingsReader::from_file(const std::string& path) {
    std::string why;
    auto text = read_text_file(path, &why);
    if (!text) throw SettingsError(why);
    return from_text(*text, path);
}

bool SettingsReader::field(std::string_view key, std::string& out, Need need) {
    if (impl_->describing) return impl_->describe(key, {{"type", "string"}}, need);
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    out = impl_->scalar(v, key, "a string");
    return true;
}

bool SettingsReader::field(std::string_view key, bool& out, Need need) {
    if (impl_->describing) return impl_->describe(key, {{"type", "boolean"}}, need);
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    auto s = impl_->scalar(v, key, "true or false");
    if (s == "true")
        out = true;
    else if (s == "false")
        out = false;
    else
        impl_->fail_at(v, key, "expected true or false, got '" + s + "'");
    return true;
}

bool SettingsReader::field(std::string_view key, std::int64_t& out, Need need) {
    if (impl_->describing) return impl_->describe(key, {{"type", "integer"}}, need);
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    auto s = impl_->scalar(v, key, "an integer");
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || end != s.data() + s.size()) {
        impl_->fail_at(v, key, "expected an integer, got '" + s + "'");
    }
    out = n;
    return true;
}

bool SettingsReader::field(std::string_view key, int& out, Need need) {
    return field(key, out, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), need);
}

bool SettingsReader::field(std::string_view key, int& out, int lo, int hi, Need need) {
    if (impl_->describing) {
        return impl_->describe(key, {{"type", "integer"}, {"minimum", lo}, {"maximum", hi}}, need);
    }
    std::int64_t n = out;
    if (!field(key, n, need)) return false;
    if (n < lo || n > hi) {
        impl_->fail_at(impl_->node[std::string(key)], key,
                       "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                           std::to_string(n));
    }
    out = static_cast<int>(n);
    return true;
}

bool SettingsReader::field(std::string_view key, double& out, Need need) {
    if (impl_->describing) return impl_->describe(key, {{"type", "number"}}, need);
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    auto s = impl_->scalar(v, key, "a number");
    try {
        std::size_t used = 0;
        double d = std::stod(s, &used);
        if (used != s.size()) throw std::invalid_argument(s);
        out = d;
    } catch (const std::exception&) {
        impl_->fail_at(v, key, "expected a number, got '" + s + "'");
    }
    return true;
}

bool SettingsReader::field(std::string_view key, std::chrono::milliseconds& out, Need need) {
    if (impl_->describing) return impl_->describe(key, {{"type", "string"}, {"format", "duration"}}, need);
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    auto s = impl_->scalar(v, key, "a duration");
    auto d = parse_duration(s);
    if (!d) impl_->fail_at(v, key, "expected a duration such as 250ms, 5s, 2m or 1h, got '" + s + "'");
    out = *d;
    return true;
}

bool SettingsReader::field(std::string_view key, std::vector<std::string>& out, Need need) {
    if (impl_->describing) {
        return impl_->describe(key, {{"type", "array"}, {"items", {{"type", "string"}}}}, need);
    }
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsSequence()) impl_->fail_at(v, key, "expected a list of strings");
    out.clear();
    for (const auto& item : v) out.push_back(impl_->scalar(item, key, "a list of strings"));
    return true;
}

bool SettingsReader::field(std::string_view key, std::map<std::string, std::string>& out, Need need) {
    if (impl_->describing) {
        return impl_->describe(key, {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}},
                               need);
    }
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsMap()) impl_->fail_at(v, key, "expected a map of strings");
    out.clear();
    for (const auto& kv : v) {
        out[impl_->key_of(kv.first)] = impl_->scalar(kv.second, key, "a map of strings");
    }
    return true;
}

bool SettingsReader::section(std::string_view key, const std::function<void(SettingsReader&)>& fn,
                             Need need) {
    if (impl_->describing) {
        auto child = impl_->child(YAML::Node(YAML::NodeType::Map), impl_->key_path(key));
        fn(child);
        return impl_->describe(key, child.impl_->schema(), need);
    }
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsMap()) impl_->fail_at(v, key, "expected a map");
    auto child = impl_->child(v, impl_->key_path(key));
    fn(child);
    child.done();
    return true;
}

bool SettingsReader::each(std::string_view key, const std::function<void(SettingsReader&)>& fn, Need need) {
    if (impl_->describing) {
        auto child = impl_->child(YAML::Node(YAML::NodeType::Map), impl_->key_path(key) + "[*]");
        fn(child);
        return impl_->describe(key, {{"type", "array"}, {"items", child.impl_->schema()}}, need);
    }
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsSequence()) impl_->fail_at(v, key, "expected a list");
    std::size_t i = 0;
    for (const auto& item : v) {
        auto item_path = impl_->key_path(key) + "[" + std::to_string(i++) + "]";
        if (!item.IsMap()) {
            auto child = impl_->child(item, item_path);
            child.impl_->fail_at(item, "", "expected a map");
        }
        auto child = impl_->child(item, item_path);
        fn(child);
        child.done();
    }
    return true;
}

bool SettingsReader::each_entry(std::string_view key,
                                const std::function<void(const std::string&, SettingsReader&)>& fn,
                                Need need) {
    if (impl_->describing) {
        const std::string name = "*";
        auto child = impl_->child(YAML::Node(YAML::NodeType::Map), impl_->key_path(key) + "." + name);
        fn(name, child);
        return impl_->describe(key, {{"type", "object"}, {"additionalProperties", child.impl_->schema()}},
                               need);
    }
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsMap()) impl_->fail_at(v, key, "expected a map");
    for (const auto& kv : v) {
        auto name = impl_->key_of(kv.first);
        auto entry = kv.second;
        if (entry.IsNull()) entry = YAML::Node(YAML::NodeType::Map);
        if (!entry.IsMap()) impl_->fail_at(kv.second, std::string(key) + "." + name, "expected a map");
        auto child = impl_->child(entry, impl_->key_path(key) + "." + name);
        fn(name, child);
        child.done();
    }
    return true;
}

bool SettingsReader::describing() const noexcept { return impl_->describing; }

bool SettingsReader::has(std::string_view key) const {
    if (impl_->describing) return false;
    auto v = impl_->node[std::string(key)];
    return v.IsDefined() && !v.IsNull();
}

void SettingsReader::fail(std::string_view key, std::string_view reason) const {
    if (impl_->describing) {
        throw std::logic_error(detail::settings_message(
            impl_->file, 0, impl_->key_path(key),
            "fail() while describing settings, where no field returned a value to check (" +
                std::string(reason) + ")"));
    }
    auto v = impl_->node[std::string(key)];
    impl_->fail_at(v.IsDefined() ? v : impl_->node, key, reason);
}

void SettingsReader::done() {
    if (impl_->describing) return;
    for (const auto& kv : impl_->node) {
        auto key = impl_->key_of(kv.first);
        if (!impl_->asked.contains(key)) impl_->fail_at(kv.first, key, "unknown key");
    }
}

}  // namespace plexus::core
