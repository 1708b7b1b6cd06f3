// The single `plexus` binary: `plexus <daemon>` runs one daemon; `plexus up/down/status`
// drive a whole deployment from a manifest.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "config_commands.hpp"
#include "identity_commands.hpp"
#include "layered_settings.hpp"
#include "plexus/core/duration.hpp"
#include "plexus/gateway/daemon.hpp"
#include "plexus/identity/identity.hpp"
#include "plexus/limits/limits.hpp"
#include "plexus/registry/registry.hpp"
#include "plexus/supervisor/up.hpp"
#include "plexus/telemetry/log.hpp"

namespace {

// The directory of this executable; the shop binaries are found relative to it.
std::filesystem::path self_dir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::filesystem::current_path() : p.parent_path();
}

bool init_logs(const std::string& service, const std::string& level_text) {
    auto level = plexus::telemetry::parse_level(level_text);
    if (!level) {
        std::fprintf(stderr, "plexus %s: --log-level must be debug, info, warn or error\n", service.c_str());
        return false;
    }
    plexus::telemetry::init_logging(service, service + "-" + std::to_string(::getpid()), *level);
    return true;
}

// The default manifest: deploy/plexus.yaml next to the source tree the binary was built from,
// or in the current directory.
std::string default_manifest() {
    auto candidate = self_dir() / "../../../deploy/plexus.yaml";
    if (std::filesystem::exists("deploy/plexus.yaml")) return "deploy/plexus.yaml";
    if (std::filesystem::exists(candidate)) return std::filesystem::weakly_canonical(candidate).string();
    return "deploy/plexus.yaml";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Plexus: a microservices platform in one binary"};
    app.require_subcommand(1);
    std::string log_level = "info";

    plexus::registry::Settings registry;
    auto* reg = app.add_subcommand("registry", "run the service registry daemon");
    reg->add_option("--listen", registry.listen, "address to listen on (host:port)");
    reg->add_option("--data-dir", registry.data_dir,
                    "directory for the catalog database (empty: memory only)");
    reg->add_option("--store", registry.store, "where the catalog is kept: sqlite (under --data-dir) or etcd")
        ->check(CLI::IsMember({"sqlite", "etcd"}));
    reg->add_option("--etcd", registry.etcd, "with --store etcd: the cluster's client URLs, URL[,URL...]");
    reg->add_option("--etcd-prefix", registry.etcd_prefix,
                    "with --store etcd: the key prefix (default /plexus/registry/); registries sharing it "
                    "serve one catalog");
    reg->add_option("--threads", registry.threads, "io threads (0 = one per core)")
        ->check(CLI::Range(std::size_t{0}, std::size_t{256}));
    reg->add_option("--log-level", log_level, "debug, info, warn or error");
    LayeredSettings<plexus::registry::Settings> registry_layers(*reg, "registry", registry,
                                                                plexus::registry::read_settings);

    plexus::identity::Settings identity;
    std::string identity_ttl;
    auto* idp = app.add_subcommand("identity", "run the identity server (OAuth 2.0 authorization server)");
    idp->add_option("--listen", identity.listen, "address to listen on (host:port)");
    idp->add_option("--data-dir", identity.data_dir, "directory for the identity database");
    idp->add_option(
        "--issuer", identity.issuer,
        "issuer URL as clients reach it, e.g. http://127.0.0.1:8080/auth (default http://<listen>)");
    idp->add_option("--audience", identity.audience, "aud of access tokens");
    idp->add_option("--registry", identity.registry, "registry URL to register with, http://host:port");
    idp->add_option("--access-ttl", identity_ttl, "access token lifetime (e.g. 10m; default 10m)");
    std::string identity_alg;
    idp->add_option("--algorithm", identity_alg, "algorithm of new signing keys: ES256, RS256 or EdDSA");
    std::vector<std::string> identity_provision;
    idp->add_option(
        "--provision", identity_provision,
        "keep a workload client: NAME[:SCOPE,SCOPE]=FILE (its credentials written to FILE, 0600)");
    idp->add_option("--log-level", log_level, "debug, info, warn or error");
    idp->require_subcommand(0, 1);
    LayeredSettings<plexus::identity::Settings> identity_layers(*idp, "identity", identity,
                                                                plexus::identity::read_settings);

    plexus::limits::Settings limits;
    auto* lim = app.add_subcommand("limits", "run the limit service (rate limits shared by gateways)");
    lim->add_option("--listen", limits.listen, "address to listen on (host:port)");
    lim->add_option("--threads", limits.threads, "io threads")
        ->check(CLI::Range(std::size_t{1}, std::size_t{64}));
    lim->add_option("--max-keys", limits.max_keys, "buckets remembered per limit");
    lim->add_option("--log-level", log_level, "debug, info, warn or error");
    LayeredSettings<plexus::limits::Settings> limits_layers(*lim, "limits", limits,
                                                            plexus::limits::read_settings);

    plexus::gateway::DaemonSettings gateway;
    auto* gw = app.add_subcommand("gateway", "run the API gateway daemon");
    gw->add_option("--listen", gateway.listen, "address to listen on (host:port)");
    gw->add_option("--admin-listen", gateway.admin_listen,
                   "address of the admin endpoints: /metrics, /-/routes, /-/resilience (host:port)");
    gw->add_option("--registry", gateway.registry, "registry URL, http://host:port");
    gw->add_option("--routes", gateway.routes_file, "routes file (YAML)");
    gw->add_option("--issuer", gateway.auth.issuer, "issuer of the access tokens auth filters accept");
    gw->add_option("--jwks-uri", gateway.auth.jwks_uri,
                   "where that issuer's keys are, http://host:port/path");
    gw->add_option("--audience", gateway.auth.audience, "aud the access tokens must name");
    gw->add_option(
        "--revocations-uri", gateway.auth.revocations_uri,
        "the issuer's revocation watch, http://host:port/path (revoked tokens refused within a second)");
    gw->add_option("--introspection-uri", gateway.auth.introspection_uri,
                   "the issuer's introspection endpoint, http://host:port/path (opaque tokens, API keys)");
    gw->add_option("--limits-uri", gateway.limits_uri,
                   "the limit service, http://host:port (rate_limit filters with scope: global)");
    gw->add_option("--client-credentials", gateway.auth.credentials_file,
                   "JSON file with the gateway's own client_id and client_secret, for introspection");
    gw->add_option("--max-introspections", gateway.auth.max_introspections,
                   "introspections in flight at once; past it an uncached credential is a 503 (default 64)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
    gw->add_flag("--trust-forwarded-for", gateway.trust_forwarded_for,
                 "keep X-Forwarded-For sent by clients (only behind a trusted proxy)");
    gw->add_option("--threads", gateway.threads, "io threads (0 = one per core)");
    gw->add_option("--tls-cert", gateway.tls_cert,
                   "serve HTTPS with this PEM certificate chain (leaf first); reloaded when it changes");
    gw->add_option("--tls-key", gateway.tls_key, "the PEM private key of --tls-cert");
    gw->add_option(
        "--config-server", gateway.config_server,
        "the config server, http://host:port: application gateway's routes laid over --routes, live");
    gw->add_option("--profiles", gateway.profiles, "config server profiles (default: default)");
    gw->add_option("--token-uri", gateway.token_uri,
                   "the identity's token endpoint, http://host:port/path: a token for the config server");
    gw->add_option("--log-level", log_level, "debug, info, warn or error");
    SettingsSources gateway_sources;
    LayeredSettings<plexus::gateway::DaemonSettings> gateway_layers(
        *gw, "gateway", gateway, plexus::gateway::read_settings, &gateway_sources);

    plexus::supervisor::UpOptions up;
    up.manifest_path = default_manifest();
    auto* upc = app.add_subcommand("up", "start the platform and its services from a manifest");
    upc->add_option("-f,--file", up.manifest_path, "manifest (default deploy/plexus.yaml)");
    upc->add_option("--data-dir", up.data_dir, "where daemons and services keep their data and logs");
    upc->add_option("--gateway-port", up.gateway_port, "port of the gateway (0 = any free port)")
        ->check(CLI::Range(0, 65535));
    upc->add_option("--gateway-admin-port", up.gateway_admin_port,
                    "port of the gateway's admin endpoints on loopback (0 = any free port)")
        ->check(CLI::Range(0, 65535));
    upc->add_flag("--detach,-d", up.detach, "return once everything is healthy; stop later with plexus down");
    upc->add_flag("--tls", up.tls,
                  "serve the gateway over HTTPS with a development CA kept in <data-dir>/tls "
                  "(clients trust <data-dir>/tls/ca.pem)");

    std::string data_dir;
    std::string manifest = default_manifest();
    auto* st = app.add_subcommand("status", "show every instance of a running deployment");
    st->add_option("--data-dir", data_dir, "data directory of the deployment");
    st->add_option("-f,--file", manifest, "manifest whose data directory to use");
    auto* dn = app.add_subcommand("down", "stop a running deployment");
    dn->add_option("--data-dir", data_dir, "data directory of the deployment");
    dn->add_option("-f,--file", manifest, "manifest whose data directory to use");

    std::string scale_service;
    int scale_replicas = 0;
    auto* sc = app.add_subcommand("scale", "change the replica count of a service in a running deployment");
    sc->add_option("service", scale_service, "service name")->required();
    sc->add_option("replicas", scale_replicas, "replica count")->required()->check(CLI::Range(0, 64));
    sc->add_option("--data-dir", data_dir, "data directory of the deployment");
    sc->add_option("-f,--file", manifest, "manifest whose data directory to use");

    IdentityCommands identity_commands(app, *idp, manifest);
    auto* cfg = app.add_subcommand("config", "central configuration: the config server and its commands");
    ConfigCommands config_commands(*cfg, manifest, log_level);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help answers 0; any other mistake on the command line is a usage error: 2.
        return app.exit(e) == 0 ? 0 : 2;
    }

    if (*reg) {
        if (auto code = registry_layers.load()) return *code;
        if (!init_logs("registry", log_level)) return 2;
        return plexus::registry::run(registry);
    }
    if (auto code = identity_commands.run()) return *code;
    if (auto code = config_commands.run()) return *code;
    if (*idp) {
        if (auto code = identity_layers.load()) return *code;
        if (identity.data_dir.empty()) {
            std::fprintf(stderr, "plexus identity: --data-dir (or data_dir: in --config) is required\n");
            return 2;
        }
        if (!init_logs("identity", log_level)) return 2;
        // --access-ttl and --algorithm are checked by the settings' own loader.
        boost::json::object flags;
        if (!identity_ttl.empty()) flags["access_ttl"] = identity_ttl;
        if (!identity_alg.empty()) flags["algorithm"] = identity_alg;
        try {
            auto r = plexus::core::SettingsReader::from_json(flags,
                                                             "the command line (--access-ttl, --algorithm)");
            plexus::identity::read_settings(r, identity);
            r.done();
        } catch (const plexus::core::SettingsError& e) {
            std::fprintf(stderr, "plexus identity: %s\n", e.what());
            return 2;
        }
        for (const auto& spec : identity_provision) {
            std::string why;
            auto p = plexus::identity::parse_provisioned(spec, why);
            if (!p) {
                std::fprintf(stderr, "plexus identity: --provision: %s\n", why.c_str());
                return 2;
            }
            identity.provision.push_back(std::move(*p));
        }
        return plexus::identity::run(identity);
    }
    if (*lim) {
        if (auto code = limits_layers.load()) return *code;
        if (!init_logs("limits", log_level)) return 2;
        return plexus::limits::run(limits);
    }
    if (*gw) {
        gateway_sources.server = gateway.config_server;  // its settings too (application plexus-gateway)
        gateway_sources.profiles = gateway.profiles;
        gateway_sources.token_uri = gateway.token_uri;
        gateway_sources.credentials = gateway.auth.credentials_file;
        if (auto code = gateway_layers.load()) return *code;
        if (gateway.routes_file.empty() && gateway.config_server.empty()) {
            std::fprintf(
                stderr,
                "plexus gateway: give the routes: --routes FILE, routes: in --config, or --config-server\n");
            return 2;
        }
        if (!init_logs("gateway", log_level)) return 2;
        return plexus::gateway::run(gateway);
    }
    if (*upc) {
        auto self = self_dir();
        up.plexus_binary = (self / "plexus").string();
        up.bin_dir = std::filesystem::weakly_canonical(self / "../apps/shop").string();
        if (const char* bin = std::getenv("PLEXUS_BIN_DIR")) up.bin_dir = bin;
        return plexus::supervisor::up(up);
    }
    if (data_dir.empty()) data_dir = plexus::supervisor::default_data_dir(manifest);
    if (*st) return plexus::supervisor::status(data_dir, std::cout);
    if (*dn) return plexus::supervisor::down(data_dir, std::chrono::seconds(60));
    if (*sc) return plexus::supervisor::scale(data_dir, scale_service, scale_replicas);
    return 0;
}
