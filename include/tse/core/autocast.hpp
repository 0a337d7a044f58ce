#pragma once
/// \file autocast.hpp
/// Mixed precision for the GEMM family: inside an AutocastGuard, this thread's float32 matmul,
/// bmm and linear read their operands rounded to bfloat16 (round to nearest even) and accumulate
/// the products in float32. Every tensor stays float32 (outputs, biases, gradients, parameters):
/// only the GEMMs' inputs lose precision, so the ops between GEMMs (norms, softmax, residual
/// sums) keep full precision, unlike casting whole activations to bf16. An op recorded for
/// autograd under the guard runs its backward GEMMs the same way, whatever the mode at
/// backward() time. float64 ops are never autocast (gradchecks stay exact).
///
/// Speed: on CPUs with bf16 dot products (AVX512_BF16, AMX) oneDNN's bf16 GEMMs run at about
/// twice the f32 rate. Elsewhere the same rounding is applied and the GEMM runs in f32, so
/// results agree across machines to f32 accumulation order, and nothing gets faster.
///
/// The weights of linear() are converted once and cached beside their storage: the copy is
/// reused while the weight's version counter is unchanged (optimizer steps and in-place ops bump
/// it), and freed with the weight. Writes through an outside alias of the memory (a NumPy view)
/// are not versioned: call autocast::clear_cache() after such writes.
///
/// \code
///   tse::AutocastGuard bf16;           // this scope: bf16 GEMMs
///   Tensor est = model->forward(mix, query);
/// \endcode
#include <cstddef>

#include "tse/core/device.hpp"
#include "tse/core/dtype.hpp"
#include "tse/export.hpp"

namespace tse {

namespace autocast {
/// The GEMM operand dtype in this thread: DType::bf16 inside an enabled guard, else DType::f32
/// (off).
TSE_API DType dtype();
inline bool is_enabled() { return dtype() != DType::f32; }
/// Sets this thread's mode: DType::bf16 (on) or DType::f32 (off); ValueError for anything else
/// (f16 autocast is a GPU feature; CPU has no f16 GEMM). AutocastGuard is the scoped form.
TSE_API void set_dtype(DType dtype);
/// Whether device runs bf16 GEMMs natively (CPU: oneDNN reports AVX512_BF16 or AMX; CUDA: any
/// visible GPU, through cuBLAS); false means autocast is emulated there (same rounding, f32 speed).
TSE_API bool native_bf16(Device device = Device::cpu());
/// Bytes held by cached bf16 copies of weights.
TSE_API size_t cached_bytes();
/// Drops every cached weight copy (they are rebuilt on the next autocast GEMM).
TSE_API void clear_cache();
}  // namespace autocast

/// Sets this thread's autocast mode for its lifetime and restores the previous one: enabled with
/// DType::bf16 turns it on, enabled = false turns it off inside an enclosing guard.
class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled = true, DType dtype = DType::bf16) : prev_(autocast::dtype()) {
    autocast::set_dtype(enabled ? dtype : DType::f32);
  }
  ~AutocastGuard() { autocast::set_dtype(prev_); }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType prev_;
};

}  // namespace tse
