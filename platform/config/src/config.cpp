#include "plexus/config/config.hpp"

#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "plexus/auth/verifier.hpp"
#include "plexus/core/clock.hpp"
#include "plexus/core/files.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/core/yaml_json.hpp"
#include "plexus/discovery/daemon_presence.hpp"
#include "plexus/etcd/store_settings.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/net/server.hpp"
#include "plexus/serving/probes.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::config {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

json::object read_document(const fs::path& file) {
    std::string why;
    auto text = core::read_text_file(file.string(), &why);
    if (!text) throw core::SettingsError(why);
    auto doc = core::yaml_to_json(*text, file.string());
    if (doc.is_null()) return {};
    if (!doc.is_object()) throw core::SettingsError(file.string() + ":1: the document must be a map of keys");
    return std::move(doc.get_object());
}

bool is_yaml(const fs::path& p) { return p.extension() == ".yaml" || p.extension() == ".yml"; }

}  // namespace

std::size_t seed(ConfigService& service, const std::string& dir) {
    std::vector<std::pair<DocKey, fs::path>> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const auto& p = entry.path();
        if (entry.is_regular_file() && is_yaml(p)) {
            files.push_back({{p.stem().string(), ""}, p});
        } else if (entry.is_directory()) {
            for (const auto& sub : fs::directory_iterator(p))
                if (sub.is_regular_file() && is_yaml(sub.path()))
                    files.push_back({{p.filename().string(), sub.path().stem().string()}, sub.path()});
        }
    }
    std::sort(files.begin(), files.end());
    Caller seeder{"seed", "", true};
    std::size_t written = 0;
    for (const auto& [key, file] : files) {
        Edit edit;
        edit.content = read_document(file);
        edit.message = "seeded from " + file.filename().string();
        edit.expected = 0;  // only where there is nothing yet
        try {
            service.write(seeder, key, std::move(edit));
            ++written;
        } catch (const net::HttpError& e) {
            if (e.status() == 409) continue;  // another server seeded it first
            throw std::runtime_error(file.string() + ": " + e.what());
        }
    }
    return written;
}

void read_settings(core::SettingsReader& r, Settings& s) {
    r.field("listen", s.listen);
    etcd::read_store_settings(r, s.store, s.etcd, s.etcd_prefix);
    r.field("data_dir", s.data_dir);
    r.field("registry", s.registry);
    r.field("key_file", s.key_file);
    r.field("generate_key", s.generate_key);
    r.field("seed", s.seed_dir);
    r.field("issuer", s.issuer);
    r.field("jwks_uri", s.jwks_uri);
    r.field("audience", s.audience);
    r.field("revocations_uri", s.revocations_uri);
    r.field("introspection_uri", s.introspection_uri);
    r.field("client_credentials", s.credentials_file);
    r.field("anonymous", s.anonymous);
    r.field("max_wait", s.max_wait);
    int threads = static_cast<int>(s.threads);
    if (r.field("threads", threads, 1, 64)) s.threads = static_cast<std::size_t>(threads);
}

int run(const Settings& settings) {
    auto listen = net::parse_listen_address(settings.listen);
    if (!listen) {
        telemetry::error("--listen must be host:port", {{"listen", settings.listen}});
        return 2;
    }
    std::string why;
    auto cluster = etcd::cluster_of(settings.store, settings.etcd, settings.etcd_prefix, why);
    if (!why.empty()) {
        telemetry::error(why);
        return 2;
    }
    if (!cluster && settings.data_dir.empty()) {
        telemetry::error("--data-dir is required");
        return 2;
    }
    if (settings.anonymous && listen->host != "127.0.0.1" && listen->host != "::1" &&
        listen->host != "localhost") {
        telemetry::error("--anonymous is for development on a loopback address only",
                         {{"listen", settings.listen}});
        return 2;
    }
    if (!settings.anonymous && (settings.issuer.empty() || settings.jwks_uri.empty())) {
        telemetry::error(
            "callers are checked against an identity provider: set --issuer and --jwks-uri "
            "(or --anonymous for development on loopback)");
        return 2;
    }
    std::optional<discovery::DaemonPresence> presence;
    SecretBox secrets;
    try {
        presence.emplace(settings.registry, "config");
        std::string why;
        std::optional<SecretBox> box;
        if (!settings.key_file.empty()) {
            if (settings.generate_key) {
                fs::create_directories(fs::path(settings.key_file).parent_path());
                SecretBox::create_key_file(settings.key_file);
            }
            box = SecretBox::from_file(settings.key_file, why);
        } else if (const char* env = std::getenv("PLEXUS_CONFIG_KEY"); env && *env) {
            box = SecretBox::from_text(env, why);
            if (!box) why = "PLEXUS_CONFIG_KEY: " + why;
        }
        if (!why.empty()) {
            telemetry::error("cannot load the secrets key", {{"error", why}});
            return 2;
        }
        if (box) secrets = std::move(*box);
    } catch (const std::exception& e) {
        telemetry::error("cannot start the config server", {{"error", e.what()}});
        return 2;
    }

    std::unique_ptr<ConfigService> service;
    try {
        std::unique_ptr<Store> store;
        if (cluster) {
            store = open_etcd_store(*cluster, settings.etcd_prefix);
        } else {
            fs::create_directories(settings.data_dir);
            auto sqlite = open_sqlite_store(settings.data_dir + "/config.db");
            if (!sqlite) throw std::runtime_error(sqlite.error().message());
            store = std::move(*sqlite);
        }
        service = std::make_unique<ConfigService>(std::move(store), std::move(secrets));
        if (!settings.seed_dir.empty() && service->revision() == 0) {
            auto n = seed(*service, settings.seed_dir);
            telemetry::info("configuration seeded",
                            {{"dir", settings.seed_dir}, {"documents", static_cast<std::int64_t>(n)}});
        }
    } catch (const std::exception& e) {
        telemetry::error("cannot start the config server", {{"error", e.what()}});
        return 1;
    }

    auto& metrics = telemetry::default_registry();
    std::shared_ptr<auth::Verifier> verifier;
    if (!settings.anonymous) {
        auth::ProviderSettings provider{.issuer = settings.issuer,
                                        .jwks_uri = settings.jwks_uri,
                                        .audience = settings.audience,
                                        .revocations_uri = settings.revocations_uri,
                                        .introspection_uri = settings.introspection_uri,
                                        .credentials_file = settings.credentials_file};
        verifier = std::make_shared<auth::Verifier>(provider, 10'000, core::Clock::real());
    }
    Api api(*service, verifier, metrics, settings.max_wait);
    net::Runtime runtime(settings.threads);
    if (verifier) verifier->watch(runtime.executor(0));
    net::Router router;
    api.add_routes(router);
    serving::add_probe_routes(router, metrics);
    auto http_ptr = serving::start_listener(runtime, *listen, router, settings.listen);
    if (!http_ptr) return 1;
    auto& http = *http_ptr;
    presence->start(runtime.executor(0), listen->host, http.port());
    runtime.on_signals({SIGTERM, SIGINT}, [&](int sig) {
        telemetry::info("shutting down", {{"signal", sig}});
        api.stop_watches();
        presence->leave_then(runtime.executor(0), [&] { http.shutdown([&runtime] { runtime.stop(); }); });
    });
    telemetry::info("config server listening", {{"address", listen->host},
                                                {"port", http.port()},
                                                {"store", settings.store},
                                                {"revision", service->revision()},
                                                {"secrets", service->secrets().has_key()}});
    runtime.run();
    return 0;
}

}  // namespace plexus::config
