#pragma once
// The one caching scheme behind every Storage: CPU memory (one instance) and CUDA device memory
// (one instance per device) both round requests up to a size class and keep freed blocks in
// per-class free lists, up to a bound on cached bytes, so steady-state training and inference
// stop calling the system allocator (malloc's page faults on the CPU, cudaMalloc's device
// synchronisation on the GPU).
//
// Size classes: 64 B granularity up to 4 KiB, then four classes per power of two (at most 25%
// over the request). A failed raw allocation returns the whole cache and retries once.
//
// CUDA blocks are reused as soon as their Storage dies, while kernels may still read them: safe
// because every CUDA op of libtse runs on the device's default stream, in order, so the next
// user's kernels start after the last reader's.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tse/core/error.hpp"

namespace tse::detail {

struct CachingAllocatorStats {
  size_t cached_bytes = 0;  // in the free lists
  uint64_t raw_allocations = 0;
  uint64_t raw_frees = 0;
  uint64_t reuses = 0;  // requests served from a free list
};

class CachingAllocator {
 public:
  /// raw_alloc(bytes) returns nullptr when out of memory; raw_free releases what it returned.
  /// name appears in the out-of-memory error ("CPU allocator", "CUDA allocator (device 0)").
  CachingAllocator(std::string name, std::function<void*(size_t)> raw_alloc, std::function<void(void*)> raw_free,
                   size_t max_cached_bytes, bool enabled)
      : name_(std::move(name)),
        raw_alloc_(std::move(raw_alloc)),
        raw_free_(std::move(raw_free)),
        max_cached_(max_cached_bytes),
        enabled_(enabled) {}
  ~CachingAllocator() { release_all(); }

  static size_t size_class(size_t n) {
    constexpr size_t kGranule = 64;
    if (n == 0) return kGranule;
    if (n <= 4096) return (n + kGranule - 1) / kGranule * kGranule;
    size_t p = 4096;
    while (p < n) p <<= 1;   // p = next power of two >= n
    const size_t q = p / 8;  // four classes between p/2 and p
    return (n + q - 1) / q * q;
  }

  void* allocate(size_t nbytes) {
    const size_t cls = size_class(nbytes);
    if (enabled_) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.cached_bytes -= cls;
        ++stats_.reuses;
        return p;
      }
    }
    // The raw allocator runs outside the lock: threads' scratch misses need not queue.
    void* p = raw_alloc_(cls);
    if (!p) {
      release_all();  // give the cache back and retry once
      p = raw_alloc_(cls);
    }
    if (!p) throw Error(name_ + ": out of memory allocating " + std::to_string(nbytes) + " bytes");
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.raw_allocations;
    return p;
  }

  void deallocate(void* p, size_t nbytes) noexcept {
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    if (enabled_ && stats_.cached_bytes + cls <= max_cached_) {
      try {
        free_[cls].push_back(p);
        stats_.cached_bytes += cls;
        return;
      } catch (...) {  // bookkeeping failed: just free it
      }
    }
    raw_free_(p);
    ++stats_.raw_frees;
  }

  /// Returns every cached block to the raw allocator.
  void release_all() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    release_locked();
  }

  CachingAllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  bool enabled() const { return enabled_; }

 private:
  void release_locked() noexcept {
    for (auto& [cls, list] : free_)
      for (void* p : list) {
        raw_free_(p);
        ++stats_.raw_frees;
      }
    free_.clear();
    stats_.cached_bytes = 0;
  }

  std::string name_;
  std::function<void*(size_t)> raw_alloc_;
  std::function<void(void*)> raw_free_;
  size_t max_cached_;
  bool enabled_;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  CachingAllocatorStats stats_;
};

}  // namespace tse::detail
