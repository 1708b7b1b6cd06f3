#include "plexus/registry/etcd_catalog.hpp"

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "plexus/net/blocking.hpp"
#include "plexus/net/runtime.hpp"
#include "plexus/telemetry/log.hpp"

namespace plexus::registry {

using std::chrono::milliseconds;
using Kind = SharedStore::Write::Kind;
using Written = SharedStore::Written;

namespace {

// How often leases of instances that heartbeat are renewed.
constexpr milliseconds kRenewEvery{250};
// Leases renewed at once.
constexpr std::size_t kRenewBatch = 64;
// Beyond a call's own bound, what a blocking wait leaves the io thread to answer.
constexpr milliseconds kWaitMargin{2000};
// Keys read per page when the whole catalog is read.
constexpr std::int64_t kPage = 1000;
// Tries of a compare-and-swap that others keep beating.
constexpr int kSwapTries = 5;

struct Loaded {
    std::int64_t revision = 0;
    std::vector<StoredInstance> instances;
};

Written failed(const ErrorCode& ec, std::string_view doing) {
    return {Result<std::uint64_t>(boost::system::in_place_error, ec),
            "could not write to etcd (" + std::string(doing) + "): " + ec.message()};
}

// Reads keys of the catalog: `dir` is P instances/.
class Keys {
  public:
    explicit Keys(std::string dir) : dir_(std::move(dir)) {}
    const std::string& dir() const { return dir_; }
    std::string of(const std::string& service, const std::string& id) const {
        return dir_ + service + "/" + id;
    }

    // Service and id of a key; false for a key that is not an instance's.
    bool split(std::string_view key, std::string& service, std::string& id) const {
        if (!key.starts_with(dir_)) return false;
        auto rest = key.substr(dir_.size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) return false;
        service = rest.substr(0, slash);
        id = rest.substr(slash + 1);
        return id.find('/') == std::string::npos;
    }

    // The instance a key holds; nullopt (logged) when it cannot be read.
    std::optional<StoredInstance> read(const etcd::KeyValue& kv) const {
        StoredInstance st;
        st.revision = static_cast<std::uint64_t>(kv.mod_revision);
        st.lease = kv.lease;
        auto in = discovery::instance_from_json(kv.value);
        if (!split(kv.key, st.service, st.id) || !in || in->service != st.service || in->id != st.id) {
            telemetry::error("registry: a key in etcd is not an instance; it is left out",
                             {{"key", kv.key}, {"revision", kv.mod_revision}});
            return std::nullopt;
        }
        st.json = std::make_shared<const std::string>(discovery::instance_to_json(*in));
        st.instance = std::move(*in);
        return st;
    }

  private:
    std::string dir_;
};

// The whole catalog at one revision, read in pages.
net::Task<Result<Loaded>> load(etcd::Client client, Keys keys) {
    Loaded out;
    auto request = etcd::RangeRequest::with_prefix(keys.dir());
    request.limit = kPage;
    while (true) {
        auto r = co_await client.range(request);
        if (!r) co_return r.error();
        if (out.revision == 0) out.revision = r->header.revision;
        for (const auto& kv : r->kvs)
            if (auto st = keys.read(kv)) out.instances.push_back(std::move(*st));
        if (!r->more || r->kvs.empty()) break;
        request.key = r->kvs.back().key + '\0';
        request.revision = out.revision;  // every page at the first one's revision
    }
    co_return out;
}

// Reads the instance at `key` and writes what `change` makes of it, if the key did not change
// meanwhile and (with `lease` other than 0) is still that registration. `change` returns false
// when there is nothing to write; the answer is then the key's revision.
template <class Change>
net::Task<Written> modify(etcd::Client client, std::string key, std::int64_t lease, Change change) {
    for (int attempt = 0; attempt < kSwapTries; ++attempt) {
        auto got = co_await client.get(key);
        if (!got) co_return failed(got.error(), "reading the instance");
        if (!*got || (lease != 0 && (*got)->lease != lease))
            co_return Written{core::errc::not_found, "unknown instance"};
        const auto& kv = **got;
        auto in = discovery::instance_from_json(kv.value);
        if (!in) co_return Written{core::errc::io_error, "the instance stored at " + key + " cannot be read"};
        if (!change(*in)) co_return Written{static_cast<std::uint64_t>(kv.mod_revision), {}};
        etcd::TxnRequest txn;
        txn.compare.push_back(etcd::Compare::mod_revision(key, etcd::Compare::Op::equal, kv.mod_revision));
        txn.success.emplace_back(etcd::PutRequest{key, discovery::instance_to_json(*in), kv.lease, false});
        auto r = co_await client.txn(std::move(txn));
        if (!r) co_return failed(r.error(), "writing the instance");
        if (r->succeeded) co_return Written{static_cast<std::uint64_t>(r->header.revision), {}};
    }
    co_return Written{core::errc::io_error, "the instance kept changing while it was written"};
}

net::Task<Written> write_one(etcd::Client client, std::string key, SharedStore::Write w) {
    switch (w.kind) {
        case Kind::upsert: {
            auto ms = w.instance.ttl.count();
            auto lease = co_await client.lease_grant(
                std::chrono::seconds(std::max<std::int64_t>(1, (ms + 999) / 1000)));
            if (!lease) co_return failed(lease.error(), "granting the instance's lease");
            etcd::PutRequest put{key, discovery::instance_to_json(w.instance), lease->id, true};
            auto r = co_await client.put(std::move(put));
            // The lease granted is left to run out.
            if (!r) co_return failed(r.error(), "writing the instance");
            // The registration replaced: its lease holds nothing any more.
            if (r->prev_kv && r->prev_kv->lease != 0 && r->prev_kv->lease != lease->id)
                (void)co_await client.lease_revoke(r->prev_kv->lease);
            co_return Written{static_cast<std::uint64_t>(r->header.revision), {}};
        }
        case Kind::remove: {
            auto r = co_await client.delete_range(etcd::DeleteRequest{key, {}, true});
            if (!r) co_return failed(r.error(), "deleting the instance");
            if (r->deleted == 0) co_return Written{core::errc::not_found, "unknown instance"};
            if (!r->prev_kvs.empty() && r->prev_kvs.front().lease != 0)
                (void)co_await client.lease_revoke(r->prev_kvs.front().lease);
            co_return Written{static_cast<std::uint64_t>(r->header.revision), {}};
        }
        case Kind::drain:
            co_return co_await modify(std::move(client), std::move(key), 0, [](discovery::InstanceInfo& in) {
                if (in.draining) return false;
                in.draining = true;
                return true;
            });
    }
    co_return Written{core::errc::invalid_argument, "unknown write"};
}

class EtcdCatalog final : public SharedStore {
  public:
    EtcdCatalog(etcd::Settings settings, std::string prefix)
        : timeout_(settings.timeout),
          client_(std::move(settings)),
          keys_(std::move(prefix) + "instances/"),
          io_([this] { runtime_.run(); }) {}

    ~EtcdCatalog() override { stop(); }

    void start(Catalog& catalog) override {
        catalog_ = &catalog;
        auto future = net::start(runtime_.executor(0), load(client_, keys_));
        if (future.wait_for(timeout_ + kWaitMargin) != std::future_status::ready)
            throw std::runtime_error("cannot read the registry's catalog from etcd: no answer in time");
        auto loaded = future.get();
        if (!loaded)
            throw std::runtime_error("cannot read the registry's catalog from etcd: " +
                                     loaded.error().message());
        auto from = loaded->revision + 1;
        catalog.replace_all(static_cast<std::uint64_t>(loaded->revision), std::move(loaded->instances));
        net::spawn(runtime_.executor(0), follow(from), "registry catalog watch");
        renewer_ = std::thread([this] { renew(); });
    }

    void stop() override {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (renewer_.joinable()) renewer_.join();
        runtime_.stop();
        if (io_.joinable()) io_.join();
    }

    std::vector<Written> write(const std::vector<Write>& writes) override {
        std::vector<std::future<Written>> futures;
        futures.reserve(writes.size());
        for (const auto& w : writes)
            futures.push_back(net::start(runtime_.executor(0),
                                         write_one(client_, keys_.of(w.instance.service, w.instance.id), w)));
        auto deadline = std::chrono::steady_clock::now() + timeout_ + kWaitMargin;
        std::vector<Written> out;
        out.reserve(writes.size());
        for (auto& f : futures) {
            if (f.wait_until(deadline) != std::future_status::ready) {
                out.push_back(failed(etcd::errc::timeout, "no answer in time"));
                continue;
            }
            try {
                out.push_back(f.get());
            } catch (const std::exception& e) {
                out.push_back(
                    Written{core::errc::io_error, std::string("could not write to etcd: ") + e.what()});
            }
        }
        return out;
    }

    void write_status(std::string service, std::string id, std::string status, std::int64_t lease) override {
        net::spawn(runtime_.executor(0), set_status(client_, keys_.of(service, id), std::move(status), lease),
                   "registry status write");
    }

    milliseconds timeout() const override { return timeout_; }

  private:
    static net::Task<void> set_status(etcd::Client client, std::string key, std::string status,
                                      std::int64_t lease) {
        auto r = co_await modify(client, key, lease, [&status](discovery::InstanceInfo& in) {
            if (in.status == status) return false;
            in.status = status;
            return true;
        });
        // Gone or re-registered meanwhile: nothing to do. Otherwise the next check tries again.
        if (!r.revision && r.revision.error() != core::errc::not_found)
            telemetry::warn("registry: a status change could not be written",
                            {{"key", key}, {"status", status}, {"error", r.problem}});
    }

    // Applies every change the watch brings; reads everything again when it cannot go on.
    net::Task<void> follow(std::int64_t from) {
        auto on_batch = [this](const etcd::WatchBatch& batch) {
            std::vector<StoredInstance> changes;
            for (const auto& e : batch.events) {
                if (e.type == etcd::Event::Type::put) {
                    if (auto st = keys_.read(e.kv)) changes.push_back(std::move(*st));
                    continue;
                }
                StoredInstance gone;
                gone.revision = static_cast<std::uint64_t>(e.kv.mod_revision);
                if (keys_.split(e.kv.key, gone.service, gone.id)) changes.push_back(std::move(gone));
            }
            if (!changes.empty()) catalog_->apply(std::move(changes));
            return true;
        };
        auto on_interrupted = [](const ErrorCode& why, std::size_t) {
            telemetry::warn("registry: the catalog's watch resumes on another etcd member",
                            {{"why", why.message()}});
        };
        while (true) {
            std::string why;
            try {
                auto end = co_await client_.watch(etcd::WatchRequest::with_prefix(keys_.dir(), from),
                                                  on_batch, on_interrupted);
                why = end.error.message();
            } catch (const std::exception& e) {
                why = e.what();
            }
            telemetry::warn("registry: the catalog's watch ended; reading the whole catalog again",
                            {{"why", why}});
            while (true) {
                auto loaded = co_await load(client_, keys_);
                if (loaded) {
                    from = loaded->revision + 1;
                    catalog_->replace_all(static_cast<std::uint64_t>(loaded->revision),
                                          std::move(loaded->instances));
                    break;
                }
                telemetry::warn("registry: cannot read the catalog from etcd; trying again",
                                {{"error", loaded.error().message()}});
                co_await net::sleep_for(std::chrono::seconds(1));
            }
        }
    }

    // The renewing thread: keeps alive the leases of instances that heartbeat.
    void renew() {
        while (true) {
            {
                std::unique_lock lock(mutex_);
                if (wake_.wait_for(lock, kRenewEvery, [this] { return stopping_; })) return;
            }
            auto due = catalog_->leases_due();
            std::size_t failures = 0;
            std::string last_error;
            for (std::size_t i = 0; i < due.size(); i += kRenewBatch) {
                std::vector<std::future<Result<etcd::Lease>>> futures;
                for (std::size_t j = i; j < std::min(due.size(), i + kRenewBatch); ++j)
                    futures.push_back(
                        net::start(runtime_.executor(0), client_.lease_keep_alive_once(due[j])));
                auto deadline = std::chrono::steady_clock::now() + timeout_ + kWaitMargin;
                for (auto& f : futures) {
                    if (f.wait_until(deadline) != std::future_status::ready) {
                        ++failures;
                        last_error = "no answer in time";
                        continue;
                    }
                    try {
                        auto r = f.get();
                        // A lease that ran out: its instance is gone for every registry (the watch
                        // says so) and registers again at its next heartbeat.
                        if (!r && r.error() != etcd::errc::lease_not_found) {
                            ++failures;
                            last_error = r.error().message();
                        }
                    } catch (const std::exception& e) {
                        ++failures;
                        last_error = e.what();
                    }
                }
                std::lock_guard lock(mutex_);
                if (stopping_) return;
            }
            if (failures)
                telemetry::warn("registry: leases could not be renewed",
                                {{"failed", static_cast<std::int64_t>(failures)}, {"error", last_error}});
        }
    }

    const milliseconds timeout_;
    etcd::Client client_;
    const Keys keys_;
    Catalog* catalog_ = nullptr;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread renewer_;
    net::Runtime runtime_{1};
    std::thread io_;  // last: it runs runtime_, which must exist first
};

}  // namespace

std::unique_ptr<SharedStore> open_etcd_catalog(etcd::Settings cluster, std::string prefix) {
    if (cluster.members.empty())
        throw std::invalid_argument("the registry's etcd catalog needs at least one member");
    if (prefix.empty())
        throw std::invalid_argument(
            "the registry's etcd catalog needs a key prefix, such as /plexus/registry/");
    if (prefix.back() != '/') prefix += '/';
    return std::make_unique<EtcdCatalog>(std::move(cluster), std::move(prefix));
}

}  // namespace plexus::registry
