#include "plexus/core/ids.hpp"

#include <array>
#include <random>

namespace plexus::core {
namespace {

// xoshiro256** seeded once per thread from the OS; ids need uniqueness, not secrecy.
struct Generator {
    std::uint64_t s[4];
    Generator() {
        std::random_device rd;
        for (auto& w : s) w = (std::uint64_t{rd()} << 32) ^ rd();
    }
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t next() {
        const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
        const std::uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
    }
};

thread_local Generator tl_generator;

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::optional<std::uint64_t> parse_hex64(std::string_view text) noexcept {
    std::uint64_t v = 0;
    for (char c : text) {
        int d = hex_value(c);
        if (d < 0) return std::nullopt;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    return v;
}

}  // namespace

std::uint64_t random_u64() noexcept { return tl_generator.next(); }

void append_hex(std::string& out, std::uint64_t value, int digits) {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; --i) out.push_back(kDigits[(value >> (i * 4)) & 0xF]);
}

namespace {
// The two hex characters of every byte.
constexpr std::array<char, 512> kHexPairs = [] {
    std::array<char, 512> t{};
    constexpr char kDigits[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
        t[static_cast<std::size_t>(2 * b)] = kDigits[b >> 4];
        t[static_cast<std::size_t>(2 * b + 1)] = kDigits[b & 0xF];
    }
    return t;
}();
}  // namespace

void write_hex16(char* out, std::uint64_t value) noexcept {
    for (int i = 7; i >= 0; --i) {
        const auto* pair = &kHexPairs[2 * (value & 0xFF)];
        out[2 * i] = pair[0];
        out[2 * i + 1] = pair[1];
        value >>= 8;
    }
}

std::string TraceId::hex() const {
    std::string out(32, '0');
    write_hex16(out.data(), hi);
    write_hex16(out.data() + 16, lo);
    return out;
}

std::optional<TraceId> TraceId::from_hex(std::string_view text) noexcept {
    if (text.size() != 32) return std::nullopt;
    auto hi = parse_hex64(text.substr(0, 16));
    auto lo = parse_hex64(text.substr(16));
    if (!hi || !lo) return std::nullopt;
    TraceId id{*hi, *lo};
    if (!id.valid()) return std::nullopt;
    return id;
}

TraceId TraceId::random() noexcept {
    TraceId id{random_u64(), random_u64()};
    if (!id.valid()) id.lo = 1;
    return id;
}

std::string SpanId::hex() const {
    std::string out(16, '0');
    write_hex16(out.data(), value);
    return out;
}

std::optional<SpanId> SpanId::from_hex(std::string_view text) noexcept {
    if (text.size() != 16) return std::nullopt;
    auto v = parse_hex64(text);
    if (!v || *v == 0) return std::nullopt;
    return SpanId{*v};
}

SpanId SpanId::random() noexcept {
    auto v = random_u64();
    return SpanId{v == 0 ? 1 : v};
}

std::string new_request_id() { return TraceId::random().hex(); }

bool is_sane_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > kMaxRequestIdLength) return false;
    for (unsigned char c : id) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

std::string new_instance_id(std::string_view prefix) {
    std::string out(prefix);
    out.push_back('-');
    append_hex(out, random_u64(), 12);
    return out;
}

}  // namespace plexus::core
