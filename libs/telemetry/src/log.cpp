#include "plexus/telemetry/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <memory>
#include <mutex>
#include <vector>

#include "text_format.hpp"

namespace plexus::telemetry {
namespace {

// The pre-rendered `,"service":…,"instance":…` part. Replaced versions are kept alive until exit
// so a line being formatted concurrently never reads a freed string; init is called once or
// twice per process.
struct Identity {
    std::mutex mutex;
    std::vector<std::unique_ptr<const std::string>> versions;
    std::atomic<const std::string*> current{nullptr};
};

// Never destroyed, so static destructors that log at exit still find it.
Identity& identity() {
    static Identity& id = *new Identity;
    return id;
}

struct Output {
    std::mutex mutex;
    LogSink sink;                       // empty: stdout
    std::atomic<bool> has_sink{false};  // mirrors `sink`, read without the lock
};

Output& output() {
    static Output& out = *new Output;
    return out;
}

std::atomic<int> g_min_level{static_cast<int>(Level::info)};
std::atomic<std::uint64_t> g_dropped{0};
thread_local bool tl_in_sink = false;

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

void append_field(std::string& out, const Field& f) {
    out.push_back(',');
    detail::append_json_string(out, f.name());
    out.push_back(':');
    switch (f.kind()) {
        case Field::Kind::string:
            detail::append_json_string(out, f.string_value());
            break;
        case Field::Kind::raw_json:
            out.append(f.string_value());
            break;
        case Field::Kind::int64:
            detail::append_int(out, f.int_value());
            break;
        case Field::Kind::uint64:
            detail::append_uint(out, f.uint_value());
            break;
        case Field::Kind::float64:
            detail::append_json_double(out, f.double_value());
            break;
        case Field::Kind::boolean:
            out.append(f.bool_value() ? "true" : "false");
            break;
    }
}

void append_optional(std::string& out, std::string_view key, std::string_view value) {
    if (value.empty()) return;
    out.append(key);
    detail::append_json_string(out, value);
}

}  // namespace

std::string_view to_string(Level level) noexcept {
    switch (level) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::warn:
            return "warn";
        case Level::error:
            return "error";
    }
    return "unknown";
}

std::optional<Level> parse_level(std::string_view text) noexcept {
    for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
        if (text == to_string(l)) return l;
    }
    return std::nullopt;
}

void init_logging(std::string service, std::string instance, Level min_level) {
    std::string prefix = ",\"service\":";
    detail::append_json_string(prefix, service);
    prefix.append(",\"instance\":");
    detail::append_json_string(prefix, instance);
    auto& id = identity();
    {
        std::lock_guard lock(id.mutex);
        id.versions.push_back(std::make_unique<const std::string>(std::move(prefix)));
        id.current.store(id.versions.back().get(), std::memory_order_release);
    }
    set_log_level(min_level);
}

void set_log_level(Level min_level) noexcept {
    g_min_level.store(static_cast<int>(min_level), std::memory_order_relaxed);
}

Level log_level() noexcept { return static_cast<Level>(g_min_level.load(std::memory_order_relaxed)); }

bool log_enabled(Level level) noexcept {
    return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

void set_log_sink(LogSink sink) {
    auto& out = output();
    std::lock_guard lock(out.mutex);
    out.sink = std::move(sink);
    out.has_sink.store(static_cast<bool>(out.sink), std::memory_order_release);
}

std::uint64_t dropped_log_lines() noexcept { return g_dropped.load(std::memory_order_relaxed); }

void log(Level level, std::string_view msg, std::initializer_list<Field> fields, const LogContext* ctx) {
    log(level, msg, std::span<const Field>(fields.begin(), fields.size()), ctx);
}

void log(Level level, std::string_view msg, std::span<const Field> fields, const LogContext* ctx) {
    if (!log_enabled(level)) return;
    if (tl_in_sink) {
        g_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // Formatting happens outside the lock, into a buffer each thread reuses.
    thread_local std::string line;
    line.clear();
    line.append("{\"ts\":\"");
    core::append_rfc3339(line, std::chrono::system_clock::now(), true);
    line.append("\",\"level\":\"");
    line.append(to_string(level));
    line.push_back('"');
    if (const std::string* prefix = identity().current.load(std::memory_order_acquire)) {
        line.append(*prefix);
    } else {
        line.append(",\"service\":\"\",\"instance\":\"\"");
    }
    if (ctx != nullptr) {
        append_optional(line, ",\"trace_id\":", ctx->trace_id);
        append_optional(line, ",\"span_id\":", ctx->span_id);
        append_optional(line, ",\"request_id\":", ctx->request_id);
    }
    line.append(",\"msg\":");
    detail::append_json_string(line, msg);
    for (const Field& f : fields) append_field(line, f);
    line.append("}\n");

    // A rare huge line must not pin its memory in every thread that once logged it.
    struct Trim {
        ~Trim() {
            if (line.capacity() > 64 * 1024) std::string().swap(line);
        }
    } trim;
    auto& out = output();
    std::size_t written = 0;
    if (!out.has_sink.load(std::memory_order_acquire) && line.size() <= PIPE_BUF) {
        // One write(2) of a whole line is atomic on a pipe (up to PIPE_BUF) and on a file opened
        // O_APPEND, so lines of different threads cannot interleave: no lock, which an io thread
        // would otherwise wait on while another sits in write(2). Only a short write (a terminal,
        // a full non-blocking pipe) finishes under the lock.
        ssize_t n;
        do {
            n = ::write(STDOUT_FILENO, line.data(), line.size());
        } while (n < 0 && errno == EINTR);
        if (n == static_cast<ssize_t>(line.size())) return;
        if (n < 0) {
            g_dropped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        written = static_cast<std::size_t>(n);
    }
    std::lock_guard lock(out.mutex);
    if (out.sink && written == 0) {
        tl_in_sink = true;
        try {
            out.sink(std::string_view(line.data(), line.size() - 1));
        } catch (...) {
            // A sink must not throw; a broken test or collector must not take the service down.
            g_dropped.fetch_add(1, std::memory_order_relaxed);
        }
        tl_in_sink = false;
        return;
    }
    if (!write_all(STDOUT_FILENO, line.data() + written, line.size() - written))
        g_dropped.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace plexus::telemetry
