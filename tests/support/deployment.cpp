#include "support/deployment.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/http.hpp"

namespace plexus::test {

namespace json = boost::json;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

Deployment::Deployment(std::string manifest) : manifest_(std::move(manifest)) {}

Deployment::~Deployment() {
    down();
    // Whatever happened before, nothing of this deployment may outlive it.
    if (supervisor_pid_ > 0 && ::kill(supervisor_pid_, 0) == 0) ::kill(supervisor_pid_, SIGKILL);
    for (int pid : seen_pids()) {
        if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
    }
    if (::testing::Test::HasFailure() && std::getenv("PLEXUS_TEST_KEEP_FAILED") != nullptr) {
        dir_.keep();
        std::fprintf(stderr, "kept the data dir of the failed test: %s\n", dir_.path().c_str());
    }
}

bool Deployment::up(const std::string& extra_args) {
    gateway_port_ = free_port();
    int rc = run_command(std::string("timeout 120 ") + PLEXUS_BIN + " up --detach -f " + manifest_ +
                             " --data-dir " + dir_.path() + " --gateway-port " +
                             std::to_string(gateway_port_) + " --gateway-admin-port " +
                             std::to_string(free_port()) + (extra_args.empty() ? "" : " " + extra_args),
                         &up_output_);
    auto st = state();
    if (!st) return false;
    supervisor_pid_ = static_cast<int>(st->at("pid").as_int64());
    control_port_ = static_cast<int>(st->at("control_port").as_int64());
    registry_port_ = static_cast<int>(st->at("registry_port").as_int64());
    if (const auto* admin = st->if_contains("gateway_admin_port"))
        gateway_admin_port_ = static_cast<int>(admin->as_int64());
    return rc == 0;
}

int Deployment::plexus(const std::string& args, std::string* output) const {
    return run_command(std::string(PLEXUS_BIN) + " " + args + " --data-dir " + dir_.path(), output);
}

int Deployment::down(std::string* output) {
    std::string ignored;
    try_instances(ignored);  // the pids that are still up, so that teardown can check on them
    return run_command(std::string("timeout 90 ") + PLEXUS_BIN + " down --data-dir " + dir_.path(), output);
}

std::optional<json::object> Deployment::state() const {
    auto text = read_file(dir_.path() + "/supervisor.json");
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return v.as_object();
}

namespace {

// The array `field` of the JSON object a GET of `target` answers with; nullopt with `why` set when
// the server does not answer 200 with such an object.
std::optional<json::array> get_array(int port, const std::string& target, const char* field,
                                     std::string& why) {
    if (port <= 0) {
        why = "GET " + target + ": no port (the deployment is not up)";
        return std::nullopt;
    }
    auto r = http("GET", port, target, {}, {}, std::chrono::seconds(5));
    if (r.status != 200) {
        why = "GET " + target + " on port " + std::to_string(port) + ": " +
              (r.status ? "status " + std::to_string(r.status) + " " + r.body : r.error);
        return std::nullopt;
    }
    boost::system::error_code ec;
    auto body = json::parse(r.body, ec);
    const json::value* items = (!ec && body.is_object()) ? body.as_object().if_contains(field) : nullptr;
    if (!items || !items->is_array()) {
        why = "GET " + target + " on port " + std::to_string(port) + ": no array \"" + field + "\" in " +
              r.body;
        return std::nullopt;
    }
    return items->as_array();
}

}  // namespace

std::optional<json::array> Deployment::try_instances(std::string& why) {
    auto arr = get_array(control_port_, "/v1/status", "instances", why);
    if (!arr) return std::nullopt;
    std::lock_guard lock(mutex_);
    for (const auto& i : *arr) {
        auto pid = static_cast<int>(i.at("pid").as_int64());
        if (pid > 0) seen_pids_.insert(pid);
    }
    return arr;
}

json::array Deployment::instances() {
    std::string why;
    auto arr = try_instances(why);
    if (!arr) throw std::runtime_error("the supervisor's status: " + why);
    return std::move(*arr);
}

json::object Deployment::instance(const std::string& name) {
    for (const auto& i : instances()) {
        if (i.at("name").as_string() == name) return i.as_object();
    }
    return {};
}

std::set<int> Deployment::seen_pids() const {
    std::lock_guard lock(mutex_);
    return seen_pids_;
}

std::vector<json::object> Deployment::registered(const std::string& service) const {
    std::string why;
    auto arr = get_array(registry_port_, "/v1/services/" + service, "instances", why);
    if (!arr) throw std::runtime_error("the registry's list of " + service + ": " + why);
    std::vector<json::object> out;
    for (const auto& i : *arr) out.push_back(i.as_object());
    return out;
}

std::vector<int> Deployment::registered_ports(const std::string& service) const {
    std::vector<int> ports;
    for (const auto& i : registered(service)) ports.push_back(static_cast<int>(i.at("port").as_int64()));
    return ports;
}

std::string Deployment::log(const std::string& name) const {
    return read_file(dir_.path() + "/logs/" + name + ".log");
}

std::string Deployment::grep_logs(const std::string& needle, std::size_t max_lines) const {
    std::string out;
    std::size_t lines = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() + "/logs", ec)) {
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            if (line.find(needle) == std::string::npos) continue;
            if (lines++ == max_lines) return out + "...\n";
            out += entry.path().stem().string() + ": " + line + "\n";
        }
    }
    return out;
}

}  // namespace plexus::test
