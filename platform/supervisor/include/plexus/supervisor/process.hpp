#pragma once
/// Child processes on POSIX/Linux: start one with its output in a log file, signal it, reap it.
/// The building blocks of the Supervisor; usable on their own (the CLI picks ports with them).
///
/// Every child is the leader of its own process group (`setpgid(0, 0)`), so that a Ctrl-C on the
/// terminal reaches only the supervisor, which then stops children in order, and so that a signal
/// to the group also reaches whatever the child started (`sh -c` pipelines, workers).
///
/// `PR_SET_PDEATHSIG(SIGTERM)` makes a child receive SIGTERM when the *thread* that forked it
/// ends (Linux ties it to the thread, not the process): fork only from a thread that lives as long
/// as the children, like the Supervisor's control thread.
///
/// Errors are errno values in boost::system's generic category (`ENOENT` for a command that is not
/// found, `EACCES` for one that is not executable, ...).

#include <optional>
#include <string>
#include <vector>

#include "plexus/core/result.hpp"

namespace plexus::supervisor {

/// What to start.
struct ProcessSpec {
    /// argv; argv[0] without a '/' is searched in the PATH of `env` (or /usr/local/bin:/usr/bin:/bin).
    std::vector<std::string> argv;
    /// The complete environment of the child, as "KEY=VALUE" entries.
    std::vector<std::string> env;
    /// stdout and stderr are appended to this file (created with mode 0644).
    std::string log_file;
};

/// How a child ended.
struct ExitStatus {
    enum class Kind {
        exited,    ///< called exit(code)
        signaled,  ///< killed by signal `code`
        unknown,   ///< reaped by someone else (e.g. SIGCHLD set to SIG_IGN)
    };
    Kind kind = Kind::unknown;
    /// The exit status (Kind::exited) or the signal number (Kind::signaled).
    int code = 0;

    /// From a waitpid() status.
    static ExitStatus from_wait_status(int status) noexcept;
    /// "exited with status 3", "killed by SIGTERM", "exit status unknown".
    std::string describe() const;
    /// Same kind and code.
    friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

/// Starts a child: fork, then in the child own process group, default signal dispositions and an
/// empty signal mask, PR_SET_PDEATHSIG(SIGTERM), stdin from /dev/null, stdout and stderr appended
/// to `spec.log_file`, every other file descriptor closed, and execve. Returns once the child has
/// exec'd (or failed to: that failure is returned and the child reaped). Thread-safe; blocks
/// briefly. Errors: the log file cannot be opened, the command is not found or not executable,
/// fork fails (EAGAIN), or `argv` is empty (EINVAL).
Result<int> spawn_process(const ProcessSpec& spec);

/// If child `pid` has exited: SIGKILLs what is left of its process group, reaps it and returns how
/// it ended; nullopt while it is still running. Non-blocking; thread-safe for distinct pids.
std::optional<ExitStatus> try_reap(int pid);

/// Waits for child `pid` to exit, then like try_reap. Blocks; use after SIGKILL.
ExitStatus reap(int pid);

/// Sends `sig` to the process group led by child `pid` (falling back to the process alone).
/// Harmless for a process that is gone. Thread-safe.
void signal_group(int pid, int sig) noexcept;

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the kernel
/// chose, closes the socket. Racy by nature (another process may take the port before the child
/// binds it); acceptable on a development machine. Errors: socket errors.
Result<int> pick_free_port();

}  // namespace plexus::supervisor
