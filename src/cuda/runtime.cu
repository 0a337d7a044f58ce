// CUDA memory and copies for the core (see src/core/cuda_backend.hpp).
// Allocation goes straight to cudaMalloc for now; the caching allocator comes with the CUDA
// backend issue.
#include <atomic>

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

void* allocate(size_t nbytes, int device) {
  set_device(device);
  void* p = nullptr;
  TSE_CUDA_CHECK(cudaMalloc(&p, nbytes == 0 ? 1 : nbytes));
  return p;
}

void deallocate(void* ptr, size_t, int device) noexcept {
  if (cudaSetDevice(device) == cudaSuccess) cudaFree(ptr);
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
