// The single `plexus` binary: `plexus <daemon>` runs one daemon; `plexus up/down/status`
// drive a whole deployment.

#include <CLI/CLI.hpp>

#include "plexus/registry/registry.hpp"
#include "plexus/telemetry/log.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Plexus: a microservices platform"};
    app.require_subcommand(1);

    plexus::registry::Settings registry;
    std::string registry_log_level = "info";
    auto* reg = app.add_subcommand("registry", "run the service registry");
    reg->add_option("--listen", registry.listen, "address to listen on (host:port)");
    reg->add_option("--data-dir", registry.data_dir, "directory for the catalog database (empty: in memory)");
    reg->add_option("--log-level", registry_log_level, "debug, info, warn or error");

    CLI11_PARSE(app, argc, argv);

    if (*reg) {
        auto level = plexus::telemetry::parse_level(registry_log_level);
        if (!level) {
            std::fprintf(stderr, "plexus registry: --log-level must be debug, info, warn or error\n");
            return 2;
        }
        plexus::telemetry::init_logging("registry", "registry", *level);
        return plexus::registry::run(registry);
    }
    return 0;
}
