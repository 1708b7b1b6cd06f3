#include "plexus/core/settings.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>

#include "plexus/core/duration.hpp"

namespace plexus::core {

namespace {
// Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past U+10FFFF.
bool is_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1fu;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0fu;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07u;
        else
            return false;
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = cp << 6 | (d & 0x3fu);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return false;
        if (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) return false;
        i += len;
    }
    return true;
}
}  // namespace

struct SettingsReader::Impl {
    YAML::Node node;
    std::string file;
    std::string path;  // dotted path of this map, "" at the top
    std::set<std::string, std::less<>> asked;

    std::string key_path(std::string_view key) const {
        if (key.empty()) return path;  // the map itself
        return path.empty() ? std::string(key) : path + "." + std::string(key);
    }
    int line_of(const YAML::Node& n) const { return n.Mark().line >= 0 ? n.Mark().line + 1 : 0; }

    [[noreturn]] void fail_at(const YAML::Node& at, std::string_view key, std::string_view reason) const {
        std::ostringstream msg;
        msg << file << ':' << line_of(at) << ": ";
        if (auto where = key_path(key); !where.empty()) msg << where << ": ";
        msg << reason;
        throw SettingsError(msg.str());
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

SettingsReader SettingsReader::from_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw SettingsError(path + ": cannot be read");
    std::stringstream buf;
    buf << in.rdbuf();
    return from_text(buf.str(), path);
}

bool SettingsReader::field(std::string_view key, std::string& out, Need need) {
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    out = impl_->scalar(v, key, "a string");
    return true;
}

bool SettingsReader::field(std::string_view key, bool& out, Need need) {
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
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    auto s = impl_->scalar(v, key, "a duration");
    auto d = parse_duration(s);
    if (!d) impl_->fail_at(v, key, "expected a duration such as 250ms, 5s, 2m or 1h, got '" + s + "'");
    out = *d;
    return true;
}

bool SettingsReader::field(std::string_view key, std::vector<std::string>& out, Need need) {
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsSequence()) impl_->fail_at(v, key, "expected a list of strings");
    out.clear();
    for (const auto& item : v) out.push_back(impl_->scalar(item, key, "a list of strings"));
    return true;
}

bool SettingsReader::field(std::string_view key, std::map<std::string, std::string>& out, Need need) {
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
    auto v = impl_->get(key, need);
    if (!v.IsDefined()) return false;
    if (!v.IsMap()) impl_->fail_at(v, key, "expected a map");
    auto child = impl_->child(v, impl_->key_path(key));
    fn(child);
    child.done();
    return true;
}

bool SettingsReader::each(std::string_view key, const std::function<void(SettingsReader&)>& fn, Need need) {
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

bool SettingsReader::has(std::string_view key) const {
    auto v = impl_->node[std::string(key)];
    return v.IsDefined() && !v.IsNull();
}

void SettingsReader::fail(std::string_view key, std::string_view reason) const {
    auto v = impl_->node[std::string(key)];
    impl_->fail_at(v.IsDefined() ? v : impl_->node, key, reason);
}

void SettingsReader::done() {
    for (const auto& kv : impl_->node) {
        auto key = impl_->key_of(kv.first);
        if (!impl_->asked.contains(key)) impl_->fail_at(kv.first, key, "unknown key");
    }
}

}  // namespace plexus::core
