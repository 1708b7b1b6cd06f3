#include "plexus/core/base64.hpp"

#include <array>
#include <cstdint>

namespace plexus::core {

namespace {

constexpr std::string_view kStandard = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using Values = std::array<std::int8_t, 256>;

Values values_of(std::string_view alphabet) {
    Values t{};
    t.fill(-1);
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
}

}  // namespace

std::string base64_encode(std::string_view bytes, Base64 alphabet) {
    auto digits = alphabet == Base64::url ? kUrl : kStandard;
    bool pad = alphabet == Base64::standard;
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    auto byte = [&](std::size_t k) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
    };
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        out += digits[v >> 18 & 63];
        out += digits[v >> 12 & 63];
        out += digits[v >> 6 & 63];
        out += digits[v & 63];
    }
    if (bytes.size() - i == 1) {
        std::uint32_t v = byte(i) << 16;
        out += digits[v >> 18 & 63];
        out += digits[v >> 12 & 63];
        if (pad) out += "==";
    } else if (bytes.size() - i == 2) {
        std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
        out += digits[v >> 18 & 63];
        out += digits[v >> 12 & 63];
        out += digits[v >> 6 & 63];
        if (pad) out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text, Base64 alphabet) {
    static const Values kStandardValues = values_of(kStandard);
    static const Values kUrlValues = values_of(kUrl);
    const auto& values = alphabet == Base64::url ? kUrlValues : kStandardValues;
    if (alphabet == Base64::standard) {
        // Padded to a multiple of four with at most two '=', which stand for the missing digits.
        if (text.size() % 4 != 0) return std::nullopt;
        std::size_t pads = 0;
        while (pads < 2 && !text.empty() && text.back() == '=') text.remove_suffix(1), ++pads;
        if (pads > 0 && text.size() % 4 != 4 - pads) return std::nullopt;
    }
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : text) {
        auto v = values[c];
        if (v < 0) return std::nullopt;
        acc = acc << 6 | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>(acc >> bits & 0xff);
        }
    }
    // The leftover bits must be zero, or two texts would mean the same bytes.
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

}  // namespace plexus::core
