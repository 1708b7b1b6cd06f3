#include "support/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>

namespace plexus::test {

HttpResult http(const std::string& method, int port, const std::string& target, const std::string& body,
                const std::map<std::string, std::string>& headers, std::chrono::milliseconds timeout) {
    HttpResult result;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        result.error = std::strerror(errno);
        ::close(fd);
        return result;
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                      "\r\nConnection: close\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT") {
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n" + body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        result.error = "send failed";
        ::close(fd);
        return result;
    }
    std::string raw;
    char buf[16384];
    while (true) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        raw.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos || raw.size() < 12) {
        result.error = raw.empty() ? "no response" : "malformed response";
        return result;
    }
    result.status = std::atoi(raw.substr(9, 3).c_str());
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < head_end) {
        auto eol = raw.find("\r\n", pos);
        auto line = raw.substr(pos, eol - pos);
        auto colon = line.find(':');
        if (colon != std::string::npos) {
            auto name = line.substr(0, colon);
            std::transform(name.begin(), name.end(), name.begin(), ::tolower);
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            result.headers[name] = value;
        }
        pos = eol + 2;
    }
    result.body = raw.substr(head_end + 4);
    if (auto it = result.headers.find("content-length"); it != result.headers.end()) {
        auto len = std::stoul(it->second);
        if (result.body.size() > len) result.body.resize(len);
    }
    return result;
}

namespace {
std::string string_member(const boost::json::value& v, std::string_view key) {
    const auto* o = v.if_object();
    const auto* m = o ? o->if_contains(key) : nullptr;
    return m && m->is_string() ? std::string(m->as_string()) : std::string();
}
}  // namespace

ClientCredentials credentials_of(const std::string& json_text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(json_text, ec);
    if (ec) return {};
    return {string_member(v, "client_id"), string_member(v, "client_secret")};
}

HttpResult client_credentials(int port, const std::string& target, const ClientCredentials& client,
                              const std::string& scope) {
    std::string form =
        "grant_type=client_credentials&client_id=" + client.id + "&client_secret=" + client.secret;
    if (!scope.empty()) form += "&scope=" + scope;
    return http("POST", port, target, form, {{"Content-Type", "application/x-www-form-urlencoded"}});
}

std::string access_token_of(const HttpResult& answer) {
    if (answer.status != 200) return {};
    boost::system::error_code ec;
    auto v = boost::json::parse(answer.body, ec);
    return ec ? std::string() : string_member(v, "access_token");
}

}  // namespace plexus::test
