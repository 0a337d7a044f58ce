// CUDA memory and copies for the core (see src/core/cuda_backend.hpp). Device memory comes from
// one caching allocator per device (src/core/caching_allocator.hpp), so steady state makes no
// cudaMalloc / cudaFree calls (both synchronise the device).
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/core/caching_allocator.hpp"
#include "src/core/cuda_backend.hpp"
#include "src/cuda/cuda_check.hpp"

namespace tse::cuda {
namespace {
std::atomic<size_t> g_d2h{0};

void set_device(int device) {
  const int n = device_count();
  TSE_CHECK(device >= 0 && device < n, "cuda: device ", device, " is not available (", n, " visible)");
  TSE_CUDA_CHECK(cudaSetDevice(device));
}

/// The device's allocator, made on first use. Device memory is not bounded by a cache limit: a
/// failed cudaMalloc returns the cache and retries, as PyTorch's allocator does.
tse::detail::CachingAllocator& device_allocator(int device) {
  static std::vector<std::unique_ptr<tse::detail::CachingAllocator>>* allocators = [] {
    auto* v = new std::vector<std::unique_ptr<tse::detail::CachingAllocator>>();  // leaked: outlives storages
    for (int d = 0; d < device_count(); ++d) {
      v->push_back(std::make_unique<tse::detail::CachingAllocator>(
          tse::detail::str_cat("CUDA allocator (device ", d, ")"),
          [d](size_t n) -> void* {
            set_device(d);
            void* p = nullptr;
            const cudaError_t err = cudaMalloc(&p, n);
            if (err == cudaErrorMemoryAllocation) {
              cudaGetLastError();  // clear it: the caller returns the cache and retries
              return nullptr;
            }
            TSE_CUDA_CHECK(err);
            return p;
          },
          [d](void* p) {
            if (cudaSetDevice(d) == cudaSuccess) cudaFree(p);
          },
          SIZE_MAX, true));
    }
    return v;
  }();
  TSE_CHECK(device >= 0 && device < static_cast<int>(allocators->size()), "cuda: device ", device,
            " is not available (", allocators->size(), " visible)");
  return *(*allocators)[static_cast<size_t>(device)];
}
}  // namespace

int device_count() {
  static const int n = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return count;
  }();
  return n;
}

void* allocate(size_t nbytes, int device) { return device_allocator(device).allocate(nbytes); }

void deallocate(void* ptr, size_t nbytes, int device) noexcept {
  device_allocator(device).deallocate(ptr, nbytes);
}

size_t cached_bytes(int device) { return device_allocator(device).stats().cached_bytes; }

void empty_cache() {
  for (int d = 0; d < device_count(); ++d) device_allocator(d).release_all();
}

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device) {
  set_device(device);
  TSE_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device) {
  set_device(device);
  g_d2h.fetch_add(1, std::memory_order_relaxed);
  TSE_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
}

void copy_device_to_device(void* dst, const void* src, size_t nbytes, int device) {
  set_device(device);
  TSE_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToDevice));
}

size_t device_to_host_copies() { return g_d2h.load(); }

}  // namespace tse::cuda
