#pragma once
// Internal kernel interface of the optimiser updates and gradient clipping (CPU here, CUDA later).
// Every tensor is contiguous, of one dtype (float32 or float64) and one shape: src/optim/ checks.
// Each element's update reads only that element, so the bits never depend on the thread count.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// One AdamW step (PyTorch's single-tensor update), `step` >= 1 counted with this update.
struct AdamWStep {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;
  bool amsgrad = false;
};
/// p, exp_avg, exp_avg_sq (and max_exp_avg_sq when amsgrad; undefined otherwise) updated in place.
using AdamWFn = void(const AdamWStep& s, const Tensor& p, const Tensor& grad, const Tensor& exp_avg,
                     const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq);

/// One SGD step (PyTorch's semantics). first: the momentum buffer is new and becomes the grad.
struct SGDStep {
  double lr = 0.0, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  bool first = false;
};
/// p (and buf when momentum != 0; undefined otherwise) updated in place.
using SGDFn = void(const SGDStep& s, const Tensor& p, const Tensor& grad, const Tensor& buf);

/// sum |g|^p (p finite; p == 2 squares) or max |g| (p infinite) of one gradient, in double,
/// summed over fixed blocks of the tensor in block order: the same bits at every thread count.
using GradNormFn = double(const Tensor& grad, double p);
/// g = clamp(g, -clip, clip) in place (NaN stays NaN).
using ClipValueFn = void(const Tensor& grad, double clip);
}  // namespace detail

namespace cpu {
using namespace detail;
AdamWFn adamw;
SGDFn sgd;
GradNormFn grad_norm_pow;
ClipValueFn clip_value;
}  // namespace cpu

}  // namespace tse
