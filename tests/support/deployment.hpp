#pragma once
// A deployment started with `plexus up --detach` on a temporary data dir and a free gateway port,
// for end-to-end tests: the supervisor's control API, the registry's view, the logs, and a
// teardown that leaves no process behind even when the test failed half-way.

#include <boost/json.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace plexus::test {

class Deployment {
  public:
    /// Nothing runs until up().
    explicit Deployment(std::string manifest = std::string(PLEXUS_SOURCE_DIR) + "/deploy/plexus.yaml");
    /// `plexus down`, then SIGKILL to the supervisor and to every pid instances() has seen. With
    /// PLEXUS_TEST_KEEP_FAILED set in the environment, the data dir (logs included) of a failed
    /// test is kept and its path printed.
    ~Deployment();
    Deployment(const Deployment&) = delete;
    Deployment& operator=(const Deployment&) = delete;

    /// Runs `plexus up --detach [extra_args]`; false when it failed or left no supervisor.json
    /// (up_output() and supervisor_log() say why). Not thread-safe; call before sharing the object.
    bool up(const std::string& extra_args = {});
    /// `plexus <args> --data-dir <dir>`: its exit code, and its output into `output`.
    int plexus(const std::string& args, std::string* output = nullptr) const;
    /// `plexus down`; exit code.
    int down(std::string* output = nullptr);

    int gateway_port() const noexcept { return gateway_port_; }
    /// The gateway's admin listener (/metrics, /-/resilience), picked by plexus up.
    int gateway_admin_port() const noexcept { return gateway_admin_port_; }
    int control_port() const noexcept { return control_port_; }
    int registry_port() const noexcept { return registry_port_; }
    int supervisor_pid() const noexcept { return supervisor_pid_; }
    const std::string& data_dir() const noexcept { return dir_.path(); }
    const std::string& up_output() const noexcept { return up_output_; }

    /// The supervisor's instances (GET /v1/status on the control port). Throws std::runtime_error
    /// when the supervisor does not answer or answers something else, so that a test asking
    /// whether an instance is gone fails rather than finding nothing. Remembers every pid it sees
    /// for teardown. Thread-safe, like every call below.
    boost::json::array instances();
    /// One instance by name ("catalog-0"); empty when the supervisor has none of that name.
    /// Throws like instances().
    boost::json::object instance(const std::string& name);
    /// The pids instances() has seen so far.
    std::set<int> seen_pids() const;

    /// The instances the registry lists for `service` (passing and warning, not draining); empty
    /// when it lists none. Throws std::runtime_error when the registry does not answer or answers
    /// something else.
    std::vector<boost::json::object> registered(const std::string& service) const;
    /// The ports of registered(service). Throws like registered().
    std::vector<int> registered_ports(const std::string& service) const;

    /// The log of an instance (`logs/<name>.log`: "supervisor", "gateway", "catalog-0"...).
    std::string log(const std::string& name) const;
    std::string supervisor_log() const { return log("supervisor"); }
    /// Lines of every log under `logs/` that contain `needle`, prefixed by the log's name; at
    /// most `max_lines`.
    std::string grep_logs(const std::string& needle, std::size_t max_lines = 40) const;

  private:
    std::optional<boost::json::object> state() const;
    /// instances(), or nullopt with `why` set instead of throwing.
    std::optional<boost::json::array> try_instances(std::string& why);

    std::string manifest_;
    TempDir dir_;
    int gateway_port_ = 0, gateway_admin_port_ = 0, control_port_ = 0, registry_port_ = 0,
        supervisor_pid_ = 0;
    std::string up_output_;
    mutable std::mutex mutex_;
    std::set<int> seen_pids_;
};

/// The whole content of a file; empty when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace plexus::test
