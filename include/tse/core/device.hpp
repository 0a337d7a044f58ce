#pragma once
#include <ostream>
#include <string>

#include "tse/export.hpp"

namespace tse {

enum class DeviceType : uint8_t { CPU, CUDA };

/// Where a tensor's storage lives. Every op runs where its inputs are; mixing devices is an error.
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  constexpr bool operator==(const Device&) const = default;
  std::string str() const { return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index); }
  /// Parses "cpu", "cuda", "cuda:1".
  TSE_API static Device parse(const std::string& s);
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

/// Whether libtse was built with CUDA, and how many GPUs are visible (0 without a GPU or driver).
TSE_API bool cuda_built();
TSE_API int cuda_device_count();
TSE_API bool cuda_is_available();

/// Whether CUDA float32 GEMMs may round their operands to TF32 on the tensor cores (about 1e-3
/// relative error instead of float32's 1e-6). Off by default, like PyTorch's
/// torch.backends.cuda.matmul.allow_tf32; bf16 autocast is the faster, stated-precision route.
TSE_API void set_cuda_allow_tf32(bool on);
TSE_API bool cuda_allow_tf32();

}  // namespace tse
