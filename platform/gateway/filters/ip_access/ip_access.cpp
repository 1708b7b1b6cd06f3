#include "ip_access.hpp"

#include <arpa/inet.h>

#include <boost/json.hpp>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "plexus/core/settings.hpp"
#include "plexus/gateway/routes.hpp"

namespace plexus::gateway::filters {

namespace {

std::vector<AddressBlock> parse_blocks(const std::vector<std::string>& texts, std::string_view key) {
    std::vector<AddressBlock> out;
    for (const auto& t : texts) {
        auto b = AddressBlock::parse(t);
        if (!b)
            throw std::invalid_argument(std::string(key) + ": '" + t + "' is not an address or CIDR block");
        out.push_back(*b);
    }
    return out;
}

class IpAccessFilter final : public Filter {
  public:
    IpAccessFilter(std::vector<AddressBlock> allow, std::vector<AddressBlock> deny, std::string route)
        : Filter(kRequestHead), allow_(std::move(allow)), deny_(std::move(deny)), route_(std::move(route)) {}

    FilterResult on_request_head(Exchange& x) const override {
        if (allowed(x.request.remote_address)) return FilterResult::next;
        x.response.problem(403, "Forbidden", "requests from this address may not use route " + route_,
                           x.request.path());
        return FilterResult::answered;
    }

  private:
    bool allowed(std::string_view peer) const noexcept {
        auto a = parse_address(peer);
        if (!a) return false;  // not an IP peer: nothing to match, so no allow list can admit it
        for (const auto& b : deny_) {
            if (b.contains(*a)) return false;
        }
        if (allow_.empty()) return true;
        for (const auto& b : allow_) {
            if (b.contains(*a)) return true;
        }
        return false;
    }

    std::vector<AddressBlock> allow_, deny_;
    std::string route_;
};

class IpAccessFactory final : public FilterFactory {
  public:
    std::string_view name() const noexcept override { return "ip_access"; }

    std::shared_ptr<const FilterConfig> parse(core::SettingsReader& r) const override {
        auto c = std::make_shared<IpAccessConfig>();
        r.field("allow", c->allow);
        r.field("deny", c->deny);
        r.done();  // a misspelt key is the likelier mistake: name it first
        for (auto [key, list] : {std::pair{"allow", &c->allow}, std::pair{"deny", &c->deny}}) {
            for (const auto& t : *list) {
                if (!AddressBlock::parse(t)) r.fail(key, "'" + t + "' is not an address or CIDR block");
            }
        }
        if (c->allow.empty() && c->deny.empty()) r.fail("", "ip_access needs an allow or a deny list");
        return c;
    }

    std::shared_ptr<const Filter> create(const FilterConfig& config, FilterContext& ctx) const override {
        const auto& c = dynamic_cast<const IpAccessConfig&>(config);
        if (c.allow.empty() && c.deny.empty()) throw std::invalid_argument("needs an allow or a deny list");
        return std::make_shared<IpAccessFilter>(parse_blocks(c.allow, "allow"), parse_blocks(c.deny, "deny"),
                                                ctx.route.name);
    }
};

}  // namespace

std::optional<std::array<std::uint8_t, 16>> parse_address(std::string_view text) noexcept {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    std::array<std::uint8_t, 16> out{};
    if (text.find(':') == std::string_view::npos) {
        in_addr v4;
        if (::inet_pton(AF_INET, buf, &v4) != 1) return std::nullopt;
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return out;
    }
    in6_addr v6;
    if (::inet_pton(AF_INET6, buf, &v6) != 1) return std::nullopt;
    std::memcpy(out.data(), &v6, 16);
    return out;
}

std::optional<AddressBlock> AddressBlock::parse(std::string_view text) noexcept {
    auto slash = text.find('/');
    auto addr_text = text.substr(0, slash);
    bool v4 = addr_text.find(':') == std::string_view::npos;
    auto addr = parse_address(addr_text);
    if (!addr) return std::nullopt;
    AddressBlock b;
    b.bytes = *addr;
    int max = v4 ? 32 : 128;
    int bits = max;
    if (slash != std::string_view::npos) {
        auto len = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), bits);
        if (ec != std::errc() || end != len.data() + len.size() || len.empty() || bits < 0 || bits > max)
            return std::nullopt;
    }
    b.bits = v4 ? bits + 96 : bits;
    // Host bits past the prefix must be zero: "10.1.2.3/8" is more likely a typo than a block.
    for (int i = b.bits; i < 128; ++i) {
        if (b.bytes[static_cast<std::size_t>(i / 8)] & (0x80 >> (i % 8))) return std::nullopt;
    }
    return b;
}

bool AddressBlock::contains(const std::array<std::uint8_t, 16>& a) const noexcept {
    int full = bits / 8;
    if (std::memcmp(a.data(), bytes.data(), static_cast<std::size_t>(full)) != 0) return false;
    int rest = bits % 8;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff00 >> rest);
    return (a[static_cast<std::size_t>(full)] & mask) == (bytes[static_cast<std::size_t>(full)] & mask);
}

std::string AddressBlock::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (bits >= 96 && std::memcmp(bytes.data(), kMapped, 12) == 0) {
        ::inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
        return std::string(buf) + "/" + std::to_string(bits - 96);
    }
    ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(bits);
}

void IpAccessConfig::to_json(boost::json::object& out) const {
    if (!allow.empty()) out["allow"] = boost::json::value_from(allow);
    if (!deny.empty()) out["deny"] = boost::json::value_from(deny);
}

const FilterFactory& ip_access_factory() noexcept {
    static const IpAccessFactory factory;
    return factory;
}

}  // namespace plexus::gateway::filters
