#pragma once
// Internal kernel interface of the convolution family. Every kernel sees one 2-D convolution in
// conv terms: a 1-D conv is a 2-D one of height 1, and a transposed conv is described by the
// conv it transposes (its forward is that conv's backward-data pass, its backward-data pass that
// conv's forward, its weight gradient that conv's weight gradient with the roles of x and dy
// swapped). The op layer has checked the arguments, allocated the outputs and made every tensor
// a contiguous 4-D one:
//   x (N, C, H, W), w (O, C / groups, KH, KW), y (N, O, OH, OW), bias (O).
#include <array>
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// Strides, dilations and paddings per spatial dim (h, w), and the group count.
struct ConvGeometry {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> dilation{1, 1};  // torch's (1: dense taps); oneDNN's is one less
  std::array<int64_t, 2> pad_l{0, 0};     // top / left
  // Bottom / right: whatever makes OH = (H + pad_l + pad_r - dilation * (KH - 1) - 1) / stride + 1
  // hold. It may be negative (a transposed conv's output_padding is pad_r = padding - output_padding).
  std::array<int64_t, 2> pad_r{0, 0};
  int64_t groups = 1;
};

/// y = conv(x, w) + bias (bias undefined: none). training: the result will be differentiated
/// (oneDNN's forward_training; the same numbers either way). Overwrites y.
using ConvForwardFn = void(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g,
                           bool training);
/// dx = the gradient of conv(x, w) in x for the output gradient dy. Overwrites dx.
using ConvBackwardDataFn = void(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g);
/// dw = the gradient of conv(x, w) in w for dy, and dbias = dy summed over (N, OH, OW) when
/// dbias is defined. Overwrites both (zeros when N == 0).
using ConvBackwardWeightsFn = void(const Tensor& dw, const Tensor& dbias, const Tensor& x, const Tensor& dy,
                                   const ConvGeometry& g);

}  // namespace detail

namespace cpu {
using namespace detail;
/// float32 on oneDNN primitives (cached per problem), float64 and depthwise float32 on the direct
/// loops in conv.cpp.
ConvForwardFn conv_forward;
ConvBackwardDataFn conv_backward_data;
ConvBackwardWeightsFn conv_backward_weights;
}  // namespace cpu

}  // namespace tse
