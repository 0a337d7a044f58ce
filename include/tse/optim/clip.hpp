#pragma once
/// \file clip.hpp
/// Gradient clipping, in place on the parameters' .grad (PyTorch's torch.nn.utils semantics).
/// Parameters without a gradient are skipped. Gradients must be CPU float32 / float64 and
/// contiguous (ValueError naming the parameter index otherwise).
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::optim {

/// total = (sum over every gradient element of |g|^norm_type)^(1/norm_type), or max |g| for
/// norm_type = +inf; accumulated in double over fixed blocks in a fixed order, so the same bits
/// at every thread count. When max_norm / (total + 1e-6) < 1 every gradient is multiplied by it
/// (rounded to the gradient's dtype). Returns total (0 when no parameter has a gradient). A NaN
/// or infinite total with error_if_nonfinite is a ValueError and the gradients are untouched;
/// without it they are scaled anyway, as PyTorch does. norm_type must be > 0 (or inf), max_norm
/// finite and >= 0.
TSE_API double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                               bool error_if_nonfinite = false);

/// Clamps every gradient element to [-clip_value, clip_value] (NaN stays NaN); clip_value >= 0.
TSE_API void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace tse::optim
