#pragma once
// Internal kernel interface of average pooling. The op layer has checked the arguments, computed
// the output sizes (PyTorch's rules, include/tse/ops/pooling.hpp), made the input contiguous and
// allocated the output: kernels see contiguous (planes, H, W) inputs and (planes, OH, OW)
// outputs of one floating dtype, planes = N * C. A 1-D pool is a 2-D one with the identity H axis.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// One spatial axis: input and output sizes, kernel size, stride and (left = right) padding.
struct PoolAxis {
  int64_t in = 1;
  int64_t out = 1;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t pad = 0;
};

struct AvgPoolParams {
  PoolAxis h, w;
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
};

/// out (planes, OH, OW) = the window averages of x (planes, H, W).
using AvgPoolFn = void(const Tensor& out, const Tensor& x, const AvgPoolParams& p);
/// The adjoint: grad_x (planes, H, W), fully overwritten, from grad_out (planes, OH, OW).
using AvgPoolBackwardFn = void(const Tensor& grad_x, const Tensor& grad_out, const AvgPoolParams& p);

}  // namespace detail

namespace cpu {
using namespace detail;
/// Separable loops for every dtype (see pooling.cpp for why not oneDNN).
AvgPoolFn avg_pool;
AvgPoolBackwardFn avg_pool_backward;
}  // namespace cpu

}  // namespace tse
