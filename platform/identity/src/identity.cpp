#include "plexus/identity/identity.hpp"

#include <unistd.h>

#include <csignal>

#include "plexus/discovery/daemon_presence.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/serving/probes.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"
#include "server_impl.hpp"

namespace plexus::identity {

std::optional<Provisioned> parse_provisioned(std::string_view spec, std::string& why) {
    auto eq = spec.find('=');
    if (eq == std::string_view::npos || eq + 1 == spec.size()) {
        why = "'" + std::string(spec) + "' is not NAME=FILE or NAME:SCOPE,SCOPE=FILE";
        return std::nullopt;
    }
    auto head = spec.substr(0, eq);
    Provisioned p;
    p.file = std::string(spec.substr(eq + 1));
    auto colon = head.find(':');
    p.name = std::string(head.substr(0, colon));
    if (!valid_identifier(p.name)) {
        why = "'" + p.name + "' is not a client name (letters, digits, '-', '_', '.')";
        return std::nullopt;
    }
    if (colon != std::string_view::npos) {
        auto scopes = head.substr(colon + 1);
        for (std::size_t start = 0; start <= scopes.size();) {
            auto comma = std::min(scopes.find(',', start), scopes.size());
            auto scope = std::string(scopes.substr(start, comma - start));
            if (!valid_scope(scope)) {
                why = "'" + scope + "' is not a scope";
                return std::nullopt;
            }
            p.scopes.push_back(std::move(scope));
            start = comma + 1;
        }
    }
    return p;
}

Server::Server(Settings settings, telemetry::Registry& metrics, core::Clock& clock)
    : impl_(std::make_shared<Impl>(std::move(settings), metrics, clock)) {}

Server::~Server() { stop_watches(); }

void Server::stop_watches() {
    impl_->stopping.store(true);
    impl_->revocations_changed.notify_all();
}

const std::string& Server::issuer() const noexcept { return impl_->issuer; }
security::KeySet Server::public_keys() const { return impl_->snapshot_keys()->published; }
const std::string& Server::admin_credentials_file() const noexcept { return impl_->admin_file; }
std::pair<ClientInfo, std::string> Server::create_client(ClientInfo info) {
    return impl_->create_client(std::move(info));
}
std::pair<ApiKeyInfo, std::string> Server::create_api_key(ApiKeyInfo info) {
    return impl_->create_api_key(std::move(info));
}
std::pair<UserInfo, std::string> Server::create_user(UserInfo info, std::string password) {
    return impl_->create_user(std::move(info), std::move(password));
}
std::string Server::rotate_keys() { return impl_->rotate(); }

void Server::add_routes(net::Router& router) {
    auto impl = impl_;
    auto discovery = [impl](Request&, Response& res) -> Task<void> {
        res.json(200, impl->discovery_json);
        co_return;
    };
    router.add("GET", "/.well-known/openid-configuration", discovery);
    router.add("GET", "/.well-known/oauth-authorization-server", discovery);
    router.add("GET", "/jwks", [impl](Request&, Response& res) -> Task<void> {
        res.json(200, impl->snapshot_keys()->published.to_json());
        res.headers.set("Cache-Control", "max-age=60");
        co_return;
    });
    auto authorize = [impl](Request& req, Response& res) { return impl->authorize(req, res); };
    router.add("GET", "/authorize", authorize);
    router.add("POST", "/authorize", authorize, 16 * 1024);
    router.add(
        "POST", "/token", [impl](Request& req, Response& res) { return impl->token(req, res); }, 16 * 1024);
    auto userinfo = [impl](Request& req, Response& res) { return impl->userinfo(req, res); };
    router.add("GET", "/userinfo", userinfo);
    router.add("POST", "/userinfo", userinfo, 16 * 1024);
    router.add(
        "POST", "/introspect", [impl](Request& req, Response& res) { return impl->introspect(req, res); },
        16 * 1024);
    router.add(
        "POST", "/revoke", [impl](Request& req, Response& res) { return impl->revoke(req, res); }, 16 * 1024);
    router.add("GET", "/revocations",
               [impl](Request& req, Response& res) { return impl->revocations(req, res); });
    impl->add_admin_routes(router, impl);
}

void read_settings(core::SettingsReader& r, Settings& s) {
    r.field("listen", s.listen);
    r.field("data_dir", s.data_dir);
    r.field("issuer", s.issuer);
    r.field("audience", s.audience);
    r.field("registry", s.registry);
    auto seconds = [&](std::string_view key, std::chrono::seconds& out, std::chrono::seconds lo,
                       std::chrono::seconds hi) {
        std::chrono::milliseconds d{out};
        if (!r.field(key, d)) return;
        if (d < lo || d > hi)
            r.fail(key, "must be a duration from " + std::to_string(lo.count()) + "s to " +
                            std::to_string(hi.count()) + "s");
        out = std::chrono::duration_cast<std::chrono::seconds>(d);
    };
    seconds("access_ttl", s.access_ttl, std::chrono::seconds(1), std::chrono::hours(24));
    seconds("refresh_ttl", s.refresh_ttl, std::chrono::minutes(1), std::chrono::hours(24 * 365));
    seconds("code_ttl", s.code_ttl, std::chrono::seconds(5), std::chrono::minutes(10));
    std::string algorithm;
    if (r.field("algorithm", algorithm)) {
        auto a = security::parse_algorithm(algorithm);
        if (!a) r.fail("algorithm", "must be ES256, RS256 or EdDSA");
        s.algorithm = *a;
    }
    int threads = static_cast<int>(s.threads);
    if (r.field("threads", threads, 1, 64)) s.threads = static_cast<std::size_t>(threads);
    r.field("trusted_proxies", s.trusted_proxies);
    bool listed = false;
    r.each("provision", [&](core::SettingsReader& p) {
        if (!listed) s.provision.clear(), listed = true;  // the list replaces, as every layer's lists do
        Provisioned one;
        p.field("name", one.name, core::Need::required);
        p.field("scopes", one.scopes);
        p.field("file", one.file, core::Need::required);
        s.provision.push_back(std::move(one));
    });
}

int run(const Settings& settings) {
    auto listen = net::parse_listen_address(settings.listen);
    if (!listen) {
        telemetry::error("--listen must be host:port", {{"listen", settings.listen}});
        return 2;
    }
    if (settings.data_dir.empty()) {
        telemetry::error("--data-dir is required");
        return 2;
    }
    std::optional<discovery::DaemonPresence> presence;
    try {
        presence.emplace(settings.registry, "identity");
    } catch (const std::invalid_argument& e) {
        telemetry::error(e.what());
        return 2;
    }
    auto& metrics = telemetry::default_registry();
    std::unique_ptr<Server> server;
    try {
        server = std::make_unique<Server>(settings, metrics);
    } catch (const std::exception& e) {
        telemetry::error("cannot start the identity server", {{"error", e.what()}});
        return 1;
    }
    net::Runtime runtime(settings.threads);
    net::Router router;
    server->add_routes(router);
    serving::add_probe_routes(router, metrics);
    auto http_ptr = serving::start_listener(runtime, *listen, router, settings.listen);
    if (!http_ptr) return 1;
    auto& http = *http_ptr;
    presence->start(runtime.executor(0), listen->host, http.port());
    // SIGTERM: leave discovery first, then drain.
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        telemetry::info("shutting down", {{"signal", sig}});
        server->stop_watches();  // long polls answer now, so the drain does not wait for them
        presence->leave_then(runtime.executor(0), [&] { http.shutdown([&runtime] { runtime.stop(); }); });
    });
    telemetry::info("identity listening", {{"address", listen->host},
                                           {"port", http.port()},
                                           {"issuer", server->issuer()},
                                           {"admin_credentials", server->admin_credentials_file()}});
    runtime.run();
    return 0;
}

}  // namespace plexus::identity
