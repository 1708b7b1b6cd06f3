#include "text_format.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace plexus::telemetry::detail {
namespace {

constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length of the well-formed UTF-8 sequence starting at text[i], or 0 if it is ill-formed
// (Unicode Table 3-7).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + len > text.size()) return 0;
    const unsigned char b1 = byte(i + 1);
    if (b1 < lo || b1 > hi) return 0;
    for (std::size_t k = 2; k < len; ++k) {
        const unsigned char b = byte(i + k);
        if (b < 0x80 || b > 0xBF) return 0;
    }
    return len;
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
    for (std::size_t i = 0; i < text.size();) {
        if (static_cast<unsigned char>(text[i]) < 0x80) {
            ++i;
            continue;
        }
        const std::size_t len = utf8_sequence_length(text, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

void append_utf8_repaired(std::string& out, std::string_view text) {
    std::size_t run = 0;  // start of the pending well-formed run
    for (std::size_t i = 0; i < text.size();) {
        if (static_cast<unsigned char>(text[i]) < 0x80) {
            ++i;
            continue;
        }
        const std::size_t len = utf8_sequence_length(text, i);
        if (len != 0) {
            i += len;
            continue;
        }
        out.append(text.substr(run, i - run));
        out.append(kReplacementUtf8);
        run = ++i;
    }
    out.append(text.substr(run));
}

namespace {
// Bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
constexpr std::array<bool, 256> kPlainJson = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    return t;
}();

// The length of text's prefix of plain bytes (kPlainJson), sixteen at a time where it can.
std::size_t plain_json_prefix(std::string_view text) noexcept {
    std::size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= text.size(); i += 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
        const __m128i printable = _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x20)), x);  // x >= 0x20
        const __m128i special =
            _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
        // A byte from 0x80 up has its top bit set, which movemask reads.
        const unsigned plain = static_cast<unsigned>(_mm_movemask_epi8(_mm_andnot_si128(special, printable)) &
                                                     ~_mm_movemask_epi8(x)) &
                               0xffffu;
        if (plain != 0xffffu) return i + static_cast<std::size_t>(std::countr_one(plain));
    }
#endif
    while (i < text.size() && kPlainJson[static_cast<unsigned char>(text[i])]) ++i;
    return i;
}
}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::size_t i = plain_json_prefix(text);
    out.push_back('"');
    if (i == text.size()) {  // the usual case: nothing to escape
        out.append(text);
        out.push_back('"');
        return;
    }
    std::size_t run = 0;
    const auto flush = [&](std::size_t end) { out.append(text.data() + run, end - run); };
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (kPlainJson[c]) {
            i += plain_json_prefix(text.substr(i));
            continue;
        }
        if (c >= 0x80) {
            const std::size_t len = utf8_sequence_length(text, i);
            if (len != 0) {
                i += len;
                continue;
            }
            flush(i);
            out.append("\\ufffd");
            run = ++i;
            continue;
        }
        flush(i);
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default: {
                const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
                out.append(esc, sizeof esc);
            }
        }
        run = ++i;
    }
    flush(text.size());
    out.push_back('"');
}

void append_json_double(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out.append("null");
        return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, r.ptr);
}

void append_int(std::string& out, std::int64_t value) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, r.ptr);
}

void append_uint(std::string& out, std::uint64_t value) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, r.ptr);
}

void append_prometheus_double(std::string& out, double value) {
    if (std::isnan(value)) {
        out.append("NaN");
        return;
    }
    if (std::isinf(value)) {
        out.append(value > 0 ? "+Inf" : "-Inf");
        return;
    }
    // Go's shortest 'g' uses %e when the decimal exponent is < -4 or >= 6 (it fixes the
    // precision at 6 for this decision), and the shortest fixed form otherwise.
    char buf[48];
    const auto sci = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
    const char* e = static_cast<const char*>(std::memchr(buf, 'e', static_cast<std::size_t>(sci.ptr - buf)));
    int exponent = 0;
    std::from_chars(e + (e[1] == '+' ? 2 : 1), sci.ptr, exponent);
    if (exponent < -4 || exponent >= 6) {
        out.append(buf, sci.ptr);
        return;
    }
    const auto fixed = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
    out.append(buf, fixed.ptr);
}

}  // namespace plexus::telemetry::detail
