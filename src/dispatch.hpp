#pragma once
// The per-op kernel table (PyTorch's DispatchStub idea, explicit): each op family keeps one
// KernelTable per kernel signature, filled with the CPU kernel from src/cpu/ and, when built,
// the CUDA kernel from src/cuda/. Ops call table.get(device) and never #ifdef themselves.
#include "tse/core/device.hpp"
#include "tse/core/error.hpp"

namespace tse::detail {

template <typename Fn>
struct KernelTable {
  const char* name;
  Fn* cpu = nullptr;
  Fn* cuda = nullptr;

  /// The kernel for device d; NotImplementedError naming op (default: the table's name) if none.
  Fn* get(Device d, const char* op = nullptr) const {
    Fn* f = d.is_cpu() ? cpu : cuda;
    if (!f) throw NotImplementedError(str_cat(op ? op : name, ": no kernel for device ", d, " yet"));
    return f;
  }
};

}  // namespace tse::detail

#ifdef TSE_WITH_CUDA
#define TSE_CUDA_KERNEL(fn) (&(fn))
#else
#define TSE_CUDA_KERNEL(fn) nullptr
#endif
