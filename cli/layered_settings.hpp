#pragma once
// One way every daemon takes its settings, lowest first: the defaults, `--config FILE` (YAML),
// its document at the config server when `--config-server` is given (application
// `plexus-<daemon>`), then environment variables and flags. Each layer is read by the daemon's
// own loader (the same code for every layer), so an unknown key or a bad value stops the start
// naming the file, line and key, or the config server's version and key. The same loader,
// describing instead of reading, gives the schema the daemon publishes for `plexus-<daemon>`, so
// the config server refuses a change the daemon could not load.
//
//     plexus::limits::Settings limits;
//     LayeredSettings<plexus::limits::Settings> layered(*lim, "limits", limits,
//     plexus::limits::read_settings);
//     ... CLI11_PARSE ...
//     if (auto code = layered.load()) return *code;   // 2 after printing the problem

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "plexus/core/settings.hpp"
#include "plexus/settings/config_client.hpp"

/// Where a daemon's settings come from besides its flags (see the file comment).
struct SettingsSources {
    std::string file;    ///< --config
    std::string server;  ///< --config-server
    std::string profiles = "default";
    std::string token_uri;    ///< the identity's token endpoint, for a token to read the server with
    std::string credentials;  ///< the client (JSON client_id, client_secret) that token is for
};

/// The config server's document of `app` now (blocking, bounded): its JSON, or nullopt with `why`.
/// With `schema`, also publishes it as `app`'s schema, so the server refuses changes this program
/// could not load; what the server says is wrong with the current document is printed (the start
/// goes on: the document is read and checked next anyway).
std::optional<boost::json::object> fetch_settings(
    const SettingsSources& from, const std::string& app, std::string& why,
    const std::optional<boost::json::object>& schema = std::nullopt);

template <class T>
class LayeredSettings {
  public:
    using Loader = std::function<void(plexus::core::SettingsReader&, T&)>;

    /// Adds --config, and --config-server, --profiles, --token-uri and --client-credentials unless
    /// `bound` is given: then only --config is added (into `bound->file`), and the caller fills the
    /// rest of `*bound` from its own flags before load(); left with an empty `server`, there is no
    /// config server layer (the config server's own daemon reads only its file).
    LayeredSettings(CLI::App& cmd, std::string daemon, T& settings, Loader loader,
                    SettingsSources* bound = nullptr)
        : cmd_(cmd),
          daemon_(std::move(daemon)),
          settings_(settings),
          loader_(std::move(loader)),
          sources_(bound ? bound : &own_) {
        cmd.add_option("--config", sources_->file, "YAML settings file (flags override it)");
        if (!bound) {
            cmd.add_option(
                "--config-server", sources_->server,
                "the config server, http://host:port: application plexus-" + daemon_ + " over --config");
            cmd.add_option("--profiles", sources_->profiles, "config server profiles (default: default)");
            cmd.add_option("--token-uri", sources_->token_uri,
                           "the identity's token endpoint, for a token to read the config server with");
            cmd.add_option("--client-credentials", sources_->credentials,
                           "JSON file with this daemon's client_id and client_secret");
        }
    }

    /// Reads the layers into the settings after the command line was parsed; nullopt when they
    /// loaded, else the exit code (2) after printing why.
    std::optional<int> load() {
        try {
            if (!sources_->file.empty()) {
                auto r = plexus::core::SettingsReader::from_file(sources_->file);
                loader_(r, settings_);
                r.done();
            }
            if (!sources_->server.empty()) {
                std::string why;
                // The schema of exactly what the loader reads, published with the read.
                auto describing = plexus::core::SettingsReader::describer();
                T defaults{};
                loader_(describing, defaults);
                auto doc = fetch_settings(*sources_, "plexus-" + daemon_, why, describing.schema());
                if (!doc) {
                    std::fprintf(stderr, "plexus %s: %s\n", daemon_.c_str(), why.c_str());
                    return 2;
                }
                auto r = plexus::core::SettingsReader::from_json(
                    *doc,
                    "config server " + sources_->server + " plexus-" + daemon_ + "/" + sources_->profiles);
                loader_(r, settings_);
                r.done();
            }
        } catch (const plexus::core::SettingsError& e) {
            std::fprintf(stderr, "plexus %s: %s\n", daemon_.c_str(), e.what());
            return 2;
        }
        // Flags and environment last: each given one is applied again over what the files set.
        for (auto* opt : cmd_.get_options())
            if (opt->count() > 0 && opt->get_name() != "--config") opt->run_callback();
        return std::nullopt;
    }

  private:
    CLI::App& cmd_;
    std::string daemon_;
    T& settings_;
    Loader loader_;
    SettingsSources own_;
    SettingsSources* sources_;
};
