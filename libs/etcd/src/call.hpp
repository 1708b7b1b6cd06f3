#pragma once
// What the client's calls share: the member list with the member that answered last, and the
// unary call with failover that every key, lease and status call goes through.

#include <algorithm>
#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "plexus/etcd/client.hpp"

namespace plexus::etcd {

struct Client::State {
    explicit State(Settings s) : settings(std::move(s)) {}
    const Settings settings;
    std::atomic<std::size_t> preferred{0};

    /// Makes `next` the member to try first unless another call already moved on from `failed`.
    void move_on(std::size_t failed, std::size_t next) noexcept {
        preferred.compare_exchange_strong(failed, next, std::memory_order_relaxed);
    }
};

namespace detail {

/// Whether a call only reads: reads are repeated on the next member after any failure, writes
/// only when the member certainly did not apply them.
enum class CallKind { read, write };

/// "member 127.0.0.1:2379", for error details.
std::string member_name(const net::Endpoint& ep);

/// A POST of `body` (JSON) to the gateway path `path`, with `hasleader` gRPC metadata.
net::Request gateway_request(std::string_view path, std::string body);

/// Sends one call, moving on through the members as the client's comment describes, and returns
/// the JSON of the answer. `only_member` pins the call to one member (no failover).
net::Task<Result<boost::json::value>> call(std::shared_ptr<Client::State> state,
                                           std::chrono::milliseconds timeout, std::string path,
                                           std::string body, CallKind kind,
                                           std::optional<std::size_t> only_member = std::nullopt);

/// The watch loop behind Client::watch.
net::Task<WatchEnd> run_watch(std::shared_ptr<Client::State> state, WatchRequest request,
                              WatchHandler on_batch, WatchInterruptionHandler on_interrupted);

/// The longest pause between rounds over the members.
inline constexpr std::chrono::milliseconds kMaxBackoff{1000};

/// Going round the members after failures, for calls and watches: the member to try, and a pause
/// once every member failed in a round (Settings::retry_backoff, doubling up to kMaxBackoff).
class MemberRounds {
  public:
    /// Starting at `first`, or at the member that answered last.
    explicit MemberRounds(const Client::State& state, std::optional<std::size_t> first = std::nullopt)
        : index_(first.value_or(state.preferred.load(std::memory_order_relaxed)) %
                 state.settings.members.size()),
          backoff_(state.settings.retry_backoff) {}

    std::size_t index() const noexcept { return index_; }

    /// Member index() failed: moves on to the next (for every call of `state` too). The pause to
    /// take before trying it: zero until a whole round has failed.
    std::chrono::milliseconds failed(Client::State& state) noexcept {
        auto next = (index_ + 1) % state.settings.members.size();
        state.move_on(index_, next);
        index_ = next;
        if (++failed_in_round_ < state.settings.members.size()) return std::chrono::milliseconds::zero();
        failed_in_round_ = 0;
        auto pause = backoff_;
        backoff_ = std::min(backoff_ * 2, kMaxBackoff);
        return pause;
    }

    /// Progress made: the next failure starts a fresh round.
    void progress(const Client::State& state) noexcept {
        failed_in_round_ = 0;
        backoff_ = state.settings.retry_backoff;
    }

  private:
    std::size_t index_;
    std::size_t failed_in_round_ = 0;
    std::chrono::milliseconds backoff_;
};

}  // namespace detail
}  // namespace plexus::etcd
