#include "plexus/supervisor/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace plexus::supervisor {

namespace {

ErrorCode errno_code(int e) noexcept { return {e, boost::system::generic_category()}; }

// A file descriptor closed on scope exit.
class Fd {
  public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_;
};

// Moves `fd` to 3 or above, so that the child's dup2 onto 0, 1 and 2 cannot clobber it (the
// parent may run with stdin or stdout closed, making open() return 0 or 1).
int above_stdio(int fd) noexcept {
    if (fd < 0 || fd > 2) return fd;
    int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    ::close(fd);
    errno = saved;
    return high;
}

std::string_view env_value(const std::vector<std::string>& env, std::string_view key) {
    for (const auto& entry : env) {
        if (entry.size() > key.size() && entry.starts_with(key) && entry[key.size()] == '=') {
            return std::string_view(entry).substr(key.size() + 1);
        }
    }
    return {};
}

// Resolves argv[0] like execvp, but in the parent, where we may allocate and report errors.
Result<std::string> resolve_program(const std::string& program, const std::vector<std::string>& env) {
    if (program.find('/') != std::string::npos) {
        if (::access(program.c_str(), X_OK) != 0) return errno_code(errno);
        return program;
    }
    std::string_view path = env_value(env, "PATH");
    if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
    int last_error = ENOENT;
    while (true) {
        auto colon = path.find(':');
        auto dir = path.substr(0, colon);
        std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + program;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        if (errno == EACCES) last_error = EACCES;
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return errno_code(last_error);
}

// Everything between fork and execve: async-signal-safe calls only (the parent may be
// multi-threaded, so no allocation, no locks).
[[noreturn]] void exec_child(const char* program, char* const* argv, char* const* envp, int null_fd,
                             int log_fd, int error_fd, pid_t parent) noexcept {
    auto fail = [error_fd]() {
        int e = errno;
        while (::write(error_fd, &e, sizeof e) < 0 && errno == EINTR) {
        }
        ::_exit(127);
    };
    if (::setpgid(0, 0) != 0) fail();

    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP)
            ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for reserved ones
    }
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail();
    if (::getppid() != parent) ::_exit(127);  // the supervisor died before prctl took effect

    if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) fail();

        // Close every other descriptor but the error pipe, which closes itself on exec (O_CLOEXEC).
#ifdef SYS_close_range
    bool closed =
        error_fd <= 3 || ::syscall(SYS_close_range, 3U, static_cast<unsigned>(error_fd) - 1U, 0U) == 0;
    closed = closed && ::syscall(SYS_close_range, static_cast<unsigned>(error_fd) + 1U, ~0U, 0U) == 0;
#else
    bool closed = false;
#endif
    if (!closed) {
        struct rlimit limit {};
        int max_fd = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
                             limit.rlim_cur < 65536
                         ? static_cast<int>(limit.rlim_cur)
                         : 65536;
        for (int fd = 3; fd < max_fd; ++fd) {
            if (fd != error_fd) ::close(fd);
        }
    }

    ::execve(program, argv, envp);
    fail();
    ::_exit(127);
}

}  // namespace

ExitStatus ExitStatus::from_wait_status(int status) noexcept {
    if (WIFEXITED(status)) return {Kind::exited, WEXITSTATUS(status)};
    if (WIFSIGNALED(status)) return {Kind::signaled, WTERMSIG(status)};
    return {Kind::unknown, 0};
}

std::string ExitStatus::describe() const {
    switch (kind) {
        case Kind::exited:
            return "exited with status " + std::to_string(code);
        case Kind::signaled: {
            const char* abbrev = ::sigabbrev_np(code);
            return abbrev != nullptr ? "killed by SIG" + std::string(abbrev)
                                     : "killed by signal " + std::to_string(code);
        }
        case Kind::unknown:
            break;
    }
    return "exit status unknown";
}

Result<int> spawn_process(const ProcessSpec& spec) {
    if (spec.argv.empty()) return errno_code(EINVAL);
    auto program = resolve_program(spec.argv.front(), spec.env);
    if (!program) return program.error();

    // Built before fork: the child may not allocate.
    std::vector<char*> argv;
    for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& entry : spec.env) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);

    Fd log(above_stdio(::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)));
    if (log.get() < 0) return errno_code(errno);
    Fd null(above_stdio(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    if (null.get() < 0) return errno_code(errno);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return errno_code(errno);
    Fd error_read(pipe_fds[0]);
    Fd error_write(above_stdio(pipe_fds[1]));
    if (error_write.get() < 0) return errno_code(errno);

    // Block all signals across fork so that no handler of ours runs in the child before it has
    // reset them; the child unblocks after resetting dispositions, the parent restores its mask.
    sigset_t all, saved;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
        exec_child(program->c_str(), argv.data(), envp.data(), null.get(), log.get(), error_write.get(),
                   parent);
    }
    int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (pid < 0) return errno_code(fork_errno);
    ::setpgid(pid, pid);  // also from this side, so the group exists before we may signal it
    error_write.reset();

    // EOF means the exec succeeded (the pipe closed on exec); an int is the child's errno.
    int child_errno = 0;
    ssize_t n;
    while ((n = ::read(error_read.get(), &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    if (n > 0) {
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        return errno_code(child_errno != 0 ? child_errno : ECHILD);
    }
    return static_cast<int>(pid);
}

std::optional<ExitStatus> try_reap(int pid) {
    siginfo_t info{};
    // WNOWAIT leaves the zombie in place: while it exists its pid, and so its process group id,
    // cannot be reused, which makes the group kill below safe.
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == ECHILD) return ExitStatus{};  // reaped elsewhere
        return std::nullopt;                       // EINTR: try again next time
    }
    if (info.si_pid == 0) return std::nullopt;
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return ExitStatus{};
    }
    return ExitStatus::from_wait_status(status);
}

ExitStatus reap(int pid) {
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0) {
        if (errno != EINTR) return ExitStatus{};
    }
    ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return ExitStatus{};
    }
    return ExitStatus::from_wait_status(status);
}

void signal_group(int pid, int sig) noexcept {
    if (pid <= 0) return;
    if (::kill(-pid, sig) != 0 && errno == ESRCH) ::kill(pid, sig);
}

Result<int> pick_free_port() {
    Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) return errno_code(errno);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return errno_code(errno);
    socklen_t len = sizeof addr;
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return errno_code(errno);
    return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace plexus::supervisor
