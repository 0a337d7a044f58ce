#include "tse/nn/layers.hpp"

#include <cmath>

#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/nn/init.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/normalization.hpp"
#include "tse/ops/random.hpp"

namespace tse::nn {
namespace {

using detail::str_cat;

std::string size2_str(ops::Size2 s) { return s.h == s.w ? std::to_string(s.h) : str_cat("(", s.h, ", ", s.w, ")"); }

void check_positive(const char* layer, const char* arg, int64_t v) {
  TSE_CHECK(v > 0, layer, ": ", arg, " must be positive, got ", v);
}

// The arguments every convolution layer checks: positive sizes, channels divisible by groups.
void check_conv_args(const char* layer, int64_t in, int64_t out, int64_t smallest_kernel, int64_t groups) {
  check_positive(layer, "in_channels", in);
  check_positive(layer, "out_channels", out);
  check_positive(layer, "kernel_size", smallest_kernel);
  check_positive(layer, "groups", groups);
  TSE_CHECK(in % groups == 0 && out % groups == 0, layer, ": in_channels (", in, ") and out_channels (", out,
            ") must be divisible by groups (", groups, ")");
}

}  // namespace

// ---- init --------------------------------------------------------------------------------

namespace init {

Tensor uniform(const Shape& sizes, double low, double high, DType dtype) {
  autograd::NoGradGuard no_grad;
  return ops::add(ops::mul(ops::rand(sizes, dtype), high - low), low);
}

Tensor normal(const Shape& sizes, double mean, double std, DType dtype) {
  autograd::NoGradGuard no_grad;
  return ops::add(ops::mul(ops::randn(sizes, dtype), std), mean);
}

std::pair<int64_t, int64_t> fans(const Shape& sizes) {
  TSE_CHECK(sizes.size() >= 2, "init.fans: need a weight of rank >= 2, got ", shape_to_string(sizes));
  int64_t field = 1;
  for (size_t d = 2; d < sizes.size(); ++d) field *= sizes[d];
  return {sizes[1] * field, sizes[0] * field};
}

Tensor default_uniform(const Shape& sizes, int64_t fan_in, DType dtype) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return uniform(sizes, -bound, bound, dtype);
}

Tensor trunc_normal(const Shape& sizes, double mean, double std, double low, double high, DType dtype) {
  TSE_CHECK(std > 0 && low < high && low <= mean + 3 * std && high >= mean - 3 * std,
            "init.trunc_normal: need std > 0 and [low, high] within reach of the mean, got mean ", mean, ", std ", std,
            ", [", low, ", ", high, "]");
  autograd::NoGradGuard no_grad;
  std::vector<double> v = ops::to_vector(normal(sizes, mean, std, DType::f64));
  for (double& e : v)
    while (e < low || e > high) e = mean + std * ops::to_vector(ops::randn({1}, DType::f64))[0];
  return ops::from_vector(v, sizes, dtype);
}

Tensor xavier_uniform(const Shape& sizes, double gain, DType dtype) {
  auto [fan_in, fan_out] = fans(sizes);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform(sizes, -bound, bound, dtype);
}

}  // namespace init

// ---- Linear ------------------------------------------------------------------------------

Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dtype) : in_features(in), out_features(out) {
  check_positive("Linear", "in_features", in);
  check_positive("Linear", "out_features", out);
  weight = init::default_uniform({out, in}, in, dtype);
  if (with_bias) bias = init::default_uniform({out}, in, dtype);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

std::string Linear::extra_repr() const {
  return str_cat("in_features=", in_features, ", out_features=", out_features, ", bias=", bias.defined() ? "True" : "False");
}

Tensor Linear::forward(const Tensor& x) const {
  TSE_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_features, "Linear: input must have last dim ",
            in_features, " (in_features), got ", x.defined() ? x.shape_str() : "undefined");
  return ops::linear(x, weight, bias);
}

// ---- normalisation -------------------------------------------------------------------------

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, DType dtype) : normalized_shape(std::move(shape)), eps(eps_) {
  TSE_CHECK(!normalized_shape.empty(), "LayerNorm: normalized_shape must not be empty");
  for (int64_t s : normalized_shape) check_positive("LayerNorm", "normalized_shape", s);
  if (affine) {
    weight = ops::ones(normalized_shape, dtype);
    bias = ops::zeros(normalized_shape, dtype);
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

std::string LayerNorm::extra_repr() const {
  return str_cat(shape_to_string(normalized_shape), ", eps=", eps, ", elementwise_affine=", weight.defined() ? "True" : "False");
}

Tensor LayerNorm::forward(const Tensor& x) const { return ops::layer_norm(x, normalized_shape, weight, bias, eps); }

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine, DType dtype)
    : num_groups(groups), num_channels(channels), eps(eps_) {
  check_positive("GroupNorm", "num_groups", groups);
  check_positive("GroupNorm", "num_channels", channels);
  TSE_CHECK(channels % groups == 0, "GroupNorm: num_channels (", channels, ") must be divisible by num_groups (", groups, ")");
  if (affine) {
    weight = ops::ones({channels}, dtype);
    bias = ops::zeros({channels}, dtype);
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

std::string GroupNorm::extra_repr() const { return str_cat(num_groups, ", ", num_channels, ", eps=", eps); }

Tensor GroupNorm::forward(const Tensor& x) const {
  TSE_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == num_channels, "GroupNorm: input must be (N, ", num_channels,
            ", *), got ", x.defined() ? x.shape_str() : "undefined");
  return ops::group_norm(x, num_groups, weight, bias, eps);
}

BatchNorm::BatchNorm(int64_t features, int rank_min, int rank_max, std::string name, double eps_, double momentum_,
                     bool affine, bool track, DType dtype)
    : num_features(features), eps(eps_), momentum(momentum_), rank_min_(rank_min), rank_max_(rank_max),
      name_(std::move(name)) {
  check_positive(name_.c_str(), "num_features", features);
  if (affine) {
    weight = ops::ones({features}, dtype);
    bias = ops::zeros({features}, dtype);
  }
  if (track) {
    running_mean = ops::zeros({features}, dtype);
    running_var = ops::ones({features}, dtype);
    num_batches_tracked = ops::zeros({}, DType::i64);
  }
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  // PyTorch saves it, but checkpoints made for eval often lack it (and it is unused there).
  register_buffer("num_batches_tracked", &num_batches_tracked, BufferKind::optional);
}

std::string BatchNorm::extra_repr() const {
  return str_cat(num_features, ", eps=", eps, ", momentum=", momentum, ", affine=", weight.defined() ? "True" : "False",
                 ", track_running_stats=", running_mean.defined() ? "True" : "False");
}

Tensor BatchNorm::forward(const Tensor& x) {
  TSE_CHECK(x.defined() && x.dim() >= rank_min_ && x.dim() <= rank_max_ && x.size(1) == num_features, name_,
            ": input must be ", rank_min_ == rank_max_ ? std::to_string(rank_min_) : str_cat(rank_min_, " or ", rank_max_),
            "-D with ", num_features, " channels in dim 1, got ", x.defined() ? x.shape_str() : "undefined");
  double m = momentum;
  if (is_training() && running_mean.defined()) {
    const double n = ops::to_vector(num_batches_tracked)[0] + 1;
    num_batches_tracked.fill_(n);
    if (m < 0) m = 1.0 / n;  // momentum < 0 (torch's None): the cumulative moving average
  }
  // Batch statistics in training, and in eval when no running stats are tracked (as torch).
  return ops::batch_norm(x, running_mean, running_var, weight, bias, is_training() || !running_mean.defined(), m, eps);
}

// ---- convolutions --------------------------------------------------------------------------

Conv1d::Conv1d(int64_t in, int64_t out, int64_t k, Conv1dOptions o)
    : in_channels(in), out_channels(out), kernel_size(k), options(o) {
  check_conv_args("Conv1d", in, out, k, o.groups);
  const int64_t fan_in = in / o.groups * k;
  weight = init::default_uniform({out, in / o.groups, k}, fan_in, o.dtype);
  if (o.bias) bias = init::default_uniform({out}, fan_in, o.dtype);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

std::string Conv1d::extra_repr() const {
  std::string s = str_cat(in_channels, ", ", out_channels, ", kernel_size=", kernel_size, ", stride=", options.stride);
  s += options.same ? std::string(", padding=same") : str_cat(", padding=", options.padding);
  if (options.dilation != 1) s += str_cat(", dilation=", options.dilation);
  if (options.groups != 1) s += str_cat(", groups=", options.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

Tensor Conv1d::forward(const Tensor& x) const {
  if (options.same)
    return ops::conv1d(x, weight, bias, options.stride, ops::PaddingMode("same"), options.dilation, options.groups);
  return ops::conv1d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

Conv2d::Conv2d(int64_t in, int64_t out, ops::Size2 k, Conv2dOptions o)
    : in_channels(in), out_channels(out), kernel_size(k), options(o) {
  check_conv_args("Conv2d", in, out, std::min(k.h, k.w), o.groups);
  const int64_t fan_in = in / o.groups * k.h * k.w;
  weight = init::default_uniform({out, in / o.groups, k.h, k.w}, fan_in, o.dtype);
  if (o.bias) bias = init::default_uniform({out}, fan_in, o.dtype);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

std::string Conv2d::extra_repr() const {
  std::string s = str_cat(in_channels, ", ", out_channels, ", kernel_size=", size2_str(kernel_size),
                          ", stride=", size2_str(options.stride));
  s += options.same ? std::string(", padding=same") : ", padding=" + size2_str(options.padding);
  if (options.groups != 1) s += str_cat(", groups=", options.groups);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

Tensor Conv2d::forward(const Tensor& x) const {
  if (options.same)
    return ops::conv2d(x, weight, bias, options.stride, ops::PaddingMode("same"), options.dilation, options.groups);
  return ops::conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, ops::Size2 k, Conv2dOptions o)
    : in_channels(in), out_channels(out), kernel_size(k), options(o) {
  check_conv_args("ConvTranspose2d", in, out, std::min(k.h, k.w), o.groups);
  TSE_CHECK(!o.same, "ConvTranspose2d: padding=\"same\" is not supported (as in torch)");
  // torch computes the fan from the stored weight [Cin, Cout / groups, kh, kw]: fan_in = dim 1 * field.
  const int64_t fan_in = out / o.groups * k.h * k.w;
  weight = init::default_uniform({in, out / o.groups, k.h, k.w}, fan_in, o.dtype);
  if (o.bias) bias = init::default_uniform({out}, fan_in, o.dtype);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

std::string ConvTranspose2d::extra_repr() const {
  return str_cat(in_channels, ", ", out_channels, ", kernel_size=", size2_str(kernel_size), ", stride=",
                 size2_str(options.stride), ", padding=", size2_str(options.padding));
}

Tensor ConvTranspose2d::forward(const Tensor& x) const {
  return ops::conv_transpose2d(x, weight, bias, options.stride, options.padding, options.output_padding, options.groups,
                               options.dilation);
}

// ---- dropout and activations ----------------------------------------------------------------

Dropout::Dropout(double p_) : p(p_) {
  TSE_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
}
std::string Dropout::extra_repr() const { return str_cat("p=", p); }
Tensor Dropout::forward(const Tensor& x) const { return p == 0.0 ? x : ops::dropout(x, p, is_training()); }

Tensor SiLU::forward(const Tensor& x) const { return ops::silu(x); }

GELU::GELU(std::string approx) : approximate(std::move(approx)) {
  TSE_CHECK(approximate == "none" || approximate == "tanh", "GELU: approximate must be \"none\" or \"tanh\", got \"",
            approximate, "\"");
}
std::string GELU::extra_repr() const { return "approximate='" + approximate + "'"; }
Tensor GELU::forward(const Tensor& x) const { return ops::gelu(x, approximate); }

std::string GLU::extra_repr() const { return str_cat("dim=", dim); }
Tensor GLU::forward(const Tensor& x) const { return ops::glu(x, dim); }

// ---- FiLM ----------------------------------------------------------------------------------

FiLM::FiLM(int64_t cond, int64_t feat, int64_t fdim, DType dtype) : cond_dim(cond), features(feat), feature_dim(fdim) {
  TSE_CHECK(fdim == -1 || fdim >= 1, "FiLM: feature_dim must be -1 (last) or >= 1 (after the batch dim), got ", fdim);
  gamma = register_module("gamma", std::make_shared<Linear>(cond, feat, true, dtype));
  beta = register_module("beta", std::make_shared<Linear>(cond, feat, true, dtype));
}

std::string FiLM::extra_repr() const {
  return str_cat("cond_dim=", cond_dim, ", features=", features, ", feature_dim=", feature_dim);
}

Tensor FiLM::forward(const Tensor& x, const Tensor& cond) const {
  TSE_CHECK(x.defined() && cond.defined(), "FiLM: x and cond must be defined");
  TSE_CHECK(cond.dim() == 2 && cond.size(1) == cond_dim, "FiLM: cond must be (B, ", cond_dim, "), got ", cond.shape_str());
  const int64_t fd = feature_dim < 0 ? x.dim() - 1 : feature_dim;
  TSE_CHECK(x.dim() >= 2 && fd >= 1 && fd < x.dim() && x.size(fd) == features, "FiLM: x must have ", features,
            " features in dim ", feature_dim, " and a batch dim first, got ", x.shape_str());
  TSE_CHECK(cond.size(0) == x.size(0) || cond.size(0) == 1, "FiLM: cond batch ", cond.size(0),
            " does not match x batch ", x.size(0));
  // (B, features) -> (B, 1, .., features, .., 1): broadcast over every non-feature dim of x.
  Shape view(static_cast<size_t>(x.dim()), 1);
  view[0] = cond.size(0);
  view[static_cast<size_t>(fd)] = features;
  Tensor g = gamma->forward(cond).reshape(view);
  Tensor b = beta->forward(cond).reshape(view);
  return ops::add(ops::mul(g, x), b);
}

}  // namespace tse::nn
