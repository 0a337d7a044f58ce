// clip_grad_norm_ / clip_grad_value_: argument checks and dispatch to the kernels of
// src/cpu/optim.cpp (a deterministic blocked norm in double, an in-place clamp).
#include "tse/optim/clip.hpp"

#include <cmath>

#include "src/cpu/optim.hpp"
#include "src/dispatch.hpp"
#include "tse/autograd/grad_mode.hpp"

namespace tse::optim {

namespace {

using tse::detail::KernelTable;

const KernelTable<tse::detail::GradNormFn> k_norm{"clip_grad_norm_", &cpu::grad_norm_pow, nullptr};
const KernelTable<tse::detail::ClipValueFn> k_clip{"clip_grad_value_", &cpu::clip_value, nullptr};

// The defined gradients, checked.
std::vector<Tensor> grads_of(const std::vector<Tensor>& params, const char* who) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < params.size(); ++i) {
    TSE_CHECK(params[i].defined(), who, ": parameter ", i, " is an undefined tensor");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    TSE_CHECK(g.dtype() == DType::f32 || g.dtype() == DType::f64, who, ": the gradient of parameter ", i,
              " must be float32 or float64, got ", g.dtype());
    TSE_CHECK(g.is_contiguous(), who, ": the gradient of parameter ", i, " (shape ", g.shape_str(),
              ") is not contiguous");
    out.push_back(g);
  }
  return out;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  const char* who = "clip_grad_norm_";
  TSE_CHECK(std::isfinite(max_norm) && max_norm >= 0.0, who, ": 'max_norm' must be a finite number >= 0, got ",
            max_norm);
  TSE_CHECK(norm_type > 0.0, who,
            ": 'norm_type' must be > 0 or inf, got ", norm_type);
  const std::vector<Tensor> grads = grads_of(params, who);
  if (grads.empty()) return 0.0;
  const bool inf = std::isinf(norm_type);
  double acc = 0.0;
  for (const Tensor& g : grads) {
    const double v = k_norm.get(g.device(), who)(g, norm_type);
    if (inf) {
      if (!(v <= acc)) acc = v;  // NaN wins
    } else {
      acc += v;
    }
  }
  const double total = inf ? acc : (norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type));
  TSE_CHECK(!error_if_nonfinite || std::isfinite(total), who, ": the total norm of order ", norm_type,
            " of the gradients is ", total,
            ", so they cannot be clipped (pass error_if_nonfinite=false to scale them anyway)");
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef)) {  // PyTorch multiplies by clamp(coef, max=1): NaN propagates
    NoGradGuard no_grad;
    for (const Tensor& g : grads) {
      Tensor t = g;
      t.mul_(coef);
    }
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  const char* who = "clip_grad_value_";
  TSE_CHECK(std::isfinite(clip_value) && clip_value >= 0.0, who, ": 'clip_value' must be a finite number >= 0, got ",
            clip_value);
  for (const Tensor& g : grads_of(params, who)) {
    k_clip.get(g.device(), who)(g, clip_value);
    g.storage()->bump_version();
  }
}

}  // namespace tse::optim
