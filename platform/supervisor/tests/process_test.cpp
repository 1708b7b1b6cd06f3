#include "plexus/supervisor/process.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

#include "test_util.hpp"

using namespace plexus::supervisor;
using namespace std::chrono_literals;
using plexus::supervisor::test_support::kWaitLimit;
using plexus::supervisor::test_support::read_file;
using plexus::supervisor::test_support::TempDir;
using ::testing::HasSubstr;

namespace {

// Polls `done` until it holds or kWaitLimit passes.
bool eventually(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

std::optional<ExitStatus> wait_exit(int pid) {
    std::optional<ExitStatus> status;
    eventually([&] { return (status = try_reap(pid)).has_value(); });
    return status;
}

bool gone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

ProcessSpec shell(const std::string& script, const std::string& log) {
    return {{"/bin/sh", "-c", script}, {"PATH=/usr/bin:/bin"}, log};
}

// Makes this process the reaper of orphaned descendants (so a grandchild can be waited on) for
// the life of the object.
class SubreaperScope {
  public:
    SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
    ~SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

}  // namespace

TEST(Process, RunsWithOutputAppendedToTheLogAndReportsTheExit) {
    TempDir dir;
    std::ofstream(dir.file("p.log")) << "earlier\n";
    auto pid = spawn_process(shell("echo out; echo err >&2; exit 3", dir.file("p.log")));
    ASSERT_TRUE(pid) << pid.error().message();
    auto status = wait_exit(*pid);
    ASSERT_TRUE(status);
    EXPECT_EQ(*status, (ExitStatus{ExitStatus::Kind::exited, 3}));
    EXPECT_EQ(status->describe(), "exited with status 3");
    EXPECT_EQ(read_file(dir.file("p.log")), "earlier\nout\nerr\n");
    EXPECT_TRUE(gone(*pid));
}

TEST(Process, ReportsCommandsThatCannotBeExecuted) {
    TempDir dir;
    auto missing = spawn_process({{"no-such-program-plexus"}, {"PATH=/usr/bin:/bin"}, dir.file("x.log")});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), boost::system::errc::no_such_file_or_directory);

    std::ofstream(dir.file("script")) << "#!/bin/sh\n";
    auto not_executable = spawn_process({{dir.file("script")}, {}, dir.file("x.log")});
    ASSERT_FALSE(not_executable);
    EXPECT_EQ(not_executable.error(), boost::system::errc::permission_denied);

    auto bad_log = spawn_process({{"/bin/true"}, {}, dir.file("no/dir/x.log")});
    ASSERT_FALSE(bad_log);

    EXPECT_FALSE(spawn_process({{}, {}, dir.file("x.log")}));
}

TEST(Process, ChildGetsDevNullStdinItsOwnGroupAndNoInheritedDescriptors) {
    TempDir dir;
    // A descriptor without O_CLOEXEC, as a careless library would leave one.
    int leaked = ::fcntl(::open("/dev/null", O_RDONLY), F_DUPFD, 100);
    ASSERT_GE(leaked, 100);
    auto pid =
        spawn_process(shell("readlink /proc/$$/fd/0; ls /proc/$$/fd; exec sleep 60", dir.file("fd.log")));
    ::close(leaked);
    ASSERT_TRUE(pid) << pid.error().message();
    EXPECT_EQ(::getpgid(*pid), *pid);
    ASSERT_TRUE(eventually([&] { return read_file(dir.file("fd.log")).find("\n2\n") != std::string::npos; }));
    auto out = read_file(dir.file("fd.log"));
    EXPECT_EQ(out.rfind("/dev/null\n", 0), 0u) << out;
    EXPECT_EQ(out.find(std::to_string(leaked)), std::string::npos) << out;

    signal_group(*pid, SIGTERM);
    auto status = wait_exit(*pid);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->describe(), "killed by SIGTERM");
}

TEST(Process, ReapingKillsWhatTheChildLeftInItsGroup) {
    TempDir dir;
    SubreaperScope subreaper;  // the orphaned grandchild becomes ours, so we can wait for it
    auto pid = spawn_process(shell("sleep 60 & echo $!; exit 0", dir.file("g.log")));
    ASSERT_TRUE(pid);
    ASSERT_TRUE(eventually([&] { return read_file(dir.file("g.log")).find('\n') != std::string::npos; }));
    const int grandchild = std::atoi(read_file(dir.file("g.log")).c_str());
    ASSERT_GT(grandchild, 0);
    auto status = wait_exit(*pid);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->describe(), "exited with status 0");
    int grandchild_status = 0;
    bool reaped =
        eventually([&] { return ::waitpid(grandchild, &grandchild_status, WNOHANG) == grandchild; });
    if (!reaped) ::kill(grandchild, SIGKILL);  // do not leave it behind if the test fails
    ASSERT_TRUE(reaped);
    EXPECT_TRUE(WIFSIGNALED(grandchild_status));
    EXPECT_EQ(WTERMSIG(grandchild_status), SIGKILL);
}

TEST(Process, ChildrenGetSigtermWhenTheSupervisorDies) {
    TempDir dir;
    SubreaperScope subreaper;
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    const pid_t helper = ::fork();
    ASSERT_GE(helper, 0);
    if (helper == 0) {  // stands in for a supervisor process
        auto pid = spawn_process({{"/bin/sleep", "60"}, {}, dir.file("orphan.log")});
        int value = pid ? *pid : -1;
        if (::write(pipe_fds[1], &value, sizeof value) != sizeof value) ::_exit(1);
        ::pause();
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    int child = -1;
    ASSERT_EQ(::read(pipe_fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
    ::close(pipe_fds[0]);
    ASSERT_GT(child, 0);

    ::kill(helper, SIGKILL);
    ASSERT_EQ(::waitpid(helper, nullptr, 0), helper);
    int status = 0;
    bool reaped = eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; });
    if (!reaped) ::kill(child, SIGKILL);  // do not leave it behind if the test fails
    ASSERT_TRUE(reaped);
    EXPECT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(Process, PicksABindableLoopbackPort) {
    auto port = pick_free_port();
    ASSERT_TRUE(port) << port.error().message();
    EXPECT_GT(*port, 0);
    EXPECT_LT(*port, 65536);
}
