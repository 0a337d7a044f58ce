#pragma once
// Finite-difference gradient checks (float64, central differences; PyTorch's defaults
// eps 1e-6, atol 1e-5, rtol 1e-3) and helpers for tests.
//
// gradcheck(f, inputs) projects the output on a fixed random direction v and compares, for every
// element of every input that requires grad, the analytical d(v . f)/dx from autograd::grad
// with (v . f(x + eps e_i) - v . f(x - eps e_i)) / (2 eps).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tse/tse.hpp"

namespace tse::test {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Returns "" on success, else a message naming the first mismatching input element.
inline std::string gradcheck(const Fn& f, const std::vector<Tensor>& inputs, GradcheckOptions opt = {}) {
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) {
    if (t.requires_grad() && t.dtype() != DType::f64) return "gradcheck: inputs must be float64";
    xs.push_back(t);
  }
  Tensor out = f(xs);
  if (!out.requires_grad()) return "gradcheck: output does not require grad";
  // A fixed pseudo-random direction with entries in [0.5, 1.5) and alternating signs.
  std::vector<double> vdat(static_cast<size_t>(out.numel()));
  uint64_t s = opt.seed;
  for (auto& v : vdat) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = (0.5 + static_cast<double>(s >> 11) / 9007199254740992.0) * ((s >> 7) & 1 ? 1.0 : -1.0);
  }
  const Tensor v = ops::from_vector(vdat, out.sizes(), DType::f64);
  std::vector<Tensor> wrt;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i].requires_grad()) {
      wrt.push_back(xs[i]);
      wrt_index.push_back(i);
    }
  const auto analytical = autograd::grad({out}, wrt, {v}, false, true);
  auto project = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    const auto o = ops::to_vector(f(in));
    double acc = 0;
    for (size_t k = 0; k < o.size(); ++k) acc += o[k] * vdat[k];
    return acc;
  };
  for (size_t w = 0; w < wrt.size(); ++w) {
    const Tensor& x = wrt[w];
    const std::vector<double> ga = analytical[w].defined() ? ops::to_vector(analytical[w])
                                                           : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    const std::vector<double> base = ops::to_vector(x);
    for (int64_t e = 0; e < x.numel(); ++e) {
      auto perturbed = [&](double delta) {
        std::vector<double> d = base;
        d[e] += delta;
        std::vector<Tensor> in = xs;
        in[wrt_index[w]] = ops::from_vector(d, x.sizes(), DType::f64);
        return project(in);
      };
      const double num = (perturbed(opt.eps) - perturbed(-opt.eps)) / (2 * opt.eps);
      const double ana = ga[e];
      if (!(std::abs(num - ana) <= opt.atol + opt.rtol * std::abs(num))) {
        std::ostringstream os;
        os << "gradcheck: input " << wrt_index[w] << " element " << e << ": analytical " << ana << ", numerical "
           << num;
        return os.str();
      }
    }
  }
  return "";
}

/// gradcheck for a module: `params` (float64 leaves of the module, e.g. from named_parameters())
/// are checked together with `inputs`. A perturbed evaluation copies the perturbed values into
/// the module's own tensors for the duration of one forward (the module reads its members), then
/// restores them.
inline std::string gradcheck_module(const std::vector<Tensor>& params, const Fn& forward,
                                    const std::vector<Tensor>& inputs, GradcheckOptions opt = {}) {
  std::vector<Tensor> all = inputs;
  all.insert(all.end(), params.begin(), params.end());
  const size_t n_in = inputs.size();
  Fn f = [&](const std::vector<Tensor>& xs) {
    std::vector<std::pair<Tensor, Tensor>> restore;  // (param, saved value)
    for (size_t k = 0; k < params.size(); ++k)
      if (!xs[n_in + k].is_same(params[k])) {
        NoGradGuard ng;
        Tensor p = params[k];
        restore.emplace_back(p, p.detach().clone());
        p.detach().copy_(xs[n_in + k]);
      }
    Tensor out = forward(std::vector<Tensor>(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n_in)));
    for (auto& [p, saved] : restore) {
      NoGradGuard ng;
      p.detach().copy_(saved);
    }
    return out;
  };
  return gradcheck(f, all, opt);
}

/// A float64 leaf with values from a fixed generator in [lo, hi).
inline Tensor leaf(const Shape& sizes, double lo = -1.0, double hi = 1.0, uint64_t seed = 7) {
  std::vector<double> d(static_cast<size_t>(shape_numel(sizes)));
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& x : d) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = lo + (hi - lo) * static_cast<double>(s >> 11) / 9007199254740992.0;
  }
  Tensor t = ops::from_vector(d, sizes, DType::f64);
  t.requires_grad_(true);
  return t;
}

/// Max |a - b| / (atol + rtol |b|) <= 1 elementwise, over two tensors of equal shape.
inline bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8) {
  if (a.sizes() != b.sizes()) return false;
  const auto x = ops::to_vector(a), y = ops::to_vector(b);
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (std::isinf(x[i]) || std::isinf(y[i])) {
      if (x[i] != y[i]) return false;
      continue;
    }
    if (!(std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]))) return false;
  }
  return true;
}

/// Values as a vector (shorthand).
inline std::vector<double> values(const Tensor& t) { return ops::to_vector(t); }

}  // namespace tse::test

#define CHECK_GRADCHECK(...)                          \
  do {                                                \
    const std::string gc_msg_ = ::tse::test::gradcheck(__VA_ARGS__); \
    CHECK_MESSAGE(gc_msg_.empty(), gc_msg_);          \
  } while (0)

#define CHECK_GRADCHECK_MODULE(...)                                        \
  do {                                                                     \
    const std::string gc_msg_ = ::tse::test::gradcheck_module(__VA_ARGS__); \
    CHECK_MESSAGE(gc_msg_.empty(), gc_msg_);                               \
  } while (0)
