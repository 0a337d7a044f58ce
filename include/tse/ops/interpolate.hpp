#pragma once
// torch.nn.functional.interpolate for (N, C, L) and (N, C, H, W) inputs. Differentiable (f32/f64).
#include <string>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::ops {

/// mode: "nearest" (1-D, 2-D), "linear" (1-D), "bilinear" (2-D), "bicubic" (2-D, A = -0.75,
/// border-clamped taps, as PyTorch). Give size (one per spatial dim) or scale_factor (one per
/// spatial dim, or one for all), not both. align_corners applies to linear/bilinear/bicubic only.
TSE_API Tensor interpolate(const Tensor& x, const std::vector<int64_t>& size,
                           const std::vector<double>& scale_factor = {}, const std::string& mode = "nearest",
                           bool align_corners = false);

}  // namespace tse::ops
