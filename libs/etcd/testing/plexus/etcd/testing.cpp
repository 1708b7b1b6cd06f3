#include "plexus/etcd/testing.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace plexus::etcd::testing {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Between probes of a condition.
constexpr auto kPollInterval = 20ms;
// Lowest port picked: below it live the well-known and registered services of the machine.
constexpr std::uint16_t kLowestPort = 10000;

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const noexcept { return fd_; }

  private:
    int fd_;
};

int millis_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    while (true) {
        int left = millis_left(deadline);
        if (left == 0) return false;
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, left);
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return false;
    }
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

// Decodes a chunked body; what it cannot decode is returned as it is.
std::string dechunk(std::string_view in) {
    std::string out;
    while (true) {
        auto eol = in.find("\r\n");
        if (eol == std::string_view::npos) return out;
        auto size = std::strtoul(std::string(in.substr(0, eol)).c_str(), nullptr, 16);
        in.remove_prefix(eol + 2);
        if (size == 0 || in.size() < size) return out;
        out.append(in.substr(0, size));
        in.remove_prefix(std::min(in.size(), size + 2));
    }
}

// The first port of the kernel's ephemeral range: ports from there on may be held by client
// sockets that a bind test cannot foresee.
std::uint16_t ephemeral_start() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned low = 0;
    if (in >> low && low > kLowestPort + 1000 && low <= 65535) return static_cast<std::uint16_t>(low);
    return 32768;
}

bool port_free(std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto addr = loopback(port);
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

std::vector<std::uint16_t> pick_ports(std::size_t n) {
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<unsigned> dist(kLowestPort, ephemeral_start() - 1u);
    std::set<std::uint16_t> chosen;
    for (int tries = 0; chosen.size() < n && tries < 10'000; ++tries) {
        auto p = static_cast<std::uint16_t>(dist(rng));
        if (!chosen.contains(p) && port_free(p)) chosen.insert(p);
    }
    if (chosen.size() < n)
        throw std::runtime_error("etcd harness: no free loopback ports below the ephemeral range");
    std::vector<std::uint16_t> out(chosen.begin(), chosen.end());
    std::shuffle(out.begin(), out.end(), rng);
    return out;
}

std::string url(std::uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string tail(const std::string& text, std::size_t lines) {
    std::size_t pos = text.size();
    if (pos > 0 && text[pos - 1] == '\n') --pos;
    for (std::size_t n = 0; n < lines; ++n) {
        if (pos == 0) return text;
        auto nl = text.rfind('\n', pos - 1);
        if (nl == std::string::npos) return text;
        pos = nl;
    }
    return text.substr(pos + 1);
}

std::optional<std::uint64_t> u64_field(const boost::json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    if (!v) return std::nullopt;
    if (const auto* s = v->if_string()) {
        try {
            return std::stoull(std::string(*s));
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    if (v->is_uint64()) return v->as_uint64();
    if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
    return std::nullopt;
}

}  // namespace

std::string etcd_binary() {
    if (const char* env = std::getenv("PLEXUS_ETCD_BIN"); env && *env) return env;
    return "/usr/bin/etcd";
}

HttpAnswer post_json(std::uint16_t port, std::string_view path, std::string_view body,
                     std::chrono::milliseconds timeout) {
    HttpAnswer answer;
    auto deadline = Clock::now() + timeout;
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    auto addr = loopback(port);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno != EINPROGRESS) {
            answer.error = std::string("connect: ") + std::strerror(errno);
            return answer;
        }
        if (!wait_for(fd.get(), POLLOUT, deadline)) {
            answer.error = "connect: timed out";
            return answer;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            answer.error = std::string("connect: ") + std::strerror(err);
            return answer;
        }
    }
    std::string request =
        "POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + std::string(body);
    std::string_view out = request;
    while (!out.empty()) {
        auto n = ::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL);
        if (n > 0) {
            out.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(fd.get(), POLLOUT, deadline)) {
                answer.error = "send: timed out";
                return answer;
            }
        } else {
            answer.error = std::string("send: ") + std::strerror(errno);
            return answer;
        }
    }
    std::string raw;
    char buf[16 * 1024];
    while (true) {
        auto n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n > 0) {
            raw.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) break;
        if (errno == EAGAIN || errno == EINTR) {
            if (!wait_for(fd.get(), POLLIN, deadline)) {
                answer.error = "receive: timed out";
                return answer;
            }
            continue;
        }
        answer.error = std::string("receive: ") + std::strerror(errno);
        return answer;
    }
    auto head_end = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/1.1 ") || head_end == std::string::npos || raw.size() < 12) {
        answer.error = "not an HTTP answer";
        return answer;
    }
    answer.status = std::atoi(raw.c_str() + 9);
    auto head = raw.substr(0, head_end);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view rest = std::string_view(raw).substr(head_end + 4);
    answer.body =
        head.find("transfer-encoding: chunked") != std::string::npos ? dechunk(rest) : std::string(rest);
    return answer;
}

EtcdCluster::EtcdCluster(std::size_t size) : binary_(etcd_binary()) {
    if (size != 1 && size != 3) throw std::invalid_argument("etcd harness: a cluster has 1 or 3 members");
    if (::access(binary_.c_str(), X_OK) != 0) {
        throw std::runtime_error("etcd harness: no etcd at " + binary_ +
                                 ": install the Debian package etcd-server (scripts/setup does) or set "
                                 "PLEXUS_ETCD_BIN; these tests need a real etcd and are not skipped");
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "plexus-etcd-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("etcd harness: mkdtemp failed");
    dir_ = tmpl;
    members_.resize(size);
    try {
        bool started = false;
        for (int attempt = 0; attempt < 3 && !started; ++attempt) started = start_all();
        if (!started) throw std::runtime_error("etcd harness: the members kept failing to bind their ports");
    } catch (const std::exception& e) {
        std::string why = std::string(e.what()) + "\n" + logs_tail(40);
        stop_all();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw std::runtime_error(why);
    }
}

EtcdCluster::~EtcdCluster() {
    stop_all();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

// One try at starting every member on fresh ports: false when one could not bind (try again),
// throws when the cluster fails otherwise.
bool EtcdCluster::start_all() {
    stop_all();
    auto ports = pick_ports(members_.size() * 2);
    token_ = "plexus-test-" + std::to_string(::getpid()) + "-" + std::to_string(ports[0]);
    initial_cluster_.clear();
    for (std::size_t i = 0; i < members_.size(); ++i) {
        auto& m = members_[i];
        m = Member{};
        m.name = "m" + std::to_string(i);
        m.client_port = ports[2 * i];
        m.peer_port = ports[2 * i + 1];
        m.data_dir = dir_ + "/" + m.name;
        m.log_path = dir_ + "/" + m.name + ".log";
        std::error_code ec;
        std::filesystem::remove_all(m.data_dir, ec);
        std::filesystem::remove(m.log_path, ec);
        if (!initial_cluster_.empty()) initial_cluster_ += ",";
        initial_cluster_ += m.name + "=" + url(m.peer_port);
    }
    for (auto& m : members_) spawn(m);

    auto deadline = Clock::now() + kClusterWait;
    while (true) {
        for (std::size_t i = 0; i < members_.size(); ++i) {
            if (running(i)) continue;
            auto text = log(i);
            if (text.find("address already in use") != std::string::npos) return false;
            throw std::runtime_error("etcd harness: member " + members_[i].name + " exited while starting");
        }
        bool all_serve = true;
        for (auto& m : members_) all_serve = all_serve && serves_linearizable_read(m);
        if (all_serve && leader(0ms)) return true;
        if (Clock::now() >= deadline) {
            throw std::runtime_error("etcd harness: the cluster did not become healthy within " +
                                     std::to_string(kClusterWait.count()) + " ms");
        }
        std::this_thread::sleep_for(kPollInterval);
    }
}

std::vector<std::string> EtcdCluster::arguments(const Member& m) const {
    return {binary_,
            "--name",
            m.name,
            "--data-dir",
            m.data_dir,
            "--listen-client-urls",
            url(m.client_port),
            "--advertise-client-urls",
            url(m.client_port),
            "--listen-peer-urls",
            url(m.peer_port),
            "--initial-advertise-peer-urls",
            url(m.peer_port),
            "--initial-cluster",
            initial_cluster_,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            token_,
            "--heartbeat-interval",
            "100",
            "--election-timeout",
            "1000",
            "--logger",
            "zap",
            "--log-outputs",
            "stderr"};
}

void EtcdCluster::spawn(Member& m) {
    auto args = arguments(m);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("etcd harness: fork failed");
    if (pid == 0) {
        // Die with the test process, even if it crashes before its destructors run.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(1);
        int fd = ::open(m.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    m.pid = pid;
}

void EtcdCluster::reap(Member& m, bool force) {
    if (m.pid <= 0) return;
    if (force) ::kill(m.pid, SIGKILL);
    int status = 0;
    while (::waitpid(m.pid, &status, 0) < 0 && errno == EINTR) {
    }
    m.pid = -1;
}

void EtcdCluster::stop_all() {
    for (auto& m : members_) {
        if (m.pid > 0) ::kill(m.pid, SIGKILL);
    }
    for (auto& m : members_) reap(m, false);
}

std::vector<net::Endpoint> EtcdCluster::endpoints() const {
    std::vector<net::Endpoint> out;
    for (std::size_t i = 0; i < members_.size(); ++i) out.push_back(endpoint(i));
    return out;
}

net::Endpoint EtcdCluster::endpoint(std::size_t member) const {
    return {"127.0.0.1", members_.at(member).client_port};
}

std::string EtcdCluster::endpoint_list() const {
    std::string out;
    for (const auto& m : members_) {
        if (!out.empty()) out += ",";
        out += url(m.client_port);
    }
    return out;
}

Settings EtcdCluster::client_settings() const {
    Settings s;
    s.members = endpoints();
    return s;
}

bool EtcdCluster::running(std::size_t i) {
    auto& m = members_.at(i);
    if (m.pid <= 0) return false;
    int status = 0;
    if (::waitpid(m.pid, &status, WNOHANG) == m.pid) {
        m.pid = -1;
        return false;
    }
    return true;
}

void EtcdCluster::kill(std::size_t i) { reap(members_.at(i), true); }

void EtcdCluster::restart(std::size_t i) {
    auto& m = members_.at(i);
    reap(m, true);
    spawn(m);
    auto deadline = Clock::now() + kClusterWait;
    while (!serves_linearizable_read(m)) {
        if (!running(i))
            throw std::runtime_error("etcd harness: member " + m.name + " exited on restart\n" + logs_tail());
        if (Clock::now() >= deadline) {
            throw std::runtime_error("etcd harness: member " + m.name + " did not serve again within " +
                                     std::to_string(kClusterWait.count()) + " ms\n" + logs_tail());
        }
        std::this_thread::sleep_for(kPollInterval);
    }
}

bool EtcdCluster::serves_linearizable_read(const Member& m) const {
    if (m.pid <= 0) return false;
    auto a = post_json(m.client_port, "/v3/kv/range", R"({"key":"aGFybmVzcw=="})", 1000ms);
    return a.status == 200 && a.body.find("\"header\"") != std::string::npos;
}

std::optional<std::uint64_t> EtcdCluster::leader_seen_by(Member& m) const {
    if (m.pid <= 0) return std::nullopt;
    auto a = post_json(m.client_port, "/v3/maintenance/status", "{}", 1000ms);
    if (a.status != 200) return std::nullopt;
    boost::system::error_code ec;
    auto v = boost::json::parse(a.body, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.as_object();
    if (const auto* h = o.if_contains("header"); h && h->is_object()) {
        if (auto id = u64_field(h->as_object(), "member_id")) m.id = *id;
    }
    auto leader = u64_field(o, "leader");
    if (!leader || *leader == 0) return std::nullopt;
    return leader;
}

std::optional<std::size_t> EtcdCluster::leader(std::chrono::milliseconds wait) {
    auto deadline = Clock::now() + wait;
    while (true) {
        std::optional<std::uint64_t> agreed;
        bool agree = true;
        std::size_t alive = 0;
        for (std::size_t i = 0; i < members_.size(); ++i) {
            if (!running(i)) continue;
            ++alive;
            auto seen = leader_seen_by(members_[i]);
            if (!seen || (agreed && *agreed != *seen)) {
                agree = false;
                break;
            }
            agreed = seen;
        }
        if (agree && alive > 0 && agreed) {
            for (std::size_t i = 0; i < members_.size(); ++i) {
                if (members_[i].id == *agreed && running(i)) return i;
            }
        }
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(kPollInterval);
    }
}

std::optional<std::size_t> EtcdCluster::follower(std::chrono::milliseconds wait) {
    auto l = leader(wait);
    if (!l) return std::nullopt;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (i != *l && running(i)) return i;
    }
    return std::nullopt;
}

bool EtcdCluster::healthy(std::chrono::milliseconds wait) {
    auto deadline = Clock::now() + wait;
    while (true) {
        bool all = true;
        for (std::size_t i = 0; i < members_.size() && all; ++i) {
            if (running(i)) all = serves_linearizable_read(members_[i]);
        }
        if (all) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(kPollInterval);
    }
}

HttpAnswer EtcdCluster::post(std::size_t i, std::string_view path, std::string_view body,
                             std::chrono::milliseconds timeout) const {
    return post_json(members_.at(i).client_port, path, body, timeout);
}

void EtcdCluster::compact(std::int64_t revision) {
    std::string body = R"({"revision":")" + std::to_string(revision) + R"(","physical":true})";
    std::string last;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (!running(i)) continue;
        auto a = post(i, "/v3/kv/compaction", body, 5000ms);
        if (a.status == 200) return;
        last = a.status ? std::to_string(a.status) + " " + a.body : a.error;
    }
    throw std::runtime_error("etcd harness: compaction to " + std::to_string(revision) + " failed: " + last);
}

std::string EtcdCluster::log(std::size_t i) const { return read_file(members_.at(i).log_path); }

std::string EtcdCluster::logs_tail(std::size_t lines) const {
    std::string out;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        const auto& m = members_[i];
        if (m.log_path.empty()) continue;
        out += "--- etcd " + m.name + " (client port " + std::to_string(m.client_port) + ", peer port " +
               std::to_string(m.peer_port) + ") ---\n" + tail(log(i), lines) + "\n";
    }
    return out;
}

EtcdCluster& shared_cluster() {
    static std::unique_ptr<EtcdCluster> cluster;
    if (!cluster) cluster = std::make_unique<EtcdCluster>(1);
    return *cluster;
}

std::string unique_prefix(std::string_view name) {
    std::string clean(name);
    for (auto& c : clean)
        if (c == '/') c = '.';
    static std::atomic<int> calls{0};
    return "/test/" + std::to_string(::getpid()) + "/" + clean + "." + std::to_string(++calls) + "/";
}

}  // namespace plexus::etcd::testing
