#include "plexus/gateway/forwarding.hpp"

#include "plexus/core/ids.hpp"

namespace plexus::gateway {

namespace {

constexpr std::string_view kForwardedFor = "X-Forwarded-For";
constexpr std::string_view kForwardedProto = "X-Forwarded-Proto";
constexpr std::string_view kForwardedHost = "X-Forwarded-Host";

// Fields are dropped by clearing their name and then removing every field with an empty name in
// one pass: a parsed message never has an empty field name, and this keeps the string views into
// other fields (the Connection list) valid while deciding.
void remove_marked(net::Headers& headers) { headers.remove(""); }

bool starts_with_ci(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && net::iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool listed_in_connection(const net::Headers& headers, std::string_view name) noexcept {
    for (const auto& h : headers) {
        if (!net::iequals(h.name, "connection")) continue;
        std::string_view list = h.value;
        while (!list.empty()) {
            auto comma = list.find(',');
            if (net::iequals(trim(list.substr(0, comma)), name)) return true;
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
    }
    return false;
}

void write_hex(char* out, std::uint64_t v, int digits) noexcept {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; --i) {
        out[i] = kDigits[v & 0xF];
        v >>= 4;
    }
}

}  // namespace

void strip_hop_by_hop(net::Headers& headers) {
    bool marked = false;
    for (auto& h : headers) {
        if (h.name.empty() || net::iequals(h.name, "connection")) continue;
        if (net::is_hop_by_hop(h.name) || starts_with_ci(h.name, "proxy-") ||
            listed_in_connection(headers, h.name)) {
            h.name.clear();
            marked = true;
        }
    }
    for (auto& h : headers) {
        if (net::iequals(h.name, "connection")) {
            h.name.clear();
            marked = true;
        }
    }
    if (marked) remove_marked(headers);
}

bool is_sane_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > kMaxRequestIdLength) return false;
    for (unsigned char c : id) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

std::string_view ensure_request_id(net::Headers& headers) {
    net::Header* first = nullptr;
    bool repeated = false;
    for (auto& h : headers) {
        if (!net::iequals(h.name, kRequestIdHeader)) continue;
        if (!first) {
            first = &h;
        } else {
            h.name.clear();
            repeated = true;
        }
    }
    if (first && is_sane_request_id(first->value)) {
        if (repeated) remove_marked(headers);
        return headers.get(kRequestIdHeader).value_or(std::string_view{});
    }
    if (repeated) remove_marked(headers);
    char id[32];
    write_hex(id, core::random_u64(), 16);
    write_hex(id + 16, core::random_u64(), 16);
    headers.set(kRequestIdHeader, std::string_view(id, sizeof id));
    return headers.get(kRequestIdHeader).value_or(std::string_view{});
}

void prepare_upstream_request(net::Request& req, const ForwardingPolicy& policy) {
    auto& headers = req.headers;
    strip_hop_by_hop(headers);
    headers.remove("expect");
    headers.remove(kOriginalPathHeader);

    // X-Forwarded-For
    std::string_view peer = req.remote_address;
    if (policy.trust_forwarded_for) {
        net::Header* first = nullptr;
        bool merged = false;
        for (auto& h : headers) {
            if (!net::iequals(h.name, kForwardedFor)) continue;
            if (!first) {
                first = &h;
                continue;
            }
            first->value += ", ";
            first->value += h.value;
            h.name.clear();
            merged = true;
        }
        if (first && !peer.empty()) {
            first->value += ", ";
            first->value += peer;
        }
        if (merged) remove_marked(headers);
        if (!first && !peer.empty()) headers.add(kForwardedFor, peer);
    } else if (peer.empty()) {
        headers.remove(kForwardedFor);
    } else {
        headers.set(kForwardedFor, peer);
    }

    // X-Forwarded-Proto
    if (!(policy.trust_forwarded_for && headers.contains(kForwardedProto)))
        headers.set(kForwardedProto, "http");

    // X-Forwarded-Host takes the client's Host, which is renamed in place (no copy); the
    // upstream gets a Host naming itself from the client.
    if (policy.trust_forwarded_for && headers.contains(kForwardedHost)) {
        headers.remove("host");
    } else {
        headers.remove(kForwardedHost);
        for (auto& h : headers) {
            if (net::iequals(h.name, "host")) {
                h.name.assign(kForwardedHost);
                break;
            }
        }
        headers.remove("host");
    }

    ensure_request_id(headers);
}

void prepare_downstream_response(net::Response& res) { strip_hop_by_hop(res.headers); }

}  // namespace plexus::gateway
