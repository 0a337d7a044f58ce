#pragma once
/// \file init.hpp
/// Parameter initialisers (torch.nn.init), drawing from the default seeded generator
/// (tse::manual_seed), so a model built after the same seed has the same weights.
#include "tse/core/tensor.hpp"

namespace tse::nn::init {

/// U[low, high) of the given shape.
TSE_API Tensor uniform(const Shape& sizes, double low, double high, DType dtype = DType::f32);
/// N(mean, std^2).
TSE_API Tensor normal(const Shape& sizes, double mean = 0.0, double std = 1.0, DType dtype = DType::f32);
/// fan_in / fan_out of a weight as torch computes them: dim 1 / dim 0 times the receptive field
/// (the product of dims 2..).
TSE_API std::pair<int64_t, int64_t> fans(const Shape& sizes);
/// torch's default for Linear and Conv weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
/// (kaiming_uniform with a = sqrt(5) reduces to this bound).
TSE_API Tensor default_uniform(const Shape& sizes, int64_t fan_in, DType dtype = DType::f32);
/// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
TSE_API Tensor xavier_uniform(const Shape& sizes, double gain = 1.0, DType dtype = DType::f32);

/// N(mean, std^2) truncated to [low, high] by redrawing (timm's trunc_normal_, which Swin, HTSAT
/// and CLAPSep use with std 0.02 on Linear weights).
TSE_API Tensor trunc_normal(const Shape& sizes, double mean = 0.0, double std = 1.0, double low = -2.0,
                            double high = 2.0, DType dtype = DType::f32);
}  // namespace tse::nn::init
