#pragma once
// The audit log of admin actions: one JSON line per call of the admin API, appended to a 0600
// file (who, what, on what, when, from where, how it ended). It never holds a secret: bodies
// are not written, only the method and path.
//
//   {"time":"2026-12-05T10:31:02Z","actor":"u-3f2a...","client":"plexus-cli",
//    "action":"POST /admin/users","target":"u-9c1d...","status":201,"address":"127.0.0.1"}

#include <mutex>
#include <string>
#include <string_view>

#include "plexus/core/clock.hpp"

namespace plexus::identity {

class AuditLog {
  public:
    /// Opens (creates, with its directory) `path` for appending. Throws std::runtime_error naming the file.
    AuditLog(const std::string& path, core::Clock& clock);
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    /// Appends one entry: `actor` (the token's subject) acting through `client`, both empty when
    /// the caller could not authenticate. Thread-safe; a failed write is logged, never thrown.
    void record(std::string_view actor, std::string_view client, std::string_view action,
                std::string_view target, int status, std::string_view address);

    const std::string& path() const noexcept { return path_; }

  private:
    std::string path_;
    core::Clock& clock_;
    std::mutex mutex_;
    int fd_ = -1;
};

}  // namespace plexus::identity
