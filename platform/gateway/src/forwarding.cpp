#include "plexus/gateway/forwarding.hpp"

#include <array>

#include "plexus/core/ids.hpp"

namespace plexus::gateway {

namespace {

using net::FieldId;

constexpr std::string_view kForwardedFor = "X-Forwarded-For";
constexpr std::string_view kForwardedProto = "X-Forwarded-Proto";
constexpr std::string_view kForwardedHost = "X-Forwarded-Host";

// The principal headers only the gateway's auth filter may set (it adds them after this runs).
bool is_identity_header(const net::Header& h) noexcept {
    switch (h.id()) {
        case FieldId::x_plexus_subject:
        case FieldId::x_plexus_client:
        case FieldId::x_plexus_scopes:
        case FieldId::x_plexus_roles:
            return true;
        case FieldId::other:
            return net::iequals(h.name(), "x-plexus-auth");
        default:
            return false;
    }
}

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
        if (h.id() != FieldId::connection) continue;
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

// Hop-by-hop whatever the Connection fields say: the RFC's list and every Proxy-* field.
bool always_hop_by_hop(const net::Header& h) noexcept {
    return net::is_hop_by_hop(h.id()) || (h.id() == FieldId::other && starts_with_ci(h.name(), "proxy-"));
}

}  // namespace

void strip_hop_by_hop(net::Headers& headers) {
    // Most messages have nothing to strip but a Connection field naming only "keep-alive" or
    // "close": decide that in one pass, collecting the names the Connection fields list.
    constexpr std::size_t kListed = 16;
    std::array<std::string_view, kListed> listed;
    std::size_t count = 0;
    bool overflow = false, any = false;
    for (const auto& h : headers) {
        if (always_hop_by_hop(h)) any = true;
        if (h.id() != FieldId::connection) continue;
        std::string_view list = h.value;
        while (!list.empty()) {
            auto comma = list.find(',');
            auto name = trim(list.substr(0, comma));
            if (!name.empty()) {
                if (count < kListed)
                    listed[count++] = name;
                else
                    overflow = true;
            }
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
    }
    if (!any) return;
    // erase_if asks about every field before moving any, so the views into the Connection
    // values stay valid while it decides.
    headers.erase_if([&](const net::Header& h) {
        if (always_hop_by_hop(h)) return true;
        for (std::size_t i = 0; i < count; ++i) {
            if (net::iequals(h.name(), listed[i])) return true;
        }
        return overflow && listed_in_connection(headers, h.name());
    });
}

void prepare_upstream_request(net::Request& req, const ForwardingPolicy& policy) {
    auto& headers = req.headers;
    strip_hop_by_hop(headers);
    const bool trusted = policy.trust_forwarded_for;
    // Expect was answered by the gateway's server; only the gateway sets the original path.
    bool has_proto = false, has_host_forwarded = false;
    headers.erase_if([&](const net::Header& h) {
        if (h.id() == FieldId::x_forwarded_proto) has_proto = true;
        if (h.id() == FieldId::x_forwarded_host) has_host_forwarded = true;
        return h.id() == FieldId::expect || h.id() == FieldId::x_plexus_original_path ||
               is_identity_header(h);
    });

    // X-Forwarded-For
    std::string_view peer = req.remote_address;
    if (trusted) {
        net::Header* first = nullptr;
        bool merged = false;
        for (auto& h : headers) {
            if (h.id() != FieldId::x_forwarded_for) continue;
            if (!first) {
                first = &h;
                continue;
            }
            first->value += ", ";
            first->value += h.value;
            merged = true;
        }
        if (first && !peer.empty()) {
            first->value += ", ";
            first->value += peer;
        }
        if (merged) {
            headers.erase_if(
                [first](const net::Header& h) { return h.id() == FieldId::x_forwarded_for && &h != first; });
        }
        if (!first && !peer.empty()) headers.add(kForwardedFor, peer);
    } else if (peer.empty()) {
        headers.remove(kForwardedFor);
    } else {
        headers.set(kForwardedFor, peer);
    }

    // X-Forwarded-Proto
    if (!(trusted && has_proto)) headers.set(kForwardedProto, req.secure ? "https" : "http");

    // X-Forwarded-Host takes the client's Host, which is renamed in place (no copy); the
    // upstream gets a Host naming itself from the client.
    if (trusted && has_host_forwarded) {
        headers.remove("host");
    } else {
        if (has_host_forwarded) headers.remove(kForwardedHost);
        for (auto& h : headers) {
            if (h.id() == FieldId::host) {
                headers.rename(h, kForwardedHost);
                break;
            }
        }
        headers.remove("host");
    }
}

void prepare_downstream_response(net::Response& res) { strip_hop_by_hop(res.headers); }

}  // namespace plexus::gateway
