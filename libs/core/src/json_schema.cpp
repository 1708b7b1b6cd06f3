#include "plexus/core/json_schema.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>

#include "plexus/core/duration.hpp"
#include "settings_text.hpp"

namespace plexus::core {

namespace {

namespace json = boost::json;

// int64, uint64 and double all convert to long double without loss where it has a 64-bit
// mantissa (x86-64, and quad precision on AArch64), so bounds compare exactly across kinds.
static_assert(std::numeric_limits<long double>::digits >= 64);

long double number_of(const json::value& v) noexcept {
    if (v.is_int64()) return static_cast<long double>(v.get_int64());
    if (v.is_uint64()) return static_cast<long double>(v.get_uint64());
    return static_cast<long double>(v.get_double());
}

bool is_integer(const json::value& v) noexcept { return v.is_int64() || v.is_uint64(); }

// Equality as JSON Schema defines it for enum: numbers by value (1 == 1.0), the rest by structure.
bool same(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) return number_of(a) == number_of(b);
    if (a.kind() != b.kind()) return false;
    if (a.is_array()) {
        const auto& x = a.get_array();
        const auto& y = b.get_array();
        return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), same);
    }
    if (a.is_object()) {
        const auto& x = a.get_object();
        const auto& y = b.get_object();
        if (x.size() != y.size()) return false;
        return std::all_of(x.begin(), x.end(), [&](const auto& kv) {
            const auto* other = y.if_contains(kv.key());
            return other && same(kv.value(), *other);
        });
    }
    return a == b;
}

constexpr std::string_view kDurationReason = "expected a duration such as 250ms, 5s, 2m or 1h";

constexpr std::string_view kTypes[] = {"object", "array", "string", "integer", "number", "boolean", "null"};

bool has_type(const json::value& v, std::string_view type) noexcept {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "integer") return is_integer(v);
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_bool();
    return v.is_null();
}

// The words SettingsReader uses for each type.
std::string_view type_words(std::string_view type) noexcept {
    if (type == "object") return "a map";
    if (type == "array") return "a list";
    if (type == "string") return "a string";
    if (type == "integer") return "an integer";
    if (type == "number") return "a number";
    if (type == "boolean") return "true or false";
    return "null";
}

// "a, b or c".
std::string one_of_words(const std::vector<std::string>& words) {
    std::string out;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
        out += words[i];
    }
    return out;
}

std::string number_text(const json::value& v) {
    if (v.is_int64()) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    return detail::format_double(v.get_double());
}

std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

bool is_count(const json::value& v) noexcept { return v.is_uint64() || (v.is_int64() && v.get_int64() >= 0); }

std::uint64_t count_of(const json::value& v) noexcept {
    return v.is_uint64() ? v.get_uint64() : static_cast<std::uint64_t>(v.get_int64());
}

// "1 item", "2 items".
std::string count_text(const json::value& n, std::string_view noun) {
    return number_text(n) + " " + std::string(noun) + (count_of(n) == 1 ? "" : "s");
}

// A reason why `schema` (at `path` within the whole schema) is not usable, or nullopt.
std::optional<std::string> schema_problem(const json::value& schema, const std::string& path, int depth) {
    auto at = [&](std::string_view keyword, std::string reason) -> std::optional<std::string> {
        return join(path, keyword) + ": " + reason;
    };
    if (!schema.is_object()) {
        return (path.empty() ? std::string() : path + ": ") + "a schema must be an object";
    }
    if (depth > detail::kMaxSettingsDepth) {
        return (path.empty() ? std::string() : path + ": ") + "nested more than " +
               std::to_string(detail::kMaxSettingsDepth) + " levels deep";
    }
    for (const auto& kv : schema.get_object()) {
        const std::string_view keyword = kv.key();
        const json::value& v = kv.value();
        if (keyword == "type") {
            std::vector<const json::value*> names;
            if (v.is_string()) {
                names.push_back(&v);
            } else if (v.is_array() && !v.get_array().empty()) {
                for (const auto& item : v.get_array()) names.push_back(&item);
            } else {
                return at(keyword, "expected a type name or a non-empty list of them");
            }
            std::set<std::string_view> seen;
            for (const auto* name : names) {
                if (!name->is_string() ||
                    std::find(std::begin(kTypes), std::end(kTypes), name->get_string()) == std::end(kTypes)) {
                    return at(keyword, "expected object, array, string, integer, number, boolean or null");
                }
                if (!seen.insert(name->get_string()).second) return at(keyword, "lists a type twice");
            }
        } else if (keyword == "properties") {
            if (!v.is_object()) return at(keyword, "expected an object of schemas");
            for (const auto& p : v.get_object()) {
                if (auto why = schema_problem(p.value(), join(join(path, keyword), p.key()), depth + 1))
                    return why;
            }
        } else if (keyword == "required") {
            if (!v.is_array()) return at(keyword, "expected a list of names");
            std::set<std::string_view> seen;
            for (const auto& name : v.get_array()) {
                if (!name.is_string()) return at(keyword, "expected a list of names");
                if (!seen.insert(name.get_string()).second) return at(keyword, "lists a name twice");
            }
        } else if (keyword == "additionalProperties") {
            if (v.is_bool()) continue;
            if (auto why = schema_problem(v, join(path, keyword), depth + 1)) return why;
        } else if (keyword == "items") {
            if (v.is_array())
                return at(keyword, "expected one schema for every item (prefixItems is not supported)");
            if (auto why = schema_problem(v, join(path, keyword), depth + 1)) return why;
        } else if (keyword == "enum") {
            if (!v.is_array() || v.get_array().empty())
                return at(keyword, "expected a non-empty list of values");
        } else if (keyword == "minimum" || keyword == "maximum") {
            if (!v.is_number()) return at(keyword, "expected a number");
            if (v.is_double() && !std::isfinite(v.get_double()))
                return at(keyword, "expected a finite number");
        } else if (keyword == "minLength" || keyword == "maxLength" || keyword == "minItems" ||
                   keyword == "maxItems") {
            if (!is_count(v)) return at(keyword, "expected an integer of 0 or more");
        } else if (keyword == "description") {
            if (!v.is_string()) return at(keyword, "expected a string");
        } else if (keyword == "format") {
            if (!v.is_string() || v.get_string() != "duration") {
                return at(keyword, "only \"duration\" is supported");
            }
        } else {
            return at(keyword, "is not a supported keyword");
        }
    }
    return std::nullopt;
}

std::size_t code_points(std::string_view s) noexcept {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

class Validator {
  public:
    explicit Validator(std::size_t limit)
        : limit_(limit == 0 ? std::numeric_limits<std::size_t>::max() : limit) {}

    // Checks `doc` (at `path`) against a schema that check_schema accepted.
    void check(const json::object& schema, const json::value& doc, const std::string& path) {
        if (full()) return;
        if (const auto* type = schema.if_contains("type"); type && !type_matches(*type, doc)) {
            if (schema.contains("format") && type->is_string()) return add(path, kDurationReason);
            std::vector<std::string> words;
            if (type->is_string()) {
                words.emplace_back(type_words(type->get_string()));
            } else {
                for (const auto& t : type->get_array()) words.emplace_back(type_words(t.get_string()));
            }
            return add(path, "expected " + one_of_words(words));
        }
        if (const auto* members = schema.if_contains("enum")) {
            const auto& list = members->get_array();
            if (std::none_of(list.begin(), list.end(), [&](const json::value& m) { return same(m, doc); })) {
                std::vector<std::string> words;
                for (const auto& m : list) {
                    words.push_back(m.is_string() ? std::string(m.get_string()) : json::serialize(m));
                }
                std::string text;
                for (const auto& w : words) text += (text.empty() ? "" : ", ") + w;
                return add(path, "must be one of: " + text);
            }
        }
        if (doc.is_number()) {
            if (const auto* min = schema.if_contains("minimum"); min && number_of(doc) < number_of(*min)) {
                add(path, "must be at least " + number_text(*min));
            }
            if (const auto* max = schema.if_contains("maximum"); max && number_of(doc) > number_of(*max)) {
                add(path, "must be at most " + number_text(*max));
            }
        } else if (doc.is_string()) {
            const auto& s = doc.get_string();
            const auto n = code_points(s);
            if (const auto* min = schema.if_contains("minLength"); min && n < count_of(*min)) {
                add(path, "must be at least " + count_text(*min, "character") + " long");
            }
            if (const auto* max = schema.if_contains("maxLength"); max && n > count_of(*max)) {
                add(path, "must be at most " + count_text(*max, "character") + " long");
            }
            if (schema.contains("format") && !parse_duration(s)) {
                add(path, kDurationReason);
            }
        } else if (doc.is_array()) {
            const auto& items = doc.get_array();
            if (const auto* min = schema.if_contains("minItems"); min && items.size() < count_of(*min)) {
                add(path, "must have at least " + count_text(*min, "item"));
            }
            if (const auto* max = schema.if_contains("maxItems"); max && items.size() > count_of(*max)) {
                add(path, "must have at most " + count_text(*max, "item"));
            }
            if (const auto* each = schema.if_contains("items")) {
                for (std::size_t i = 0; i < items.size(); ++i) {
                    check(each->get_object(), items[i], path + "[" + std::to_string(i) + "]");
                }
            }
        } else if (doc.is_object()) {
            check_object(schema, doc.get_object(), path);
        }
    }

    std::vector<SchemaError> take() && { return std::move(errors_); }

  private:
    static bool type_matches(const json::value& type, const json::value& doc) {
        if (type.is_string()) return has_type(doc, type.get_string());
        const auto& list = type.get_array();
        return std::any_of(list.begin(), list.end(),
                           [&](const json::value& t) { return has_type(doc, t.get_string()); });
    }

    void check_object(const json::object& schema, const json::object& doc, const std::string& path) {
        if (const auto* required = schema.if_contains("required")) {
            for (const auto& name : required->get_array()) {
                if (!doc.contains(name.get_string())) add(join(path, name.get_string()), "is required");
            }
        }
        const auto* properties = schema.if_contains("properties");
        const auto* additional = schema.if_contains("additionalProperties");
        for (const auto& kv : doc) {
            const auto key_path = join(path, kv.key());
            if (const auto* own = properties ? properties->get_object().if_contains(kv.key()) : nullptr) {
                check(own->get_object(), kv.value(), key_path);
            } else if (additional && additional->is_bool()) {
                if (!additional->get_bool()) add(key_path, "unknown key");
            } else if (additional) {
                check(additional->get_object(), kv.value(), key_path);
            }
        }
    }

    bool full() const noexcept { return errors_.size() >= limit_; }

    void add(const std::string& path, std::string_view reason) {
        if (!full()) errors_.push_back({path, std::string(reason)});
    }

    std::size_t limit_;
    std::vector<SchemaError> errors_;
};

}  // namespace

std::string to_string(const SchemaError& e) { return e.key.empty() ? e.reason : e.key + ": " + e.reason; }

std::string check_schema(const boost::json::value& schema) {
    return schema_problem(schema, "", 0).value_or("");
}

std::vector<SchemaError> validate(const boost::json::value& schema, const boost::json::value& doc,
                                  std::size_t limit) {
    if (auto why = schema_problem(schema, "", 0)) throw std::invalid_argument("invalid schema: " + *why);
    Validator v(limit);
    v.check(schema.get_object(), doc, "");
    return std::move(v).take();
}

}  // namespace plexus::core
