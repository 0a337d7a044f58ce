#pragma once
// Internal kernel interface of interpolate (CPU here). The op layer has checked the arguments,
// made the input contiguous and allocated the output; kernels see (N, C, L) or (N, C, H, W)
// contiguous tensors of one floating dtype.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// linear covers linear (1-D) and bilinear (2-D); cubic is bicubic (2-D).
enum class InterpMode : uint8_t { nearest, linear, cubic };

struct InterpParams {
  InterpMode mode = InterpMode::nearest;
  bool align_corners = false;
  /// The user's scale_factor for the H and W axes, or 0 where the output size was given: like
  /// PyTorch, a given scale_factor (not in/out) sets the source coordinates. scale_h is unused
  /// for 1-D inputs.
  double scale_h = 0.0;
  double scale_w = 0.0;
};

/// out (N, C, OH, OW) or (N, C, OL) from x (N, C, IH, IW) or (N, C, IL).
using InterpolateFn = void(const Tensor& out, const Tensor& x, const InterpParams& p);
/// The adjoint of InterpolateFn: grad_x (input shape, fully overwritten) from grad_out
/// (output shape).
using InterpolateBackwardFn = void(const Tensor& grad_x, const Tensor& grad_out, const InterpParams& p);

}  // namespace detail

namespace cpu {
using namespace detail;
InterpolateFn interpolate;
InterpolateBackwardFn interpolate_backward;
}  // namespace cpu

}  // namespace tse
