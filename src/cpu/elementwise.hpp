#pragma once
// Internal kernel interface of the elementwise family (CPU here, CUDA in src/cuda/). Inputs
// broadcast to out's shape; the op layer has already promoted dtypes and allocated out.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

enum class Unary : uint8_t {
  neg, exp, log, log10, sqrt, rsqrt, abs, sin, cos, relu, leaky_relu, gelu, gelu_tanh, silu, sigmoid, tanh,
  softplus, pow_scalar, clamp, logical_not, isnan, isfinite
};

/// a, b: op parameters (leaky_relu slope; softplus beta, threshold; pow exponent; clamp min, max).
struct UnaryParams {
  double a = 0.0;
  double b = 0.0;
};

enum class Binary : uint8_t {
  add, sub, mul, div, pow, atan2, maximum, minimum, eq, ne, lt, le, gt, ge, logical_and, logical_or
};

using UnaryFn = void(Unary op, const Tensor& out, const Tensor& x, UnaryParams p);
/// grad_in = grad * d op / dx. saved is x, except for exp, sigmoid and tanh where it is the output.
using UnaryBackwardFn = void(Unary op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved,
                             UnaryParams p);
/// out = a (op) alpha * b for add/sub; alpha is ignored by the other ops.
using BinaryFn = void(Binary op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha);
using WhereFn = void(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
/// out = src converted to out's dtype, src broadcast to out's shape.
using CopyFn = void(const Tensor& out, const Tensor& src);
using FillFn = void(const Tensor& out, double value);
/// out (bf16) = src (f32) rounded as autocast rounds GEMM operands: to nearest even, NaN kept a
/// quiet NaN, denormals flushed to a signed zero (what the GEMMs' DAZ mode reads them as). src and
/// out are dense permutations with one memory order (out from empty_in_memory_order(src)).
using RoundToBf16Fn = void(const Tensor& out, const Tensor& src);
}  // namespace detail

namespace cpu {
using namespace detail;
UnaryFn unary;
UnaryBackwardFn unary_backward;
BinaryFn binary;
WhereFn where;
CopyFn copy;
FillFn fill;
/// AVX512_BF16's vcvtne2ps2bf16 where the CPU has it, else the same rounding in plain code.
TSE_API RoundToBf16Fn round_to_bf16;
/// The same rounding over n contiguous values on the calling thread (kernels' inner loops).
void round_to_bf16(const float* x, BFloat16* y, int64_t n);
}  // namespace cpu

namespace cuda {
using namespace detail;
UnaryFn unary;
UnaryBackwardFn unary_backward;
BinaryFn binary;
WhereFn where;
CopyFn copy;
FillFn fill;
}  // namespace cuda

}  // namespace tse
