#include "plexus/config/document.hpp"

#include <algorithm>
#include <map>

namespace plexus::config {

namespace json = boost::json;

namespace {

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

std::string name_problem(std::string_view what, std::string_view name) {
    if (name.empty()) return std::string(what) + " is empty";
    if (name.size() > 100) return std::string(what) + " is longer than 100 characters";
    if (!std::all_of(name.begin(), name.end(), name_char) || !name_char(name[0]) || name[0] == '.' ||
        name[0] == '_' || name[0] == '-')
        return std::string(what) +
               " must be letters, digits, '.', '_' and '-', starting with a letter or digit";
    return {};
}

void flatten_into(const json::value& v, std::string prefix, std::vector<Property>& out) {
    if (v.is_object() && !v.get_object().empty()) {
        for (const auto& kv : v.get_object()) {
            std::string key(kv.key());
            flatten_into(kv.value(), prefix.empty() ? key : prefix + "." + key, out);
        }
    } else if (v.is_array() && !v.get_array().empty()) {
        std::size_t i = 0;
        for (const auto& item : v.get_array())
            flatten_into(item, prefix + "[" + std::to_string(i++) + "]", out);
    } else {
        out.push_back({std::move(prefix), v});
    }
}

// The parts of "a.b.c"; empty when a part is empty.
std::vector<std::string_view> split_key(std::string_view key) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        auto dot = key.find('.', start);
        auto part = key.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (part.empty()) return {};
        parts.push_back(part);
        if (dot == std::string_view::npos) return parts;
        start = dot + 1;
    }
}

}  // namespace

std::string app_name_problem(std::string_view name) {
    auto why = name_problem("an application name", name);
    if (why.empty() && (name == "v1" || name == "health" || name == "metrics" || name == "encrypt"))
        why = "'" + std::string(name) + "' is reserved for the server's own paths";
    return why;
}

std::string profile_name_problem(std::string_view name) { return name_problem("a profile name", name); }

std::vector<std::string> parse_profiles(std::string_view text, std::string& why) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        auto comma = text.find(',', start);
        auto part =
            text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (why = profile_name_problem(part); !why.empty()) return {};
        if (std::find(out.begin(), out.end(), part) == out.end()) out.emplace_back(part);
        if (comma == std::string_view::npos) return out;
        start = comma + 1;
    }
}

std::vector<DocKey> layers(const std::string& app, const std::vector<std::string>& profiles) {
    std::vector<DocKey> out;
    auto add = [&](const std::string& a) {
        out.push_back({a, ""});
        for (const auto& p : profiles) out.push_back({a, p});
    };
    add(std::string(kSharedApplication));
    if (app != kSharedApplication) add(app);
    return out;
}

std::vector<Property> flatten(const json::object& doc) {
    std::vector<Property> out;
    if (!doc.empty()) flatten_into(doc, "", out);
    return out;
}

bool set_path(json::object& doc, std::string_view key, json::value value, std::string& why) {
    auto parts = split_key(key);
    if (parts.empty()) {
        why = "'" + std::string(key) + "' is not a key such as server.port";
        return false;
    }
    json::object* at = &doc;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        auto& next = (*at)[parts[i]];
        if (next.is_null()) next = json::object();
        if (!next.is_object()) {
            why = std::string(key) + ": " + std::string(parts[i]) + " holds a value, not a map";
            return false;
        }
        at = &next.get_object();
    }
    (*at)[parts.back()] = std::move(value);
    return true;
}

bool remove_path(json::object& doc, std::string_view key) {
    auto parts = split_key(key);
    if (parts.empty()) return false;
    json::object* at = &doc;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        auto* next = at->if_contains(parts[i]);
        if (!next || !next->is_object()) return false;
        at = &next->get_object();
    }
    return at->erase(parts.back()) > 0;
}

std::vector<Change> diff(const json::object& from, const json::object& to,
                         const std::function<bool(const json::value&, const json::value&)>& same) {
    std::map<std::string, json::value> a, b;
    for (auto& p : flatten(from)) a.emplace(std::move(p.key), std::move(p.value));
    for (auto& p : flatten(to)) b.emplace(std::move(p.key), std::move(p.value));
    std::vector<Change> out;
    auto ia = a.begin();
    auto ib = b.begin();
    while (ia != a.end() || ib != b.end()) {
        if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
            out.push_back({Change::removed, ia->first, ia->second, nullptr});
            ++ia;
        } else if (ia == a.end() || ib->first < ia->first) {
            out.push_back({Change::added, ib->first, nullptr, ib->second});
            ++ib;
        } else {
            bool equal = same ? same(ia->second, ib->second) : ia->second == ib->second;
            if (!equal) out.push_back({Change::changed, ia->first, ia->second, ib->second});
            ++ia, ++ib;
        }
    }
    return out;
}

}  // namespace plexus::config
