#pragma once
// Index-based gather/scatter. index tensors are i64 (i32 accepted); out-of-range indices throw
// IndexError naming the op and the offending value. Differentiable in the float inputs.
#include "tse/core/tensor.hpp"

namespace tse::ops {

/// out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (torch.gather); index.dim() == x.dim().
TSE_API Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// Selects entries along dim by a 1-D index.
TSE_API Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// Returns x with src added at index along dim (torch.scatter_add, out of place).
TSE_API Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace tse::ops
