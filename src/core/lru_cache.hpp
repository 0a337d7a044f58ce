#pragma once
// A bounded, thread-safe LRU map: the one cache structure behind the oneDNN primitive cache and
// the FFTW plan cache. Values are cheap handles (shared ownership), returned by copy, so an
// entry evicted while another thread still uses its value stays alive until that use ends.
//
// Creating a value is slow (JIT compilation, FFT planning) and happens outside the lock:
//   if (auto v = cache.find(key)) return *v;          // counts a hit or a miss
//   Value made = make();                               // concurrent misses may both make one
//   return cache.insert(key, std::move(made));         // the first insertion wins
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace tse::detail {

struct LruCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  size_t size = 0;
  size_t capacity = 0;
};

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  /// The value cached for key (now the most recently used), or nullopt.
  std::optional<Value> find(const Key& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) {
      ++misses_;
      return std::nullopt;
    }
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
  }

  /// Caches value under key and returns it; if another thread inserted key meanwhile, returns
  /// that value instead. Capacity 0 caches nothing.
  Value insert(const Key& key, Value value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (capacity_ == 0) return value;
    auto it = map_.find(key);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
    lru_.emplace_front(key, std::move(value));
    map_.emplace(key, lru_.begin());
    evict_locked();
    return lru_.front().second;
  }

  /// Capacity 0 disables caching; shrinking evicts the least recently used entries.
  void set_capacity(size_t capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    capacity_ = capacity;
    evict_locked();
  }

  LruCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {hits_, misses_, lru_.size(), capacity_};
  }

 private:
  void evict_locked() {
    while (lru_.size() > capacity_) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

  using Entry = std::pair<Key, Value>;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<Key, typename std::list<Entry>::iterator, Hash> map_;
  size_t capacity_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace tse::detail
