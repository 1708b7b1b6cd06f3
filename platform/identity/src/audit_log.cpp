#include "audit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <stdexcept>

#include "plexus/telemetry/log.hpp"

namespace plexus::identity {

AuditLog::AuditLog(const std::string& path, core::Clock& clock) : path_(path), clock_(clock) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + " for appending");
    ::fchmod(fd_, 0600);
}

AuditLog::~AuditLog() {
    if (fd_ >= 0) ::close(fd_);
}

void AuditLog::record(std::string_view actor, std::string_view client, std::string_view action,
                      std::string_view target, int status, std::string_view address) {
    boost::json::object entry{{"time", core::rfc3339(clock_.wall())},
                              {"actor", actor},
                              {"client", client},
                              {"action", action},
                              {"target", target},
                              {"status", status},
                              {"address", address}};
    auto line = boost::json::serialize(entry) + "\n";
    std::lock_guard lock(mutex_);
    // One write of the whole line: O_APPEND keeps concurrent writers' lines whole.
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        telemetry::error("cannot write the audit log", {{"file", path_}});
}

}  // namespace plexus::identity
