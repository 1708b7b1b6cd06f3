#pragma once
// `plexus config ...`: the config server daemon (`plexus config serve`) and the commands people
// use on it: get, set, edit, history, diff, rollback, canary, promote, abort, instances, list,
// labels, label, encrypt.

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

class ConfigCommands {
  public:
    /// Adds the subcommands to `config`. `manifest`: where the deployment's data directory comes
    /// from; `log_level`: the daemon's --log-level.
    ConfigCommands(CLI::App& config, const std::string& manifest, std::string& log_level);
    ~ConfigCommands();

    /// The exit code, if one of these commands was chosen.
    std::optional<int> run();

  private:
    struct Options;
    std::unique_ptr<Options> o_;
};
