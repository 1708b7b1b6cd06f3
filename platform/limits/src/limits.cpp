#include "plexus/limits/limits.hpp"

#include <boost/json.hpp>
#include <csignal>
#include <map>
#include <mutex>

#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/serving/probes.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::limits {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxBody = 1024 * 1024;

// A positive integer member of a lease, or why not.
std::optional<std::int64_t> positive(const json::object& o, std::string_view key, std::int64_t max,
                                     std::string& why) {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_int64() || v->as_int64() < 1 || v->as_int64() > max) {
        why = std::string(key) + " must be an integer from 1 to " + std::to_string(max);
        return std::nullopt;
    }
    return v->as_int64();
}

}  // namespace

struct Server::Impl {
    core::Clock& clock;
    std::size_t max_keys;
    telemetry::Counter& leases;
    telemetry::Counter& granted;
    std::mutex mutex;
    // One set of buckets per limit (its settings); keys inside are the bucket names.
    std::map<std::string, std::unique_ptr<resilience::TokenBuckets>, std::less<>> limits;

    Impl(telemetry::Registry& metrics, std::size_t keys, core::Clock& c)
        : clock(c),
          max_keys(keys),
          leases(metrics.counter("plexus_limits_leases_total", "Leases asked of the limit service.", {})
                     .labels({})),
          granted(
              metrics
                  .counter("plexus_limits_tokens_granted_total", "Tokens the limit service leased out.", {})
                  .labels({})) {}

    resilience::TokenBuckets& buckets(const resilience::BucketSettings& s) {
        auto key = std::to_string(s.requests) + "/" + std::to_string(s.per.count()) + "/" +
                   std::to_string(s.capacity());
        std::lock_guard lock(mutex);
        auto& slot = limits[key];
        if (!slot) {
            auto settings = s;
            settings.max_keys = max_keys;
            slot = std::make_unique<resilience::TokenBuckets>(settings, clock);
        }
        return *slot;
    }
};

Server::Server(telemetry::Registry& metrics, std::size_t max_keys, core::Clock& clock)
    : impl_(std::make_unique<Impl>(metrics, max_keys, clock)) {}

Server::~Server() = default;

resilience::BucketDecision Server::lease(const std::string& bucket,
                                         const resilience::BucketSettings& settings, std::int64_t want) {
    impl_->leases.inc();
    auto d = impl_->buckets(settings).take_up_to(bucket, want);
    if (d.allowed) impl_->granted.inc(static_cast<std::uint64_t>(d.remaining));
    return d;
}

void Server::add_routes(net::Router& router) {
    router.add(
        "POST", "/v1/leases",
        [this](net::Request& req, net::Response& res) -> net::Task<void> {
            boost::system::error_code ec;
            auto doc = json::parse(req.body, ec);
            const auto* list = !ec && doc.is_object() ? doc.as_object().if_contains("leases") : nullptr;
            if (!list || !list->is_array())
                co_return res.problem(400, "Bad Request", R"(the body must be {"leases": [...]})",
                                      req.path());
            if (list->as_array().size() > kMaxLeasesPerRequest)
                co_return res.problem(
                    400, "Bad Request",
                    "at most " + std::to_string(kMaxLeasesPerRequest) + " leases per request", req.path());
            // Validate every lease before taking any token: a bad request takes nothing.
            struct Ask {
                std::string bucket;
                resilience::BucketSettings settings;
                std::int64_t want;
            };
            std::vector<Ask> asks;
            std::size_t i = 0;
            for (const auto& item : list->as_array()) {
                auto where = "leases[" + std::to_string(i++) + "].";
                const auto* o = item.if_object();
                const auto* bucket = o ? o->if_contains("bucket") : nullptr;
                if (!bucket || !bucket->is_string() || bucket->as_string().empty() ||
                    bucket->as_string().size() > 512)
                    co_return res.problem(400, "Bad Request",
                                          where + "bucket must be a string of 1 to 512 bytes", req.path());
                std::string why;
                auto requests = positive(*o, "requests", 1'000'000'000, why);
                auto per = requests ? positive(*o, "per_ms", 86'400'000, why) : std::nullopt;
                auto burst = per ? positive(*o, "burst", 1'000'000'000, why) : std::nullopt;
                auto want = burst ? positive(*o, "want", 1'000'000, why) : std::nullopt;
                if (!want) co_return res.problem(400, "Bad Request", where + why, req.path());
                asks.push_back(
                    {std::string(bucket->as_string()),
                     {.requests = *requests, .per = std::chrono::milliseconds(*per), .burst = *burst},
                     *want});
            }
            json::array granted;
            for (const auto& a : asks) {
                auto d = lease(a.bucket, a.settings, a.want);
                granted.push_back({{"tokens", d.allowed ? d.remaining : 0},
                                   {"retry_after_ms", d.allowed ? 0 : d.retry_after.count()}});
            }
            res.json(200, json::serialize(json::object{{"granted", std::move(granted)}}));
        },
        kMaxBody);
}

int run(const Settings& settings) {
    auto listen = net::parse_listen_address(settings.listen);
    if (!listen) {
        telemetry::error("--listen must be host:port", {{"listen", settings.listen}});
        return 2;
    }
    if (settings.max_keys < 16) {
        telemetry::error("--max-keys must be at least 16");
        return 2;
    }
    auto& metrics = telemetry::default_registry();
    Server server(metrics, settings.max_keys);
    net::Runtime runtime(settings.threads);
    net::Router router;
    server.add_routes(router);
    serving::add_probe_routes(router, metrics);
    auto http_ptr = serving::start_listener(runtime, *listen, router, settings.listen);
    if (!http_ptr) return 1;
    auto& http = *http_ptr;
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        telemetry::info("shutting down", {{"signal", sig}});
        http.shutdown([&runtime] { runtime.stop(); });
    });
    telemetry::info("limits listening", {{"address", listen->host}, {"port", http.port()}});
    runtime.run();
    telemetry::info("stopped");
    return 0;
}

}  // namespace plexus::limits

namespace plexus::limits {

void read_settings(core::SettingsReader& r, Settings& s) {
    r.field("listen", s.listen);
    int threads = static_cast<int>(s.threads);
    if (r.field("threads", threads, 1, 64)) s.threads = static_cast<std::size_t>(threads);
    std::int64_t max_keys = static_cast<std::int64_t>(s.max_keys);
    if (r.field("max_keys", max_keys)) {
        if (max_keys < 1) r.fail("max_keys", "must be at least 1");
        s.max_keys = static_cast<std::size_t>(max_keys);
    }
}

}  // namespace plexus::limits
