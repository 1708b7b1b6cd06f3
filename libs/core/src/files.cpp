#include "plexus/core/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace plexus::core {

void write_file_atomically(const std::string& path, const std::string& data, mode_t mode) {
    auto tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error(tmp + ": cannot be written (" + std::strerror(errno) + ")");
    bool ok = ::fchmod(fd, mode) == 0;
    for (std::size_t done = 0; ok && done < data.size();) {
        auto n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        if (ok) err = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error(path + ": cannot be written (" + std::strerror(err) + ")");
    }
}

std::optional<std::string> read_text_file(const std::string& path, std::string* why) {
    std::ifstream in(path);
    if (!in) {
        if (why) *why = path + ": cannot be read (" + std::strerror(errno) + ")";
        return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        if (why) *why = path + ": cannot be read";
        return std::nullopt;
    }
    return std::move(text).str();
}

std::optional<boost::json::object> read_json_object(const std::string& path, std::string* why) {
    auto text = read_text_file(path, why);
    if (!text) return std::nullopt;
    boost::system::error_code ec;
    auto doc = boost::json::parse(*text, ec);
    if (ec || !doc.is_object()) {
        if (why) *why = path + ": not a JSON object" + (ec ? " (" + ec.message() + ")" : std::string());
        return std::nullopt;
    }
    return std::move(doc.as_object());
}

}  // namespace plexus::core
