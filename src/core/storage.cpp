// Storage, and the CPU instance of the caching allocator (src/core/caching_allocator.hpp): blocks
// are 64-byte aligned (AVX-512-width loads, FFTW new-array execution, oneDNN); device memory goes
// through the CUDA backend's instances (src/cuda/runtime.cu).
#include "tse/core/storage.hpp"

#include <cstdlib>
#include <string>

#include "src/core/caching_allocator.hpp"
#include "src/core/cuda_backend.hpp"
#include "tse/core/error.hpp"

namespace tse {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kMaxCachedBytes = size_t(2) << 30;

detail::CachingAllocator& cpu_allocator() {
  // Leaked on purpose: storages may die during static destruction.
  static auto* a = [] {
    const char* v = std::getenv("TSE_CPU_ALLOCATOR_CACHE");  // "0": every block straight to malloc/free
    return new detail::CachingAllocator(
        "CPU allocator", [](size_t n) { return std::aligned_alloc(kAlign, n); }, [](void* p) { std::free(p); },
        kMaxCachedBytes, !(v && std::string(v) == "0"));
  }();
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
size_t cpu_cached_bytes() { return cpu_allocator().stats().cached_bytes; }
size_t cuda_cached_bytes(int device) {
  TSE_CHECK(device >= 0 && device < cuda::device_count(), "cuda_cached_bytes: CUDA device ", device,
            " is not available (", cuda::device_count(), " visible)");
  return cuda::cached_bytes(device);
}
void empty_cache() {
  cpu_allocator().release_all();
  cuda::empty_cache();
}
bool cpu_cache_enabled() { return cpu_allocator().enabled(); }
}  // namespace memory

}  // namespace tse
