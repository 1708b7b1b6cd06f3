// Address blocks and the ip_access filter's decisions, without a network.

#include "ip_access/ip_access.hpp"

#include <gtest/gtest.h>

#include "filter_testing.hpp"
#include "plexus/core/settings.hpp"

using namespace plexus;
using gateway::filters::AddressBlock;
using gateway::filters::parse_address;

namespace {

bool in(std::string_view block, std::string_view address) {
    auto b = AddressBlock::parse(block);
    auto a = parse_address(address);
    if (!b || !a) throw std::invalid_argument("bad test input");
    return b->contains(*a);
}

TEST(AddressBlock, ParsesIpv4AndIpv6BlocksAndSingleAddresses) {
    EXPECT_EQ(AddressBlock::parse("10.0.0.0/8")->to_string(), "10.0.0.0/8");
    EXPECT_EQ(AddressBlock::parse("127.0.0.1")->to_string(), "127.0.0.1/32");
    EXPECT_EQ(AddressBlock::parse("0.0.0.0/0")->to_string(), "0.0.0.0/0");
    EXPECT_EQ(AddressBlock::parse("2001:db8::/32")->to_string(), "2001:db8::/32");
    EXPECT_EQ(AddressBlock::parse("::1")->to_string(), "::1/128");
    for (auto bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.1/8", "10.0.0/8", "300.0.0.1", "::1/129",
                     "2001:db8::1/32", "x", "10.0.0.0/8x", "10.0.0.0/-1", "/8"}) {
        EXPECT_FALSE(AddressBlock::parse(bad)) << bad;
    }
}

TEST(AddressBlock, MatchesOnThePrefixBits) {
    EXPECT_TRUE(in("10.0.0.0/8", "10.200.3.4"));
    EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
    EXPECT_TRUE(in("192.168.4.0/22", "192.168.7.255"));
    EXPECT_FALSE(in("192.168.4.0/22", "192.168.8.0"));
    EXPECT_TRUE(in("0.0.0.0/0", "8.8.8.8"));
    EXPECT_FALSE(in("0.0.0.0/0", "2001:db8::1"));      // IPv4 blocks hold IPv4 clients only
    EXPECT_TRUE(in("127.0.0.1", "::ffff:127.0.0.1"));  // IPv4-mapped clients match IPv4 entries
    EXPECT_TRUE(in("2001:db8::/32", "2001:db8:ffff::1"));
    EXPECT_FALSE(in("2001:db8::/32", "2001:db9::1"));
    EXPECT_TRUE(in("::/0", "::1"));
}

gateway::FilterResult decide(const std::string& settings, std::string peer) {
    gateway::testing::FilterHarness h("      - name: ip_access\n" + settings);
    auto res = h.request("GET", "/x", std::move(peer));
    if (res.status == 200) return gateway::FilterResult::next;
    EXPECT_EQ(res.status, 403);
    return gateway::FilterResult::answered;
}

TEST(IpAccessFilter, DenyWinsOverAllowAndAnAllowListAdmitsOnlyItsBlocks) {
    const std::string both = "        allow: [10.0.0.0/8]\n        deny: [10.1.0.0/16]\n";
    EXPECT_EQ(decide(both, "10.2.3.4"), gateway::FilterResult::next);
    EXPECT_EQ(decide(both, "10.1.3.4"), gateway::FilterResult::answered);
    EXPECT_EQ(decide(both, "192.168.1.1"), gateway::FilterResult::answered);
    const std::string deny_only = "        deny: [\"2001:db8::/32\"]\n";
    EXPECT_EQ(decide(deny_only, "2001:db8::5"), gateway::FilterResult::answered);
    EXPECT_EQ(decide(deny_only, "127.0.0.1"), gateway::FilterResult::next);
    // A peer that is no IP address cannot be admitted by an allow list.
    EXPECT_EQ(decide(both, "not-an-address"), gateway::FilterResult::answered);
}

TEST(IpAccessFilter, NeedsAList) {
    try {
        decide("        allow: []\n", "127.0.0.1");
        FAIL() << "accepted";
    } catch (const core::SettingsError& e) {
        EXPECT_NE(std::string(e.what()).find("ip_access needs an allow or a deny list"), std::string::npos)
            << e.what();
    }
}

}  // namespace
