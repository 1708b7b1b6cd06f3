#pragma once
/// What tells a changed file from an unchanged one without reading it: its modification time and
/// size. Files that reload when they change (routes, certificates) compare stamps.
///
///     auto seen = core::stamp_of(path);
///     ...
///     if (core::stamp_of(path) != seen) reload();

#include <cstdint>
#include <filesystem>
#include <string>

namespace plexus::core {

struct FileStamp {
    std::filesystem::file_time_type mtime{};
    std::uintmax_t size = 0;
    bool exists = false;
    friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

/// The stamp of `path`; a default (exists = false) stamp when it cannot be read.
FileStamp stamp_of(const std::string& path);

}  // namespace plexus::core
