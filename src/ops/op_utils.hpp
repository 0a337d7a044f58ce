#pragma once
// Internal helpers shared by the op layer: argument checks with uniform messages.
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::ops::detail {

inline void check_defined(const Tensor& t, const char* op, const char* arg) {
  TSE_CHECK(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
}

inline void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  TSE_CHECK(a.device() == b.device(), op, ": expected all tensors on the same device, got ", a.device(), " and ",
            b.device());
}

inline void check_floating(const Tensor& t, const char* op, const char* arg) {
  TSE_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": argument '", arg,
            "' must be float32 or float64, got ", t.dtype(), " (shape ", t.shape_str(), ")");
}

/// Throws AutogradError for an in-place op on a tensor that records gradients.
void check_inplace(const Tensor& self, const char* op);

}  // namespace tse::ops::detail
