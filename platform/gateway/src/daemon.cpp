#include "plexus/gateway/daemon.hpp"

#include <unistd.h>

#include <csignal>
#include <tuple>

#include "plexus/core/settings.hpp"
#include "plexus/discovery/discovery.hpp"
#include "plexus/gateway/gateway.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/net/tls.hpp"
#include "plexus/settings/config_client.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::gateway {

namespace {

// Where the gateway's routes document lives at the config server, and how it calls it.
settings::ConfigServer config_server_of(const DaemonSettings& s) {
    return settings::config_server(s.config_server, "gateway", s.profiles,
                                   "gateway-" + std::to_string(::getpid()), s.token_uri,
                                   s.auth.credentials_file);
}

void log_certificate(std::string_view msg, const net::ServerTls& tls, const net::CertificateInfo& c) {
    telemetry::info(msg, {{"cert", tls.cert_file()},
                          {"key", tls.key_file()},
                          {"subject", c.subject},
                          {"issuer", c.issuer},
                          {"not_after", c.not_after},
                          {"sha256", c.sha256}});
    if (c.expires <= std::chrono::system_clock::now())
        telemetry::warn("the TLS certificate has expired; clients will refuse it",
                        {{"cert", tls.cert_file()}, {"not_after", c.not_after}});
}

void log_reload(const net::ServerTls& tls, const net::TlsReload& r) {
    if (r.ok) {
        log_certificate("tls certificate loaded", tls, r.certificate);
        return;
    }
    telemetry::error("tls certificate rejected; the previous one keeps serving",
                     {{"cert", tls.cert_file()},
                      {"key", tls.key_file()},
                      {"error", r.error},
                      {"serving_sha256", r.certificate.sha256}});
}

// Reloads the certificate when its files change; ends when the runtime stops.
net::Task<void> watch_tls(std::shared_ptr<net::ServerTls> tls, std::chrono::milliseconds every) {
    while (true) {
        co_await net::sleep_for(every);
        auto r = co_await net::offload([tls] { return tls->reload_if_changed(); });
        if (r) log_reload(*tls, *r);
    }
}

net::Task<void> reload_tls(std::shared_ptr<net::ServerTls> tls) {
    auto r = co_await net::offload([tls] { return tls->reload(); });
    log_reload(*tls, r);
}

}  // namespace

void read_settings(core::SettingsReader& r, DaemonSettings& s) {
    r.field("listen", s.listen);
    r.field("admin_listen", s.admin_listen);
    r.field("registry", s.registry);
    r.field("routes", s.routes_file);
    r.section("auth", [&](core::SettingsReader& a) {
        a.field("issuer", s.auth.issuer);
        a.field("jwks_uri", s.auth.jwks_uri);
        a.field("audience", s.auth.audience);
        a.field("revocations_uri", s.auth.revocations_uri);
        a.field("introspection_uri", s.auth.introspection_uri);
        a.field("credentials_file", s.auth.credentials_file);
        int most = static_cast<int>(s.auth.max_introspections);
        if (a.field("max_introspections", most, 1, 100'000))
            s.auth.max_introspections = static_cast<std::size_t>(most);
    });
    r.field("limits_uri", s.limits_uri);
    r.field("trust_forwarded_for", s.trust_forwarded_for);
    int threads = static_cast<int>(s.threads);
    if (r.field("threads", threads, 0, 256)) s.threads = static_cast<std::size_t>(threads);
    r.section("tls", [&](core::SettingsReader& t) {
        t.field("cert", s.tls_cert);
        t.field("key", s.tls_key);
        t.field("watch_interval", s.tls_watch_interval);
    });
    r.field("config_server", s.config_server);
    r.field("profiles", s.profiles);
    r.field("token_uri", s.token_uri);
}

int run(const DaemonSettings& s) {
    auto listen = net::parse_listen_address(s.listen);
    if (!listen) {
        telemetry::error("--listen must be host:port", {{"listen", s.listen}});
        return 2;
    }
    auto admin_listen = net::parse_listen_address(s.admin_listen);
    if (!admin_listen) {
        telemetry::error("--admin-listen must be host:port", {{"admin_listen", s.admin_listen}});
        return 2;
    }
    std::optional<net::Endpoint> registry;
    if (!s.registry.empty()) {
        registry = net::parse_endpoint(s.registry);
        if (!registry) {
            telemetry::error("--registry must be http://host:port", {{"registry", s.registry}});
            return 2;
        }
    }
    std::shared_ptr<net::ServerTls> tls;
    if (s.tls_cert.empty() != s.tls_key.empty()) {
        telemetry::error("--tls-cert and --tls-key go together",
                         {{"tls_cert", s.tls_cert}, {"tls_key", s.tls_key}});
        std::fprintf(stderr, "plexus gateway: --tls-cert and --tls-key go together (got only %s)\n",
                     s.tls_cert.empty() ? "--tls-key" : "--tls-cert");
        return 2;
    }
    if (!s.tls_cert.empty()) {
        try {
            tls = std::make_shared<net::ServerTls>(s.tls_cert, s.tls_key);
        } catch (const net::TlsError& e) {
            telemetry::error("invalid TLS certificate or key", {{"error", e.what()}});
            std::fprintf(stderr, "plexus gateway: %s\n", e.what());
            return 2;
        }
        log_certificate("tls certificate loaded", *tls, tls->certificate());
    }
    net::Runtime runtime(s.threads);
    std::unique_ptr<discovery::Discovery> disco;
    if (registry)
        disco =
            std::make_unique<discovery::Discovery>(discovery::RegistryClient(*registry), runtime.executor(0));

    GatewaySettings gs;
    gs.routes_file = s.routes_file;
    gs.trust_forwarded_for = s.trust_forwarded_for;
    gs.auth = s.auth;
    gs.limits_uri = s.limits_uri;
    gs.background = runtime.executor(0);
    std::unique_ptr<Gateway> gw;
    try {
        gw = std::make_unique<Gateway>(gs, disco.get());
    } catch (const core::SettingsError& e) {
        telemetry::error("invalid routes", {{"error", e.what()}});
        std::fprintf(stderr, "plexus gateway: %s\n", e.what());
        return 2;
    } catch (const std::invalid_argument& e) {
        telemetry::error("invalid routes", {{"error", e.what()}});
        std::fprintf(stderr, "plexus gateway: %s\n", e.what());
        return 2;
    }

    net::ServerSettings ss;
    ss.address = listen->host;
    ss.port = listen->port;
    ss.defer_body = true;  // request-head filters run before the body is read
    ss.tls = tls;
    net::Server server(runtime, ss, gw->handler());
    net::ServerSettings admin_ss;
    admin_ss.address = admin_listen->host;
    admin_ss.port = admin_listen->port;
    net::Server admin(runtime, admin_ss, gw->admin_handler());
    for (auto [srv, flag, address] :
         {std::tuple{&server, "listen", &s.listen}, std::tuple{&admin, "admin-listen", &s.admin_listen}}) {
        try {
            srv->start();
        } catch (const std::exception& e) {
            telemetry::error("cannot listen", {{flag, *address}, {"error", e.what()}});
            std::fprintf(stderr, "plexus gateway: cannot listen on %s (--%s): %s\n", address->c_str(), flag,
                         e.what());
            return 1;
        }
    }
    gw->start_watching_file(runtime.executor(0));
    auto stop = std::make_shared<std::atomic<bool>>(false);
    if (!s.config_server.empty()) {
        // Before listening would be better for the first requests, but the fetch needs the
        // runtime: requests until it lands see the routes file's routes.
        std::shared_ptr<settings::ConfigClient> config;
        try {
            config = std::make_shared<settings::ConfigClient>(config_server_of(s));
        } catch (const std::invalid_argument& e) {
            telemetry::error("invalid config server", {{"error", e.what()}});
            std::fprintf(stderr, "plexus gateway: --config-server: %s\n", e.what());
            return 2;
        }
        net::spawn(
            runtime.executor(0),
            [](std::shared_ptr<settings::ConfigClient> config, Gateway* g,
               std::shared_ptr<std::atomic<bool>> stop, net::Executor ex) -> net::Task<void> {
                auto why = co_await settings::ConfigClient::start(
                    config,
                    [config, g](const settings::Fetched& f, bool) {
                        auto status = g->set_overlay(f.config, config->source(f.version));
                        return status.ok ? std::string() : status.error;
                    },
                    std::nullopt, stop, ex);
                if (!why.empty())
                    telemetry::error("the config server's routes are not in force; the routes file's serve",
                                     {{"error", why}});
            }(config, gw.get(), stop, runtime.executor(0)),
            "gateway config");
    }
    if (tls) net::spawn(runtime.executor(0), watch_tls(tls, s.tls_watch_interval), "gateway tls watch");
    runtime.on_signals({SIGTERM, SIGINT, SIGHUP}, [&](int sig) {
        if (sig == SIGHUP) {
            net::spawn(
                runtime.executor(0),
                [](Gateway* g) -> net::Task<void> { co_await g->reload_async(); }(gw.get()),
                "gateway reload");
            if (tls) net::spawn(runtime.executor(0), reload_tls(tls), "gateway tls reload");
            return;
        }
        telemetry::info("shutting down", {{"signal", sig}});
        stop->store(true);
        if (disco) disco->stop();
        // The admin listener answers until the public one has drained.
        server.shutdown([&] { admin.shutdown([&runtime] { runtime.stop(); }); });
    });
    telemetry::info("gateway listening", {{"address", ss.address},
                                          {"port", server.port()},
                                          {"scheme", tls ? "https" : "http"},
                                          {"admin_address", admin_ss.address},
                                          {"admin_port", admin.port()},
                                          {"routes", static_cast<std::int64_t>(gw->routes()->size())}});
    runtime.run();
    return 0;
}

}  // namespace plexus::gateway
