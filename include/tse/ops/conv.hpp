#pragma once
/// \file conv.hpp
/// Convolutions, as torch.nn.functional: conv1d, conv2d, conv_transpose1d, conv_transpose2d.
/// float32 or float64 on CPU, input, weight and bias of one dtype; differentiable in all three.
/// Inputs are NCL / NCHW tensors of any strides (non-contiguous ones are copied first); an
/// unbatched input (C, L) / (C, H, W) gives an unbatched result. Groups split the channels as in
/// torch (groups == in_channels is a depthwise conv). float32 runs on oneDNN primitives (cached
/// per problem) except depthwise convs, which run on direct loops (as fast as oneDNN's depthwise
/// kernel with its layout reorders at 3-9 taps, 20x faster than its fallback at the Conformer's
/// 33); float64 always runs on the direct loops.
///
/// The 2-D ops take each per-dim parameter as a Size2: one value for both dims, as torch's int
/// argument (`2`), or a pair (`{2, 1}` = {h, w}).
#include <concepts>
#include <string>
#include <string_view>

#include "tse/core/tensor.hpp"

namespace tse::ops {

/// A per-dim parameter of a 2-D conv (stride, padding, dilation, output_padding).
struct Size2 {
  int64_t h;
  int64_t w;
  constexpr Size2(int64_t both) : h(both), w(both) {}  // NOLINT: implicit, as torch's int argument
  constexpr Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

/// torch's string padding of conv1d / conv2d: "valid" (no padding) or "same" (the output has the
/// input's size; stride must be 1; an odd total padding puts the extra element on the right /
/// bottom, as torch). Other strings are a ValueError from the conv. Constructible from strings
/// only, so that a literal 0 (a null pointer constant) never selects the string overloads.
class PaddingMode {
 public:
  template <typename S>
  requires std::convertible_to<const S&, std::string_view> PaddingMode(const S& mode)
      : mode_(std::string_view(mode)) {}  // NOLINT: implicit, as torch's str
  const std::string& str() const { return mode_; }

 private:
  std::string mode_;
};

/// torch.nn.functional.conv1d: x (N, Cin, L) or (Cin, L), weight (Cout, Cin / groups, k),
/// bias (Cout) or undefined. Result (N, Cout, Lout) or (Cout, Lout) with
///   Lout = (L + 2 * padding - dilation * (k - 1) - 1) / stride + 1   (rounded down).
/// ValueError naming the argument and the shapes for: wrong ranks, Cin != weight.size(1) * groups,
/// Cout not divisible by groups, a bias not of shape (Cout), stride / dilation / groups < 1,
/// padding < 0, a kernel larger than the padded input, dtypes that differ or are not floating.
TSE_API Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
                      int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
/// conv1d with padding "same" or "valid".
TSE_API Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                      const PaddingMode& padding, int64_t dilation = 1, int64_t groups = 1);

/// torch.nn.functional.conv2d: x (N, Cin, H, W) or (Cin, H, W), weight (Cout, Cin / groups, kh, kw),
/// bias (Cout) or undefined; Hout and Wout as Lout of conv1d, per dim. Errors as conv1d.
TSE_API Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
                      Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);
/// conv2d with padding "same" or "valid".
TSE_API Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                      const PaddingMode& padding, Size2 dilation = 1, int64_t groups = 1);

/// torch.nn.functional.conv_transpose1d (the adjoint of conv1d in x, plus bias): x (N, Cin, L) or
/// (Cin, L), weight (Cin, Cout / groups, k) (torch's layout: in_channels first), bias (Cout).
/// Result (N, Cout, Lout) with
///   Lout = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
/// output_padding must be below stride or below dilation (torch's rule). Other errors as conv1d,
/// plus Lout < 1.
TSE_API Tensor conv_transpose1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                                int64_t stride = 1, int64_t padding = 0, int64_t output_padding = 0, int64_t groups = 1,
                                int64_t dilation = 1);

/// torch.nn.functional.conv_transpose2d: x (N, Cin, H, W) or (Cin, H, W), weight
/// (Cin, Cout / groups, kh, kw), bias (Cout); Hout and Wout as Lout of conv_transpose1d, per dim.
TSE_API Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
                                Size2 padding = 0, Size2 output_padding = 0, int64_t groups = 1, Size2 dilation = 1);

}  // namespace tse::ops
