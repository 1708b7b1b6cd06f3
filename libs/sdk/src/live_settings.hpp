#pragma once
// A service's settings in force: its --config file overlaid by its config server document,
// loaded into every section the service declared (Service::settings) and the clients' policies,
// and applied only when everything accepts them.

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "access.hpp"
#include "plexus/core/settings.hpp"
#include "plexus/service.hpp"
#include "plexus/settings/config_client.hpp"

namespace plexus::detail {

class LiveSettings {
  public:
    /// Reads the SDK's own sections (`clients`) from the top of the settings; returns what puts
    /// them in force (called only once everything loaded and every callback accepted).
    using OwnSections = std::function<std::function<void()>(core::SettingsReader& top)>;

    LiveSettings(std::vector<std::shared_ptr<SettingsSlot>> slots, OwnSections own);

    /// Reads the --config file: throws core::SettingsError naming file, line and key when it
    /// does not load.
    void load_file(const std::string& path);
    /// Loads the file overlaid by `server` (named `source` in errors) and applies it when every
    /// section loads and every change callback accepts it; "" when applied, else why not
    /// (nothing changed then).
    /// A section whose settings the change leaves as they were keeps its values, and its
    /// callbacks are not called.
    /// `initial`: the values before run(), with nobody to tell (no callbacks).
    std::string apply(const boost::json::object& server, const std::string& source, bool initial = false);
    /// The JSON Schema of the settings: every section and the SDK's own.
    boost::json::object schema() const;

  private:
    // Reads everything from `r`; the values per slot and the commit of the SDK's own sections.
    std::pair<std::vector<std::shared_ptr<const void>>, std::function<void()>> read(
        core::SettingsReader& r) const;

    std::vector<std::shared_ptr<SettingsSlot>> slots_;
    OwnSections own_;
    boost::json::object file_;
    // Each section's settings as last applied (null: absent); apply() is called one at a time.
    std::vector<boost::json::value> applied_;
};

/// The client of the service's config server `url` (application `app`, instance `instance`),
/// reading with a token of the service's own when it has an identity provider and credentials.
/// Throws std::invalid_argument for a URL that is not http://host:port.
std::shared_ptr<settings::ConfigClient> config_client(const std::string& url, const std::string& profiles,
                                                      const std::string& app, const std::string& instance,
                                                      const AccessFlags& access);

/// Startup with a config server: fetches the service's document (retrying while the server
/// cannot be reached, for up to 30 s or until `*stop`), applies it, says so to the server,
/// publishes the settings' schema, and follows changes on `ex` until `*stop`. "" when the
/// service can start, else why not.
net::Task<std::string> start_live_settings(std::shared_ptr<const settings::ConfigClient> client,
                                           std::shared_ptr<LiveSettings> live,
                                           std::shared_ptr<std::atomic<bool>> stop, net::Executor ex);

}  // namespace plexus::detail
