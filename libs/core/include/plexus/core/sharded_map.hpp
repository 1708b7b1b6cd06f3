#pragma once
/// A bounded map from strings to values that many threads use at once: keys are spread over
/// shards, each with its own short lock (held for one lookup and what the caller does with the
/// value). When a shard is full, a new key first evicts the entry whose `rank` is lowest (the
/// oldest bucket, the token that expires soonest). Keys are looked up by string_view, without a
/// copy.
#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace plexus::core {

/// `Rank` maps a value to something ordered: the entry with the lowest goes first when full.
template <class Value, class Rank>
class ShardedMap {
  public:
    explicit ShardedMap(std::size_t max_entries, Rank rank = {})
        : rank_(std::move(rank)), max_per_shard_(std::max<std::size_t>(1, max_entries / kShards)) {}

    /// Calls `f(const Value*)` under the key's shard lock: the value, or null when absent.
    template <class F>
    decltype(auto) find(std::string_view key, F&& f) const {
        const auto& shard = shard_of(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.entries.find(key);
        return f(it == shard.entries.end() ? nullptr : &it->second);
    }

    /// Calls `f(Value&)` under the key's shard lock, on the key's value; a missing key is first
    /// added as `make()` (evicting the lowest-ranked entry when the shard is full).
    template <class Make, class F>
    decltype(auto) upsert(std::string_view key, Make&& make, F&& f) {
        auto& shard = shard_of(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.entries.find(key);
        if (it == shard.entries.end()) {
            if (shard.entries.size() >= max_per_shard_) {
                shard.entries.erase(std::min_element(
                    shard.entries.begin(), shard.entries.end(),
                    [this](const auto& a, const auto& b) { return rank_(a.second) < rank_(b.second); }));
            }
            it = shard.entries.emplace(std::string(key), make()).first;
        }
        return f(it->second);
    }

    /// The number of entries now.
    std::size_t size() const {
        std::size_t n = 0;
        for (const auto& s : shards_) {
            std::lock_guard lock(s.mutex);
            n += s.entries.size();
        }
        return n;
    }

  private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, Value, Hash, std::equal_to<>> entries;
    };
    static constexpr std::size_t kShards = 16;

    Shard& shard_of(std::string_view key) { return shards_[Hash{}(key) % kShards]; }
    const Shard& shard_of(std::string_view key) const { return shards_[Hash{}(key) % kShards]; }

    Rank rank_;
    std::size_t max_per_shard_;
    std::array<Shard, kShards> shards_;
};

}  // namespace plexus::core
