#pragma once
/// Writing a whole file so that a reader never sees half of it: a temporary file beside it,
/// written, fsynced, given `mode` (whatever the umask, or a file left by an earlier run), then
/// renamed over `path`. For credentials, keys and certificates.
///
///     core::write_file_atomically(dir + "/admin-credentials.json", text, 0600);

#include <string>
#include <sys/types.h>

namespace plexus::core {

/// Throws std::runtime_error naming the file and the system's reason; the temporary file is
/// removed on failure.
void write_file_atomically(const std::string& path, const std::string& data, mode_t mode);

}  // namespace plexus::core
