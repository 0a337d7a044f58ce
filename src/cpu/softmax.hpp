#pragma once
// Internal kernel interface of softmax and log_softmax. The op layer has made the input
// contiguous and viewed it as (outer, axis, inner): the softmax runs along `axis` for every
// (outer, inner) pair, so element (o, a, i) sits at (o * axis + a) * inner + i.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

struct SoftmaxShape {
  int64_t outer = 1;
  int64_t axis = 1;
  int64_t inner = 1;
  bool log = false;  // log_softmax
};

/// out = softmax (log_softmax) of x along the axis. out and x: contiguous, one shape and dtype.
using SoftmaxFn = void(const Tensor& out, const Tensor& x, const SoftmaxShape& s);
/// grad_x from grad_out and the forward output y (all contiguous, one shape and dtype):
/// softmax: grad_x = y * (g - sum_axis(g * y)); log_softmax: grad_x = g - exp(y) * sum_axis(g).
using SoftmaxBackwardFn = void(const Tensor& grad_x, const Tensor& grad_out, const Tensor& y, const SoftmaxShape& s);

}  // namespace detail

namespace cpu {
using namespace detail;
/// float32 softmax rows along a unit-stride axis run on oneDNN's softmax_v2 primitive (cached per
/// problem); float64, log_softmax and a strided axis (inner > 1) run on vectorised loops.
SoftmaxFn softmax;
/// Vectorised loops for every dtype (oneDNN 2.6 has no JIT softmax backward for AVX2: its
/// reference kernel is 20-50x slower than these loops).
SoftmaxBackwardFn softmax_backward;
}  // namespace cpu

namespace cuda {
using namespace detail;
/// One block per row, f32 accumulated in double (src/cuda/softmax.cu).
SoftmaxFn softmax;
SoftmaxBackwardFn softmax_backward;
}  // namespace cuda

}  // namespace tse
