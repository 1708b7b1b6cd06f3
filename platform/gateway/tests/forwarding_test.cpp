// Header handling of forwarded messages: hop-by-hop stripping, X-Forwarded-*, request ids.

#include "plexus/gateway/forwarding.hpp"

#include <gtest/gtest.h>

#include "plexus/core/ids.hpp"

namespace gateway = plexus::gateway;
namespace net = plexus::net;

namespace {

std::vector<std::string> names(const net::Headers& headers) {
    std::vector<std::string> out;
    for (const auto& h : headers) out.emplace_back(h.name());
    return out;
}

net::Request incoming(std::initializer_list<std::pair<std::string_view, std::string_view>> headers) {
    net::Request req;
    req.method = "GET";
    req.target = "/a";
    req.remote_address = "10.0.0.7";
    for (const auto& [n, v] : headers) req.headers.add(n, v);
    return req;
}

bool is_lower_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

TEST(HopByHop, StripsStandardFieldsProxyFieldsAndThoseNamedInConnection) {
    net::Headers h;
    h.add("Accept", "*/*");
    h.add("Connection", "keep-alive, X-Secret");
    h.add("Keep-Alive", "timeout=5");
    h.add("X-Secret", "1");
    h.add("TE", "trailers");
    h.add("Trailer", "Expires");
    h.add("Transfer-Encoding", "chunked");
    h.add("Upgrade", "websocket");
    h.add("Proxy-Authorization", "Basic x");
    h.add("Proxy-Anything", "y");
    h.add("connection", " x-other ");
    h.add("X-Other", "2");
    h.add("Content-Type", "text/plain");
    gateway::strip_hop_by_hop(h);
    EXPECT_EQ(names(h), (std::vector<std::string>{"Accept", "Content-Type"}));
}

TEST(HopByHop, LeavesEndToEndFieldsAlone) {
    net::Headers h;
    h.add("Authorization", "Bearer t");
    h.add("Cookie", "a=b");
    h.add("Content-Length", "3");
    gateway::strip_hop_by_hop(h);
    EXPECT_EQ(h.size(), 3u);
}

TEST(HopByHop, TheNetHelperKnowsTheRfcList) {
    for (auto name : {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "upgrade",
                      "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection"}) {
        EXPECT_TRUE(net::is_hop_by_hop(name)) << name;
    }
    EXPECT_FALSE(net::is_hop_by_hop("Content-Type"));
    EXPECT_FALSE(net::is_hop_by_hop("Trailers"));
}

TEST(Forwarding, ClientForwardedForIsReplacedUnlessTrusted) {
    auto req = incoming({{"X-Forwarded-For", "1.2.3.4"}, {"x-forwarded-for", "5.6.7.8"}});
    gateway::prepare_upstream_request(req, gateway::ForwardingPolicy{false});
    EXPECT_EQ(req.headers.get("X-Forwarded-For"), "10.0.0.7");
    EXPECT_EQ(names(req.headers), (std::vector<std::string>{"X-Forwarded-For", "X-Forwarded-Proto"}));

    auto trusted = incoming({{"X-Forwarded-For", "1.2.3.4"}, {"x-forwarded-for", "5.6.7.8"}});
    gateway::prepare_upstream_request(trusted, gateway::ForwardingPolicy{true});
    EXPECT_EQ(trusted.headers.get("X-Forwarded-For"), "1.2.3.4, 5.6.7.8, 10.0.0.7");

    auto first_hop = incoming({});
    gateway::prepare_upstream_request(first_hop, gateway::ForwardingPolicy{true});
    EXPECT_EQ(first_hop.headers.get("X-Forwarded-For"), "10.0.0.7");
}

TEST(Forwarding, HostMovesToForwardedHostAndProtoIsTheClientConnections) {
    auto req = incoming(
        {{"Host", "shop.local:8080"}, {"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Proto", "https"}});
    gateway::prepare_upstream_request(req, {});
    EXPECT_FALSE(req.headers.contains("Host"));
    EXPECT_EQ(req.headers.get("X-Forwarded-Host"), "shop.local:8080");
    EXPECT_EQ(req.headers.get("X-Forwarded-Proto"), "http");

    auto trusted = incoming(
        {{"Host", "gw.internal"}, {"X-Forwarded-Host", "shop.example"}, {"X-Forwarded-Proto", "https"}});
    gateway::prepare_upstream_request(trusted, gateway::ForwardingPolicy{true});
    EXPECT_FALSE(trusted.headers.contains("Host"));
    EXPECT_EQ(trusted.headers.get("X-Forwarded-Host"), "shop.example");
    EXPECT_EQ(trusted.headers.get("X-Forwarded-Proto"), "https");

    auto over_tls = incoming({{"Host", "shop.example"}, {"X-Forwarded-Proto", "http"}});
    over_tls.secure = true;
    gateway::prepare_upstream_request(over_tls, {});
    EXPECT_EQ(over_tls.headers.get("X-Forwarded-Proto"), "https");
}

TEST(Forwarding, DropsExpectHopByHopAndASpoofedOriginalPath) {
    auto req = incoming({{"Expect", "100-continue"},
                         {"Connection", "close"},
                         {"Upgrade", "h2c"},
                         {"X-Plexus-Original-Path", "/admin"},
                         {"Accept", "application/json"}});
    gateway::prepare_upstream_request(req, {});
    EXPECT_FALSE(req.headers.contains("Expect"));
    EXPECT_FALSE(req.headers.contains("Connection"));
    EXPECT_FALSE(req.headers.contains("Upgrade"));
    EXPECT_FALSE(req.headers.contains("X-Plexus-Original-Path"));
    EXPECT_EQ(req.headers.get("Accept"), "application/json");
}

TEST(Forwarding, DropsIdentityHeadersAClientSent) {
    auto req = incoming({{"X-Plexus-Subject", "admin"},
                         {"x-plexus-scopes", "plexus:admin"},
                         {"X-PLEXUS-CLIENT", "root"},
                         {"X-Plexus-Roles", "admin"},
                         {"X-Plexus-Auth", "jwt"},
                         {"X-Plexus-Subjects", "kept: not one of ours"},
                         {"X-Plexus-Deadline-Ms", "500"}});
    gateway::prepare_upstream_request(req, {});
    for (auto name :
         {"X-Plexus-Subject", "X-Plexus-Scopes", "X-Plexus-Client", "X-Plexus-Roles", "X-Plexus-Auth"})
        EXPECT_FALSE(req.headers.contains(name)) << name;
    EXPECT_TRUE(req.headers.contains("X-Plexus-Subjects"));
    EXPECT_EQ(req.headers.get("X-Plexus-Deadline-Ms"), "500");
}

TEST(RequestId, GeneratedWhenAbsent) {
    net::Headers h;
    auto id = std::string(gateway::ensure_request_id(h));
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(is_lower_hex(id)) << id;
    EXPECT_EQ(h.get("X-Request-Id"), id);
    net::Headers other;
    EXPECT_NE(gateway::ensure_request_id(other), id);
}

TEST(RequestId, PropagatedWhenSane) {
    net::Headers h;
    h.add("x-request-id", "client-abc_123");
    h.add("X-Request-Id", "second");
    EXPECT_EQ(gateway::ensure_request_id(h), "client-abc_123");
    EXPECT_EQ(h.size(), 1u);  // repeats collapsed to the first

    net::Headers longest;
    std::string max(128, 'a');
    longest.add("X-Request-Id", max);
    EXPECT_EQ(gateway::ensure_request_id(longest), max);
}

TEST(RequestId, ReplacedWhenNotSane) {
    for (std::string bad : {std::string(129, 'a'), std::string("has space"), std::string("tab\there"),
                            std::string(""), std::string("caf\xc3\xa9")}) {
        net::Headers h;
        h.add("X-Request-Id", bad);
        auto id = gateway::ensure_request_id(h);
        EXPECT_EQ(id.size(), 32u) << bad;
        EXPECT_TRUE(is_lower_hex(id));
        EXPECT_EQ(h.size(), 1u);
    }
    EXPECT_TRUE(plexus::core::is_sane_request_id("a"));
    EXPECT_FALSE(plexus::core::is_sane_request_id("a\x7f"));
}

TEST(Forwarding, ResponseLosesHopByHopFields) {
    net::Response res;
    res.headers.add("Content-Type", "application/json");
    res.headers.add("Connection", "X-Internal");
    res.headers.add("X-Internal", "1");
    res.headers.add("Keep-Alive", "timeout=5");
    res.headers.add("Proxy-Authenticate", "Basic");
    gateway::prepare_downstream_response(res);
    EXPECT_EQ(names(res.headers), (std::vector<std::string>{"Content-Type"}));
}
