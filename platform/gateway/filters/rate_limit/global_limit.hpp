#pragma once
/// Global rate limits: token buckets kept by the limit service (`plexus limits`) and shared by
/// every gateway, spent locally. A gateway leases `batch` tokens of a key's bucket at a time and
/// spends them without asking anyone; when a key's lease runs below half a batch it asks for more
/// in the background, and the leases of all keys and routes that need one travel in one request
/// (while one request is in flight, the next batch gathers). Only a key with no tokens left waits
/// for the service; a key the service refused is refused locally until its retry time. Leased
/// tokens not spent within a second are dropped.
///
/// Worst-case overshoot: the service hands out only what the shared bucket holds, so over any
/// interval T the gateways admit at most burst + rate·T + G·1.5·batch requests (G gateways, each
/// holding at most one and a half batches of a key when the interval starts). While the service
/// cannot be reached, each gateway falls back to a local bucket with the same settings (up to G
/// times the limit), logged once per outage.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/core/clock.hpp"
#include "plexus/core/sharded_map.hpp"
#include "plexus/net/client.hpp"
#include "plexus/net/signal.hpp"
#include "plexus/net/task.hpp"
#include "plexus/resilience/token_buckets.hpp"

namespace plexus::gateway::filters {

class LeaseBatcher;

/// One route's global limit.
class GlobalLimit : public std::enable_shared_from_this<GlobalLimit> {
  public:
    /// `name`: the limit's name at the service (the route's); `batch`: tokens per lease.
    GlobalLimit(std::string name, resilience::BucketSettings settings, std::int64_t batch,
                std::shared_ptr<LeaseBatcher> batcher, core::Clock& clock);

    enum class Verdict : std::uint8_t { allowed, refused, wait };
    struct Decision {
        Verdict verdict = Verdict::wait;
        std::int64_t remaining = 0;                ///< tokens this gateway holds for the key
        std::chrono::milliseconds retry_after{0};  ///< refused: when to try again
    };
    /// The hot path: spends a leased token (asking for more in the background when low), refuses a
    /// key the service refused, or says `wait` when the key has no lease.
    Decision take(std::string_view key);
    /// After `wait`: leases tokens (in the next batch) and decides; never `wait`.
    net::Task<Decision> take_async(std::string key);

    // For the batcher.
    const std::string& name() const noexcept { return name_; }
    const resilience::BucketSettings& settings() const noexcept { return settings_; }
    std::int64_t batch() const noexcept { return batch_; }
    void granted(const std::string& key, std::int64_t tokens, std::chrono::milliseconds retry_after);
    void failed(const std::string& key);

  private:
    struct Lease {
        std::int64_t tokens = 0;
        core::SteadyTime expires{}, refused_until{};
        bool asking = false;
    };
    // When full, a key that holds nothing and waits for nothing goes first, else any.
    struct Idle {
        int operator()(const Lease& l) const noexcept { return l.tokens == 0 && !l.asking ? 0 : 1; }
    };
    Decision fallback(std::string_view key);

    std::string name_;
    resilience::BucketSettings settings_;
    std::int64_t batch_;
    std::shared_ptr<LeaseBatcher> batcher_;
    core::Clock& clock_;
    core::ShardedMap<Lease, Idle> leases_;
    resilience::TokenBuckets local_;                  // while the service cannot be reached
    std::atomic<std::int64_t> degraded_until_ms_{0};  // steady clock, ms since its epoch
};

/// The leases every global limit of a gateway asks for, sent to the limit service in batches by
/// one loop (started on the gateway's background executor). Shared through the FilterState.
class LeaseBatcher : public std::enable_shared_from_this<LeaseBatcher> {
  public:
    /// `limits_uri`: http://host:port; throws std::invalid_argument otherwise.
    explicit LeaseBatcher(const std::string& limits_uri);
    /// Starts the loop on `ex` once; it ends when the batcher is gone.
    void start(net::Executor ex);
    /// Queues a lease of `key` for `limit` (for the next batch).
    void ask(std::shared_ptr<GlobalLimit> limit, std::string key);
    /// Signalled after each batch's answers have been applied.
    net::Signal& answered() noexcept { return answered_; }
    bool started() const noexcept { return started_.load(); }

  private:
    struct Ask {
        std::weak_ptr<GlobalLimit> limit;
        std::string key;
    };
    static net::Task<void> loop(std::weak_ptr<LeaseBatcher> weak);
    net::Task<void> send(std::vector<Ask> batch);

    net::Endpoint endpoint_;
    std::string uri_;
    std::mutex mutex_;
    std::vector<Ask> pending_;
    net::Signal work_, answered_;
    std::atomic<bool> started_{false};
    bool failing_ = false;  // the loop's own
};

}  // namespace plexus::gateway::filters
