// Load and latency of a running registry, and of an etcd watch as the peer, for run.sh. Prints
// one `key=value` line per result (milliseconds unless the key says otherwise).
//
//   registry_load push       --port P --watchers N --rounds R [--delta]
//       N blocking watches on a small service; each round registers one instance and times
//       until every watcher has the answer: p50/p99 over all watchers and of the last one.
//   registry_load heartbeats --port P --connections C --seconds S
//       C keep-alive connections heartbeating back to back: heartbeats per second.
//   registry_load fanout     --port P --instances I --watchers N --rounds R [--delta]
//       I instances in one service (registered first), N watchers on it and a paced heartbeat
//       load of 1,000 per second; each round registers one more instance and times until the
//       last watcher has the answer. Also the heartbeats' latency while the rounds ran.
//   registry_load etcd       --endpoints URLS --keys K --watchers N --rounds R
//       K keys under a prefix, N watches on the prefix; each round puts one key and times until
//       the last watcher has the event.
//
// The watchers run on a thread of their own, the changes and heartbeats on another, so a
// watcher reading a large answer does not delay the timing of a heartbeat.

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "plexus/etcd/client.hpp"
#include "plexus/net/blocking.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/runtime.hpp"

using namespace plexus;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string mode;
    int port = 0;
    std::string endpoints;
    int watchers = 1, rounds = 20, instances = 10'000, connections = 16, seconds = 5, keys = 10'000;
    bool delta = false;
};

Options parse(int argc, char** argv) {
    if (argc < 2) throw std::invalid_argument("usage: registry_load push|heartbeats|fanout|etcd [options]");
    Options o;
    o.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--port")
            o.port = std::stoi(value());
        else if (a == "--endpoints")
            o.endpoints = value();
        else if (a == "--watchers")
            o.watchers = std::stoi(value());
        else if (a == "--rounds")
            o.rounds = std::stoi(value());
        else if (a == "--instances")
            o.instances = std::stoi(value());
        else if (a == "--connections")
            o.connections = std::stoi(value());
        else if (a == "--seconds")
            o.seconds = std::stoi(value());
        else if (a == "--keys")
            o.keys = std::stoi(value());
        else if (a == "--delta")
            o.delta = true;
        else
            throw std::invalid_argument("unknown option " + a);
    }
    return o;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

void print(const char* key, double value) { std::printf("%s=%.3f\n", key, value); }

// Runs `task` on `rt`'s io_context 0 and waits for it (bounded by `limit`).
template <class T>
T run_on(net::Runtime& rt, net::Task<T> task, std::chrono::milliseconds limit = 600s) {
    auto r = net::run_blocking(rt.executor(0), std::move(task), limit);
    if (!r) throw std::runtime_error("a bench step did not finish");
    return std::move(*r);
}

// A runtime running on threads of its own until destroyed.
struct Loop {
    net::Runtime rt;
    std::thread thread;
    explicit Loop(std::size_t n = 1) : rt(n) {
        thread = std::thread([this] { rt.run(); });
    }
    ~Loop() {
        rt.stop();
        thread.join();
    }
};

std::string instance_body(int port) {
    return R"({"address":"10.1.2.3","port":)" + std::to_string(port) +
           R"(,"ttl_ms":600000,"tags":["v1","zone-a"],"metadata":{"version":"1.4.2","weight":"100"}})";
}

// Registers `count` instances of `service` named prefix0..prefixN, 64 at a time.
net::Task<bool> register_many(net::Endpoint ep, std::string service, std::string prefix, int count) {
    std::atomic<int> next{0}, failed{0};
    auto worker = [&]() -> net::Task<void> {
        for (int i = next++; i < count; i = next++) {
            auto r = co_await net::fetch(
                ep, "PUT", "/v1/services/" + service + "/instances/" + prefix + std::to_string(i),
                instance_body(10000 + i % 50000), "application/json", 10s);
            if (!r || r->status != 200) ++failed;
        }
    };
    auto ex = co_await boost::asio::this_coro::executor;
    std::vector<std::shared_ptr<std::promise<void>>> done;
    std::vector<std::future<void>> futures;
    for (int w = 0; w < 64; ++w) {
        auto p = std::make_shared<std::promise<void>>();
        futures.push_back(p->get_future());
        net::spawn(ex, net::deliver(worker(), p), "register");
    }
    for (auto& f : futures) {
        while (f.wait_for(0s) != std::future_status::ready) co_await net::sleep_for(5ms);
    }
    co_return failed.load() == 0;
}

// The registry's count of blocking watches waiting right now (its /metrics gauge).
net::Task<int> watchers_waiting(net::Endpoint ep) {
    auto r = co_await net::fetch(ep, "GET", "/metrics", {}, {}, 5s);
    if (!r || r->status != 200) co_return -1;
    auto at = r->body.find("\nplexus_registry_watchers ");
    if (at == std::string::npos) co_return -1;
    co_return std::atoi(r->body.c_str() + at + 26);
}

// The watchers: each keeps a blocking watch on the service and records when each index arrived.
struct Watchers {
    std::mutex mutex;
    std::vector<std::map<std::uint64_t, Clock::time_point>> arrivals;  // per watcher: index → when
    std::vector<std::uint64_t> latest;
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0};
    std::atomic<std::uint64_t> bytes{0};

    explicit Watchers(int n) : arrivals(n), latest(n, 0) {}

    // When watcher `w` had an answer with an index of at least `index`; nullopt if not yet.
    std::optional<Clock::time_point> arrived(int w, std::uint64_t index) {
        std::lock_guard lock(mutex);
        auto it = arrivals[w].lower_bound(index);
        if (it == arrivals[w].end()) return std::nullopt;
        return it->second;
    }
};

net::Task<void> watch_loop(net::Endpoint ep, std::string service, bool delta, std::shared_ptr<Watchers> ws,
                           int w) {
    std::uint64_t index = 0;
    while (!ws->stop) {
        std::string target = "/v1/services/" + service;
        if (index) target += "?index=" + std::to_string(index) + "&wait=60s" + (delta ? "&delta=true" : "");
        auto r = co_await net::fetch(ep, "GET", target, {}, {}, 70s);
        auto now = Clock::now();
        if (!r || r->status != 200) {
            ++ws->errors;
            co_await net::sleep_for(10ms);
            continue;
        }
        ws->bytes += r->body.size();
        auto h = r->headers.get("X-Plexus-Index");
        auto got = h ? std::stoull(std::string(*h)) : 0;
        if (got > index) {
            std::lock_guard lock(ws->mutex);
            ws->arrivals[w][got] = now;
        }
        index = got;
    }
}

// Waits (a bounded while) until the registry holds `n` blocking watches.
net::Task<bool> all_waiting(net::Endpoint ep, int n) {
    for (int i = 0; i < 20'000; ++i) {
        if (co_await watchers_waiting(ep) >= n) co_return true;
        co_await net::sleep_for(2ms);
    }
    co_return false;
}

struct RoundTimes {
    std::vector<double> all, last;
};

// `rounds` changes (each a new instance of `service`), each timed until every watcher has it.
net::Task<RoundTimes> rounds(net::Endpoint ep, std::string service, std::shared_ptr<Watchers> ws, int n,
                             int count) {
    RoundTimes t;
    for (int round = 0; round < count; ++round) {
        // Every watcher waiting: the change is pushed, not found by a watch that starts later.
        if (!co_await all_waiting(ep, n)) throw std::runtime_error("the watchers are not all waiting");
        auto t0 = Clock::now();
        auto r = co_await net::fetch(ep, "PUT",
                                     "/v1/services/" + service + "/instances/round-" + std::to_string(round),
                                     instance_body(20000 + round), "application/json", 10s);
        if (!r || r->status != 200) throw std::runtime_error("a change failed");
        auto index = std::stoull(std::string(*r->headers.get("X-Plexus-Index")));
        double last = 0;
        for (int w = 0; w < n; ++w) {
            std::optional<Clock::time_point> at;
            for (int i = 0; i < 20'000 && !(at = ws->arrived(w, index)); ++i) co_await net::sleep_for(1ms);
            if (!at) throw std::runtime_error("a watcher never got the change");
            t.all.push_back(ms(*at - t0));
            last = std::max(last, t.all.back());
        }
        t.last.push_back(last);
        co_await net::sleep_for(20ms);
    }
    co_return t;
}

// Starts `n` watchers of `service` on `loop` and waits until the registry holds all of them.
std::shared_ptr<Watchers> start_watchers(Loop& loop, net::Endpoint ep, const std::string& service, int n,
                                         bool delta) {
    auto ws = std::make_shared<Watchers>(n);
    for (int w = 0; w < n; ++w)
        net::spawn(loop.rt.executor(0), watch_loop(ep, service, delta, ws, w), "watch");
    return ws;
}

void report_rounds(const RoundTimes& t) {
    print("all_p50", percentile(t.all, 0.5));
    print("all_p99", percentile(t.all, 0.99));
    print("last_p50", percentile(t.last, 0.5));
    print("last_p99", percentile(t.last, 0.99));
    print("last_max", percentile(t.last, 1.0));
}

int push(const Options& o) {
    net::Endpoint ep{"127.0.0.1", static_cast<std::uint16_t>(o.port)};
    Loop watch_loop_rt, ops;
    if (!run_on(ops.rt, register_many(ep, "push", "p", 10))) throw std::runtime_error("registration failed");
    auto ws = start_watchers(watch_loop_rt, ep, "push", o.watchers, o.delta);
    auto t = run_on(ops.rt, rounds(ep, "push", ws, o.watchers, o.rounds));
    ws->stop = true;
    report_rounds(t);
    return 0;
}

int heartbeats(const Options& o) {
    net::Endpoint ep{"127.0.0.1", static_cast<std::uint16_t>(o.port)};
    Loop ops;
    if (!run_on(ops.rt, register_many(ep, "beat", "b", 100))) throw std::runtime_error("registration failed");
    std::atomic<long> count{0}, failed{0};
    std::vector<double> latencies;
    std::mutex mutex;
    auto end = Clock::now() + std::chrono::seconds(o.seconds);
    auto beat = [&](int c) -> net::Task<void> {
        std::vector<double> mine;
        for (int i = c; Clock::now() < end; i += o.connections) {
            auto t0 = Clock::now();
            auto r = co_await net::fetch(
                ep, "PUT", "/v1/services/beat/instances/b" + std::to_string(i % 100) + "/heartbeat", {}, {},
                5s);
            mine.push_back(ms(Clock::now() - t0));
            if (r && r->status == 204)
                ++count;
            else
                ++failed;
        }
        std::lock_guard lock(mutex);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
    };
    std::vector<std::future<void>> futures;
    auto started = Clock::now();
    for (int c = 0; c < o.connections; ++c) futures.push_back(net::start(ops.rt.executor(0), beat(c)));
    for (auto& f : futures) f.wait();
    auto took = std::chrono::duration<double>(Clock::now() - started).count();
    print("heartbeats_per_s", static_cast<double>(count) / took);
    print("heartbeat_p99", percentile(latencies, 0.99));
    print("failed", static_cast<double>(failed));
    return 0;
}

int fanout(const Options& o) {
    net::Endpoint ep{"127.0.0.1", static_cast<std::uint16_t>(o.port)};
    Loop watch_rt, ops, beats;
    auto t0 = Clock::now();
    if (!run_on(ops.rt, register_many(ep, "big", "i", o.instances)))
        throw std::runtime_error("registration failed");
    print("register_s", ms(Clock::now() - t0) / 1000);

    // 1,000 heartbeats a second (10,000 instances every 10 s), from 4 paced senders.
    struct Beat {
        Clock::time_point at;
        double latency;
    };
    std::mutex mutex;
    std::vector<Beat> beat_log;
    std::atomic<bool> stop_beats{false};
    auto beater = [&](int c) -> net::Task<void> {
        auto next = Clock::now();
        for (int i = c; !stop_beats; i += 4) {
            next += 4ms;
            auto t = Clock::now();
            auto r = co_await net::fetch(
                ep, "PUT", "/v1/services/big/instances/i" + std::to_string(i % o.instances) + "/heartbeat",
                {}, {}, 10s);
            auto latency = ms(Clock::now() - t);
            if (!r || r->status != 204) latency = 1e9;
            {
                std::lock_guard lock(mutex);
                beat_log.push_back({t, latency});
            }
            if (auto left = next - Clock::now(); left > 0ms)
                co_await net::sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(left));
        }
    };
    std::vector<std::future<void>> beat_futures;
    for (int c = 0; c < 4; ++c) beat_futures.push_back(net::start(beats.rt.executor(0), beater(c)));

    auto ws = start_watchers(watch_rt, ep, "big", o.watchers, o.delta);
    // The watchers' first answers (the whole list each) are not part of a round.
    run_on(ops.rt, all_waiting(ep, o.watchers));
    auto started = Clock::now();
    auto t = run_on(ops.rt, rounds(ep, "big", ws, o.watchers, o.rounds));
    auto ended = Clock::now();
    stop_beats = true;
    for (auto& f : beat_futures) f.wait();
    ws->stop = true;
    report_rounds(t);
    std::vector<double> during;
    for (const auto& b : beat_log) {
        if (b.at >= started && b.at <= ended) during.push_back(b.latency);
    }
    print("heartbeats_during", static_cast<double>(during.size()));
    print("heartbeat_p50", percentile(during, 0.5));
    print("heartbeat_p99", percentile(during, 0.99));
    print("heartbeat_max", percentile(during, 1.0));
    print("watch_mb", static_cast<double>(ws->bytes.load()) / 1e6);
    print("watch_errors", ws->errors.load());
    return 0;
}

int etcd_fanout(const Options& o) {
    Loop watch_rt, ops;
    etcd::Client client(o.endpoints);
    auto value = instance_body(10000);
    // The same size of catalog as the registry's: K keys under the prefix.
    auto fill = [&]() -> net::Task<bool> {
        std::atomic<int> next{0}, failed{0};
        auto worker = [&]() -> net::Task<void> {
            for (int i = next++; i < o.keys; i = next++) {
                if (!co_await client.put("/bench/big/i" + std::to_string(i), value)) ++failed;
            }
        };
        std::vector<std::future<void>> fs;
        auto ex = co_await boost::asio::this_coro::executor;
        for (int w = 0; w < 32; ++w) fs.push_back(net::start(ex, worker()));
        for (auto& f : fs) {
            while (f.wait_for(0s) != std::future_status::ready) co_await net::sleep_for(5ms);
        }
        co_return failed.load() == 0;
    };
    if (!run_on(ops.rt, fill())) throw std::runtime_error("filling etcd failed");

    struct Seen {
        std::mutex mutex;
        std::vector<std::map<std::string, Clock::time_point>> keys;
    };
    auto seen = std::make_shared<Seen>();
    seen->keys.resize(o.watchers);
    for (int w = 0; w < o.watchers; ++w) {
        net::spawn(
            watch_rt.rt.executor(0),
            [](etcd::Client c, std::shared_ptr<Seen> s, int w) -> net::Task<void> {
                co_await c.watch(etcd::WatchRequest::with_prefix("/bench/big/"),
                                 [s, w](const etcd::WatchBatch& batch) {
                                     auto now = Clock::now();
                                     std::lock_guard lock(s->mutex);
                                     for (const auto& e : batch.events) s->keys[w].emplace(e.kv.key, now);
                                     return true;
                                 });
            }(client, seen, w),
            "etcd watch");
    }
    auto arrived = [&](int w, const std::string& key) -> std::optional<Clock::time_point> {
        std::lock_guard lock(seen->mutex);
        auto it = seen->keys[w].find(key);
        if (it == seen->keys[w].end()) return std::nullopt;
        return it->second;
    };
    // The times until each watcher had `key`, put now; nullopt if one did not have it within
    // `limit`.
    auto put_and_time =
        [&](std::string key,
            std::chrono::milliseconds limit) -> net::Task<std::optional<std::vector<double>>> {
        auto t0 = Clock::now();
        if (!co_await client.put(key, value)) throw std::runtime_error("put failed");
        std::vector<double> times;
        for (int w = 0; w < o.watchers; ++w) {
            std::optional<Clock::time_point> at;
            while (!(at = arrived(w, key)) && Clock::now() - t0 < limit) co_await net::sleep_for(1ms);
            if (!at) co_return std::nullopt;
            times.push_back(ms(*at - t0));
        }
        co_return times;
    };
    // A watch reports what comes after the revision at which etcd accepted it: put until one key
    // reaches every watcher, so that all of them are established.
    bool established = false;
    for (int i = 0; i < 50 && !established; ++i)
        established =
            run_on(ops.rt, put_and_time("/bench/big/warm-up-" + std::to_string(i), 1000ms)).has_value();
    if (!established) throw std::runtime_error("the etcd watches did not start");
    RoundTimes t;
    for (int round = 0; round < o.rounds; ++round) {
        auto got = run_on(ops.rt, put_and_time("/bench/big/round-" + std::to_string(round), 20'000ms));
        if (!got) throw std::runtime_error("a watcher never got the put");
        auto& times = *got;
        t.all.insert(t.all.end(), times.begin(), times.end());
        t.last.push_back(*std::max_element(times.begin(), times.end()));
        std::this_thread::sleep_for(20ms);
    }
    report_rounds(t);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        auto o = parse(argc, argv);
        net::ClientSettings cs;
        cs.max_response_bytes = 256 * 1024 * 1024;
        net::set_client_settings(cs);
        if (o.mode == "push") return push(o);
        if (o.mode == "heartbeats") return heartbeats(o);
        if (o.mode == "fanout") return fanout(o);
        if (o.mode == "etcd") return etcd_fanout(o);
        throw std::invalid_argument("unknown mode " + o.mode);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "registry_load: %s\n", e.what());
        return 1;
    }
}
