#include "plexus/gateway/routes.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "plexus/core/duration.hpp"
#include "plexus/core/files.hpp"
#include "plexus/core/json_merge.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/yaml_json.hpp"

namespace plexus::gateway {

namespace {

constexpr std::size_t kMaxParams = 16;

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Whether `path` starts with `prefix` ending on a segment boundary ("/api" matches "/api",
// "/api/x", not "/apix"; "/api/" matches "/api/x").
bool has_segment_prefix(std::string_view path, std::string_view prefix) noexcept {
    if (!path.starts_with(prefix)) return false;
    return prefix.back() == '/' || path.size() == prefix.size() || path[prefix.size()] == '/';
}

// A pattern's segments as written: literal text, {param} or {rest...}.
struct PatternSegment {
    std::string_view text;  // literal text or parameter name
    bool is_param = false;
    bool is_rest = false;
};

std::vector<PatternSegment> split_pattern(std::string_view pattern) {
    std::vector<PatternSegment> out;
    std::string_view rest = pattern.substr(1);
    while (true) {
        auto slash = rest.find('/');
        auto seg = rest.substr(0, slash);
        PatternSegment s{seg};
        if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
            s.is_param = true;
            s.text = seg.substr(1, seg.size() - 2);
            if (s.text.ends_with("...")) {
                s.is_rest = true;
                s.text.remove_suffix(3);
            }
        }
        out.push_back(s);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return out;
}

std::size_t param_count(std::string_view pattern) {
    std::size_t n = 0;
    for (const auto& s : split_pattern(pattern)) n += s.is_param;
    return n;
}

// The {name} and {name...} references of a rewrite template, or a reason it is malformed.
struct TemplateRef {
    std::string_view name;
    bool is_rest = false;
};
std::optional<std::string> parse_template(std::string_view text, std::vector<TemplateRef>* refs,
                                          std::vector<std::string_view>* literals) {
    std::size_t i = 0;
    std::size_t lit_start = 0;
    while (i < text.size()) {
        if (text[i] == '}') return "unbalanced '}'";
        if (text[i] != '{') {
            ++i;
            continue;
        }
        auto close = text.find('}', i);
        if (close == std::string_view::npos) return "unbalanced '{'";
        auto name = text.substr(i + 1, close - i - 1);
        bool rest = name.ends_with("...");
        if (rest) name.remove_suffix(3);
        if (name.empty() || name.find('{') != std::string_view::npos) return "empty or malformed {parameter}";
        if (literals) literals->push_back(text.substr(lit_start, i - lit_start));
        if (refs) refs->push_back({name, rest});
        i = close + 1;
        lit_start = i;
    }
    if (literals) literals->push_back(text.substr(lit_start));
    return std::nullopt;
}

bool valid_path_text(std::string_view p) noexcept {
    if (p.empty() || p.front() != '/') return false;
    for (unsigned char c : p) {
        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#') return false;
    }
    return true;
}

// A problem from resilience::check, which reads "key: reason".
std::optional<RouteProblem> policy_problem(const std::string& text) {
    auto colon = text.find(": ");
    if (colon == std::string::npos) return RouteProblem{"", text};
    return RouteProblem{text.substr(0, colon), text.substr(colon + 2)};
}

std::optional<RouteProblem> problem(std::string key, std::string reason) {
    return RouteProblem{std::move(key), std::move(reason)};
}

// Checks of the `match` map; keys are relative to it.
std::optional<RouteProblem> check_match(const RouteSettings& r) {
    if (!r.path.empty() && !r.prefix.empty())
        return problem("prefix", "a route matches a path or a prefix, not both");
    if (r.path.empty() && r.prefix.empty())
        return problem("path", "a route needs a path or a prefix to match");
    if (!r.path.empty()) {
        if (!valid_path_text(r.path)) {
            return problem("path", "must start with '/' and contain no spaces, '?' or '#': '" + r.path + "'");
        }
        try {
            net::PathPattern pattern(r.path);
        } catch (const std::invalid_argument& e) {
            return problem("path", e.what());
        }
        if (param_count(r.path) > kMaxParams) {
            return problem("path", "more than " + std::to_string(kMaxParams) + " parameters");
        }
    }
    if (!r.prefix.empty()) {
        if (!valid_path_text(r.prefix) || r.prefix.find_first_of("{}") != std::string::npos) {
            return problem(
                "prefix",
                "must start with '/' and contain no spaces, '?', '#' or {parameters}: '" + r.prefix + "'");
        }
    }
    for (const auto& m : r.methods) {
        bool ok =
            net::is_token(m) && std::none_of(m.begin(), m.end(), [](char c) { return c >= 'a' && c <= 'z'; });
        if (!ok)
            return problem("methods",
                           "'" + m + "' is not an HTTP method (methods are case-sensitive: GET, POST...)");
    }
    if (!r.host.empty()) {
        for (char c : r.host) {
            if (c == '/' || c == ':' || static_cast<unsigned char>(c) <= 0x20) {
                return problem("host", "must be a host name without port or scheme: '" + r.host + "'");
            }
        }
    }
    return std::nullopt;
}

// Checks of the route's own keys (target, rewriting, limits).
std::optional<RouteProblem> check_rest(const RouteSettings& r) {
    if (r.name.empty()) return problem("name", "is required");
    if (!r.service.empty() && !r.upstreams.empty()) {
        return problem("upstreams", "a route has one target: a service or upstreams, not both");
    }
    if (r.service.empty() && r.upstreams.empty()) {
        return problem("service", "a route needs a target: a service name or a list of upstreams");
    }
    std::set<std::string> seen;
    for (const auto& u : r.upstreams) {
        auto ep = net::parse_endpoint(u);
        if (!ep) return problem("upstreams", "'" + u + "' is not host:port");
        if (!seen.insert(ep->to_string()).second) return problem("upstreams", "'" + u + "' is listed twice");
    }
    if (!r.strip_prefix.empty() && !r.rewrite.empty()) {
        return problem("rewrite", "cannot be combined with strip_prefix");
    }
    if (!r.strip_prefix.empty()) {
        if (!valid_path_text(r.strip_prefix) || r.strip_prefix == "/" ||
            r.strip_prefix.find_first_of("{}") != std::string::npos) {
            return problem("strip_prefix", "must be a path such as /api: '" + r.strip_prefix + "'");
        }
    }
    if (!r.rewrite.empty()) {
        if (!valid_path_text(r.rewrite)) {
            return problem("rewrite",
                           "must start with '/' and contain no spaces, '?' or '#': '" + r.rewrite + "'");
        }
        std::vector<TemplateRef> refs;
        if (auto bad = parse_template(r.rewrite, &refs, nullptr)) return problem("rewrite", *bad);
        if (!r.prefix.empty() && !refs.empty()) {
            return problem("rewrite",
                           "a prefix route's rewrite replaces the prefix and cannot use {parameters}");
        }
        if (!r.path.empty()) {
            auto segments = split_pattern(r.path);
            for (const auto& ref : refs) {
                auto it = std::find_if(segments.begin(), segments.end(), [&](const PatternSegment& s) {
                    return s.is_param && s.text == ref.name;
                });
                if (it == segments.end()) {
                    return problem("rewrite", "{" + std::string(ref.name) +
                                                  "} is not a parameter of match.path " + r.path);
                }
            }
        }
    }
    if (r.call.timeout.count() <= 0) return problem("timeout", "must be longer than 0");
    if (r.max_body_bytes < 1) return problem("max_body_bytes", "must be at least 1");
    if (auto bad = resilience::check(r.call)) return policy_problem(*bad);
    if (auto bad = resilience::check(r.upstream)) return policy_problem(*bad);
    if (r.breaker) {
        resilience::UpstreamPolicy own;
        own.breaker = *r.breaker;
        if (auto bad = resilience::check(own)) return policy_problem(*bad);
    }
    return std::nullopt;
}

std::string_view policy_name(discovery::Policy p) {
    return p == discovery::Policy::least_request ? "least_request" : "round_robin";
}

// Precedence: lower sorts first.
struct Rank {
    int kind;
    std::size_t specificity;  // larger is more specific, so it sorts first
    bool rest;
    bool any_host;
    bool any_method;
    std::size_t index;
};

}  // namespace

std::optional<RouteProblem> check_route(const RouteSettings& route) {
    if (auto p = check_match(route)) {
        p->key = p->key.empty() ? "match" : "match." + p->key;
        return p;
    }
    return check_rest(route);
}

namespace {

// A list of filter entries (`- name: x` and x's own keys).
std::vector<FilterSpec> read_filters(core::SettingsReader& reader, std::string_view key) {
    std::vector<FilterSpec> specs;
    reader.each(key, [&](core::SettingsReader& f) {
        FilterSpec spec;
        f.field("name", spec.name, core::Need::required);
        const auto* factory = find_filter_factory(spec.name);
        if (!factory) {
            std::string known;
            for (const auto* k : filter_factories())
                known += (known.empty() ? "" : ", ") + std::string(k->name());
            f.fail("name", "no filter is called '" + spec.name + "' (known: " + known + ")");
        }
        spec.config = factory->parse(f);
        specs.push_back(std::move(spec));
    });
    return specs;
}

std::vector<RouteSettings> read_routes(core::SettingsReader& reader) {
    std::vector<RouteSettings> routes;
    std::map<std::string, std::size_t, std::less<>> names;
    std::map<std::string, std::pair<discovery::Policy, std::string>, std::less<>> service_policies;
    std::map<std::string, resilience::UpstreamPolicy, std::less<>> upstreams;
    std::map<std::string, std::string, std::less<>> unused;  // upstream name → its key, for errors
    reader.each_entry("upstreams", [&](const std::string& name, core::SettingsReader& u) {
        resilience::read_upstream_policy(u, upstreams[name]);
        unused.emplace(name, name);
    });
    auto default_filters = read_filters(reader, "default_filters");
    reader.each(
        "routes",
        [&](core::SettingsReader& r) {
            RouteSettings s;
            r.field("name", s.name, core::Need::required);
            r.section(
                "match",
                [&](core::SettingsReader& m) {
                    m.field("path", s.path);
                    m.field("prefix", s.prefix);
                    m.field("methods", s.methods);
                    m.field("host", s.host);
                    m.done();
                    if (auto p = check_match(s)) m.fail(p->key, p->reason);
                },
                core::Need::required);
            // A route's own breaker; the upstream's other policies belong under `upstreams:`.
            resilience::UpstreamPolicy own;
            bool has_breaker = r.has("circuit_breaker");
            resilience::read_policy(r, s.call, own);
            if (has_breaker) s.breaker = own.breaker;
            for (auto key : {"bulkhead", "outlier", "retry_budget"}) {
                if (r.has(key))
                    r.fail(key,
                           "is a policy of the upstream: set it under upstreams.<service or route name>");
            }
            r.field("service", s.service);
            r.field("upstreams", s.upstreams);
            r.field("strip_prefix", s.strip_prefix);
            r.field("rewrite", s.rewrite);
            r.field("max_body_bytes", s.max_body_bytes);
            std::string policy;
            if (r.field("policy", policy)) {
                auto p = discovery::parse_policy(policy);
                if (!p) r.fail("policy", "expected round_robin or least_request, got '" + policy + "'");
                s.policy = *p;
            }
            s.filters = default_filters;
            auto own_filters = read_filters(r, "filters");
            s.filters.insert(s.filters.end(), own_filters.begin(), own_filters.end());
            r.done();
            if (auto p = check_rest(s)) r.fail(p->key, p->reason);
            auto [it, fresh] = names.emplace(s.name, routes.size());
            if (!fresh) {
                r.fail("name", "duplicate route name '" + s.name + "' (also routes[" +
                                   std::to_string(it->second) + "])");
            }
            if (!s.service.empty()) {
                auto [sp, first] = service_policies.emplace(s.service, std::make_pair(s.policy, s.name));
                if (!first && sp->second.first != s.policy) {
                    r.fail("policy", "service '" + s.service + "' already uses " +
                                         std::string(policy_name(sp->second.first)) + " in route '" +
                                         sp->second.second +
                                         "'; every route of a service needs the same policy");
                }
            }
            if (auto it = upstreams.find(s.upstream_name()); it != upstreams.end()) {
                s.upstream = it->second;
                unused.erase(s.upstream_name());
            }
            routes.push_back(std::move(s));
        },
        core::Need::required);
    if (!unused.empty()) {
        reader.fail("upstreams." + unused.begin()->first,
                    "no route uses a service or static route called '" + unused.begin()->first + "'");
    }
    reader.done();
    return routes;
}

}  // namespace

std::vector<RouteSettings> parse_routes(std::string_view text, std::string name) {
    auto reader = core::SettingsReader::from_text(text, std::move(name));
    return read_routes(reader);
}

std::vector<RouteSettings> load_routes(const std::string& path) {
    auto reader = core::SettingsReader::from_file(path);
    return read_routes(reader);
}

std::vector<RouteSettings> load_routes(const std::string& path, const boost::json::object& overlay,
                                       const std::string& source) {
    boost::json::object doc;
    if (!path.empty()) {
        std::string why;
        auto text = core::read_text_file(path, &why);
        if (!text) throw core::SettingsError(why);
        parse_routes(*text, path);  // the file's own problems, named by its line
        auto file = core::yaml_to_json(*text, path);
        if (file.is_object()) doc = std::move(file.get_object());
    }
    core::merge_into(doc, overlay);
    auto reader = core::SettingsReader::from_json(doc, path.empty() ? source : path + " + " + source);
    return read_routes(reader);
}

// ---------------------------------------------------------------- Route

bool Route::matches(std::string_view method, std::string_view path, std::string_view host) const noexcept {
    switch (kind_) {
        case Kind::exact:
            if (path != settings_.path) return false;
            break;
        case Kind::pattern:
            if (!pattern_->match(path, nullptr)) return false;
            break;
        case Kind::prefix:
            if (!has_segment_prefix(path, settings_.prefix)) return false;
            break;
    }
    if (!settings_.methods.empty() &&
        std::find(settings_.methods.begin(), settings_.methods.end(), method) == settings_.methods.end()) {
        return false;
    }
    if (!host_lower_.empty() && !net::iequals(host_without_port(host), host_lower_)) return false;
    return true;
}

bool Route::rewrite_target(net::Request& req) const {
    // The new target is built in a per-thread buffer and swapped in, so both strings keep their
    // capacity and a steady stream of requests allocates nothing here.
    thread_local std::string scratch;
    auto path = req.path();
    auto query = req.query();
    bool has_query = path.size() < req.target.size();

    if (!strip_.empty()) {
        if (!has_segment_prefix(path, strip_)) return false;
        req.target.erase(0, strip_.size());
        if (req.target.empty() || req.target.front() != '/') req.target.insert(req.target.begin(), '/');
        return true;
    }
    if (settings_.rewrite.empty()) return false;

    scratch.clear();
    if (kind_ == Kind::prefix) {
        auto rest = path.substr(settings_.prefix.size());
        scratch += settings_.rewrite;
        if (!rest.empty()) {
            bool slash_end = scratch.back() == '/';
            bool slash_start = rest.front() == '/';
            if (slash_end && slash_start)
                rest.remove_prefix(1);
            else if (!slash_end && !slash_start)
                scratch += '/';
            scratch += rest;
        }
    } else {
        // Capture the raw path segments of the parameters (still percent-encoded as the client
        // sent them, so they are forwarded unchanged).
        std::array<std::string_view, kMaxParams> values{};
        std::size_t n = 0;
        std::string_view rest = path.substr(1);
        for (const auto& seg : segments_) {
            if (seg.is_rest) {
                values[n++] = rest;
                break;
            }
            auto slash = rest.find('/');
            if (seg.is_param) values[n++] = rest.substr(0, slash);
            rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        }
        for (const auto& part : rewrite_) {
            if (part.param < 0)
                scratch += part.literal;
            else
                scratch += values[static_cast<std::size_t>(part.param)];
        }
        if (scratch.empty()) scratch += '/';
    }
    if (has_query) {
        scratch += '?';
        scratch += query;
    }
    req.target.swap(scratch);
    return true;
}

// ---------------------------------------------------------------- RouteTable

std::shared_ptr<const RouteTable> RouteTable::compile(std::vector<RouteSettings> routes) {
    std::shared_ptr<RouteTable> table(new RouteTable());
    std::map<std::string, std::size_t, std::less<>> names;
    std::map<std::string, std::pair<discovery::Policy, std::string>, std::less<>> service_policies;
    std::map<std::string, std::pair<const resilience::UpstreamPolicy*, std::string>, std::less<>>
        upstream_policies;
    std::vector<Rank> ranks;
    table->routes_.reserve(routes.size());
    for (std::size_t i = 0; i < routes.size(); ++i) {
        auto& s = routes[i];
        auto where = "route '" + s.name + "' (routes[" + std::to_string(i) + "])";
        if (auto p = check_route(s)) throw std::invalid_argument(where + ": " + p->key + ": " + p->reason);
        if (!names.emplace(s.name, i).second)
            throw std::invalid_argument(where + ": name: duplicate route name");
        if (!s.service.empty()) {
            auto [sp, first] = service_policies.emplace(s.service, std::make_pair(s.policy, s.name));
            if (!first && sp->second.first != s.policy) {
                throw std::invalid_argument(where + ": policy: service '" + s.service + "' already uses " +
                                            std::string(policy_name(sp->second.first)) + " in route '" +
                                            sp->second.second + "'");
            }
            auto [up, first_up] = upstream_policies.emplace(s.service, std::make_pair(&s.upstream, s.name));
            if (!first_up && !(*up->second.first == s.upstream)) {
                throw std::invalid_argument(where + ": upstream: service '" + s.service +
                                            "' has another upstream policy in route '" + up->second.second +
                                            "'");
            }
        }

        Route r;
        r.index_ = i;
        Rank rank{};
        rank.index = i;
        rank.any_host = s.host.empty();
        rank.any_method = s.methods.empty();
        if (!s.prefix.empty()) {
            r.kind_ = Route::Kind::prefix;
            rank.kind = 2;
            rank.specificity = s.prefix.size();
        } else if (s.path.find('{') == std::string::npos) {
            r.kind_ = Route::Kind::exact;
            rank.kind = 0;
        } else {
            r.kind_ = Route::Kind::pattern;
            r.pattern_.emplace(s.path);
            rank.kind = 1;
            rank.specificity = r.pattern_->literal_count();
        }
        if (!s.path.empty()) {
            std::vector<std::string> param_names;
            for (const auto& seg : split_pattern(s.path)) {
                if (seg.is_param) param_names.emplace_back(seg.text);
                r.segments_.push_back({seg.is_param, seg.is_rest});
                rank.rest = rank.rest || seg.is_rest;
            }
            if (!s.rewrite.empty()) {
                std::vector<TemplateRef> refs;
                std::vector<std::string_view> literals;
                parse_template(s.rewrite, &refs, &literals);
                for (std::size_t k = 0; k < refs.size(); ++k) {
                    if (!literals[k].empty()) r.rewrite_.push_back({std::string(literals[k]), -1});
                    auto pos =
                        std::find(param_names.begin(), param_names.end(), refs[k].name) - param_names.begin();
                    r.rewrite_.push_back({{}, static_cast<int>(pos)});
                }
                if (!literals.back().empty()) r.rewrite_.push_back({std::string(literals.back()), -1});
            }
        }
        for (char c : s.host) r.host_lower_ += lower(c);
        if (!s.strip_prefix.empty()) {
            r.strip_ = s.strip_prefix;
            while (r.strip_.size() > 1 && r.strip_.back() == '/') r.strip_.pop_back();
        }
        for (const auto& u : s.upstreams) {
            auto ep = *net::parse_endpoint(u);
            discovery::Target t;
            t.info.service = s.name;
            t.info.id = ep.to_string();
            t.info.address = ep.host;
            t.info.port = ep.port;
            t.state = std::make_shared<discovery::InstanceState>();
            r.static_targets_.targets.push_back(std::move(t));
            r.endpoints_.push_back(std::move(ep));
        }
        r.static_targets_.loaded = true;
        r.balancer_ = std::make_unique<discovery::Balancer>(s.policy);
        r.settings_ = std::move(s);
        table->routes_.push_back(std::move(r));
        ranks.push_back(rank);
    }
    auto key = [](const Rank& a) {
        return std::make_tuple(a.kind, ~a.specificity, a.rest, a.any_host, a.any_method, a.index);
    };
    std::vector<std::size_t> order(ranks.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return key(ranks[a]) < key(ranks[b]); });
    std::vector<Route> sorted;
    sorted.reserve(order.size());
    for (auto i : order) sorted.push_back(std::move(table->routes_[i]));
    table->routes_ = std::move(sorted);
    return table;
}

const Route* RouteTable::match(std::string_view method, std::string_view path,
                               std::string_view host) const noexcept {
    for (const auto& r : routes_) {
        if (r.matches(method, path, host)) return &r;
    }
    return nullptr;
}

const Route* RouteTable::match(const net::Request& req) const noexcept {
    return match(req.method, req.path(), req.headers.get("host").value_or(std::string_view{}));
}

std::string RouteTable::to_json() const {
    namespace json = boost::json;
    std::vector<const Route*> by_index(routes_.size());
    for (const auto& r : routes_) by_index[r.index()] = &r;
    json::array list;
    for (const auto* r : by_index) {
        const auto& s = r->settings();
        json::object match;
        if (!s.path.empty()) match["path"] = s.path;
        if (!s.prefix.empty()) match["prefix"] = s.prefix;
        if (!s.methods.empty()) match["methods"] = json::value_from(s.methods);
        if (!s.host.empty()) match["host"] = s.host;
        json::object o;
        o["name"] = s.name;
        o["match"] = std::move(match);
        if (!s.service.empty()) o["service"] = s.service;
        if (!s.upstreams.empty()) o["upstreams"] = json::value_from(s.upstreams);
        if (!s.strip_prefix.empty()) o["strip_prefix"] = s.strip_prefix;
        if (!s.rewrite.empty()) o["rewrite"] = s.rewrite;
        o["timeout"] = core::format_duration(s.call.timeout);
        o["max_body_bytes"] = s.max_body_bytes;
        o["policy"] = policy_name(s.policy);
        o["retry"] = {{"attempts", s.call.retry.attempts},
                      {"backoff", core::format_duration(s.call.retry.backoff)},
                      {"non_idempotent", s.call.retry.non_idempotent}};
        if (s.call.fault.active()) {
            o["fault"] = {{"delay_percent", s.call.fault.delay_percent},
                          {"delay", core::format_duration(s.call.fault.delay)},
                          {"abort_percent", s.call.fault.abort_percent},
                          {"abort_status", s.call.fault.abort_status}};
        }
        if (s.call.fallback.enabled) o["fallback"] = {{"status", s.call.fallback.status}};
        if (s.breaker) o["circuit_breaker"] = true;
        if (!s.filters.empty()) {
            json::array filters;
            for (const auto& f : s.filters) {
                json::object fo{{"name", f.name}};
                if (f.config) f.config->to_json(fo);
                filters.push_back(std::move(fo));
            }
            o["filters"] = std::move(filters);
        }
        list.push_back(std::move(o));
    }
    json::object doc;
    doc["routes"] = std::move(list);
    return json::serialize(doc);
}

std::string_view host_without_port(std::string_view host) noexcept {
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(0, close + 1);
    }
    auto colon = host.rfind(':');
    if (colon == std::string_view::npos) return host;
    auto port = host.substr(colon + 1);
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return host;
    return host.substr(0, colon);
}

}  // namespace plexus::gateway
