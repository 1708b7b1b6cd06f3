#include "support/stub_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace plexus::test {

StubServer::StubServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (listen_fd_ >= 0) ::close(listen_fd_);
        throw std::runtime_error("stub server: cannot listen on loopback");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
}

StubServer::~StubServer() {
    stop_.store(true);
    thread_.join();
    ::close(listen_fd_);
}

int StubServer::requests(const std::string& target) const {
    std::lock_guard lock(mutex_);
    auto it = requests_.find(target);
    return it == requests_.end() ? 0 : it->second;
}

void StubServer::serve() {
    while (!stop_.load()) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;  // a short poll: the destructor waits at most this long
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        answer(fd);
        ::close(fd);
    }
}

void StubServer::answer(int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 64 * 1024) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        head.append(buf, static_cast<std::size_t>(n));
    }
    // "GET /target HTTP/1.1"
    auto first = head.find(' ');
    auto second = first == std::string::npos ? first : head.find(' ', first + 1);
    if (second == std::string::npos) return;
    {
        std::lock_guard lock(mutex_);
        ++requests_[head.substr(first + 1, second - first - 1)];
    }
    std::string res =
        "HTTP/1.1 " + std::to_string(status_.load()) +
        " Stub\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    (void)::send(fd, res.data(), res.size(), MSG_NOSIGNAL);
}

}  // namespace plexus::test
