#pragma once
// Elementwise arithmetic and math. All broadcast (numpy rules), run on the inputs' device, accept
// any strides, and are differentiable in their floating-point inputs (f32, f64). Binary ops
// promote dtypes (bool < i32 < i64 < f32 < f64); a double scalar takes the tensor's dtype.
// Comparisons return bool tensors and are not differentiable.
#include "tse/core/tensor.hpp"

namespace tse::ops {

TSE_API Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a + alpha * b
TSE_API Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a - alpha * b
TSE_API Tensor mul(const Tensor& a, const Tensor& b);
TSE_API Tensor div(const Tensor& a, const Tensor& b);
TSE_API Tensor add(const Tensor& a, double b);
TSE_API Tensor sub(const Tensor& a, double b);
TSE_API Tensor rsub(const Tensor& a, double b);  // b - a
TSE_API Tensor mul(const Tensor& a, double b);
TSE_API Tensor div(const Tensor& a, double b);
TSE_API Tensor rdiv(const Tensor& a, double b);  // b / a
TSE_API Tensor pow(const Tensor& a, double exponent);
TSE_API Tensor pow(const Tensor& a, const Tensor& exponent);  // d/dexp = a^e log a (a > 0)
TSE_API Tensor atan2(const Tensor& y, const Tensor& x);
TSE_API Tensor maximum(const Tensor& a, const Tensor& b);  // ties send the gradient half/half
TSE_API Tensor minimum(const Tensor& a, const Tensor& b);

TSE_API Tensor neg(const Tensor& x);
TSE_API Tensor exp(const Tensor& x);
TSE_API Tensor log(const Tensor& x);
TSE_API Tensor log10(const Tensor& x);
TSE_API Tensor sqrt(const Tensor& x);
TSE_API Tensor rsqrt(const Tensor& x);
TSE_API Tensor abs(const Tensor& x);  // gradient sign(x), 0 at 0
TSE_API Tensor sin(const Tensor& x);
TSE_API Tensor cos(const Tensor& x);
/// Clamps to [min, max]; either bound may be NaN-free +-infinity. Gradient passes where
/// min <= x <= max (PyTorch convention).
TSE_API Tensor clamp(const Tensor& x, double min, double max);
TSE_API Tensor clamp_min(const Tensor& x, double min);
TSE_API Tensor clamp_max(const Tensor& x, double max);

/// cond ? a : b, broadcasting all three; cond must be bool. Differentiable in a and b.
TSE_API Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// x with value where mask (bool, broadcast to x) is true. Differentiable in x.
TSE_API Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

TSE_API Tensor eq(const Tensor& a, const Tensor& b);
TSE_API Tensor ne(const Tensor& a, const Tensor& b);
TSE_API Tensor lt(const Tensor& a, const Tensor& b);
TSE_API Tensor le(const Tensor& a, const Tensor& b);
TSE_API Tensor gt(const Tensor& a, const Tensor& b);
TSE_API Tensor ge(const Tensor& a, const Tensor& b);
TSE_API Tensor eq(const Tensor& a, double b);
TSE_API Tensor ne(const Tensor& a, double b);
TSE_API Tensor lt(const Tensor& a, double b);
TSE_API Tensor le(const Tensor& a, double b);
TSE_API Tensor gt(const Tensor& a, double b);
TSE_API Tensor ge(const Tensor& a, double b);
TSE_API Tensor logical_not(const Tensor& x);
TSE_API Tensor logical_and(const Tensor& a, const Tensor& b);
TSE_API Tensor logical_or(const Tensor& a, const Tensor& b);
TSE_API Tensor isnan(const Tensor& x);
TSE_API Tensor isfinite(const Tensor& x);

/// Elementwise conversion (the op behind Tensor::to(DType)); differentiable between float types.
TSE_API Tensor to_dtype(const Tensor& x, DType dtype);
/// A contiguous copy (the op behind clone()/contiguous()); differentiable.
TSE_API Tensor copy(const Tensor& x);

}  // namespace tse::ops

namespace tse {
inline Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return ops::div(a, b); }
inline Tensor operator+(double a, const Tensor& b) { return ops::add(b, a); }
inline Tensor operator-(double a, const Tensor& b) { return ops::rsub(b, a); }
inline Tensor operator*(double a, const Tensor& b) { return ops::mul(b, a); }
inline Tensor operator/(double a, const Tensor& b) { return ops::rdiv(b, a); }
inline Tensor operator-(const Tensor& a) { return ops::neg(a); }
}  // namespace tse
