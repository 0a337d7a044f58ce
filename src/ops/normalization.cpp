// layer_norm, group_norm, batch_norm: argument checks, the flattening of each problem into the
// kernel's 2-D or 3-D view, output and statistics allocation, dispatch, the tape nodes and
// batch_norm's running-statistics update. Kernels: src/cpu/normalization.cpp.
//
// The three ops share one body (normalize): the input is made contiguous and viewed as
// (R, D) for layer_norm or (N, C, S) for the others, weight and bias as flat vectors; the tape
// node saves that view of x, the weight and the per-group mean and biased variance, and its
// backward runs the family's backward kernel on the same views. Empty inputs never reach a
// kernel: their outputs are empty and their weight and bias gradients zero.
#include "tse/ops/normalization.hpp"

#include <cmath>
#include <functional>

#include "src/cpu/normalization.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/factory.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using tse::detail::KernelTable;
using tse::detail::NormBackward;
using tse::detail::NormForward;

namespace {

const KernelTable<tse::detail::LayerNormForwardFn> k_layer_norm_forward{"layer_norm", &cpu::layer_norm_forward,
                                                                        TSE_CUDA_KERNEL(cuda::layer_norm_forward)};
const KernelTable<tse::detail::LayerNormBackwardFn> k_layer_norm_backward{"layer_norm", &cpu::layer_norm_backward,
                                                                          TSE_CUDA_KERNEL(cuda::layer_norm_backward)};
const KernelTable<tse::detail::GroupNormForwardFn> k_group_norm_forward{"group_norm", &cpu::group_norm_forward,
                                                                        nullptr};
const KernelTable<tse::detail::GroupNormBackwardFn> k_group_norm_backward{"group_norm", &cpu::group_norm_backward,
                                                                          nullptr};
const KernelTable<tse::detail::BatchNormForwardFn> k_batch_norm_forward{"batch_norm", &cpu::batch_norm_forward,
                                                                        nullptr};
const KernelTable<tse::detail::BatchNormBackwardFn> k_batch_norm_backward{"batch_norm", &cpu::batch_norm_backward,
                                                                          nullptr};

void check_input(const Tensor& x, double eps, const char* op) {
  detail::check_defined(x, op, "input");
  detail::check_floating(x, op, "input");
  TSE_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
}

/// An optional tensor argument (weight, bias, running statistics): x's dtype and device, the
/// given shape. `what` says where the shape comes from.
void check_optional(const Tensor& t, const Tensor& x, const Shape& want, const char* op, const char* arg,
                    const char* what) {
  if (!t.defined()) return;
  detail::check_same_device(x, t, op);
  TSE_CHECK(t.dtype() == x.dtype(), op, ": dtype mismatch: '", arg, "' is ", t.dtype(), " (shape ", t.shape_str(),
            "), 'input' is ", x.dtype(), " (shape ", x.shape_str(), ")");
  TSE_CHECK(t.sizes() == want, op, ": argument '", arg, "' must have shape ", shape_to_string(want), " (", what,
            " of input ", x.shape_str(), "), got ", t.shape_str());
}

/// t outside autograd, contiguous, viewed with sizes (undefined stays undefined).
Tensor flat(const Tensor& t, const Shape& sizes) {
  return t.defined() ? t.detach().contiguous().view(sizes) : Tensor();
}

/// One normalization problem as the kernels see it.
struct Problem {
  const char* op;
  Shape view;                 // x's kernel view: (R, D) or (N, C, S)
  int64_t params;             // length of the flattened weight and bias
  int64_t groups;             // number of statistics (normalised groups)
  bool stats_always = false;  // statistics even without a backward (the running-stat update)
  Tensor given_mean = {};     // statistics the forward reads instead (batch_norm eval), contiguous
  Tensor given_var = {};
};

struct Normalized {
  Tensor y, mean, var;
};

/// The body of every op here: runs forward(NormForward&) and records a node whose backward runs
/// backward(NormBackward&) on the same views.
Normalized normalize(const Problem& p, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                     const std::function<void(const NormForward&)>& forward,
                     const std::function<void(const NormBackward&)>& backward) {
  const bool grad = needs_grad({x, weight, bias});
  NormForward a;
  a.x = flat(x, p.view);
  a.weight = flat(weight, {p.params});
  a.bias = flat(bias, {p.params});
  a.eps = eps;
  a.y = Tensor::empty(p.view, x.dtype(), x.device());
  if (p.given_mean.defined()) {
    a.mean = p.given_mean;
    a.var = p.given_var;
  } else if (grad || p.stats_always) {
    a.mean = Tensor::empty({p.groups}, x.dtype(), x.device());
    a.var = Tensor::empty({p.groups}, x.dtype(), x.device());
  }
  const bool empty = x.numel() == 0;
  if (!empty) forward(a);
  const Tensor y = a.y.view(x.sizes());

  if (grad) {
    const bool rx = x.requires_grad(), rw = weight.defined() && weight.requires_grad();
    const bool rb = bias.defined() && bias.requires_grad();
    // The running statistics batch_norm's eval reads are saved too: modifying them in place
    // before backward is an error, as for any saved tensor.
    const SavedTensor sx(a.x), sw(a.weight), smean(a.mean), svar(a.var);
    const Shape view = p.view, x_sizes = x.sizes(), params{p.params};
    const Shape w_sizes = rw ? weight.sizes() : Shape(), b_sizes = rb ? bias.sizes() : Shape();
    const DType dtype = x.dtype();
    const Device device = x.device();
    const char* op = p.op;
    record(op, {x, weight, bias}, {y}, [=](const Grads& g) -> Grads {
      NormBackward b;
      b.x = sx.unpack(op);
      b.weight = sw.unpack(op);
      b.mean = smean.unpack(op);
      b.var = svar.unpack(op);
      b.eps = eps;
      b.dy = g[0].contiguous().view(view);
      b.dx = Tensor::empty(view, dtype, device);
      auto param_grad = [&](bool wanted) {
        if (!wanted) return Tensor();
        return empty ? zeros(params, dtype, device) : Tensor::empty(params, dtype, device);
      };
      b.dweight = param_grad(rw);
      b.dbias = param_grad(rb);
      if (!empty) backward(b);
      return {rx ? b.dx.view(x_sizes) : Tensor(), rw ? b.dweight.view(w_sizes) : Tensor(),
              rb ? b.dbias.view(b_sizes) : Tensor()};
    });
  }
  return {y, a.mean, a.var};
}

/// x (N, C, *) as (N, C, S), S the product of the trailing dims.
Shape channel_view(const Tensor& x) {
  int64_t S = 1;
  for (int64_t d = 2; d < x.dim(); ++d) S *= x.size(d);
  return {x.size(0), x.size(1), S};
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "layer_norm";
  check_input(x, eps, op);
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  const bool trailing_match = k >= 1 && k <= x.dim() && Shape(x.sizes().end() - k, x.sizes().end()) == normalized_shape;
  TSE_CHECK(trailing_match, op, ": normalized_shape ", shape_to_string(normalized_shape),
            " must be non-empty and equal the trailing dims of input ", x.shape_str());
  check_optional(weight, x, normalized_shape, op, "weight", "normalized_shape");
  check_optional(bias, x, normalized_shape, op, "bias", "normalized_shape");
  const int64_t D = shape_numel(normalized_shape), R = shape_numel(Shape(x.sizes().begin(), x.sizes().end() - k));
  const Device dev = x.device();
  const Problem p{.op = op, .view = {R, D}, .params = D, .groups = R};
  return normalize(
             p, x, weight, bias, eps, [dev](const NormForward& a) { k_layer_norm_forward.get(dev)(a); },
             [dev](const NormBackward& b) { k_layer_norm_backward.get(dev)(b); })
      .y;
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  check_input(x, eps, op);
  TSE_CHECK(x.dim() >= 2, op, ": input must have shape (N, C, *), got ", x.shape_str());
  const int64_t C = x.size(1);
  TSE_CHECK(num_groups > 0, op, ": num_groups must be positive, got ", num_groups);
  TSE_CHECK(C % num_groups == 0, op, ": the number of channels C = ", C, " of input ", x.shape_str(),
            " must be divisible by num_groups = ", num_groups);
  check_optional(weight, x, {C}, op, "weight", "C");
  check_optional(bias, x, {C}, op, "bias", "C");
  const Device dev = x.device();
  const Problem p{.op = op, .view = channel_view(x), .params = C, .groups = x.size(0) * num_groups};
  return normalize(
             p, x, weight, bias, eps,
             [dev, num_groups](const NormForward& a) { k_group_norm_forward.get(dev)(a, num_groups); },
             [dev, num_groups](const NormBackward& b) { k_group_norm_backward.get(dev)(b, num_groups); })
      .y;
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_input(x, eps, op);
  TSE_CHECK(x.dim() >= 2, op, ": input must have shape (N, C, *), got ", x.shape_str());
  const int64_t C = x.size(1);
  TSE_CHECK(running_mean.defined() == running_var.defined(), op,
            ": running_mean and running_var must both be given or both be undefined");
  check_optional(running_mean, x, {C}, op, "running_mean", "C");
  check_optional(running_var, x, {C}, op, "running_var", "C");
  check_optional(weight, x, {C}, op, "weight", "C");
  check_optional(bias, x, {C}, op, "bias", "C");
  TSE_CHECK(training || running_mean.defined(), op,
            ": running_mean and running_var are required in eval mode (training = false)");
  const Shape view = channel_view(x);
  const int64_t per_channel = view[0] * view[2];
  TSE_CHECK(!training || per_channel != 1, op, ": Expected more than 1 value per channel when training, got input ",
            x.shape_str());
  const Device dev = x.device();
  const Problem p{.op = op,
                  .view = view,
                  .params = C,
                  .groups = C,
                  .stats_always = training,
                  .given_mean = training ? Tensor() : flat(running_mean, {C}),
                  .given_var = training ? Tensor() : flat(running_var, {C})};
  const Normalized r = normalize(
      p, x, weight, bias, eps, [dev, training](const NormForward& a) { k_batch_norm_forward.get(dev)(a, training); },
      [dev, training](const NormBackward& b) { k_batch_norm_backward.get(dev)(b, training); });
  if (training && running_mean.defined() && x.numel() > 0) {
    // torch's rule, with the unbiased batch variance; outside autograd, bumping the versions.
    NoGradGuard no_grad;
    const double n = static_cast<double>(per_channel);
    Tensor mean = running_mean, var = running_var;
    mean.mul_(1.0 - momentum).add_(r.mean, momentum);
    var.mul_(1.0 - momentum).add_(r.var, momentum * n / (n - 1.0));
  }
  return r.y;
}

}  // namespace tse::ops
