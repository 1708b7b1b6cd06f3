#pragma once
/// Structured logging: one JSON object per line on stdout, for the central log collector.
///
///     telemetry::init_logging("catalog", instance_id, telemetry::Level::info);
///     telemetry::info("listening", {{"port", 8080}, {"tls", false}});
///     telemetry::warn("upstream slow", {{"upstream", name}, {"elapsed_s", 1.5}}, &ctx);
///
/// Each line has the fields, in this order:
///
///     {"ts":"2026-11-22T05:12:00.123Z","level":"info","service":"catalog","instance":"catalog-1a2b",
///      "trace_id":"…","span_id":"…","request_id":"…","msg":"listening","port":8080,"tls":false}
///
/// `ts` is the wall-clock time in RFC 3339 UTC with milliseconds; `trace_id`, `span_id` and
/// `request_id` appear only when the `LogContext` gives them; the extra fields follow `msg` in the
/// order given (names are not checked against the fixed ones). Strings are JSON-escaped and
/// ill-formed UTF-8 is replaced by U+FFFD, so every line is valid JSON.
///
/// Thread safety: every function here may be called from any thread. Lines are written whole, one
/// `write(2)` each (no user-space buffering, so nothing is lost on a crash), and never interleave.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace plexus::telemetry {

/// Severity of a log event, in increasing order.
enum class Level : std::uint8_t { debug, info, warn, error };

/// The wire name of `level`: "debug", "info", "warn" or "error".
std::string_view to_string(Level level) noexcept;

/// Parses "debug", "info", "warn" or "error" (exactly, lower case); nullopt for anything else, so
/// the settings layer can reject a bad value with its own message.
std::optional<Level> parse_level(std::string_view text) noexcept;

/// The correlation ids of the work a log event belongs to. Empty views are left out of the line.
/// The views are only read during the `log` call.
struct LogContext {
    std::string_view trace_id;    ///< 32 hex characters of the W3C trace id, or empty
    std::string_view span_id;     ///< 16 hex characters of the current span id, or empty
    std::string_view request_id;  ///< the X-Request-Id correlation id, or empty
};

/// One extra key/value of a log event: a string, an integer, a floating-point number or a bool.
/// A Field only views its name and string value; build it in the argument list of the `log` call
/// (`{"key", value}`), where the viewed strings outlive it. `char` values count as integers.
/// Non-finite doubles are written as `null`.
class Field {
  public:
    /// What the value is; selects the accessor that is valid.
    enum class Kind : std::uint8_t { string, int64, uint64, float64, boolean, raw_json };

    /// A string value, JSON-escaped when written.
    constexpr Field(std::string_view name, std::string_view value) noexcept
        : name_(name), kind_(Kind::string), string_(value) {}
    /// A string value (keeps string literals from converting to bool).
    constexpr Field(std::string_view name, const char* value) noexcept
        : Field(name, std::string_view(value)) {}
    /// Any integer type except bool.
    template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) constexpr Field(std::string_view name,
                                                                                T value) noexcept
        : name_(name) {
        if constexpr (std::is_signed_v<T>) {
            kind_ = Kind::int64;
            int_ = static_cast<std::int64_t>(value);
        } else {
            kind_ = Kind::uint64;
            uint_ = static_cast<std::uint64_t>(value);
        }
    }
    /// A floating-point value, written in shortest round-trip form.
    constexpr Field(std::string_view name, double value) noexcept
        : name_(name), kind_(Kind::float64), double_(value) {}
    /// A JSON `true` or `false`.
    constexpr Field(std::string_view name, bool value) noexcept
        : name_(name), kind_(Kind::boolean), bool_(value) {}

    /// A value that is already serialised JSON (an object, an array…), copied into the line as it
    /// is. The caller guarantees `json` is one valid JSON value; it is not checked.
    static constexpr Field raw_json(std::string_view name, std::string_view json) noexcept {
        Field f(name, json);
        f.kind_ = Kind::raw_json;
        return f;
    }

    /// The field's name (JSON-escaped when written).
    constexpr std::string_view name() const noexcept { return name_; }
    /// Which of the accessors below is valid.
    constexpr Kind kind() const noexcept { return kind_; }
    /// The value for `Kind::string` and `Kind::raw_json`.
    constexpr std::string_view string_value() const noexcept { return string_; }
    /// The value for `Kind::int64`.
    constexpr std::int64_t int_value() const noexcept { return int_; }
    /// The value for `Kind::uint64`.
    constexpr std::uint64_t uint_value() const noexcept { return uint_; }
    /// The value for `Kind::float64`.
    constexpr double double_value() const noexcept { return double_; }
    /// The value for `Kind::boolean`.
    constexpr bool bool_value() const noexcept { return bool_; }

  private:
    std::string_view name_;
    Kind kind_ = Kind::string;
    union {
        std::string_view string_;
        std::int64_t int_;
        std::uint64_t uint_;
        double double_;
        bool bool_;
    };
};

/// Sets the process-wide `service` and `instance` written on every line and the minimum level.
/// Call once at startup (calling again replaces them; lines being written concurrently carry the
/// old or the new values). Before the first call both are empty and the level is `info`.
void init_logging(std::string service, std::string instance, Level min_level);

/// Changes the minimum level; events below it are dropped cheaply. Lock-free.
void set_log_level(Level min_level) noexcept;

/// The current minimum level. Lock-free.
Level log_level() noexcept;

/// True if an event at `level` would be written. Lock-free; use it to skip costly field building.
bool log_enabled(Level level) noexcept;

/// Receives each finished line, without its trailing newline.
using LogSink = std::function<void(std::string_view line)>;

/// Replaces where lines go (tests, an in-process collector); an empty function restores stdout.
/// The sink is called with the logging lock held, one line at a time, so it needs no locking of
/// its own but must be quick and must not throw. A line logged from inside the sink, on the same
/// thread, is dropped (and counted) instead of deadlocking.
void set_log_sink(LogSink sink);

/// Writes one event if `level` is enabled. Never throws for I/O problems: a line that cannot be
/// written is counted in `dropped_log_lines()`.
void log(Level level, std::string_view msg, std::initializer_list<Field> fields = {},
         const LogContext* ctx = nullptr);

/// As above, with fields built at run time (e.g. in a std::vector<Field>).
void log(Level level, std::string_view msg, std::span<const Field> fields, const LogContext* ctx = nullptr);

/// Lines that could not be written (stdout closed or failing, or logged from inside the sink).
std::uint64_t dropped_log_lines() noexcept;

/// `log(Level::debug, …)`.
inline void debug(std::string_view msg, std::initializer_list<Field> fields = {},
                  const LogContext* ctx = nullptr) {
    log(Level::debug, msg, fields, ctx);
}
/// `log(Level::info, …)`.
inline void info(std::string_view msg, std::initializer_list<Field> fields = {},
                 const LogContext* ctx = nullptr) {
    log(Level::info, msg, fields, ctx);
}
/// `log(Level::warn, …)`.
inline void warn(std::string_view msg, std::initializer_list<Field> fields = {},
                 const LogContext* ctx = nullptr) {
    log(Level::warn, msg, fields, ctx);
}
/// `log(Level::error, …)`.
inline void error(std::string_view msg, std::initializer_list<Field> fields = {},
                  const LogContext* ctx = nullptr) {
    log(Level::error, msg, fields, ctx);
}

}  // namespace plexus::telemetry
