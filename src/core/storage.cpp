// Storage and the CPU caching allocator.
//
// The allocator rounds requests up to a size class (64 B granularity below 4 KiB, then 4 classes
// per power of two) and keeps freed blocks in per-class free lists, up to a bound on cached bytes,
// so steady-state training and inference stop calling malloc and page-faulting fresh memory.
// Blocks are 64-byte aligned (AVX-512-width loads, FFTW new-array execution, oneDNN).
#include "tse/core/storage.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "src/core/cuda_backend.hpp"
#include "tse/core/error.hpp"

namespace tse {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMaxCachedBytes = size_t(2) << 30;

size_t size_class(size_t n) {
  if (n == 0) return kAlign;
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 4096;
  while (p < n) p <<= 1;       // p = next power of two >= n
  const size_t q = p / 8;      // four classes between p/2 and p
  return (n + q - 1) / q * q;
}

class CpuAllocator {
 public:
  CpuAllocator() {
    const char* v = std::getenv("TSE_CPU_ALLOCATOR_CACHE");
    enabled_ = !(v && std::string(v) == "0");
  }
  ~CpuAllocator() {
    enabled_ = false;
    release_all();
  }

  void* allocate(size_t nbytes) {
    const size_t cls = size_class(nbytes);
    if (enabled_) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlign, cls);
    if (!p) {
      release_all();  // give the cache back and retry once
      p = std::aligned_alloc(kAlign, cls);
    }
    if (!p) throw Error("CPU allocator: out of memory allocating " + std::to_string(nbytes) + " bytes");
    return p;
  }

  void deallocate(void* p, size_t nbytes) noexcept {
    const size_t cls = size_class(nbytes);
    if (enabled_) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + cls <= kMaxCachedBytes) {
        try {
          free_[cls].push_back(p);
          cached_ += cls;
          return;
        } catch (...) {  // bookkeeping failed: just free it
        }
      }
    }
    std::free(p);
  }

  void release_all() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [cls, list] : free_)
      for (void* p : list) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }
  bool enabled() const { return enabled_; }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  bool enabled_ = true;
};

CpuAllocator& cpu_allocator() {
  static auto* a = new CpuAllocator();  // leaked on purpose: storages may die during static destruction
  return *a;
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    data_ = cpu_allocator().allocate(nbytes);
  } else {
    data_ = cuda::allocate(nbytes, device.index);
  }
}

Storage::Storage(void* data, size_t nbytes, Device device, Deleter deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (deleter_) {
    deleter_(data_);
  } else if (device_.is_cpu()) {
    cpu_allocator().deallocate(data_, nbytes_);
  } else {
    cuda::deallocate(data_, nbytes_, device_.index);
  }
}

namespace memory {
size_t cpu_cached_bytes() { return cpu_allocator().cached(); }
void empty_cache() { cpu_allocator().release_all(); }
bool cpu_cache_enabled() { return cpu_allocator().enabled(); }
}  // namespace memory

}  // namespace tse
