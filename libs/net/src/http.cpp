#include "plexus/net/http.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "wire.hpp"

namespace plexus::net {

namespace {
char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

void append_json_string(std::string& out, std::string_view s) {
    out += boost::json::serialize(boost::json::string(s));
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
        if (iequals(items_[i].name, name)) return std::string_view(items_[i].value);
    }
    return std::nullopt;
}

void Headers::add(std::string_view name, std::string_view value) {
    if (size_ == items_.size()) items_.emplace_back();
    auto& h = items_[size_++];
    h.name.assign(name);
    h.value.assign(value);
}

void Headers::set(std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < size_; ++i) {
        if (iequals(items_[i].name, name)) {
            items_[i].value.assign(value);
            // drop any further fields of the same name
            for (std::size_t j = size_; j-- > i + 1;) {
                if (iequals(items_[j].name, name)) {
                    std::rotate(items_.begin() + j, items_.begin() + j + 1, items_.begin() + size_);
                    --size_;
                }
            }
            return;
        }
    }
    add(name, value);
}

std::size_t Headers::remove(std::string_view name) {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < size_;) {
        if (iequals(items_[i].name, name)) {
            std::rotate(items_.begin() + i, items_.begin() + i + 1, items_.begin() + size_);
            --size_;
            ++removed;
        } else {
            ++i;
        }
    }
    return removed;
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
    keep_alive = true;
    params.clear();
    deadline = std::chrono::steady_clock::time_point::max();
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

bool is_hop_by_hop(std::string_view name) noexcept { return wire::is_hop_by_hop(name); }

bool is_idempotent(std::string_view method) noexcept {
    return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
           method == "OPTIONS" || method == "TRACE";
}

}  // namespace plexus::net
