#include "plexus/core/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "settings_text.hpp"
#include "utf8.hpp"

namespace plexus::core {

namespace {

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";
constexpr std::string_view kMapTag = "tag:yaml.org,2002:map";
constexpr std::string_view kSeqTag = "tag:yaml.org,2002:seq";

// The value of a plain scalar. yaml-cpp itself turns empty, ~, null, Null and NULL into null
// nodes; they are listed here too because json_to_yaml asks which strings need quotes.
boost::json::value plain_value(std::string_view s) {
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true") return true;
    if (s == "false") return false;
    // A sign, then digits (an integer) or what from_chars reads as a float. from_chars takes '-'
    // but not '+', and also reads "inf", "nan" and "infinity", which YAML spells .inf and .nan.
    const bool plus = s.front() == '+';
    const bool minus = s.front() == '-';
    const std::string_view magnitude = s.substr(plus || minus ? 1 : 0);
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (magnitude.empty() || !(is_digit(magnitude.front()) || magnitude.front() == '.')) {
        return boost::json::string(s);
    }
    const char* first = s.data() + (plus ? 1 : 0);
    const char* last = s.data() + s.size();
    if (std::all_of(magnitude.begin(), magnitude.end(), is_digit)) {
        std::int64_t i = 0;
        if (auto [end, ec] = std::from_chars(first, last, i); ec == std::errc{} && end == last) return i;
        std::uint64_t u = 0;
        if (auto [end, ec] = std::from_chars(first, last, u); !minus && ec == std::errc{} && end == last)
            return u;
    }
    double d = 0;
    if (auto [end, ec] = std::from_chars(first, last, d); ec == std::errc{} && end == last) return d;
    return boost::json::string(s);
}

class YamlToJson {
  public:
    YamlToJson(const std::string& name, std::size_t text_size) : name_(name), budget_(8 * text_size + 1024) {}

    boost::json::value convert(const YAML::Node& n, const std::string& path, int depth) {
        if (depth > detail::kMaxSettingsDepth) {
            fail(n, path,
                 "nested more than " + std::to_string(detail::kMaxSettingsDepth) +
                     " levels deep (or an alias contains itself)");
        }
        spend(n, path, 1);
        switch (n.Type()) {
            case YAML::NodeType::Undefined:
            case YAML::NodeType::Null:
                return nullptr;
            case YAML::NodeType::Scalar:
                return scalar(n, path);
            case YAML::NodeType::Sequence: {
                check_tag(n, path, kSeqTag);
                boost::json::array out;
                out.reserve(n.size());
                std::size_t i = 0;
                for (const auto& item : n) {
                    out.push_back(convert(item, path + "[" + std::to_string(i++) + "]", depth + 1));
                }
                return out;
            }
            case YAML::NodeType::Map: {
                check_tag(n, path, kMapTag);
                boost::json::object out;
                out.reserve(n.size());
                for (const auto& kv : n) {
                    auto key = key_of(kv.first, path);
                    auto key_path = path.empty() ? key : path + "." + key;
                    if (out.contains(key)) fail(kv.first, key_path, "duplicate key");
                    out.emplace(key, convert(kv.second, key_path, depth + 1));
                }
                return out;
            }
        }
        return nullptr;
    }

  private:
    [[noreturn]] void fail(const YAML::Node& at, const std::string& path, std::string_view reason) const {
        const int line = at.Mark().line >= 0 ? at.Mark().line + 1 : 0;
        throw SettingsError(detail::settings_message(name_, line, path, reason));
    }

    // Aliases share nodes, so a small text can stand for a huge tree ("billion laughs"). Without
    // aliases the tree is never much larger than the text; the budget allows generous slack.
    void spend(const YAML::Node& n, const std::string& path, std::size_t units) {
        if (units > budget_) fail(n, path, "the document's aliases expand to far more data than it holds");
        budget_ -= units;
    }

    void check_tag(const YAML::Node& n, const std::string& path, std::string_view own) const {
        const auto& tag = n.Tag();
        if (tag.empty() || tag == "?" || tag == own) return;
        if (n.IsScalar() && tag == "!") return;
        fail(n, path, "the tag '" + tag + "' is not supported (only !!str is)");
    }

    boost::json::value scalar(const YAML::Node& n, const std::string& path) {
        check_tag(n, path, kStrTag);
        const auto& text = n.Scalar();
        spend(n, path, text.size());
        if (!detail::is_utf8(text)) fail(n, path, "is not valid UTF-8");
        if (n.Tag() == "?") return plain_value(text);
        return boost::json::string(text);
    }

    std::string key_of(const YAML::Node& k, const std::string& path) {
        if (!k.IsScalar()) fail(k, path, "a key must be a plain string, not a list, a map or empty");
        check_tag(k, path, kStrTag);
        const auto& text = k.Scalar();
        spend(k, path, text.size());
        if (!detail::is_utf8(text)) fail(k, path, "a key is not valid UTF-8");
        return text;
    }

    const std::string& name_;
    std::size_t budget_;
};

// Code points that YAML does not allow in a stream as they are (C1 controls, BOM, non-characters)
// or that some readers take for line breaks (NEL, U+2028, U+2029).
bool needs_escape(std::uint32_t cp) noexcept {
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xfeff || cp == 0xfffe || cp == 0xffff;
}

// Decodes the code point at `s[i]` of a string already known to be UTF-8; advances `i`.
std::uint32_t next_code_point(std::string_view s, std::size_t& i) noexcept {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    std::uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    for (std::size_t k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3fu);
    i += len;
    return cp;
}

bool equals_lower(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(s[i])) != lower[i]) return false;
    }
    return true;
}

// Whether `s` can be written as a plain scalar and still read back as this very string. Errs on
// the side of quoting: words other YAML readers take for booleans or special numbers are quoted
// too, though yaml_to_json would read them as strings.
bool needs_quotes(std::string_view s) {
    if (!plain_value(s).is_string()) return true;
    for (std::string_view word :
         {"true", "false", "null", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", "+.inf", ".nan"}) {
        if (equals_lower(s, word)) return true;
    }
    if (std::string_view(" \t-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) return true;
    if (s.back() == ' ' || s.back() == '\t' || s.back() == ':') return true;
    if (s.starts_with("...")) return true;  // a document end marker at the start of a line
    if (s.find('#') != std::string_view::npos) return true;
    if (s.find(": ") != std::string_view::npos) return true;
    for (std::size_t i = 0; i < s.size();) {
        if (needs_escape(next_code_point(s, i))) return true;
    }
    return false;
}

void write_quoted(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        const auto cp = next_code_point(s, i);
        switch (cp) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (needs_escape(cp)) {
                    out += "\\u";
                    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 0xfu];
                } else {
                    out.append(s.substr(start, i - start));
                }
        }
    }
    out += '"';
}

void write_string(std::string& out, std::string_view s) {
    if (!detail::is_utf8(s)) throw std::invalid_argument("json_to_yaml: a string or key is not valid UTF-8");
    if (needs_quotes(s)) {
        write_quoted(out, s);
    } else {
        out.append(s);
    }
}

// YAML limits a key written without `? ` to 1024 characters; bytes are counted here, which is
// stricter, and quoting and escapes are left room.
constexpr std::size_t kMaxImplicitKey = 512;

bool is_block(const boost::json::value& v) noexcept {
    return (v.is_object() && !v.get_object().empty()) || (v.is_array() && !v.get_array().empty());
}

// Scalars and empty containers, which take one line.
void write_inline(std::string& out, const boost::json::value& v) {
    switch (v.kind()) {
        case boost::json::kind::null:
            out += "null";
            break;
        case boost::json::kind::bool_:
            out += v.get_bool() ? "true" : "false";
            break;
        case boost::json::kind::int64:
            out += std::to_string(v.get_int64());
            break;
        case boost::json::kind::uint64:
            out += std::to_string(v.get_uint64());
            break;
        case boost::json::kind::double_:
            out += detail::format_double(v.get_double());
            break;
        case boost::json::kind::string:
            write_string(out, v.get_string());
            break;
        case boost::json::kind::array:
            out += "[]";
            break;
        case boost::json::kind::object:
            out += "{}";
            break;
    }
}

// A non-empty map or list, every line indented by `indent` spaces.
void write_block(std::string& out, const boost::json::value& v, std::size_t indent) {
    const std::string pad(indent, ' ');
    if (v.is_object()) {
        for (const auto& kv : v.get_object()) {
            out += pad;
            if (kv.key().size() <= kMaxImplicitKey) {
                write_string(out, kv.key());
            } else {
                out += "? ";
                write_string(out, kv.key());
                out += '\n';
                out += pad;
            }
            out += ':';
            if (is_block(kv.value())) {
                out += '\n';
                write_block(out, kv.value(), indent + 2);
            } else {
                out += ' ';
                write_inline(out, kv.value());
                out += '\n';
            }
        }
        return;
    }
    for (const auto& item : v.get_array()) {
        out += pad;
        out += '-';
        if (is_block(item)) {
            // The item's first line goes after the dash: "- key: value" or "- - item".
            std::string inner;
            write_block(inner, item, indent + 2);
            out += ' ';
            out.append(inner, indent + 2);
        } else {
            out += ' ';
            write_inline(out, item);
            out += '\n';
        }
    }
}

}  // namespace

boost::json::value yaml_to_json(std::string_view text, const std::string& name) {
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::Exception& e) {
        throw SettingsError(
            detail::settings_message(name, e.mark.line >= 0 ? e.mark.line + 1 : 0, "", e.msg));
    }
    if (docs.empty()) return nullptr;
    if (docs.size() > 1) {
        const int line = docs[1].Mark().line >= 0 ? docs[1].Mark().line + 1 : 0;
        throw SettingsError(detail::settings_message(
            name, line, "", "expected one YAML document, found " + std::to_string(docs.size())));
    }
    return YamlToJson(name, text.size()).convert(docs.front(), "", 0);
}

std::string json_to_yaml(const boost::json::value& v) {
    std::string out;
    if (is_block(v)) {
        write_block(out, v, 0);
    } else {
        write_inline(out, v);
        out += '\n';
    }
    return out;
}

}  // namespace plexus::core
