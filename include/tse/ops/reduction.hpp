#pragma once
// Reductions over dims (negative dims allowed; empty dims = all). f32/f64, differentiable; sum
// also accepts integer and bool inputs (giving i64).
#include <utility>

#include "tse/core/tensor.hpp"

namespace tse::ops {

TSE_API Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
TSE_API Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
/// Variance with Bessel-style correction (1 = unbiased, PyTorch's default; 0 = population).
TSE_API Tensor var(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
/// Max/min along one dim: (values, indices as i64). Gradient goes to the selected index.
TSE_API std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
TSE_API std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
TSE_API Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
TSE_API Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Max/min over dims; the gradient is split evenly among tied maxima (PyTorch's amax rule).
TSE_API Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
TSE_API Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
/// log(sum(exp(x))) computed stably (max-shifted); -inf rows give -inf.
TSE_API Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
/// p-norm over dims (p > 0; p = inf is the max-abs norm). The gradient of the 2-norm at 0 is 0.
TSE_API Tensor norm(const Tensor& x, double p = 2.0, const Shape& dims = {}, bool keepdim = false);

}  // namespace tse::ops
