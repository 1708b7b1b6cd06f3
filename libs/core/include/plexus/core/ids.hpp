#pragma once
/// Identifiers carried by every request: W3C trace ids (128 bit), span ids (64 bit) and request
/// (correlation) ids. Generation uses a per-thread generator seeded from the OS: lock-free and
/// safe to call from any thread.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace plexus::core {

/// A 128-bit W3C trace id; all-zero is invalid.
struct TraceId {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;

    bool valid() const noexcept { return hi != 0 || lo != 0; }
    /// 32 lowercase hex characters.
    std::string hex() const;
    /// Parses exactly 32 lowercase hex characters; nullopt for anything else or all-zero.
    static std::optional<TraceId> from_hex(std::string_view text) noexcept;
    static TraceId random() noexcept;
    friend bool operator==(const TraceId&, const TraceId&) = default;
};

/// A 64-bit W3C span (parent) id; zero is invalid.
struct SpanId {
    std::uint64_t value = 0;

    bool valid() const noexcept { return value != 0; }
    /// 16 lowercase hex characters.
    std::string hex() const;
    /// Parses exactly 16 lowercase hex characters; nullopt for anything else or zero.
    static std::optional<SpanId> from_hex(std::string_view text) noexcept;
    static SpanId random() noexcept;
    friend bool operator==(const SpanId&, const SpanId&) = default;
};

/// A fresh correlation id for X-Request-Id: 32 lowercase hex characters.
std::string new_request_id();

/// Longest X-Request-Id that is propagated.
inline constexpr std::size_t kMaxRequestIdLength = 128;

/// Whether `id` may be propagated as a request id: 1 to kMaxRequestIdLength visible ASCII
/// characters (no spaces, controls or other bytes). Thread-safe.
bool is_sane_request_id(std::string_view id) noexcept;

/// A short random id for service instances: `<prefix>-` followed by 12 hex characters.
std::string new_instance_id(std::string_view prefix);

/// 64 random bits from the calling thread's generator.
std::uint64_t random_u64() noexcept;

/// Appends `value` as `digits` lowercase hex characters (most significant first).
void append_hex(std::string& out, std::uint64_t value, int digits);

/// Writes `value` as exactly 16 lowercase hex characters to `out` (most significant first),
/// without allocating: for ids written on every request.
void write_hex16(char* out, std::uint64_t value) noexcept;

}  // namespace plexus::core
