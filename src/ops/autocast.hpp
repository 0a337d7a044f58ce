#pragma once
// Autocast's operand casts for the GEMM family (the public switch: tse/core/autocast.hpp).
#include "tse/core/autocast.hpp"
#include "tse/core/tensor.hpp"

namespace tse::detail {

/// The dtype the GEMMs of an op on operand dtype `dtype` read now: bf16 for f32 under autocast,
/// else dtype itself.
inline DType gemm_operand_dtype(DType dtype) {
  return dtype == DType::f32 && autocast::is_enabled() ? autocast::dtype() : dtype;
}

/// t's values rounded to dtype (no autograd), in t's memory order: a transposed view becomes a
/// transposed copy, so a GEMM reads the copy as it read t. t itself when it has dtype already.
Tensor cast_operand(const Tensor& t, DType dtype);

/// cast_operand for a weight: the copy is cached beside t's storage, keyed by t's offset, sizes,
/// strides and dtype, and reused while the storage's version is unchanged.
Tensor cast_weight(const Tensor& t, DType dtype);

}  // namespace tse::detail
