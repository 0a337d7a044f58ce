#pragma once
// Internal kernel interface of the matmul family (matmul, bmm, linear and their backward GEMMs).
// The op layer has checked shapes and dtypes, allocated out and arranged the operands; one
// kernel computes every GEMM of the family, forward and backward.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// out (batch..., M, N) = a (batch..., M, K) @ b (batch..., K, N) [+ bias (N)].
/// a, b and out have one rank >= 2 and one floating dtype, except that autocast's bf16 a and b
/// produce a f32 out (and take a f32 bias). Each batch dim of a and b equals out's
/// or is 1 (broadcast); a batch dim of stride 0 is a broadcast too. a and b are
/// matmul_operand_ok (any batch strides); out is contiguous; bias is undefined or contiguous (N).
/// Overwrites out; K == 0 gives bias (or zeros).
using MatmulFn = void(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias);

/// True when the last two dims of t form a row-major or column-major matrix (unit stride along
/// one of them, a leading stride covering the other), the layouts a GEMM reads without a copy:
/// contiguous matrices and plain transposes of them. Strides of size-1 dims do not matter.
inline bool matmul_operand_ok(const Tensor& t) {
  const int64_t r = t.dim();
  const int64_t rows = t.size(r - 2), cols = t.size(r - 1);
  const int64_t rs = rows == 1 ? cols : t.stride(r - 2);
  const int64_t cs = cols == 1 ? 1 : t.stride(r - 1);
  const bool row_major = cs == 1 && rs >= cols;
  const bool col_major = rs == 1 && cs >= rows && cs > 0;
  return row_major || col_major;
}

}  // namespace detail

namespace cpu {
using namespace detail;
/// float32 through oneDNN matmul primitives (cached per problem); float64 through the blocked
/// reference loops in the same file (this oneDNN has no f64); bf16 operands (f32 out) through
/// oneDNN's bf16 GEMMs where bf16_gemm_native(), else widened (exactly) to an f32 GEMM.
MatmulFn matmul;
/// Whether this CPU has bf16 dot products (oneDNN's ISA is AVX512_BF16 or AMX) and tests have not
/// forced emulation.
TSE_API bool bf16_gemm_native();
/// Test hook: true makes bf16 GEMMs take the emulated path on any CPU.
TSE_API void force_bf16_gemm_emulation(bool on);
}  // namespace cpu

namespace cuda {
using namespace detail;
/// cuBLAS GEMMs (src/cuda/matmul.cu): f32 (TF32 only under set_cuda_allow_tf32), f64, and bf16
/// operands with an f32 out.
MatmulFn matmul;
}  // namespace cuda

}  // namespace tse
