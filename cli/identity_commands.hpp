#pragma once
// The identity commands of the `plexus` binary, for people: `plexus login|token|logout` and
// `plexus identity clients|users|api-keys|keys ...` (the admin API).

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

class IdentityCommands {
  public:
    /// Adds login, token and logout to `app` and the admin subcommands to `identity`.
    /// `manifest`: where the deployment's data directory comes from (read when they run).
    IdentityCommands(CLI::App& app, CLI::App& identity, const std::string& manifest);
    ~IdentityCommands();

    /// The exit code, if one of these commands was chosen.
    std::optional<int> run();

  private:
    struct Options;
    std::unique_ptr<Options> o_;
};
