#pragma once
/// Gateway filters: per-request behaviour configured per route, in the spirit of Envoy's HTTP
/// filters and Spring Cloud Gateway's GatewayFilters.
///
/// In the routes file a route lists its filters in order, after the file's `default_filters`
/// (which every route runs first):
///
///     default_filters:
///       - name: headers
///         response: {set: {X-Content-Type-Options: nosniff}}
///     routes:
///       - name: admin
///         match: {prefix: /admin}
///         service: admin
///         filters:
///           - name: ip_access
///             allow: [10.0.0.0/8]
///
/// Each entry is a map: `name` picks the filter, its other keys are the filter's settings (an
/// unknown key is an error naming file, line and key). Filters are compiled once per route when
/// the routes load; a route without filters pays nothing for the chain.
///
/// Phases, in the order one request meets them:
///   1. request head: before the body is read, so a filter can refuse a request without reading
///      its body or sending `100 Continue` (filters in order);
///   2. request body: the whole body is in `request.body` (filters in order);
///   then the route's terminal (its service or static upstreams) answers, unless a filter did;
///   3. response head, then 4. response body: the answer in `response`, whoever made it (filters
///      in reverse order, only those whose request phases ran);
///   5. completion: always, once, for every filter of the route, even when an earlier filter
///      answered or a handler threw (metering, audit).
/// A phase is synchronous; a request-head filter that must wait (a key fetch, say) returns
/// `suspend` and the chain awaits its `on_request_head_async`.
///
/// Each filter lives in its own folder, `platform/gateway/filters/<name>/`, with its settings,
/// factory, tests and README; filters/registry.cpp lists them (no static registration).

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "plexus/auth/verifier.hpp"
#include "plexus/net/http.hpp"
#include "plexus/net/task.hpp"
#include "plexus/serving/request_scope.hpp"

namespace boost::json {
class object;
}

namespace plexus::core {
class SettingsReader;
}

namespace plexus::telemetry {
class Registry;
}

namespace plexus::gateway {

class Route;
struct RouteSettings;

/// The most filters one route may have (default filters included).
inline constexpr std::size_t kMaxFilters = 16;

/// One request as the filters of its route see it.
struct Exchange {
    net::Request& request;
    net::Response& response;
    serving::RequestScope& scope;
    const Route& route;
    /// One word of per-request state per filter, zero at the start, indexed by the filter's
    /// FilterContext::slot (what a request phase leaves for the response phase, say).
    std::array<std::uint64_t, kMaxFilters> scratch{};
};

/// What a request phase of a filter decided.
enum class FilterResult : std::uint8_t {
    next,      ///< go on with the next filter
    answered,  ///< the filter put the answer in `response`; no later filter or terminal runs
    suspend,   ///< (request head only) call on_request_head_async and use its result
};

/// The phases a filter takes part in, as bits of Filter::phases().
enum FilterPhase : std::uint8_t {
    kRequestHead = 1,
    kRequestBody = 2,
    kResponseHead = 4,
    kResponseBody = 8,
    kComplete = 16,
};

/// A filter compiled for one route. Shared by every request of the route on every thread, so
/// its phase methods are const and thread-safe; per-request state lives on the stack of the
/// phase (or of the suspended coroutine). Phases it does not name in phases() are never called.
class Filter {
  public:
    explicit Filter(std::uint8_t phases) noexcept : phases_(phases) {}
    virtual ~Filter() = default;
    Filter(const Filter&) = delete;
    Filter& operator=(const Filter&) = delete;

    /// The phases this filter takes part in (FilterPhase bits).
    std::uint8_t phases() const noexcept { return phases_; }

    /// Request head, before the body is read. May answer (e.g. 403) or suspend.
    virtual FilterResult on_request_head(Exchange&) const { return FilterResult::next; }
    /// The suspended part of the request head phase; `next` or `answered`.
    virtual net::Task<FilterResult> on_request_head_async(Exchange&) const;
    /// The request body is complete in `request.body`. May answer.
    virtual FilterResult on_request_body(Exchange&) const { return FilterResult::next; }
    /// The response's status and headers are final unless a later phase changes them.
    virtual void on_response_head(Exchange&) const {}
    /// The response body is complete in `response.body`.
    virtual void on_response_body(Exchange&) const {}
    /// The request is over (the answer is final); runs for every request of the route.
    virtual void on_complete(const Exchange&) const noexcept {}

  private:
    std::uint8_t phases_;
};

/// A filter's settings as read from the routes file (or built in code): plain data, immutable
/// once made. Each filter defines its own settings type deriving from this.
class FilterConfig {
  public:
    virtual ~FilterConfig() = default;
    /// The settings as JSON, for `/-/routes` (never a secret).
    virtual void to_json(boost::json::object& out) const = 0;
};

class FilterFactory;

/// A filter of a route as configured: which filter and its settings.
struct FilterSpec {
    std::string name;                            ///< a filter of filter_factories()...
    std::shared_ptr<const FilterConfig> config;  ///< its settings, from the factory's parse()
    /// ...or, for routes built in code, a factory of the embedder's own (then used instead of
    /// looking `name` up). Must outlive the gateway.
    const FilterFactory* factory = nullptr;
};

/// State that must outlive one load of the routes (token buckets, caches), kept by the gateway
/// and handed to the factories at every load. A load takes the entries it asks for again;
/// entries no route asked for are dropped when the load is installed. Thread-safe.
class FilterState {
  public:
    /// The entry under `key` from the previous load, or a new one made by `make()`. The key
    /// names the filter and what the state belongs to (e.g. "rate_limit:route:products").
    template <class T, class Make>
    std::shared_ptr<T> keep(const std::string& key, Make make) {
        std::lock_guard lock(mutex_);
        auto& slot = next_[key];
        if (!slot) {
            auto it = current_.find(key);
            slot = it != current_.end() ? it->second : std::shared_ptr<void>(make());
        }
        return std::static_pointer_cast<T>(slot);
    }
    /// Starts a load: entries kept from now on make up the next generation.
    void begin_load();
    /// Ends a load: `installed` true makes the kept entries current, false drops them (a
    /// rejected load leaves the current state as it was).
    void end_load(bool installed);
    /// The number of current entries.
    std::size_t size() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<void>, std::less<>> current_, next_;
};

/// The identity provider whose tokens the gateway checks (its `--issuer`, `--jwks-uri`,
/// `--audience`, `--revocations-uri`, `--introspection-uri`, `--client-credentials` flags); the
/// auth filter uses it. Empty `issuer`: none configured.
using AuthProvider = auth::ProviderSettings;

/// What a factory gets to build a filter for one route.
struct FilterContext {
    const RouteSettings& route;
    FilterState& state;
    telemetry::Registry& metrics;
    /// The gateway's identity provider (never null; check `issuer` for "none configured").
    const AuthProvider* auth = nullptr;
    /// Where filters may run background work (a watch, a refresh); null when the gateway was
    /// given none (GatewaySettings::background).
    const net::Executor* background = nullptr;
    /// The limit service, http://host:port (GatewaySettings::limits_uri); null or empty: none.
    const std::string* limits_uri = nullptr;
    /// The filter's position in the route's chain: its word of Exchange::scratch.
    std::size_t slot = 0;
};

/// Reads one filter's settings and builds it for a route. One per filter kind; stateless.
class FilterFactory {
  public:
    virtual ~FilterFactory() = default;
    /// The name routes use (`name: ip_access`).
    virtual std::string_view name() const noexcept = 0;
    /// Reads the filter's keys from its entry (`name` already read); a bad value fails through
    /// `reader.fail` (core::SettingsError naming file, line and key).
    virtual std::shared_ptr<const FilterConfig> parse(core::SettingsReader& reader) const = 0;
    /// Builds the filter for one route; throws std::invalid_argument for settings that cannot
    /// work (checked again for settings built in code).
    virtual std::shared_ptr<const Filter> create(const FilterConfig& config, FilterContext& ctx) const = 0;
};

/// For factories' parse(): fails `reader` with `problem`, written "key: reason" (the key relative
/// to the filter's entry), as core::SettingsError naming file, line and key.
[[noreturn]] void fail_setting(core::SettingsReader& reader, std::string_view problem);

/// The filters the gateway knows, in the order filters/registry.cpp lists them.
std::span<const FilterFactory* const> filter_factories() noexcept;
/// The factory called `name`, or nullptr.
const FilterFactory* find_filter_factory(std::string_view name) noexcept;

/// The compiled filters of one route, in order, with the union of their phases.
struct FilterChain {
    std::vector<std::shared_ptr<const Filter>> filters;
    std::uint8_t phases = 0;

    bool empty() const noexcept { return filters.empty(); }
    bool has(FilterPhase p) const noexcept { return (phases & p) != 0; }

    /// The request body phase, in order; true if a filter answered, `entered` then counting the
    /// filters up to it.
    bool request_body(Exchange& x, std::size_t& entered) const;
    /// The response head then body phases of the first `entered` filters, last first.
    void respond(Exchange& x, std::size_t entered) const;
    /// The completion phase of every filter.
    void complete(const Exchange& x) const noexcept;
};

/// Builds the chain of a route from its specs (the default filters first). Throws
/// std::invalid_argument naming the filter for an unknown name or settings that cannot work.
FilterChain compile_filters(std::span<const FilterSpec> specs, FilterContext& ctx);

}  // namespace plexus::gateway
