#pragma once
/// Writing a whole file so that a reader never sees half of it: a temporary file beside it,
/// written, fsynced, given `mode` (whatever the umask, or a file left by an earlier run), then
/// renamed over `path`. For credentials, keys and certificates.
///
///     core::write_file_atomically(dir + "/admin-credentials.json", text, 0600);

#include <sys/types.h>

#include <boost/json/object.hpp>
#include <optional>
#include <string>

namespace plexus::core {

/// Throws std::runtime_error naming the file and the system's reason; the temporary file is
/// removed on failure.
void write_file_atomically(const std::string& path, const std::string& data, mode_t mode);

/// The whole text of a file; nullopt when it cannot be read, with `why` (if given) naming the file
/// and the system's reason.
std::optional<std::string> read_text_file(const std::string& path, std::string* why = nullptr);

/// The JSON object a file holds (credentials, caches); nullopt when the file cannot be read or
/// does not hold one, with `why` (if given) naming the file and the reason.
std::optional<boost::json::object> read_json_object(const std::string& path, std::string* why = nullptr);

}  // namespace plexus::core
