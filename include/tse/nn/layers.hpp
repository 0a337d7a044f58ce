#pragma once
/// \file layers.hpp
/// The basic layers, as torch.nn: each owns its parameters under PyTorch's names ("weight",
/// "bias", "running_mean", ...) and calls the differentiable op of tse::ops. Parameters are
/// initialised as PyTorch does (seeded by tse::manual_seed); `dtype` makes an f64 copy for
/// gradchecks (or use Module::to(DType::f64)).
#include <string>

#include "tse/nn/module.hpp"
#include "tse/ops/conv.hpp"

namespace tse::nn {

/// y = x W^T + b: x (..., in_features) -> (..., out_features); weight [out, in], bias [out].
class TSE_API Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::f32);
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  int64_t in_features, out_features;
  Tensor weight, bias;
};

/// LayerNorm over the trailing dims `normalized_shape` (biased variance), affine weight/bias.
class TSE_API LayerNorm : public Module {
 public:
  LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, DType dtype = DType::f32);
  LayerNorm(int64_t features, double eps = 1e-5, bool elementwise_affine = true, DType dtype = DType::f32)
      : LayerNorm(Shape{features}, eps, elementwise_affine, dtype) {}
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  Shape normalized_shape;
  double eps;
  Tensor weight, bias;
};

/// GroupNorm: x (N, C, *) with C split into num_groups groups of consecutive channels.
class TSE_API GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true, DType dtype = DType::f32);
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  int64_t num_groups, num_channels;
  double eps;
  Tensor weight, bias;
};

/// BatchNorm over channel dim 1: batch statistics in training (updating the running stats with
/// `momentum`, or a cumulative average when momentum < 0, as torch's None), running stats in eval.
/// BatchNorm1d takes (N, C) or (N, C, L); BatchNorm2d (N, C, H, W).
class TSE_API BatchNorm : public Module {
 public:
  BatchNorm(int64_t num_features, int input_rank_min, int input_rank_max, std::string name, double eps,
            double momentum, bool affine, bool track_running_stats, DType dtype);
  std::string type_name() const override { return name_; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  int64_t num_features;
  double eps, momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  int rank_min_, rank_max_;
  std::string name_;
};
class TSE_API BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true, DType dtype = DType::f32)
      : BatchNorm(num_features, 2, 3, "BatchNorm1d", eps, momentum, affine, track_running_stats, dtype) {}
};
class TSE_API BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true, DType dtype = DType::f32)
      : BatchNorm(num_features, 4, 4, "BatchNorm2d", eps, momentum, affine, track_running_stats, dtype) {}
};

/// Settings of Conv1d (torch.nn.Conv1d's keyword arguments). `same` = torch's padding="same".
struct Conv1dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
  bool same = false;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
  DType dtype = DType::f32;
};
/// x (N, Cin, L) -> (N, Cout, Lout); weight [Cout, Cin / groups, k]. groups == Cin == Cout is a
/// depthwise conv.
class TSE_API Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions options = {});
  std::string type_name() const override { return "Conv1d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  int64_t in_channels, out_channels, kernel_size;
  Conv1dOptions options;
  Tensor weight, bias;
};

/// Settings of Conv2d / ConvTranspose2d (per-dim values as ops::Size2).
struct Conv2dOptions {
  ops::Size2 stride = 1;
  ops::Size2 padding = 0;
  bool same = false;  // Conv2d only
  ops::Size2 output_padding = 0;  // ConvTranspose2d only
  ops::Size2 dilation = 1;
  int64_t groups = 1;
  bool bias = true;
  DType dtype = DType::f32;
};
/// x (N, Cin, H, W) -> (N, Cout, Hout, Wout); weight [Cout, Cin / groups, kh, kw].
class TSE_API Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, ops::Size2 kernel_size, Conv2dOptions options = {});
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  int64_t in_channels, out_channels;
  ops::Size2 kernel_size;
  Conv2dOptions options;
  Tensor weight, bias;
};
/// The transposed conv: weight [Cin, Cout / groups, kh, kw] (torch's layout).
class TSE_API ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, ops::Size2 kernel_size, Conv2dOptions options = {});
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  int64_t in_channels, out_channels;
  ops::Size2 kernel_size;
  Conv2dOptions options;
  Tensor weight, bias;
};

/// Zeroes elements with probability p (scaling the rest by 1/(1-p)) in training; identity in eval.
class TSE_API Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  double p;
};

/// x * sigmoid(x) (Swish).
class TSE_API SiLU : public Module {
 public:
  std::string type_name() const override { return "SiLU"; }
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
};

/// GELU, exact ("none") or "tanh".
class TSE_API GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  std::string approximate;
};

/// First half times sigmoid(second half) along `dim`.
class TSE_API GLU : public Module {
 public:
  explicit GLU(int64_t dim = -1) : dim(dim) {}
  std::string type_name() const override { return "GLU"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  int64_t dim;
};

/// Feature-wise linear modulation (Perez et al.): FiLM(x, c) = gamma(c) * x + beta(c), with
/// gamma, beta = Linear(cond_dim -> features) (no "+1"; MODELS.md B s.2.4 and A s.6). x has
/// `features` entries along `feature_dim` (-1: channels last, (B, ..., D); 1: channels first,
/// (B, C, ...)); c (B, cond_dim) modulates every other position of its batch item identically.
class TSE_API FiLM : public Module {
 public:
  FiLM(int64_t cond_dim, int64_t features, int64_t feature_dim = -1, DType dtype = DType::f32);
  std::string type_name() const override { return "FiLM"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x, const Tensor& cond) const;
  Tensor operator()(const Tensor& x, const Tensor& cond) const { return forward(x, cond); }
  int64_t cond_dim, features, feature_dim;
  std::shared_ptr<Linear> gamma, beta;
};

}  // namespace tse::nn
