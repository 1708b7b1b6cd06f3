#include "plexus/net/http.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <cstdint>
#include <cstring>

#include "wire.hpp"

namespace plexus::net {

namespace {
char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

void append_json_string(std::string& out, std::string_view s) {
    out += boost::json::serialize(boost::json::string(s));
}
}  // namespace

namespace {
// `x` with its ASCII uppercase letters lowered, eight bytes at once: a byte gets 0x20 added
// exactly when it is in 'A'..'Z' (bytes from 0x80 up are left alone).
std::uint64_t lower_word(std::uint64_t x) noexcept {
    constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
    const std::uint64_t low7 = x & ~kHighs;
    const std::uint64_t ge_a = low7 + kOnes * (0x80 - 'A');      // high bit: byte >= 'A'
    const std::uint64_t gt_z = low7 + kOnes * (0x80 - 'Z' - 1);  // high bit: byte > 'Z'
    const std::uint64_t upper = (ge_a & ~gt_z) & ~x & kHighs;
    return x | (upper >> 2);
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = a.size();
    if (n != b.size()) return false;
    if (n < 8) {
        for (std::size_t i = 0; i < n; ++i) {
            if (lower(a[i]) != lower(b[i])) return false;
        }
        return true;
    }
    return wire::all_words(n, [&](std::size_t i) {
        const auto x = wire::load_word(a.data() + i), y = wire::load_word(b.data() + i);
        return x == y || lower_word(x) == lower_word(y);
    });
}

namespace {
// `a` equals `lower_b` (same size, only lowercase letters, digits and '-'), ignoring the case of
// `a`. Eight bytes at a time: a letter of `lower_b` has bit 0x40 set, digits and '-' do not, so
// OR-ing 0x20 into `a` at exactly the letters' positions folds its case there and nowhere else.
bool equals_lower(std::string_view a, std::string_view lower_b) noexcept {
    const std::size_t n = a.size();
    if (n < 8) {
        for (std::size_t i = 0; i < n; ++i) {
            if (lower(a[i]) != lower_b[i]) return false;
        }
        return true;
    }
    return wire::all_words(n, [&](std::size_t i) {
        const auto x = wire::load_word(a.data() + i), y = wire::load_word(lower_b.data() + i);
        return (x | ((y & 0x4040404040404040ull) >> 1)) == y;
    });
}
}  // namespace

FieldId field_id(std::string_view n) noexcept {
    auto is = [n](std::string_view lower_name) { return equals_lower(n, lower_name); };
    if (n.empty()) return FieldId::other;
    switch (lower(n[0])) {  // the known names' first letters: most other names stop here
        case 'a':
        case 'c':
        case 'd':
        case 'e':
        case 'h':
        case 'k':
        case 'p':
        case 't':
        case 'u':
        case 'x':
            break;
        default:
            return FieldId::other;
    }
    switch (n.size()) {
        case 2:
            if (is("te")) return FieldId::te;
            break;
        case 4:
            if (is("host")) return FieldId::host;
            if (is("date")) return FieldId::date;
            break;
        case 6:
            if (is("expect")) return FieldId::expect;
            break;
        case 7:
            if (is("trailer")) return FieldId::trailer;
            if (is("upgrade")) return FieldId::upgrade;
            break;
        case 9:
            if (is("x-api-key")) return FieldId::x_api_key;
            break;
        case 10:
            if (is("connection")) return FieldId::connection;
            if (is("keep-alive")) return FieldId::keep_alive;
            break;
        case 11:
            if (is("traceparent")) return FieldId::traceparent;
            break;
        case 13:
            if (is("authorization")) return FieldId::authorization;
            break;
        case 12:
            if (is("content-type")) return FieldId::content_type;
            if (is("x-request-id")) return FieldId::x_request_id;
            break;
        case 14:
            if (is("content-length")) return FieldId::content_length;
            if (is("x-plexus-roles")) return FieldId::x_plexus_roles;
            break;
        case 15:
            if (is("x-plexus-client")) return FieldId::x_plexus_client;
            if (is("x-plexus-scopes")) return FieldId::x_plexus_scopes;
            if (is("x-forwarded-for")) return FieldId::x_forwarded_for;
            break;
        case 16:
            if (is("proxy-connection")) return FieldId::proxy_connection;
            if (is("x-plexus-subject")) return FieldId::x_plexus_subject;
            if (is("x-forwarded-host")) return FieldId::x_forwarded_host;
            break;
        case 17:
            if (is("transfer-encoding")) return FieldId::transfer_encoding;
            if (is("x-forwarded-proto")) return FieldId::x_forwarded_proto;
            break;
        case 18:
            if (is("proxy-authenticate")) return FieldId::proxy_authenticate;
            break;
        case 19:
            if (is("proxy-authorization")) return FieldId::proxy_authorization;
            break;
        case 20:
            if (is("x-plexus-deadline-ms")) return FieldId::x_plexus_deadline_ms;
            break;
        case 22:
            if (is("x-plexus-original-path")) return FieldId::x_plexus_original_path;
            break;
        default:
            break;
    }
    return FieldId::other;
}

namespace {
// clear + append: a plain copy into the string's existing capacity, cheaper than assign's
// general path (which must allow `v` to alias `s`; here it never does).
void copy_into(std::string& s, std::string_view v) {
    s.clear();
    s.append(v.data(), v.size());
}
}  // namespace

std::size_t Headers::find(FieldId id, std::string_view name, std::size_t from) const noexcept {
    for (std::size_t i = from; i < size_; ++i) {
        const auto& h = items_[i];
        if (h.id_ != id) continue;
        if (id != FieldId::other || iequals(h.name_, name)) return i;
    }
    return size_;
}

void Headers::compact() noexcept {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
        if (items_[i].dropped_) {
            items_[i].dropped_ = false;
            continue;
        }
        // Swapped, not moved: the dropped field's strings keep their capacity in the spare part.
        if (kept != i) std::swap(items_[kept], items_[i]);
        ++kept;
    }
    size_ = kept;
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
    auto i = find(field_id(name), name);
    if (i == size_) return std::nullopt;
    return std::string_view(items_[i].value);
}

std::optional<std::string_view> Headers::get(FieldId id) const noexcept {
    auto i = find(id, {});
    if (i == size_ || id == FieldId::other) return std::nullopt;
    return std::string_view(items_[i].value);
}

const Header& Headers::add(std::string_view name, std::string_view value) {
    return add(field_id(name), name, value);
}

const Header& Headers::add(FieldId id, std::string_view name, std::string_view value) {
    if (size_ == items_.size()) items_.emplace_back();
    auto& h = items_[size_++];
    copy_into(h.name_, name);
    copy_into(h.value, value);
    h.id_ = id;
    h.dropped_ = false;
    return h;
}

void Headers::set(std::string_view name, std::string_view value) {
    const auto id = field_id(name);
    auto first = find(id, name);
    if (first == size_) {
        add(id, name, value);
        return;
    }
    items_[first].value.assign(value);
    drop_from(id, name, first + 1);
}

std::size_t Headers::remove(std::string_view name) { return drop_from(field_id(name), name, 0); }

std::size_t Headers::drop_from(FieldId id, std::string_view name, std::size_t from) noexcept {
    std::size_t dropped = 0;
    for (auto i = find(id, name, from); i < size_; i = find(id, name, i + 1)) {
        items_[i].dropped_ = true;
        ++dropped;
    }
    if (dropped) compact();
    return dropped;
}

void Headers::rename(Header& h, std::string_view name) {
    h.name_.assign(name);
    h.id_ = field_id(name);
}

std::string_view Request::path() const noexcept {
    std::string_view t(target);
    return t.substr(0, t.find('?'));
}

std::string_view Request::query() const noexcept {
    std::string_view t(target);
    auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

std::optional<std::string> Request::query_param(std::string_view name) const {
    auto q = query();
    while (!q.empty()) {
        auto amp = q.find('&');
        auto pair = q.substr(0, amp);
        auto eq = pair.find('=');
        auto key = pair.substr(0, eq);
        if (key == name) {
            auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
            return percent_decode(value);
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view body) {
    std::vector<std::pair<std::string, std::string>> fields;
    auto decode = [](std::string_view text) {
        std::string spaced(text);
        std::replace(spaced.begin(), spaced.end(), '+', ' ');
        return percent_decode(spaced);
    };
    while (!body.empty()) {
        auto amp = body.find('&');
        auto pair = body.substr(0, amp);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            auto name = decode(pair.substr(0, eq));
            auto value = decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
            if (!name || !value) return std::nullopt;
            fields.emplace_back(std::move(*name), std::move(*value));
        }
        if (amp == std::string_view::npos) break;
        body.remove_prefix(amp + 1);
    }
    return fields;
}

std::string_view Request::param(std::string_view name) const noexcept {
    for (const auto& [k, v] : params) {
        if (k == name) return v;
    }
    return {};
}

void Request::clear() noexcept {
    method.clear();
    target.clear();
    version_minor = 1;
    headers.clear();
    body.clear();
    remote_address.clear();
    secure = false;
    keep_alive = true;
    params.clear();
    deadline = std::chrono::steady_clock::time_point::max();
    body_source = nullptr;
}

void Response::clear() noexcept {
    status = 200;
    headers.clear();
    body.clear();
}

void Response::json(int status_code, std::string json_body) {
    status = status_code;
    headers.set("Content-Type", "application/json");
    body = std::move(json_body);
}

void Response::text(int status_code, std::string text_body) {
    status = status_code;
    headers.set("Content-Type", "text/plain; charset=utf-8");
    body = std::move(text_body);
}

void Response::problem(int status_code, std::string_view title, std::string_view detail,
                       std::string_view instance) {
    status = status_code;
    headers.set("Content-Type", "application/problem+json");
    body.clear();
    body += R"({"type":"about:blank","title":)";
    append_json_string(body, title);
    body += R"(,"status":)";
    body += std::to_string(status_code);
    body += R"(,"detail":)";
    append_json_string(body, detail);
    if (!instance.empty()) {
        body += R"(,"instance":)";
        append_json_string(body, instance);
    }
    body += '}';
}

Request make_request(std::string method, std::string target, std::string body,
                     std::string_view content_type) {
    Request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.body = std::move(body);
    if (!content_type.empty()) req.headers.set("Content-Type", content_type);
    return req;
}

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 100:
            return "Continue";
        case 101:
            return "Switching Protocols";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 304:
            return "Not Modified";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 411:
            return "Length Required";
        case 412:
            return "Precondition Failed";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 415:
            return "Unsupported Media Type";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return std::nullopt;
        int h = hex(in[i + 1]), l = hex(in[i + 2]);
        if (h < 0 || l < 0) return std::nullopt;
        out.push_back(static_cast<char>(h * 16 + l));
        i += 2;
    }
    return out;
}

std::string percent_encode(std::string_view in) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(in.size());
    for (char c : in) {
        auto u = static_cast<unsigned char>(c);
        if ((u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 15]);
        }
    }
    return out;
}

bool is_hop_by_hop(std::string_view name) noexcept { return is_hop_by_hop(field_id(name)); }

bool is_hop_by_hop(FieldId id) noexcept {
    switch (id) {
        case FieldId::connection:
        case FieldId::keep_alive:
        case FieldId::proxy_connection:
        case FieldId::te:
        case FieldId::trailer:
        case FieldId::transfer_encoding:
        case FieldId::upgrade:
        case FieldId::proxy_authenticate:
        case FieldId::proxy_authorization:
            return true;
        default:
            return false;
    }
}

bool is_idempotent(std::string_view method) noexcept {
    return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
           method == "OPTIONS" || method == "TRACE";
}

}  // namespace plexus::net
