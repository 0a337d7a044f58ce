// Built when TSE_WITH_CUDA is off: every CUDA entry point reports that clearly.
#include "src/core/cuda_backend.hpp"
#include "tse/core/error.hpp"

namespace tse::cuda {
namespace {
[[noreturn]] void no_cuda() { throw ValueError("cuda: libtse was built without CUDA (TSE_WITH_CUDA=OFF)"); }
}  // namespace
int device_count() { return 0; }
void* allocate(size_t, int) { no_cuda(); }
void deallocate(void*, size_t, int) noexcept {}
size_t cached_bytes(int) { no_cuda(); }
void empty_cache() {}
void copy_host_to_device(void*, const void*, size_t, int) { no_cuda(); }
void copy_device_to_host(void*, const void*, size_t, int) { no_cuda(); }
void copy_device_to_device(void*, const void*, size_t, int) { no_cuda(); }
size_t device_to_host_copies() { return 0; }
}  // namespace tse::cuda
