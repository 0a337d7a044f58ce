#pragma once
// Internal: the CUDA runtime calls the core needs (memory, copies). Implemented in
// src/cuda/runtime.cu when TSE_WITH_CUDA, else by stubs that throw a clear error.
#include <cstddef>

#include "tse/export.hpp"

namespace tse::cuda {

int device_count();  // 0 without GPU or driver; never throws
void* allocate(size_t nbytes, int device);
void deallocate(void* ptr, size_t nbytes, int device) noexcept;
/// Bytes in the device's allocator cache; empty_cache() returns every device's cache.
size_t cached_bytes(int device);
void empty_cache();
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_device(void* dst, const void* src, size_t nbytes, int device);
/// Number of device-to-host copies made so far (tests check models make none mid-forward).
TSE_API size_t device_to_host_copies();

}  // namespace tse::cuda
