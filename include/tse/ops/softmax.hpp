#pragma once
/// \file softmax.hpp
/// softmax and log_softmax along one dim (torch.softmax, torch.log_softmax). float32 or float64
/// on CPU, any rank and any strides; differentiable. The output is a new contiguous tensor.
#include "tse/core/tensor.hpp"

namespace tse::ops {

/// torch.softmax(x, dim): exp(x - max) / sum(exp(x - max)) along dim, for every index of the
/// other dims. dim may be negative; a 0-D x is a one-element row (dim 0 or -1) and gives 1.
/// Non-finite values follow PyTorch: an -inf entry gets probability exactly 0 (attention masks),
/// and a row that contains NaN or +inf, or only -inf, is NaN throughout. The gradient is
/// y * (g - sum(g * y)) along dim, exactly 0 at masked (-inf) entries.
/// IndexError naming the op and the shape when dim is out of range; ValueError for an undefined
/// or non-floating input.
TSE_API Tensor softmax(const Tensor& x, int64_t dim);

/// torch.log_softmax(x, dim): (x - max) - log(sum(exp(x - max))) along dim, computed directly
/// (never log(softmax(x)), which loses the small probabilities). Same rules as softmax; a 0-D x
/// gives 0, -inf entries stay -inf. The gradient is g - exp(y) * sum(g) along dim.
TSE_API Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace tse::ops
