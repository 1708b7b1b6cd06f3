#pragma once
// Strict UTF-8 checking shared by the settings readers and the YAML/JSON conversions.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace plexus::core::detail {

// Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past U+10FFFF.
inline bool is_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1fu;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0fu;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07u;
        else
            return false;
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return false;
            cp = cp << 6 | (d & 0x3fu);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return false;
        if (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) return false;
        i += len;
    }
    return true;
}

}  // namespace plexus::core::detail
