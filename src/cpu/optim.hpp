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

/// One tensor of a multi-tensor AdamW step: p, exp_avg, exp_avg_sq (and max_exp_avg_sq when
/// amsgrad; null otherwise) updated in place over numel values of `dtype`. `begin`: the running
/// sum of numel over the items before it (the items' place in one flat index space).
struct AdamWItem {
  AdamWStep s;
  DType dtype = DType::f32;
  void* p = nullptr;
  const void* grad = nullptr;
  void* exp_avg = nullptr;
  void* exp_avg_sq = nullptr;
  void* max_exp_avg_sq = nullptr;
  int64_t numel = 0;
  int64_t begin = 0;
};
/// Every item in one parallel region over the items' concatenated values (PyTorch's foreach
/// idea): a region per tensor costs a barrier per tensor, and a time-sliced core turns each
/// barrier into a wait (measured: SGD over the model's tensors at 2 threads, 1.9 s vs 37 ms).
using AdamWFn = void(const AdamWItem* items, size_t count);

/// One SGD step (PyTorch's semantics). first: the momentum buffer is new and becomes the grad.
struct SGDStep {
  double lr = 0.0, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  bool first = false;
};
/// One tensor of a multi-tensor SGD step: p (and buf when momentum != 0; null otherwise).
struct SGDItem {
  SGDStep s;
  DType dtype = DType::f32;
  void* p = nullptr;
  const void* grad = nullptr;
  void* buf = nullptr;
  int64_t numel = 0;
  int64_t begin = 0;
};
using SGDFn = void(const SGDItem* items, size_t count);

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
