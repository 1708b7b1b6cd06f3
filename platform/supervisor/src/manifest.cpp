#include "plexus/supervisor/manifest.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "plexus/core/files.hpp"
#include "plexus/core/settings.hpp"

namespace plexus::supervisor {

using core::Need;
using core::SettingsReader;

namespace {

// Walks `text`, copying literal parts to `out` and handing each placeholder name to `resolve`,
// which appends its value or returns why it cannot. Returns the first error.
std::optional<std::string> walk_placeholders(
    std::string_view text, std::string& out,
    const std::function<std::optional<std::string>(std::string_view name, std::string& out)>& resolve) {
    for (std::size_t i = 0; i < text.size();) {
        char c = text[i];
        if (c != '{') {
            out += c;
            ++i;
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '{') {
            out += '{';
            i += 2;
            continue;
        }
        auto close = text.find('}', i + 1);
        if (close == std::string_view::npos) {
            return "unclosed placeholder '" + std::string(text.substr(i)) + "' (write {{ for a literal {)";
        }
        auto name = text.substr(i + 1, close - i - 1);
        if (auto error = resolve(name, out)) return error;
        i = close + 1;
    }
    return std::nullopt;
}

constexpr std::string_view kPortPrefix = "port:";
constexpr std::string_view kAdminPortPrefix = "admin_port:";
constexpr std::string_view kSchemePrefix = "scheme:";

std::string unknown(std::string_view name) {
    return "unknown placeholder '{" + std::string(name) +
           "}' (known: {plexus} {bin_dir} {data_dir} {manifest_dir} {port} {port:NAME} {admin_port} "
           "{admin_port:NAME} {scheme} {scheme:NAME} {tls_cert} {tls_key} {instance} {replica}; write {{ for "
           "a literal {)";
}

std::optional<std::string> check_name(std::string_view name) {
    auto ok_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; };
    if (name.empty() || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name.front())) ||
        !std::all_of(name.begin(), name.end(), ok_char)) {
        return "'" + std::string(name) +
               "' is not a valid name (1-63 letters, digits, '_' or '-', starting with a letter or digit)";
    }
    return std::nullopt;
}

// "catalog-3" → true when `service` is "catalog".
bool looks_like_replica_of(std::string_view name, std::string_view service) {
    if (name.size() <= service.size() + 1 || !name.starts_with(service) || name[service.size()] != '-') {
        return false;
    }
    auto digits = name.substr(service.size() + 1);
    return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::string> check_env(const std::map<std::string, std::string>& env, PlaceholderScope scope,
                                     const std::set<std::string>* daemon_names) {
    for (const auto& [key, value] : env) {
        if (key.empty() || key.find('=') != std::string::npos) {
            return "'" + key + "' is not a valid environment variable name";
        }
        if (auto error = check_placeholders(value, scope, daemon_names)) return key + ": " + *error;
    }
    return std::nullopt;
}

std::optional<std::string> check_command(const std::vector<std::string>& command, PlaceholderScope scope,
                                         const std::set<std::string>* daemon_names) {
    if (command.empty()) return "must not be empty";
    for (const auto& arg : command) {
        if (auto error = check_placeholders(arg, scope, daemon_names)) return error;
    }
    if (command.front().empty()) return "the program (first item) must not be empty";
    return std::nullopt;
}

std::optional<std::string> check_restart(const RestartPolicy& p) {
    if (p.initial_backoff <= std::chrono::milliseconds::zero()) return "initial_backoff must be positive";
    if (p.max_backoff < p.initial_backoff) return "max_backoff must not be shorter than initial_backoff";
    return std::nullopt;
}

std::optional<std::string> check_liveness(const LivenessPolicy& p) {
    if (p.interval <= std::chrono::milliseconds::zero()) return "interval must be positive";
    if (p.failures < 1 || p.failures > kMaxLivenessFailures)
        return "failures must be between 1 and " + std::to_string(kMaxLivenessFailures);
    if (p.grace < std::chrono::milliseconds::zero()) return "grace must not be negative";
    return std::nullopt;
}

// One pass over the document. `daemon_names` is null on the first pass, which collects the
// names; the second pass can then check `{port:NAME}` references in any order.
Manifest read_manifest(SettingsReader& r, const std::string& manifest_dir,
                       const std::set<std::string>* daemon_names) {
    Manifest m;
    m.manifest_dir = manifest_dir;
    r.field("name", m.name, Need::required);
    if (auto error = check_name(m.name)) r.fail("name", *error);
    r.field("data_dir", m.data_dir);
    if (m.data_dir.empty()) r.fail("data_dir", "must not be empty");

    std::set<std::string> names;
    std::map<int, std::string> fixed_ports;
    r.each_entry("daemons", [&](const std::string& name, SettingsReader& d) {
        DaemonSpec spec;
        spec.name = name;
        if (auto error = check_name(name)) r.fail("daemons", *error);
        d.field("command", spec.command, Need::required);
        if (auto error = check_command(spec.command, PlaceholderScope::daemon, daemon_names)) {
            d.fail("command", *error);
        }
        d.field("port", spec.port, 0, 65535);
        if (spec.port != 0) {
            auto [it, fresh] = fixed_ports.emplace(spec.port, name);
            if (!fresh)
                d.fail("port",
                       "port " + std::to_string(spec.port) + " is also used by daemon '" + it->second + "'");
        }
        if (d.has("admin_port")) {
            spec.admin_port = 0;
            d.field("admin_port", spec.admin_port, 0, 65535);
            if (spec.admin_port != 0) {
                auto [it, fresh] = fixed_ports.emplace(spec.admin_port, name);
                if (!fresh)
                    d.fail("admin_port", "port " + std::to_string(spec.admin_port) +
                                             " is also used by daemon '" + it->second + "'");
            }
        }
        d.field("health", spec.health);
        if (!spec.health.empty() && spec.health.front() != '/')
            d.fail("health", "must be a path starting with '/'");
        d.field("env", spec.env);
        if (auto error = check_env(spec.env, PlaceholderScope::daemon, daemon_names)) d.fail("env", *error);
        if (d.has("tls_args")) {
            d.field("tls_args", spec.tls_args);
            if (auto error = check_command(spec.tls_args, PlaceholderScope::daemon, daemon_names))
                d.fail("tls_args", *error);
        }
        names.insert(name);
        m.daemons.push_back(std::move(spec));
    });

    r.each_entry("services", [&](const std::string& name, SettingsReader& s) {
        ServiceSpec spec;
        spec.name = name;
        if (auto error = check_name(name)) r.fail("services", *error);
        if (names.contains(name)) r.fail("services", "'" + name + "' is already the name of a daemon");
        for (const auto& daemon : m.daemons) {
            if (looks_like_replica_of(daemon.name, name)) {
                r.fail("services",
                       "daemon '" + daemon.name + "' would clash with a replica of service '" + name + "'");
            }
        }
        s.field("command", spec.command, Need::required);
        // Services get their daemon names from the first half of this very pass.
        if (auto error = check_command(spec.command, PlaceholderScope::service, &names))
            s.fail("command", *error);
        s.field("replicas", spec.replicas, 0, kMaxReplicas);
        s.field("env", spec.env);
        if (auto error = check_env(spec.env, PlaceholderScope::service, &names)) s.fail("env", *error);
        m.services.push_back(std::move(spec));
    });

    r.section("restart", [&](SettingsReader& s) {
        s.field("initial_backoff", m.restart.initial_backoff);
        if (m.restart.initial_backoff <= std::chrono::milliseconds::zero()) {
            s.fail("initial_backoff", "must be positive");
        }
        s.field("max_backoff", m.restart.max_backoff);
        if (m.restart.max_backoff < m.restart.initial_backoff) {
            s.fail("max_backoff", "must not be shorter than initial_backoff");
        }
        s.field("reset_after", m.restart.reset_after);
    });
    r.section("liveness", [&](SettingsReader& s) {
        s.field("interval", m.liveness.interval);
        if (m.liveness.interval <= std::chrono::milliseconds::zero()) s.fail("interval", "must be positive");
        s.field("failures", m.liveness.failures, 1, kMaxLivenessFailures);
        s.field("grace", m.liveness.grace);
        if (m.liveness.grace < std::chrono::milliseconds::zero()) s.fail("grace", "must not be negative");
    });
    r.field("stop_timeout", m.stop_timeout);
    r.field("examples", m.examples);
    r.done();
    return m;
}

}  // namespace

const DaemonSpec* Manifest::daemon(std::string_view wanted) const noexcept {
    for (const auto& d : daemons) {
        if (d.name == wanted) return &d;
    }
    return nullptr;
}

const ServiceSpec* Manifest::service(std::string_view wanted) const noexcept {
    for (const auto& s : services) {
        if (s.name == wanted) return &s;
    }
    return nullptr;
}

Manifest parse_manifest(std::string_view yaml, const std::string& file_name,
                        const std::string& manifest_dir) {
    std::set<std::string> daemon_names;
    {
        auto first = SettingsReader::from_text(yaml, file_name);
        for (const auto& d : read_manifest(first, manifest_dir, nullptr).daemons) daemon_names.insert(d.name);
    }
    auto second = SettingsReader::from_text(yaml, file_name);
    return read_manifest(second, manifest_dir, &daemon_names);
}

Manifest load_manifest(const std::string& path) {
    std::string why;
    auto text = core::read_text_file(path, &why);
    if (!text) throw core::SettingsError(why);
    std::error_code ec;
    auto absolute = std::filesystem::absolute(path, ec);
    auto dir = (ec ? std::filesystem::path(path) : absolute).lexically_normal().parent_path();
    return parse_manifest(*text, path, dir.empty() ? "." : dir.string());
}

std::optional<std::string> validate_manifest(const Manifest& m) {
    if (auto error = check_name(m.name)) return "name: " + *error;
    if (m.data_dir.empty()) return "data_dir must not be empty";
    std::set<std::string> names;
    for (const auto& d : m.daemons) names.insert(d.name);
    if (names.size() != m.daemons.size()) return "daemon names must be unique";
    std::map<int, std::string> fixed_ports;
    for (const auto& d : m.daemons) {
        const std::string where = "daemon '" + d.name + "': ";
        if (auto error = check_name(d.name)) return where + *error;
        if (auto error = check_command(d.command, PlaceholderScope::daemon, &names))
            return where + "command: " + *error;
        if (auto error = check_env(d.env, PlaceholderScope::daemon, &names)) return where + "env: " + *error;
        if (!d.tls_args.empty()) {
            if (auto error = check_command(d.tls_args, PlaceholderScope::daemon, &names))
                return where + "tls_args: " + *error;
        }
        if (d.port < 0 || d.port > 65535) return where + "port must be between 0 and 65535";
        if (d.port != 0 && !fixed_ports.emplace(d.port, d.name).second)
            return where + "port is also used by another daemon";
        if (!d.health.empty() && d.health.front() != '/')
            return where + "health must be a path starting with '/'";
    }
    std::set<std::string> services;
    for (const auto& s : m.services) {
        const std::string where = "service '" + s.name + "': ";
        if (auto error = check_name(s.name)) return where + *error;
        if (names.contains(s.name) || !services.insert(s.name).second)
            return where + "the name is already taken";
        for (const auto& d : m.daemons) {
            if (looks_like_replica_of(d.name, s.name))
                return where + "daemon '" + d.name + "' clashes with a replica";
        }
        if (auto error = check_command(s.command, PlaceholderScope::service, &names))
            return where + "command: " + *error;
        if (auto error = check_env(s.env, PlaceholderScope::service, &names)) return where + "env: " + *error;
        if (s.replicas < 0 || s.replicas > kMaxReplicas) {
            return where + "replicas must be between 0 and " + std::to_string(kMaxReplicas);
        }
    }
    if (auto error = check_restart(m.restart)) return "restart: " + *error;
    if (auto error = check_liveness(m.liveness)) return "liveness: " + *error;
    if (m.stop_timeout < std::chrono::milliseconds::zero()) return "stop_timeout must not be negative";
    return std::nullopt;
}

std::optional<std::string> check_placeholders(std::string_view text, PlaceholderScope scope,
                                              const std::set<std::string>* daemon_names) {
    std::string ignored;
    return walk_placeholders(
        text, ignored, [&](std::string_view name, std::string&) -> std::optional<std::string> {
            if (name == "plexus" || name == "bin_dir" || name == "data_dir" || name == "manifest_dir" ||
                name == "instance" || name == "replica" || name == "tls_cert" || name == "tls_key") {
                return std::nullopt;
            }
            if (name == "scheme") {
                if (scope == PlaceholderScope::daemon) return std::nullopt;
                return std::string("{scheme} is only available to daemons (use {scheme:NAME})");
            }
            if (name == "port") {
                if (scope == PlaceholderScope::daemon) return std::nullopt;
                return std::string(
                    "{port} is only available to daemons (services listen on PLEXUS_LISTEN, port 0)");
            }
            if (name == "admin_port") {
                if (scope == PlaceholderScope::daemon) return std::nullopt;
                return std::string("{admin_port} is only available to daemons");
            }
            for (auto prefix : {kPortPrefix, kAdminPortPrefix, kSchemePrefix}) {
                if (!name.starts_with(prefix)) continue;
                auto daemon = name.substr(prefix.size());
                if (daemon_names == nullptr || daemon_names->contains(std::string(daemon)))
                    return std::nullopt;
                return "'{" + std::string(name) + "}' names no daemon of this manifest";
            }
            return unknown(name);
        });
}

Result<std::string> expand_placeholders(std::string_view text, const PlaceholderValues& v, std::string* why) {
    std::string out;
    auto error = walk_placeholders(
        text, out, [&](std::string_view name, std::string& o) -> std::optional<std::string> {
            auto given = [&](const std::string& value, std::string_view what) -> std::optional<std::string> {
                if (value.empty()) return "{" + std::string(what) + "} is used but no value was given for it";
                o += value;
                return std::nullopt;
            };
            if (name == "plexus") return given(v.plexus, name);
            if (name == "bin_dir") return given(v.bin_dir, name);
            if (name == "data_dir") return given(v.data_dir, name);
            if (name == "manifest_dir") return given(v.manifest_dir, name);
            if (name == "instance") return given(v.instance, name);
            if (name == "tls_cert") return given(v.tls_cert, name);
            if (name == "tls_key") return given(v.tls_key, name);
            if (name == "scheme") {
                o += v.tls ? "https" : "http";
                return std::nullopt;
            }
            if (name.starts_with(kSchemePrefix)) {
                o += v.tls_daemons.contains(name.substr(kSchemePrefix.size())) ? "https" : "http";
                return std::nullopt;
            }
            if (name == "replica") {
                o += std::to_string(v.replica);
                return std::nullopt;
            }
            // {port} / {admin_port}: this daemon's; {port:NAME} / {admin_port:NAME}: any daemon's.
            struct PortNames {
                std::string_view own, prefix;
                const std::optional<int>* value;
                const std::map<std::string, int, std::less<>>* by_daemon;
                const char *own_missing, *what;
            };
            for (const auto& p :
                 {PortNames{"port", kPortPrefix, &v.port, &v.daemon_ports,
                            "{port} is only available to daemons", "a port"},
                  PortNames{"admin_port", kAdminPortPrefix, &v.admin_port, &v.daemon_admin_ports,
                            "{admin_port} is used by a daemon without admin_port", "an admin_port"}}) {
                if (name == p.own) {
                    if (!*p.value) return std::string(p.own_missing);
                    o += std::to_string(**p.value);
                    return std::nullopt;
                }
                if (name.starts_with(p.prefix)) {
                    auto it = p.by_daemon->find(name.substr(p.prefix.size()));
                    if (it == p.by_daemon->end())
                        return "'{" + std::string(name) + "}' names no daemon with " + p.what;
                    o += std::to_string(it->second);
                    return std::nullopt;
                }
            }
            return unknown(name);
        });
    if (error) {
        if (why != nullptr) *why = *error;
        return core::make_error_code(core::errc::invalid_argument);
    }
    return out;
}

}  // namespace plexus::supervisor
