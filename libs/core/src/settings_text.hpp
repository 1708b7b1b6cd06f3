#pragma once
// Text shared by SettingsReader and the YAML/JSON conversions: how a problem is located in a
// message, and how a JSON double is written so that it reads back as a double.

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

namespace plexus::core::detail {

// Nested maps and lists deeper than this are refused: settings never need it, and an alias that
// refers to its own node (`a: &x [*x]`) would otherwise recurse without end.
inline constexpr int kMaxSettingsDepth = 64;

// `file:line: key.path: reason`; the line is left out when unknown (0), the path when empty.
inline std::string settings_message(std::string_view file, int line, std::string_view path,
                                    std::string_view reason) {
    std::string msg(file);
    if (line > 0) msg += ':' + std::to_string(line);
    msg += ": ";
    if (!path.empty()) {
        msg += path;
        msg += ": ";
    }
    msg += reason;
    return msg;
}

// The shortest text that reads back as the same double, with a '.' or an exponent so that it is
// never taken for an integer ("1.0", "0.1", "1e+300"). Non-finite values have no such text.
inline std::string format_double(double d) {
    if (!std::isfinite(d)) throw std::invalid_argument("a number is not finite");
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    std::string text(buf, end);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
}

}  // namespace plexus::core::detail
