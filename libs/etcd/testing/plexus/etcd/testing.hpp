#pragma once
// A real etcd cluster for tests: 1 or 3 members started as processes on 127.0.0.1, each with its
// own data directory under one temporary directory, on ports picked and checked here. The
// destructor always kills every member and removes the directory, so a failed assertion leaves
// nothing behind; members also die with the test process (PR_SET_PDEATHSIG) if it crashes.
//
// Members die with the thread that started them (that is what PR_SET_PDEATHSIG watches): start
// and restart them from the test's own thread.
//
// It talks to the members with its own blocking HTTP probe, not with etcd::Client, so that a bug
// in the client cannot make the harness lie. Not thread-safe: use it from the test's thread.
//
// The etcd binary is /usr/bin/etcd (Debian package etcd-server), or $PLEXUS_ETCD_BIN. When it is
// missing, the constructor throws: the test fails with that message, it is never skipped.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/etcd/client.hpp"
#include "plexus/net/client.hpp"

namespace plexus::etcd::testing {

/// The bound of the harness's own waits: a cluster to start, a member to rejoin, a leader.
inline constexpr std::chrono::milliseconds kClusterWait{15'000};

/// The etcd binary the harness runs: $PLEXUS_ETCD_BIN if set, else /usr/bin/etcd.
std::string etcd_binary();

/// An HTTP answer from the blocking probe; status 0 when no answer came (refused, timed out).
struct HttpAnswer {
    int status = 0;
    std::string body;
    std::string error;  ///< why there is no answer
};

/// POSTs `body` (JSON) to http://127.0.0.1:`port``path` on a connection of its own and waits at
/// most `timeout` for the whole answer.
HttpAnswer post_json(std::uint16_t port, std::string_view path, std::string_view body,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

class EtcdCluster {
  public:
    /// Starts `size` members (1 or 3) and waits, at most kClusterWait, until each serves a
    /// linearizable read and all agree on a leader. Throws std::runtime_error with the members'
    /// logs when etcd is missing or the cluster does not come up (after trying fresh ports twice
    /// more if a member could not bind its ports).
    explicit EtcdCluster(std::size_t size = 1);
    /// Kills every member (SIGKILL), reaps it and removes the data directory.
    ~EtcdCluster();
    EtcdCluster(const EtcdCluster&) = delete;
    EtcdCluster& operator=(const EtcdCluster&) = delete;

    std::size_t size() const noexcept { return members_.size(); }
    /// The client URL endpoints, in member order.
    std::vector<net::Endpoint> endpoints() const;
    net::Endpoint endpoint(std::size_t member) const;
    /// "http://127.0.0.1:p0,http://127.0.0.1:p1,...", as etcd::parse_members() reads it.
    std::string endpoint_list() const;
    /// etcd::Settings naming every member (default timeouts otherwise).
    Settings client_settings() const;

    /// Member `i`'s process id (-1 while it is not running).
    pid_t pid(std::size_t i) const { return members_.at(i).pid; }
    /// Whether member `i`'s process is alive.
    bool running(std::size_t i);
    /// Kills member `i` with SIGKILL and reaps it.
    void kill(std::size_t i);
    /// Starts member `i` again on its ports and data directory and waits (at most kClusterWait)
    /// until it serves linearizable reads again. Throws std::runtime_error with its log if not.
    void restart(std::size_t i);

    /// The member every running member names as leader, once they agree (polled for at most
    /// `wait`); nullopt if they do not agree in time.
    std::optional<std::size_t> leader(std::chrono::milliseconds wait = kClusterWait);
    /// A running member that is not the leader; nullopt when there is no agreed leader.
    std::optional<std::size_t> follower(std::chrono::milliseconds wait = kClusterWait);
    /// Whether every running member serves a linearizable read within `wait`.
    bool healthy(std::chrono::milliseconds wait = kClusterWait);

    /// POSTs to member `i`'s gateway (for what the client under test is not trusted with).
    HttpAnswer post(std::size_t i, std::string_view path, std::string_view body,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const;
    /// Compacts the store up to `revision` (through any running member); throws on failure.
    void compact(std::int64_t revision);

    /// Member `i`'s log so far (its stdout and stderr).
    std::string log(std::size_t i) const;
    /// The last lines of every member's log, for failure messages.
    std::string logs_tail(std::size_t lines = 30) const;
    const std::string& directory() const noexcept { return dir_; }

  private:
    struct Member {
        std::string name;
        std::uint16_t client_port = 0;
        std::uint16_t peer_port = 0;
        std::string data_dir;
        std::string log_path;
        pid_t pid = -1;
        std::uint64_t id = 0;  // etcd's member id, learned from its status
    };

    bool start_all();
    void spawn(Member& m);
    void reap(Member& m, bool force);
    void stop_all();
    std::vector<std::string> arguments(const Member& m) const;
    bool serves_linearizable_read(const Member& m) const;
    std::optional<std::uint64_t> leader_seen_by(Member& m) const;

    std::string binary_;
    std::string dir_;
    std::string initial_cluster_;
    std::string token_;
    std::vector<Member> members_;
};

/// A read of `key` alone.
inline RangeRequest range_of(std::string key) {
    RangeRequest r;
    r.key = std::move(key);
    return r;
}

/// A watch of `key` alone from `start_revision`.
inline WatchRequest watch_of(std::string key, std::int64_t start_revision = 0) {
    WatchRequest w;
    w.key = std::move(key);
    w.start_revision = start_revision;
    return w;
}

/// A one-member cluster shared by the tests of one binary, started by the first call (from the
/// test's thread; see above) and killed at exit. Tests keep apart by key prefix (unique_prefix()).
EtcdCluster& shared_cluster();

/// "/test/<pid>/<name>.<n>/" with each '/' of `name` made a '.' and <n> counting the calls: a key
/// prefix no other test (or repetition) of this run, nor any other run, uses.
std::string unique_prefix(std::string_view name);

}  // namespace plexus::etcd::testing
