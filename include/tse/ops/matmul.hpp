#pragma once
/// \file matmul.hpp
/// Matrix products: matmul (torch.matmul), bmm and linear. float32 or float64 on CPU, both
/// operands of one dtype; differentiable in every tensor argument. float32 runs on oneDNN (one
/// cached primitive per problem shape), float64 on a reference path. Transposed views of the
/// last two dims are read in place; other non-contiguous operands are copied first.
#include "tse/core/tensor.hpp"

namespace tse::ops {

/// torch.matmul. With a (..., M, K) and b (..., K, N), the result is (batch..., M, N) where the
/// batch dims of a and b broadcast (numpy rules). A 1-D a (K) is treated as (1, K) and a 1-D b
/// (K) as (K, 1), and the added dim is removed from the result:
///   (K) x (K) -> ()              dot product
///   (M, K) x (K) -> (M)          matrix-vector
///   (K) x (..., K, N) -> (..., N)
///   (..., M, K) x (K) -> (..., M)
///   (B1, 1, M, K) x (B2, K, N) -> (B1, B2, M, N)
/// ValueError naming both shapes when the inner dims differ or the batch dims do not broadcast,
/// when either is 0-D, or when the dtypes differ.
TSE_API Tensor matmul(const Tensor& a, const Tensor& b);

/// Batched matrix product without broadcasting: a (B, M, K) x b (B, K, N) -> (B, M, N).
TSE_API Tensor bmm(const Tensor& a, const Tensor& b);

/// torch.nn.functional.linear: x (..., in) @ weight (out, in)^T + bias (out) -> (..., out).
/// x may be 1-D (in) -> (out). bias is optional (an undefined Tensor); it is fused into the GEMM.
/// The gradients are dx = g @ weight, dweight = g^T x and dbias = g summed over the leading dims,
/// each a single GEMM or reduction over the flattened leading dims.
TSE_API Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace tse::ops
