#include "plexus/core/file_stamp.hpp"

namespace plexus::core {

FileStamp stamp_of(const std::string& path) {
    std::error_code ec;
    FileStamp s;
    s.mtime = std::filesystem::last_write_time(path, ec);
    if (ec) return {};
    s.size = std::filesystem::file_size(path, ec);
    if (ec) return {};
    s.exists = true;
    return s;
}

}  // namespace plexus::core
