#pragma once
/// \file pooling.hpp
/// Average pooling (torch.nn.functional.avg_pool1d / avg_pool2d) over (N, C, L) / (N, C, H, W)
/// inputs or their unbatched (C, L) / (C, H, W) forms. float32 or float64 on CPU, any strides;
/// differentiable. The output is a new contiguous tensor.
///
/// PyTorch's rules, per spatial axis of size `in` (kernel k, stride s, padding p):
///   out = floor((in + 2p - k) / s) + 1, or with ceil_mode the ceiling, less one when the last
///   window would start in the right padding (start >= in + p: PyTorch drops that window).
///   A window covers [o*s - p, o*s - p + k). Its divisor is the number of input elements in it
///   (count_include_pad = false), or its size clipped to the padded input [-p, in + p)
///   (count_include_pad = true: padded zeros count, a ceil_mode overhang beyond the padding
///   never does), or divisor_override when given (avg_pool2d).
/// ValueError naming the op, the argument and the input shape when: the rank is wrong; the
/// channel or spatial dims are empty (an empty batch is fine); a kernel size or stride is not
/// positive; a padding is negative or more than half its kernel size; the output would be empty;
/// divisor_override is 0; the input is undefined or not floating point.
#include <cstdint>
#include <optional>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::ops {

/// avg_pool1d(x (N, C, L) or (C, L), kernel_size, stride, padding) -> (N, C, OL) or (C, OL).
/// stride 0 means stride = kernel_size (PyTorch's default, stride=None).
TSE_API Tensor avg_pool1d(const Tensor& x, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                          bool ceil_mode = false, bool count_include_pad = true);

/// avg_pool2d(x (N, C, H, W) or (C, H, W), kernel_size, ...) -> (N, C, OH, OW) or (C, OH, OW).
/// kernel_size, stride and padding hold one value (both axes) or two ({H, W}); an empty stride
/// means stride = kernel_size.
TSE_API Tensor avg_pool2d(const Tensor& x, const std::vector<int64_t>& kernel_size,
                          const std::vector<int64_t>& stride = {}, const std::vector<int64_t>& padding = {0},
                          bool ceil_mode = false, bool count_include_pad = true,
                          std::optional<int64_t> divisor_override = std::nullopt);

}  // namespace tse::ops
