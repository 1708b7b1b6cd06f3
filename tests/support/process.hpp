#pragma once
// Child processes for integration tests: started with arguments and environment, output to a
// log file, always killed and reaped when the handle goes out of scope (even if a test fails).

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace plexus::test {

/// Upper bound for every wait in the integration suites.
inline constexpr std::chrono::seconds kWait{20};

class Process {
  public:
    Process() = default;
    Process(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string log_path);
    ~Process();
    Process(Process&& o) noexcept;
    Process& operator=(Process&& o) noexcept;

    pid_t pid() const noexcept { return pid_; }
    bool running();
    /// Sends `sig`; does not wait.
    void signal(int sig);
    /// Waits up to `timeout` for the process to exit; returns its exit status or -1.
    int wait(std::chrono::milliseconds timeout = kWait);
    /// SIGKILL and reap.
    void kill();
    const std::string& log_path() const noexcept { return log_; }
    std::string log() const;

  private:
    pid_t pid_ = -1;
    int status_ = -1;
    std::string log_;
};

/// A loopback TCP port that was free a moment ago.
int free_port();

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = kWait);

/// A fresh temporary directory, removed with its contents at destruction unless keep() was
/// called (to look at what a failed test left).
class TempDir {
  public:
    TempDir();
    ~TempDir();
    const std::string& path() const noexcept { return path_; }
    void keep() noexcept { keep_ = true; }

  private:
    std::string path_;
    bool keep_ = false;
};

/// Runs a command through /bin/sh, returning its exit code and combined output.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace plexus::test
