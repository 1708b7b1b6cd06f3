// How long a configuration change takes to reach every instance: N watchers on real sockets
// (each a settings::ConfigClient following the config server, as the SDK does, reporting each
// version it applies), a writer making one change at a time; per change, the time from the
// write until the last watcher has applied it. With --etcd, the same with N plain etcd watches
// on one key (the peer): the time from a put until the last watch has delivered it.
//
//   config_fanout --config http://127.0.0.1:8700 --watchers 100 --changes 50
//   config_fanout --etcd http://127.0.0.1:2379 --watchers 100 --changes 50

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "plexus/etcd/client.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/settings/config_client.hpp"
#include "plexus/telemetry/log.hpp"

using namespace plexus;
using Clock = std::chrono::steady_clock;
namespace json = boost::json;

namespace {

// What the watchers have seen: per watcher, the highest value applied and when.
class Seen {
  public:
    explicit Seen(std::size_t watchers) : values_(watchers, -1), times_(watchers) {}
    void record(std::size_t watcher, std::int64_t value) {
        std::lock_guard lock(mutex_);
        if (value <= values_[watcher]) return;
        values_[watcher] = value;
        times_[watcher] = Clock::now();
        changed_.notify_all();
    }
    // Waits (up to `limit`) until every watcher has `value`; the time the last one got it.
    std::optional<Clock::time_point> all(std::int64_t value, std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex_);
        bool ok = changed_.wait_for(lock, limit, [&] {
            return std::all_of(values_.begin(), values_.end(), [&](auto v) { return v >= value; });
        });
        if (!ok) return std::nullopt;
        return *std::max_element(times_.begin(), times_.end());
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::int64_t> values_;
    std::vector<Clock::time_point> times_;
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

void print(const char* what, std::size_t watchers, const std::vector<double>& ms, std::size_t lost) {
    std::printf("%-22s %8zu %8zu %10.2f %10.2f %10.2f %6zu\n", what, watchers, ms.size(), percentile(ms, 50),
                percentile(ms, 99), ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()), lost);
}

// Makes `changes` changes one at a time with `put(n)` (false: not written) and waits for every
// watcher to have each; the time per change from the write to the last watcher, and how many were
// lost (not written, or not seen by all within 5 s).
std::pair<std::vector<double>, std::size_t> measure(const std::function<bool(int)>& put, Seen& seen,
                                                    int changes) {
    std::vector<double> ms;
    std::size_t lost = 0;
    for (int n = 1; n <= changes; ++n) {
        auto t0 = Clock::now();
        std::optional<Clock::time_point> last;
        if (put(n)) last = seen.all(n, std::chrono::seconds(5));
        if (!last) {
            ++lost;
            continue;
        }
        ms.push_back(std::chrono::duration<double, std::milli>(*last - t0).count());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {std::move(ms), lost};
}

// The config server: N ConfigClients following application "bench", each applying the value `n`.
int run_config(const std::string& url, std::size_t watchers, int changes, const char* label) {
    net::Runtime runtime(2);
    std::thread io([&] { runtime.run(); });
    Seen seen(watchers);
    auto stop = std::make_shared<std::atomic<bool>>(false);
    auto endpoint = *net::parse_endpoint(url);
    auto put = [&](int n) {
        json::object body{{"content", json::object{{"n", n}}}, {"message", "bench"}};
        auto r = net::run_blocking(runtime.executor(0),
                                   net::fetch(endpoint, "PUT", "/v1/documents/bench", json::serialize(body),
                                              "application/json", std::chrono::seconds(5)),
                                   std::chrono::seconds(6));
        return r && *r && (*r)->status == 200;
    };
    if (!put(0)) {
        std::fprintf(stderr, "config_fanout: cannot write to %s\n", url.c_str());
        return 1;
    }
    std::vector<std::shared_ptr<settings::ConfigClient>> clients;
    for (std::size_t i = 0; i < watchers; ++i) {
        settings::ConfigServer where;
        where.url = url;
        where.app = "bench";
        where.instance = "bench-" + std::to_string(i);
        auto client = std::make_shared<settings::ConfigClient>(where);
        auto apply = [&seen, i](const settings::Fetched& f) {
            const auto* n = f.config.if_contains("n");
            if (n && n->is_int64()) seen.record(i, n->get_int64());
            return std::string();
        };
        auto first = net::run_blocking(runtime.executor(i % 2), client->fetch(), std::chrono::seconds(5));
        if (!first || !std::holds_alternative<settings::Fetched>(*first)) {
            std::fprintf(stderr, "config_fanout: watcher %zu cannot read the configuration\n", i);
            return 1;
        }
        apply(std::get<settings::Fetched>(*first));
        net::spawn(
            runtime.executor(i % 2),
            settings::ConfigClient::follow(client, std::get<settings::Fetched>(*first).version, apply, stop),
            "bench watcher");
        clients.push_back(std::move(client));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every watch waiting
    auto [ms, lost] = measure(put, seen, changes);
    print(label, watchers, ms, lost);
    stop->store(true);
    runtime.stop();
    io.join();
    return lost ? 1 : 0;
}

// The peer: N plain etcd watches of one key, a put per change.
int run_etcd(const std::string& members, std::size_t watchers, int changes) {
    net::Runtime runtime(2);
    std::thread io([&] { runtime.run(); });
    etcd::Client client(members);
    Seen seen(watchers);
    const std::string key = "/bench/config";
    auto put = [&](int n) {
        auto r = net::run_blocking(runtime.executor(0), client.put(key, std::to_string(n)),
                                   std::chrono::seconds(6));
        return r && *r ? (*r)->header.revision : std::int64_t(0);
    };
    auto start = put(0);
    if (!start) {
        std::fprintf(stderr, "config_fanout: cannot write to etcd at %s\n", members.c_str());
        return 1;
    }
    for (std::size_t i = 0; i < watchers; ++i) {
        etcd::WatchRequest w;
        w.key = key;
        w.start_revision = start + 1;
        net::spawn(
            runtime.executor(i % 2),
            [](etcd::Client c, etcd::WatchRequest w, Seen* seen, std::size_t i) -> net::Task<void> {
                co_await c.watch(w, [seen, i](const etcd::WatchBatch& b) {
                    for (const auto& e : b.events) seen->record(i, std::stoll(e.kv.value));
                    return true;
                });
            }(client, w, &seen, i),
            "bench etcd watch");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every watch waiting
    auto [ms, lost] = measure([&](int n) { return put(n) != 0; }, seen, changes);
    print("etcd watch (peer)", watchers, ms, lost);
    runtime.stop();
    io.join();
    return lost ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config, etcd_members, label = "config server";
    std::size_t watchers = 10;
    int changes = 50;
    bool header = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--config")
            config = next();
        else if (a == "--etcd")
            etcd_members = next();
        else if (a == "--watchers")
            watchers = std::stoul(next());
        else if (a == "--changes")
            changes = std::stoi(next());
        else if (a == "--label")
            label = next();
        else if (a == "--header")
            header = true;
        else {
            std::fprintf(stderr,
                         "usage: config_fanout (--config URL | --etcd URLS) [--watchers N] [--changes M] "
                         "[--label L] [--header]\n");
            return 2;
        }
    }
    telemetry::set_log_level(telemetry::Level::error);
    if (header)
        std::printf("%-22s %8s %8s %10s %10s %10s %6s\n", "", "watchers", "changes", "p50 ms", "p99 ms",
                    "max ms", "lost");
    if (!config.empty()) return run_config(config, watchers, changes, label.c_str());
    if (!etcd_members.empty()) return run_etcd(etcd_members, watchers, changes);
    std::fprintf(stderr, "config_fanout: give --config URL or --etcd URLS\n");
    return 2;
}
