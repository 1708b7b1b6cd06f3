#pragma once
// Text encoders shared by the log, trace and metrics writers: JSON strings, numbers in JSON and
// in Prometheus (Go strconv 'g') notation, RFC 3339 timestamps and UTF-8 repair.

#include <cstdint>
#include <string>
#include <string_view>

#include "plexus/core/clock.hpp"

namespace plexus::telemetry::detail {

/// True if `text` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// Appends `text` with every ill-formed UTF-8 byte replaced by U+FFFD.
void append_utf8_repaired(std::string& out, std::string_view text);

/// Appends `text` as a quoted JSON string: `"` and `\` escaped, control characters as \b \f \n \r
/// \t or \u00XX, ill-formed UTF-8 bytes as \ufffd. The result is always valid JSON.
void append_json_string(std::string& out, std::string_view text);

/// Appends a JSON number in shortest round-trip form; NaN and infinities become `null`.
void append_json_double(std::string& out, double value);

void append_int(std::string& out, std::int64_t value);
void append_uint(std::string& out, std::uint64_t value);

/// Appends a Prometheus sample value or `le` bound as Go's strconv.FormatFloat(v, 'g', -1, 64)
/// writes it (what the Go client emits, so `le` label values agree across clients), with
/// `+Inf`, `-Inf` and `NaN` for the special values.
void append_prometheus_double(std::string& out, double value);

}  // namespace plexus::telemetry::detail
