#pragma once
// Storage: a refcounted buffer (pointer, bytes, device) with the version counter that autograd
// uses to reject saved tensors modified in place. CPU memory comes from a caching, 64-byte-aligned
// allocator (fresh page-faulting allocations made timings swing by +-40% on these VMs).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "tse/core/device.hpp"
#include "tse/export.hpp"

namespace tse {

class TSE_API Storage {
 public:
  using Deleter = std::function<void(void*)>;

  /// Allocates nbytes on device (uninitialised).
  Storage(size_t nbytes, Device device);
  /// Wraps external memory (numpy, DLPack): deleter runs when the last tensor lets go.
  Storage(void* data, size_t nbytes, Device device, Deleter deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

  /// Data a cache derived from these bytes (autocast's bf16 copy of a weight), freed with this
  /// storage. Its owner synchronises access and checks version() itself.
  std::shared_ptr<void>& derived() { return derived_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Deleter deleter_;  // empty: memory belongs to our allocator
  std::atomic<uint64_t> version_{0};
  std::shared_ptr<void> derived_;
};

namespace memory {
/// Bytes held in the CPU allocator's free lists.
TSE_API size_t cpu_cached_bytes();
/// Bytes held in CUDA device `device`'s allocator cache (ValueError without that device).
TSE_API size_t cuda_cached_bytes(int device = 0);
/// Returns the cached blocks of the CPU allocator and of every CUDA device to the system.
TSE_API void empty_cache();
/// Caching can be disabled (e.g. under AddressSanitizer) with TSE_CPU_ALLOCATOR_CACHE=0.
TSE_API bool cpu_cache_enabled();
}  // namespace memory

}  // namespace tse
