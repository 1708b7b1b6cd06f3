#include "layered_settings.hpp"

#include <cstdio>
#include <thread>
#include <variant>

#include "plexus/net/blocking.hpp"
#include "plexus/net/runtime.hpp"

std::optional<boost::json::object> fetch_settings(const SettingsSources& from, const std::string& app,
                                                  std::string& why,
                                                  const std::optional<boost::json::object>& schema) {
    try {
        plexus::settings::ConfigClient client(plexus::settings::config_server(
            from.server, app, from.profiles, app + "-" + std::to_string(::getpid()), from.token_uri,
            from.credentials));
        plexus::net::Runtime runtime(1);
        std::thread io([&] { runtime.run(); });
        auto r = plexus::net::run_blocking(runtime.executor(0), client.fetch(), std::chrono::seconds(10));
        if (r && schema && std::holds_alternative<plexus::settings::Fetched>(*r)) {
            auto published = plexus::net::run_blocking(runtime.executor(0), client.publish_schema(*schema),
                                                       std::chrono::seconds(10));
            if (!published) {
                std::fprintf(stderr, "plexus: %s: the config server did not take the settings schema\n",
                             app.c_str());
            } else if (auto* f = std::get_if<plexus::settings::Failure>(&*published)) {
                std::fprintf(stderr, "plexus: %s: the config server did not take the settings schema: %s\n",
                             app.c_str(), f->why.c_str());
            } else {
                for (const auto& problem : std::get<std::vector<std::string>>(*published))
                    std::fprintf(stderr,
                                 "plexus: %s: the current configuration does not fit the schema: %s\n",
                                 app.c_str(), problem.c_str());
            }
        }
        runtime.stop();
        io.join();
        if (!r) {
            why = "the config server " + from.server + " did not answer";
            return std::nullopt;
        }
        if (auto* f = std::get_if<plexus::settings::Failure>(&*r)) {
            why = f->why;
            return std::nullopt;
        }
        return std::get<plexus::settings::Fetched>(*r).config;
    } catch (const std::invalid_argument& e) {
        why = e.what();
        return std::nullopt;
    }
}
