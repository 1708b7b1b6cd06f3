#pragma once
/// A bounded map from strings to values that many threads use at once: keys are spread over
/// shards, each with its own short lock (held for one lookup and what the caller does with the
/// value). When a shard is full, a new key first evicts the entry whose `rank` is lowest (the
/// oldest bucket, the token that expires soonest). Keys are looked up by string_view, without a
/// copy, and hashed once (a bearer token is hundreds of bytes): the shard comes from the same hash
/// the shard's table uses.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
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
        const Hashed k{key, Hash{}(key)};
        const auto& shard = shards_[shard_index(k.hash)];
        std::lock_guard lock(shard.mutex);
        auto it = shard.entries.find(k);
        return f(it == shard.entries.end() ? nullptr : &it->second);
    }

    /// Calls `f(Value&)` under the key's shard lock, on the key's value; a missing key is first
    /// added as `make()` (evicting the lowest-ranked entry when the shard is full).
    template <class Make, class F>
    decltype(auto) upsert(std::string_view key, Make&& make, F&& f) {
        const Hashed k{key, Hash{}(key)};
        auto& shard = shards_[shard_index(k.hash)];
        std::lock_guard lock(shard.mutex);
        auto it = shard.entries.find(k);
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
    // A key looked up with its hash already computed.
    struct Hashed {
        std::string_view key;
        std::size_t hash;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
        std::size_t operator()(const Hashed& k) const noexcept { return k.hash; }
    };
    struct Equal {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
        bool operator()(const Hashed& a, std::string_view b) const noexcept { return a.key == b; }
        bool operator()(std::string_view a, const Hashed& b) const noexcept { return a == b.key; }
    };
    struct Shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, Value, Hash, Equal> entries;
    };
    static constexpr std::size_t kShards = 16;

    // The hash's top bits, spread: the table takes the hash modulo a prime, so the shards do
    // not each end up with a slice of its buckets.
    static std::size_t shard_index(std::size_t hash) noexcept {
        static_assert(kShards == 16, "the top four bits pick the shard");
        return static_cast<std::size_t>((static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ull) >> 60);
    }

    Rank rank_;
    std::size_t max_per_shard_;
    std::array<Shard, kShards> shards_;
};

}  // namespace plexus::core
