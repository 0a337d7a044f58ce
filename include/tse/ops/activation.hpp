#pragma once
// Activations (f32/f64, differentiable, any strides).
#include <string>

#include "tse/core/tensor.hpp"

namespace tse::ops {

TSE_API Tensor relu(const Tensor& x);  // gradient 0 at 0
TSE_API Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// approximate: "none" (exact, 0.5 x (1 + erf(x / sqrt 2))) or "tanh".
TSE_API Tensor gelu(const Tensor& x, const std::string& approximate = "none");
TSE_API Tensor silu(const Tensor& x);  // x * sigmoid(x), a.k.a. Swish
TSE_API Tensor sigmoid(const Tensor& x);
TSE_API Tensor tanh(const Tensor& x);
/// (1/beta) log(1 + exp(beta x)); linear where beta x > threshold (PyTorch).
TSE_API Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
/// Splits x in two halves a, b along dim (even size) and returns a * sigmoid(b).
TSE_API Tensor glu(const Tensor& x, int64_t dim = -1);

}  // namespace tse::ops
