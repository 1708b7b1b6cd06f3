// Chaos under steady load, for about a minute: `plexus up --detach` with the default manifest,
// a few clients reading products through the gateway with a 2 s deadline, while
//   1. a random catalog instance is killed with SIGKILL every 3 s,
//   2. every inventory instance delays its answers by 2 s (fault injection),
//   3. inventory is scaled to 0, then back to 1 with its faults cleared, and recovers.
// Catalog reads keep succeeding (≥ 99.9% in each phase) with the product asked for, answer
// "availability": "unknown" within their deadline
// while inventory is slow or gone, never outlast their deadline; restarted catalog instances take
// their share of reads again; the catalog's breaker for inventory opens and closes again;
// `plexus down` leaves no process behind.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "support/deployment.hpp"
#include "support/http.hpp"
#include "support/process.hpp"

using namespace plexus::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kDeadline{2000};  // the X-Plexus-Deadline-Ms of every read
constexpr milliseconds kSlack{300};      // how far past its deadline an answer may arrive
constexpr milliseconds kClientTimeout{2500};
constexpr int kClients = 4;
constexpr milliseconds kPace{20};  // between two reads of one client
constexpr double kMinSuccessRate = 0.999;
// Round robin over two catalog instances: once the killed ones are back, each serves about half.
constexpr double kMinShare = 0.2;

constexpr auto kKillPhase = 15s;
constexpr auto kKillEvery = 3s;
constexpr auto kSlowPhase = 10s;
constexpr auto kDownPhase = 10s;
constexpr auto kRecoveryPhase = 10s;
// deploy/catalog.yaml: a count window of 20 calls, a verdict from 10, open at 50% failures or
// 80% slow calls. Every call to a 2 s-slow inventory fails after 600 ms, so with the window full
// of successes about ten failed calls per catalog instance open it: with kClients reads of 600 ms
// spread over two instances, about 3 s; the rest is room for a busy machine.
constexpr auto kBreakerOpensWithin = 8s;
// open_for 3 s, then 3 half-open calls must succeed.
constexpr auto kBreakerClosesWithin = 15s;

enum Phase : int { kKills, kSlow, kDown, kRecovery, kPhases };
constexpr const char* kPhaseNames[kPhases] = {"catalog kills", "inventory slow", "inventory down",
                                              "recovery"};

enum class Availability { none, known, unknown };

struct Read {
    Clock::time_point start, end;
    int phase = kKills;
    int status = 0;
    std::int64_t asked = 0;     // the product id asked for
    std::int64_t answered = 0;  // the product id in the answer (0: none)
    Availability availability = Availability::none;
    std::string request_id;
    std::string served_by;  // the catalog instance that answered
    std::string detail;     // for a failed read: what came back

    milliseconds latency() const { return std::chrono::duration_cast<milliseconds>(end - start); }
    bool ok() const { return status == 200 && availability != Availability::none && answered == asked; }
};

double seconds_since(Clock::time_point t0, Clock::time_point t) {
    return std::chrono::duration<double>(t - t0).count();
}

// `kClients` threads reading /api/products/{1..5} through the gateway until stopped.
class Load {
  public:
    Load(int gateway_port, const std::atomic<int>& phase)
        : port_(gateway_port), phase_(phase), reads_(kClients) {
        for (int i = 0; i < kClients; ++i) threads_.emplace_back([this, i] { run(i); });
    }
    ~Load() { stop(); }

    /// Stops the clients and returns every read, in no particular order.
    std::vector<Read> stop() {
        stop_ = true;
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
        std::vector<Read> all;
        for (auto& r : reads_)
            all.insert(all.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
        reads_.assign(kClients, {});
        return all;
    }

    std::size_t count() const { return count_.load(); }
    /// When the last answer with a real availability (not the fallback) arrived.
    Clock::time_point last_known() const { return Clock::time_point(Clock::duration(last_known_.load())); }

  private:
    void run(int client) {
        std::size_t n = static_cast<std::size_t>(client);
        while (!stop_) {
            Read read;
            read.phase = phase_.load();
            read.asked = static_cast<std::int64_t>(1 + n++ % 5);
            read.start = Clock::now();
            auto r = http("GET", port_, "/api/products/" + std::to_string(read.asked), {},
                          {{"X-Plexus-Deadline-Ms", std::to_string(kDeadline.count())}}, kClientTimeout);
            read.end = Clock::now();
            read.status = r.status;
            read.request_id = r.headers["x-request-id"];
            boost::system::error_code ec;
            auto body = json::parse(r.body, ec);
            const json::object* o = (!ec && body.is_object()) ? &body.as_object() : nullptr;
            if (auto* by = o ? o->if_contains("served_by") : nullptr; by && by->is_string()) {
                read.served_by = std::string(by->as_string());
            }
            if (auto* id = o ? o->if_contains("id") : nullptr; id && id->is_int64())
                read.answered = id->as_int64();
            const json::value* a = o ? o->if_contains("availability") : nullptr;
            if (a && a->is_string() && a->as_string() == "unknown") {
                read.availability = Availability::unknown;
            } else if (a && a->is_object() && a->as_object().contains("quantity")) {
                read.availability = Availability::known;
                last_known_ = read.end.time_since_epoch().count();
            }
            if (!read.ok()) {
                // A problem+json's detail, or what came back.
                const json::value* detail = o ? o->if_contains("detail") : nullptr;
                read.detail = r.error + (r.error.empty() ? "" : " ") +
                              (detail && detail->is_string() ? std::string(detail->as_string())
                                                             : r.body.substr(0, 200));
                if (read.status == 200 && read.answered != read.asked)
                    read.detail = "asked for product " + std::to_string(read.asked) + ": " + read.detail;
            }
            reads_[static_cast<std::size_t>(client)].push_back(std::move(read));
            ++count_;
            std::this_thread::sleep_for(kPace);
        }
    }

    const int port_;
    const std::atomic<int>& phase_;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> count_{0};
    std::atomic<Clock::rep> last_known_{0};
    std::vector<std::vector<Read>> reads_;  // one per client, read after join
    std::vector<std::thread> threads_;
};

// The state of the inventory breaker of every registered catalog instance, by instance id:
// "closed", "open", "half_open", "none" (no call yet) or "unreachable".
std::map<std::string, std::string> inventory_breakers(const Deployment& d) {
    std::map<std::string, std::string> states;
    for (const auto& inst : d.registered("catalog")) {
        std::string id(inst.at("id").as_string());
        auto r = http("GET", static_cast<int>(inst.at("port").as_int64()), "/-/resilience", {}, {}, 1s);
        boost::system::error_code ec;
        auto doc = json::parse(r.body, ec);
        if (r.status != 200 || ec || !doc.is_object()) {
            states[id] = "unreachable";
            continue;
        }
        states[id] = "none";
        if (auto* ups = doc.as_object().if_contains("upstreams"); ups && ups->is_array()) {
            for (const auto& u : ups->as_array()) {
                if (u.at("name").as_string() == "inventory") {
                    states[id] = std::string(u.at("breaker").at("state").as_string());
                }
            }
        }
    }
    return states;
}

// The sum over the registered catalog instances of a counter of /metrics whose labels include
// every one of `labels` (each as `name="value"`).
double catalog_metric(const Deployment& d, const std::string& name, const std::vector<std::string>& labels) {
    double sum = 0;
    for (int port : d.registered_ports("catalog")) {
        auto r = http("GET", port, "/metrics", {}, {}, 2s);
        std::istringstream lines(r.body);
        std::string line;
        while (std::getline(lines, line)) {
            if (line.rfind(name + "{", 0) != 0) continue;
            bool all = std::all_of(labels.begin(), labels.end(),
                                   [&](const std::string& l) { return line.find(l) != std::string::npos; });
            if (all) sum += std::stod(line.substr(line.rfind(' ') + 1));
        }
    }
    return sum;
}

// The gateway's view of catalog: its breaker, and the instances it has ejected.
std::string gateway_view(const Deployment& d) {
    auto r = http("GET", d.gateway_admin_port(), "/-/resilience", {}, {}, 1s);
    boost::system::error_code ec;
    auto doc = json::parse(r.body, ec);
    if (r.status != 200 || ec || !doc.is_object()) return "unreachable";
    std::string view = "no calls to catalog yet";
    if (auto* ups = doc.as_object().if_contains("upstreams"); ups && ups->is_array()) {
        for (const auto& u : ups->as_array()) {
            if (u.at("name").as_string() != "catalog") continue;
            view = "catalog breaker " + std::string(u.at("breaker").at("state").as_string());
            if (auto* insts = u.as_object().if_contains("instances"); insts && insts->is_array()) {
                for (const auto& i : insts->as_array()) {
                    if (i.at("ejected").as_bool())
                        view += ", " + std::string(i.at("id").as_string()) + " ejected";
                }
            }
        }
    }
    return view;
}

// Polls every 100 ms, and keeps every change of, the inventory breaker of each catalog instance
// and the gateway's view of catalog (subject "gateway").
class BreakerWatch {
  public:
    explicit BreakerWatch(const Deployment& d) : thread_([this, &d] { run(d); }) {}
    ~BreakerWatch() { stop(); }

    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }

    /// When the inventory breaker of some catalog instance was first seen in `state` at or after
    /// `after`.
    std::optional<Clock::time_point> first_catalog(const std::string& state, Clock::time_point after) const {
        std::lock_guard lock(mutex_);
        for (const auto& c : changes_) {
            if (c.at >= after && c.subject != "gateway" && c.state == state) return c.at;
        }
        return std::nullopt;
    }

    /// What went wrong polling the registry or the gateway (each error once per poll); empty
    /// when every poll got its answers.
    std::string errors() const {
        std::lock_guard lock(mutex_);
        return errors_;
    }

    std::string history(Clock::time_point t0) const {
        std::lock_guard lock(mutex_);
        std::string out;
        char line[200];
        for (const auto& c : changes_) {
            std::snprintf(line, sizeof line, "  %6.2fs  %-12s %s\n", seconds_since(t0, c.at),
                          c.subject.c_str(), c.state.c_str());
            out += line;
        }
        return out;
    }

  private:
    struct Change {
        Clock::time_point at;
        std::string subject, state;
    };

    void run(const Deployment& d) {
        std::map<std::string, std::string> last;
        while (!stop_) {
            std::map<std::string, std::string> states;
            try {
                states = inventory_breakers(d);
            } catch (const std::exception& e) {
                std::lock_guard lock(mutex_);
                errors_ += std::string(e.what()) + "\n";
            }
            states["gateway"] = gateway_view(d);
            auto now = Clock::now();
            {
                std::lock_guard lock(mutex_);
                for (const auto& [subject, state] : states) {
                    if (state == "unreachable") continue;
                    if (auto it = last.find(subject); it == last.end() || it->second != state) {
                        changes_.push_back({now, subject, state});
                        last[subject] = state;
                    }
                }
            }
            std::this_thread::sleep_for(100ms);
        }
    }

    mutable std::mutex mutex_;
    std::vector<Change> changes_;
    std::string errors_;
    std::atomic<bool> stop_{false};
    std::thread thread_;  // last: starts once the members above exist
};

// The catalog instances the supervisor reports running and healthy.
std::vector<json::object> serving_catalogs(Deployment& d) {
    std::vector<json::object> out;
    for (const auto& i : d.instances()) {
        const auto& o = i.as_object();
        if (o.at("service").as_string() == "catalog" && o.at("state").as_string() == "running" &&
            o.at("healthy").as_bool() && o.at("pid").as_int64() > 0) {
            out.push_back(o);
        }
    }
    return out;
}

bool has_instance_of(Deployment& d, const std::string& service) {
    auto all = d.instances();
    return std::any_of(all.begin(), all.end(),
                       [&](const json::value& i) { return i.at("service").as_string() == service; });
}

// PUT /-/faults with `body` on every registered inventory instance; how many answered 200.
int put_inventory_faults(const Deployment& d, const std::string& body, std::string& problems) {
    int ok = 0;
    for (int port : d.registered_ports("inventory")) {
        auto r = http("PUT", port, "/-/faults", body, {{"Content-Type", "application/json"}}, 2s);
        if (r.status == 200) {
            ++ok;
        } else {
            problems +=
                std::to_string(port) + ": " + std::to_string(r.status) + " " + r.body + r.error + "\n";
        }
    }
    return ok;
}

}  // namespace

TEST(ChaosUnderLoad, CatalogReadsSurviveKilledCatalogsAndSlowOrMissingInventory) {
    Deployment d;
    ASSERT_TRUE(d.up()) << d.up_output() << d.supervisor_log();
    const int gateway = d.gateway_port();
    {
        auto first = http("GET", gateway, "/api/products/1");
        ASSERT_EQ(first.status, 200) << first.body << first.error;
        ASSERT_TRUE(json::parse(first.body).at("availability").is_object()) << first.body;
    }

    const auto seed = std::random_device{}();
    std::mt19937 random(seed);
    std::printf("chaos seed %u, data dir %s\n", seed, d.data_dir().c_str());

    std::atomic<int> phase{kKills};
    Load load(gateway, phase);
    BreakerWatch watch(d);
    ASSERT_TRUE(eventually([&] { return load.count() > 20; })) << "the clients get no answers";

    Clock::time_point started[kPhases + 1];
    const auto t0 = Clock::now();

    // 1. A random serving catalog instance is killed every few seconds. Only while both serve:
    // the point is an instance dying under load, not a service with no instance at all.
    started[kKills] = t0;
    std::string kills;
    for (auto at = t0; at < t0 + kKillPhase; at += kKillEvery) {
        std::this_thread::sleep_until(at);
        std::vector<json::object> serving;
        const auto waited_from = Clock::now();
        bool both = eventually([&] { return (serving = serving_catalogs(d)).size() >= 2; }, kKillEvery);
        if (serving.empty()) {
            ADD_FAILURE() << "no catalog instance is serving: " << json::serialize(d.instances());
            continue;
        }
        const auto& victim = serving[random() % serving.size()];
        const int pid = static_cast<int>(victim.at("pid").as_int64());
        EXPECT_EQ(::kill(pid, SIGKILL), 0) << "pid " << pid;
        char line[160];
        std::snprintf(line, sizeof line, "  %6.2fs  %-10s pid %d%s\n", seconds_since(t0, Clock::now()),
                      std::string(victim.at("name").as_string()).c_str(), pid,
                      both ? "" : " (the other instance was not serving)");
        kills += line;
        if (Clock::now() - waited_from > 1s) kills += "          (waited for both instances to serve)\n";
    }
    std::this_thread::sleep_until(t0 + kKillPhase);

    // 2. Inventory answers after 2 s: catalog gives up after 600 ms and falls back.
    started[kSlow] = Clock::now();
    phase = kSlow;
    std::string problems;
    ASSERT_GE(put_inventory_faults(d, R"({"inbound": {"delay_percent": 100, "delay_ms": 2000}})", problems),
              1)
        << problems;
    EXPECT_TRUE(problems.empty()) << problems;
    const auto impaired_from = Clock::now();
    std::this_thread::sleep_until(started[kSlow] + kSlowPhase);

    // 3. Inventory stops entirely, then comes back without faults.
    started[kDown] = Clock::now();
    phase = kDown;
    std::string out;
    ASSERT_EQ(d.plexus("scale inventory 0", &out), 0) << out;
    bool gone =
        eventually([&] { return d.registered("inventory").empty() && !has_instance_of(d, "inventory"); });
    const auto gone_at = Clock::now();
    EXPECT_TRUE(gone) << json::serialize(d.instances());
    std::this_thread::sleep_until(started[kDown] + kDownPhase);

    const auto impaired_to = Clock::now();
    started[kRecovery] = impaired_to;
    phase = kRecovery;
    ASSERT_EQ(d.plexus("scale inventory 1", &out), 0) << out;
    EXPECT_TRUE(eventually([&] { return !d.registered("inventory").empty(); }))
        << json::serialize(d.instances());
    const auto inventory_back = Clock::now();
    problems.clear();
    EXPECT_GE(put_inventory_faults(d, R"({"inbound": {}})", problems), 1) << problems;
    EXPECT_TRUE(problems.empty()) << problems;

    // Every catalog instance closes its breaker again, and reads show real availability.
    std::map<std::string, std::string> breakers;
    const bool recovered = eventually(
        [&] {
            breakers = inventory_breakers(d);
            return breakers.size() >= 2 &&
                   std::all_of(breakers.begin(), breakers.end(),
                               [](const auto& b) { return b.second == "closed"; }) &&
                   load.last_known() > inventory_back;
        },
        kBreakerClosesWithin);
    const auto recovered_at = Clock::now();
    std::this_thread::sleep_until(std::max(started[kRecovery] + kRecoveryPhase, recovered_at));
    const double breaker_openings = catalog_metric(d, "plexus_circuit_breaker_transitions_total",
                                                   {R"(breaker="inventory")", R"(to="open")"});

    auto reads = load.stop();
    watch.stop();
    std::set<std::string> catalog_names;
    for (const auto& i : d.instances()) {
        if (i.at("service").as_string() == "catalog") catalog_names.emplace(i.at("name").as_string());
    }
    EXPECT_EQ(catalog_names.size(), 2u) << json::serialize(d.instances());
    started[kPhases] = Clock::now();

    // ---- the verdict ----
    struct Totals {
        std::size_t reads = 0, ok = 0, unknown = 0, known = 0, failed = 0;
        milliseconds max_latency{0};
        std::map<std::string, std::size_t> served_by;
    } totals[kPhases], all;
    std::size_t impaired = 0, impaired_not_fallback = 0, impaired_late = 0;
    std::vector<const Read*> failures, overruns, not_fallback;
    std::map<std::string, std::size_t> failure_kinds;
    for (const auto& r : reads) {
        for (Totals* t : {&totals[r.phase], &all}) {
            ++t->reads;
            if (r.ok()) ++t->ok;
            if (r.ok()) ++t->served_by[r.served_by];
            if (r.ok() && r.availability == Availability::unknown) ++t->unknown;
            if (r.ok() && r.availability == Availability::known) ++t->known;
            if (!r.ok()) ++t->failed;
            t->max_latency = std::max(t->max_latency, r.latency());
        }
        if (!r.ok()) {
            failures.push_back(&r);
            ++failure_kinds[std::string(kPhaseNames[r.phase]) + ": " + std::to_string(r.status) + " " +
                            r.detail];
        }
        if (r.latency() > kDeadline + kSlack) overruns.push_back(&r);
        // Wholly inside the time inventory was slow or gone: only the fallback can answer.
        if (r.start >= impaired_from && r.end <= impaired_to && r.status == 200) {
            ++impaired;
            if (r.availability != Availability::unknown) {
                ++impaired_not_fallback;
                not_fallback.push_back(&r);
            }
            if (r.latency() > kDeadline) ++impaired_late;
        }
    }

    auto by_start = [](const Read* a, const Read* b) { return a->start < b->start; };
    for (auto* list : {&failures, &overruns, &not_fallback}) std::sort(list->begin(), list->end(), by_start);

    std::printf("\n%-16s %8s %8s %9s %7s %7s %9s\n", "phase", "reads", "200", "fallback", "real", "failed",
                "max ms");
    auto row = [](const char* name, const Totals& t, double secs) {
        std::printf("%-16s %8zu %8zu %9zu %7zu %7zu %9lld   (%.1f s; served by", name, t.reads, t.ok,
                    t.unknown, t.known, t.failed, static_cast<long long>(t.max_latency.count()), secs);
        for (const auto& [by, n] : t.served_by) std::printf(" %s %zu", by.c_str(), n);
        std::printf(")\n");
    };
    for (int p = 0; p < kPhases; ++p)
        row(kPhaseNames[p], totals[p], seconds_since(started[p], started[p + 1]));
    row("all", all, seconds_since(t0, started[kPhases]));
    std::printf("kills:\n%s", kills.c_str());
    std::printf("inventory slow from %.2fs, scaled to 0 at %.2fs (gone at %.2fs), back at %.2fs\n",
                seconds_since(t0, impaired_from), seconds_since(t0, started[kDown]),
                seconds_since(t0, gone_at), seconds_since(t0, inventory_back));
    const auto opened = watch.first_catalog("open", impaired_from);
    if (opened) {
        std::printf("breaker first open %.2fs after inventory became slow\n",
                    seconds_since(impaired_from, *opened));
    }
    std::printf("breakers closed and real availability %.2fs after inventory came back%s\n",
                seconds_since(inventory_back, recovered_at), recovered ? "" : " (NOT recovered)");
    std::printf("breakers seen (catalog-N: its breaker for inventory; gateway: its view of catalog):\n%s",
                watch.history(t0).c_str());
    std::printf("openings counted by /metrics of the current catalog instances: %.0f\n", breaker_openings);
    std::printf(
        "reads wholly while inventory was slow or gone: %zu, of which not the fallback: %zu, late: %zu\n",
        impaired, impaired_not_fallback, impaired_late);
    for (const auto& [kind, n] : failure_kinds) std::printf("failed: %zu x %s\n", n, kind.c_str());
    std::fflush(stdout);

    auto describe = [&](const std::vector<const Read*>& list) {
        std::string s;
        for (std::size_t i = 0; i < list.size() && i < 10; ++i) {
            const auto& r = *list[i];
            char head[200];
            std::snprintf(head, sizeof head,
                          "  at %.2fs (%s) %lld ms: status %d, request id '%s': ", seconds_since(t0, r.start),
                          kPhaseNames[r.phase], static_cast<long long>(r.latency().count()), r.status,
                          r.request_id.c_str());
            s += head + r.detail + "\n";
            if (!r.request_id.empty()) s += d.grep_logs(r.request_id, 10);
        }
        return s;
    };

    EXPECT_GT(all.reads, 1000u);
    // Each phase on its own: the failures a phase may have are not spent by another.
    for (int p = 0; p < kPhases; ++p) {
        const auto& t = totals[p];
        EXPECT_GT(t.reads, 0u) << kPhaseNames[p];
        EXPECT_GE(static_cast<double>(t.ok), kMinSuccessRate * static_cast<double>(t.reads))
            << t.failed << " of " << t.reads << " reads failed in phase '" << kPhaseNames[p] << "':\n"
            << describe(failures);
    }
    EXPECT_EQ(watch.errors(), "");
    EXPECT_TRUE(overruns.empty()) << overruns.size() << " reads took longer than "
                                  << (kDeadline + kSlack).count() << " ms:\n"
                                  << describe(overruns);
    EXPECT_GT(impaired, 50u) << "too few reads while inventory was slow or gone to judge the fallback";
    EXPECT_EQ(impaired_not_fallback, 0u) << describe(not_fallback);
    EXPECT_EQ(impaired_late, 0u);
    EXPECT_GT(totals[kSlow].unknown, 0u);
    EXPECT_GT(totals[kDown].unknown, 0u);
    EXPECT_GT(totals[kRecovery].known, 0u);
    // Once the supervisor has restarted them, the killed instances take their share again.
    for (int p = kSlow; p < kPhases; ++p) {
        for (const auto& name : catalog_names) {
            auto it = totals[p].served_by.find(name);
            const std::size_t served = it == totals[p].served_by.end() ? 0 : it->second;
            EXPECT_GE(static_cast<double>(served), kMinShare * static_cast<double>(totals[p].ok))
                << name << " served " << served << " of " << totals[p].ok << " reads in phase '"
                << kPhaseNames[p] << "'";
        }
    }

    ASSERT_TRUE(opened)
        << "the catalog's breaker for inventory never opened while inventory was slow or gone";
    EXPECT_LE(*opened, impaired_to);
    EXPECT_LE(*opened - impaired_from, kBreakerOpensWithin)
        << "opened " << seconds_since(impaired_from, *opened) << " s after inventory became slow";
    EXPECT_GE(breaker_openings, 1);
    EXPECT_TRUE(recovered) << "breakers: " <<
        [&] {
            std::string s;
            for (const auto& [id, state] : breakers) s += id + "=" + state + " ";
            return s;
        }() << "; last real availability "
                           << seconds_since(inventory_back, load.last_known())
                           << " s after inventory came back";

    // plexus down leaves no process behind.
    ASSERT_EQ(d.down(&out), 0) << out;
    EXPECT_EQ(::kill(d.supervisor_pid(), 0), -1);
    for (int pid : d.seen_pids()) {
        EXPECT_TRUE(eventually([&] { return ::kill(pid, 0) == -1 && errno == ESRCH; }, 5s))
            << "pid " << pid << " is still alive";
    }
    EXPECT_NE(http_get(gateway, "/api/products/1").status, 200);
}
