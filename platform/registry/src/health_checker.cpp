#include "plexus/registry/health_checker.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "plexus/net/client.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/telemetry/log.hpp"
#include "plexus/telemetry/metrics.hpp"

namespace plexus::registry {

namespace {

using Millis = std::chrono::milliseconds;

// One instance's check loop. stop() may come from any thread; the loop reads it between steps.
struct Loop {
    CheckTarget target;
    net::Endpoint endpoint;
    std::atomic<bool> stopped{false};
    net::Signal wake;

    void stop() {
        stopped.store(true);
        wake.notify_all();
    }
};

enum class Outcome { pass, warning, fail };

struct Probe {
    Outcome outcome;
    std::string reason;
};

net::Task<Probe> probe(std::shared_ptr<Loop> loop) {
    const auto& check = *loop->target.instance.check;
    auto r = co_await net::fetch(loop->endpoint, "GET", check.http, {}, {}, check.timeout);
    std::string what = "GET " + check.http;
    if (!r) {
        if (r.error() == net::errc::timeout) {
            co_return Probe{Outcome::fail,
                            what + " timed out after " + std::to_string(check.timeout.count()) + "ms"};
        }
        co_return Probe{Outcome::fail, what + ": " + r.error().message()};
    }
    auto answered = what + " answered " + std::to_string(r->status);
    if (r->status >= 200 && r->status < 300) co_return Probe{Outcome::pass, std::move(answered)};
    if (r->status == 429) co_return Probe{Outcome::warning, std::move(answered)};
    co_return Probe{Outcome::fail, std::move(answered)};
}

}  // namespace

struct HealthChecker::Impl {
    Catalog& catalog;
    std::vector<net::Executor> executors;
    std::atomic<std::size_t> next_executor{0};
    telemetry::Counter* checks[3];  // by Outcome
    telemetry::CounterFamily& status_changes;

    mutable std::mutex mutex;
    bool stopped = false;
    // Held by every status change the loops make: once stop() has set
    // catalog_closed under it, no such call runs or will run, so the catalog may then be
    // destroyed. Never taken while `mutex` is held (a status change notifies sync(), which
    // takes `mutex`).
    std::mutex catalog_mutex;
    bool catalog_closed = false;
    std::map<std::string, std::map<std::string, std::shared_ptr<Loop>>> loops;  // service → id → loop

    Impl(Catalog& c, telemetry::Registry& m, net::Runtime& runtime)
        : catalog(c),
          status_changes(m.counter("plexus_registry_status_changes_total",
                                   "Instance status changes made by active health checks", {"status"})) {
        for (std::size_t i = 0; i < runtime.size(); ++i) executors.push_back(runtime.executor(i));
        auto& family =
            m.counter("plexus_registry_health_checks_total", "Active health checks by result", {"result"});
        checks[static_cast<int>(Outcome::pass)] = &family.labels({"pass"});
        checks[static_cast<int>(Outcome::warning)] = &family.labels({"warning"});
        checks[static_cast<int>(Outcome::fail)] = &family.labels({"fail"});
        for (const char* status : {"passing", "warning", "critical"}) status_changes.labels({status});
    }

    void sync(const std::string& service, const std::shared_ptr<Impl>& self) {
        std::lock_guard lock(mutex);
        if (stopped) return;
        // Read under this lock: of two concurrent syncs, the later one sees the later catalog.
        auto targets = catalog.check_targets(service);
        auto& running = loops[service];
        for (auto it = running.begin(); it != running.end();) {
            bool current = false;
            for (const auto& t : targets) {
                current = current ||
                          (t.instance.id == it->first && t.registration == it->second->target.registration);
            }
            if (current) {
                ++it;
            } else {
                it->second->stop();
                it = running.erase(it);
            }
        }
        for (auto& t : targets) {
            if (running.contains(t.instance.id)) continue;
            auto loop = std::make_shared<Loop>();
            loop->endpoint = t.instance.endpoint();
            loop->target = std::move(t);
            running[loop->target.instance.id] = loop;
            auto ex = executors[next_executor.fetch_add(1) % executors.size()];
            net::spawn(ex, run(self, loop), "health check");
        }
        if (running.empty()) loops.erase(service);
    }

    static net::Task<void> run(std::shared_ptr<Impl> self, std::shared_ptr<Loop> loop) {
        const auto& in = loop->target.instance;
        const auto& check = *in.check;
        std::string status = "passing";
        int passes = 0, fails = 0;
        while (!loop->stopped.load()) {
            auto started = std::chrono::steady_clock::now();
            auto result = co_await probe(loop);
            if (loop->stopped.load()) break;
            self->checks[static_cast<int>(result.outcome)]->inc();
            std::string next = status;
            switch (result.outcome) {
                case Outcome::pass:
                    fails = 0;
                    passes = std::min(passes + 1, check.healthy_threshold);
                    if (passes == check.healthy_threshold) next = "passing";
                    break;
                case Outcome::warning:
                    passes = fails = 0;
                    next = "warning";
                    break;
                case Outcome::fail:
                    passes = 0;
                    fails = std::min(fails + 1, check.unhealthy_threshold);
                    if (fails == check.unhealthy_threshold) next = "critical";
                    break;
            }
            if (next != status) {
                // Memory only (Catalog::set_status never blocks): made right here on the io thread.
                auto changed = [&]() -> Result<bool> {
                    std::lock_guard lock(self->catalog_mutex);
                    if (self->catalog_closed)
                        return Result<bool>(boost::system::in_place_error,
                                            core::make_error_code(core::errc::not_found));
                    const auto& t = loop->target;
                    return self->catalog.set_status(t.instance.service, t.instance.id, next, t.registration);
                }();
                // Gone or re-registered meanwhile: the catalog's change stops (or replaced) this loop.
                if (!changed) break;
                if (*changed) {
                    self->status_changes.labels({next}).inc();
                    std::initializer_list<telemetry::Field> fields = {{"for_service", in.service},
                                                                      {"instance_id", in.id},
                                                                      {"status", next},
                                                                      {"previous", status},
                                                                      {"reason", result.reason}};
                    if (next == "passing")
                        telemetry::info("instance status changed", fields);
                    else
                        telemetry::warn("instance status changed", fields);
                }
                status = next;
            }
            auto seen = loop->wake.epoch();
            if (loop->stopped.load()) break;
            auto left = std::chrono::duration_cast<Millis>(check.interval -
                                                           (std::chrono::steady_clock::now() - started));
            if (left.count() > 0) co_await loop->wake.wait(left, seen);
        }
    }
};

HealthChecker::HealthChecker(Catalog& catalog, telemetry::Registry& metrics, net::Runtime& runtime)
    : impl_(std::make_shared<Impl>(catalog, metrics, runtime)) {
    // A weak reference: the catalog may outlive this checker and keeps its listeners.
    catalog.on_change([weak = std::weak_ptr<Impl>(impl_)](const std::string& service) {
        if (auto impl = weak.lock()) impl->sync(service, impl);
    });
    for (const auto& s : catalog.services()) impl_->sync(s.name, impl_);
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::sync(const std::string& service) { impl_->sync(service, impl_); }

void HealthChecker::stop() {
    {
        // Waits for a status change a loop may be making right now.
        std::lock_guard catalog_lock(impl_->catalog_mutex);
        impl_->catalog_closed = true;
    }
    std::lock_guard lock(impl_->mutex);
    impl_->stopped = true;
    for (auto& [service, loops] : impl_->loops) {
        for (auto& [id, loop] : loops) loop->stop();
    }
    impl_->loops.clear();
}

std::size_t HealthChecker::loops() const {
    std::lock_guard lock(impl_->mutex);
    std::size_t n = 0;
    for (const auto& [service, loops] : impl_->loops) n += loops.size();
    return n;
}

}  // namespace plexus::registry
