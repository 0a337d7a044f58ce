#pragma once
// Internal kernel interface of the reduction family. `reduce` flags the dims of x to fold;
// outputs are contiguous with x's kept dims (keepdim or not: same linear order). The op layer has
// checked dtypes and rejected empty reductions where the fold has no identity (max, min).
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {
using SumFn = void(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce);
/// out = (sum |x|^p)^(1/p) for a finite p > 0 (f32/f64; accumulated in double).
using NormFn = void(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce, double p);
/// out = max (is_max) or min over the reduced dims; NaN propagates. Numeric and bool dtypes.
using ExtremeFn = void(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce, bool is_max);
/// Max/min over at most one reduced dim: values (x's dtype) and their index along that dim (i64).
/// The first index wins ties; the first NaN wins over numbers.
using ArgExtremeFn = void(const Tensor& values, const Tensor& indices, const Tensor& x, const std::vector<bool>& reduce,
                          bool is_max);
/// out = log(sum(exp(x))) in one pass with a running max (f32/f64; accumulated in double).
using LogSumExpFn = void(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce);
}  // namespace detail

namespace cpu {
detail::SumFn sum;
detail::NormFn norm;
detail::ExtremeFn extreme;
detail::ArgExtremeFn arg_extreme;
detail::LogSumExpFn logsumexp;
}  // namespace cpu

namespace cuda {
detail::SumFn sum;
detail::NormFn norm;
detail::ExtremeFn extreme;
detail::ArgExtremeFn arg_extreme;
detail::LogSumExpFn logsumexp;
}  // namespace cuda
}  // namespace tse
