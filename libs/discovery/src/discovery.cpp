#include "plexus/discovery/discovery.hpp"

#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

#include "plexus/core/ids.hpp"
#include "plexus/core/snapshot.hpp"

namespace plexus::discovery {

std::optional<Policy> parse_policy(std::string_view text) noexcept {
    if (text == "round_robin") return Policy::round_robin;
    if (text == "least_request") return Policy::least_request;
    return std::nullopt;
}

const Target* Balancer::pick(const InstanceList& list, const std::vector<std::string>& exclude,
                             const resilience::OutlierDetector* outlier) {
    const auto& ts = list.targets;
    if (ts.empty()) return nullptr;
    auto excluded = [&](const Target& t) {
        for (const auto& id : exclude) {
            if (t.info.id == id) return true;
        }
        return false;
    };
    // Ejected instances count as excluded unless nothing else is left: an ejection steers
    // traffic away, it never turns a degraded service into an unavailable one.
    bool skip_ejected = false;
    std::size_t eligible = 0;
    if (outlier) {
        for (const auto& t : ts) eligible += !excluded(t) && !outlier->ejected(t.state->health);
        skip_ejected = eligible > 0;
    }
    if (!skip_ejected) {
        eligible = 0;
        for (const auto& t : ts) eligible += !excluded(t);
    }
    if (eligible == 0) return nullptr;
    auto skip = [&](const Target& t) {
        return excluded(t) || (skip_ejected && outlier->ejected(t.state->health));
    };

    if (policy() == Policy::round_robin || eligible == 1) {
        auto start = next_.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < ts.size(); ++i) {
            const auto& t = ts[(start + i) % ts.size()];
            if (!skip(t)) return &t;
        }
        return nullptr;
    }
    // least_request: power of two choices among the eligible targets.
    auto nth_eligible = [&](std::size_t n) -> const Target* {
        for (const auto& t : ts) {
            if (skip(t)) continue;
            if (n-- == 0) return &t;
        }
        return nullptr;
    };
    auto a = core::random_u64() % eligible;
    auto b = core::random_u64() % (eligible - 1);
    if (b >= a) ++b;
    const Target* ta = nth_eligible(a);
    const Target* tb = nth_eligible(b);
    return ta->state->in_flight.load(std::memory_order_relaxed) <=
                   tb->state->in_flight.load(std::memory_order_relaxed)
               ? ta
               : tb;
}

struct Discovery::Entry {
    std::string service;
    core::SnapshotCell<InstanceList> list;
    Balancer balancer;
    net::Signal loaded;
    explicit Entry(std::string s, Policy p) : service(std::move(s)), balancer(p) {
        list.store(std::make_shared<const InstanceList>());
    }
};

Discovery::Discovery(RegistryClient client, net::Executor ex)
    : client_(std::move(client)),
      ex_(ex),
      stopped_(std::make_shared<std::atomic<bool>>(false)),
      changed_(std::make_shared<net::Signal>()) {}

Discovery::~Discovery() { stop(); }

void Discovery::stop() { stopped_->store(true); }

std::shared_ptr<Discovery::Entry> Discovery::entry(const std::string& service) {
    // Every request looks its service up here: the common case reads the current map only.
    if (auto map = entries_.load()) {
        if (auto it = map->find(service); it != map->end()) return it->second;
    }
    std::lock_guard lock(mutex_);
    auto current = entries_.load();
    if (current) {
        if (auto it = current->find(service); it != current->end()) return it->second;
    }
    auto next = current ? std::make_shared<EntryMap>(*current) : std::make_shared<EntryMap>();
    auto e = std::make_shared<Entry>(service, Policy::round_robin);
    next->emplace(service, e);
    entries_.store(std::move(next));
    net::spawn(ex_, watch_loop(e, client_, stopped_, changed_), "discovery watch");
    return e;
}

std::shared_ptr<const InstanceList> Discovery::instances(const std::string& service) {
    return entry(service)->list.load();
}

net::Task<std::shared_ptr<const InstanceList>> Discovery::ready(const std::string& service,
                                                                std::chrono::milliseconds timeout) {
    auto e = entry(service);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        auto seen = e->loaded.epoch();  // read before the check: a load in between still wakes us
        auto l = e->list.load();
        if (l->loaded) co_return l;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) co_return l;
        co_await e->loaded.wait(left, seen);
    }
}

std::optional<Target> Discovery::pick(const std::string& service, const std::vector<std::string>& exclude,
                                      const resilience::OutlierDetector* outlier) {
    auto e = entry(service);
    auto l = e->list.load();
    const Target* t = e->balancer.pick(*l, exclude, outlier);
    if (!t) return std::nullopt;
    return *t;
}

Balancer& Discovery::balancer(const std::string& service) { return entry(service)->balancer; }

void Discovery::set_policy(const std::string& service, Policy policy) {
    auto e = entry(service);
    e->balancer.set_policy(policy);
}

namespace {

// The list after `changes`, keeping per-instance state (in-flight counts, outlier ejection) for
// instances that stay. Keyed by id and address: a supervisor restarts a dead instance under the
// same id on a new port, and the new process must not inherit the old one's ejection.
std::shared_ptr<InstanceList> apply(const InstanceList& old, ServiceChanges changes) {
    auto key = [](const InstanceInfo& in) { return in.id + "@" + in.endpoint().to_string(); };
    std::unordered_map<std::string, std::shared_ptr<InstanceState>> states;
    for (const auto& t : old.targets) states.emplace(key(t.info), t.state);
    auto next = std::make_shared<InstanceList>();
    next->index = changes.index;
    next->loaded = true;
    std::unordered_set<std::string> touched(changes.removed.begin(), changes.removed.end());
    for (const auto& in : changes.instances) touched.insert(in.id);
    std::vector<Target> fresh;
    for (auto& in : changes.instances) {
        if (!in_discovery(in)) continue;
        auto it = states.find(key(in));
        auto state = it != states.end() ? it->second : std::make_shared<InstanceState>();
        fresh.push_back(Target{std::move(in), std::move(state)});
    }
    if (changes.full) {
        next->targets = std::move(fresh);
        return next;
    }
    // A delta: the instances it names are replaced (or dropped); the others stay as they were.
    std::vector<Target> kept;
    kept.reserve(old.targets.size());
    for (const auto& t : old.targets) {
        if (!touched.contains(t.info.id)) kept.push_back(t);
    }
    next->targets.reserve(kept.size() + fresh.size());
    auto by_id = [](const Target& a, const Target& b) { return a.info.id < b.info.id; };
    std::merge(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()),
               std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()),
               std::back_inserter(next->targets), by_id);
    return next;
}
}  // namespace

net::Task<void> Discovery::watch_loop(std::shared_ptr<Entry> e, RegistryClient client,
                                      std::shared_ptr<std::atomic<bool>> stopped,
                                      std::shared_ptr<net::Signal> changed) {
    std::uint64_t index = 0;
    auto backoff = std::chrono::milliseconds(100);
    while (!stopped->load()) {
        // After the first answer, only what changed: a service of thousands of instances costs
        // each change a few hundred bytes instead of the whole list.
        auto r = co_await client.watch_changes(e->service, index, std::chrono::seconds(10));
        if (stopped->load()) break;
        if (!r) {
            co_await net::sleep_for(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
            continue;
        }
        backoff = std::chrono::milliseconds(100);
        auto old = e->list.load();
        if (old->loaded && r->index == old->index) continue;
        e->list.store(apply(*old, std::move(*r)));
        e->loaded.notify_all();
        changed->notify_all();
        index = e->list.load()->index;
    }
}

}  // namespace plexus::discovery
