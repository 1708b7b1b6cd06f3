#pragma once
/// A workload's own OAuth client credentials, kept in a JSON file the identity server provisions
/// (`plexus identity --provision NAME=FILE`, 0600): {"client_id": ..., "client_secret": ...}.
/// The file is read when first needed and again whenever it changes (a re-provisioned secret is
/// picked up without a restart). Thread-safe.

#include <mutex>
#include <optional>
#include <string>

#include "plexus/core/file_stamp.hpp"

namespace plexus::auth {

struct ClientCredentials {
    std::string client_id;
    std::string client_secret;
    /// The form fields that authenticate the client (client_secret_post), percent-encoded,
    /// without a leading '&'.
    std::string form() const;
};

class CredentialsFile {
  public:
    explicit CredentialsFile(std::string path) : path_(std::move(path)) {}
    /// The credentials as the file holds them now; nullopt (with `why` naming the file) when it
    /// is missing or malformed.
    std::optional<ClientCredentials> load(std::string& why);
    const std::string& path() const noexcept { return path_; }

  private:
    std::string path_;
    std::mutex mutex_;
    core::FileStamp stamp_;
    std::optional<ClientCredentials> loaded_;
};

}  // namespace plexus::auth
