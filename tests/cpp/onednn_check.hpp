#pragma once
// The check every oneDNN-backed op shares: its float32 kernels (oneDNN) against its float64
// reference path on the same inputs, forward and backward, within the tolerance
// relative L2 <= 1e-6 * log2(K), K the length of the sums behind each output.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "tests/cpp/gradcheck.hpp"

namespace tse::test {

/// ||got - want||_2 / ||want||_2.
inline double rel_l2(const Tensor& got, const Tensor& want) {
  const auto g = values(got), w = values(want);
  REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num += (g[i] - w[i]) * (g[i] - w[i]);
    den += w[i] * w[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// f32 values in [-1, 1) that are exactly representable, as a leaf.
inline Tensor f32_leaf(const Shape& sizes, uint64_t seed) {
  Tensor t = leaf(sizes, -1.0, 1.0, seed).detach().to(DType::f32);
  t.requires_grad_(true);
  return t;
}

/// The same values in f64 (exact), as a leaf.
inline Tensor to_f64_leaf(const Tensor& t) {
  Tensor d = t.detach().to(DType::f64);
  d.requires_grad_(true);
  return d;
}

/// The oneDNN tolerance of the issue: relative L2 error <= 1e-6 * log2(K) for a K-term contraction.
inline double onednn_tol(int64_t k) { return 1e-6 * std::log2(static_cast<double>(std::max<int64_t>(k, 2))); }

/// Runs f on the f32 inputs and on their f64 copies, projects both outputs on one direction, and
/// checks the forward output and every input gradient: tol_k[0] is the contraction length of
/// the forward, tol_k[1 + i] that of input i's gradient.
inline void compare_f32_f64(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& in32,
                     const std::vector<int64_t>& tol_k, const char* what) {
  REQUIRE_MESSAGE(tol_k.size() == in32.size() + 1, what, ": tol_k needs the forward's K and one per input");
  std::vector<Tensor> in64;
  for (const Tensor& t : in32) in64.push_back(to_f64_leaf(t));
  const Tensor y32 = f(in32), y64 = f(in64);
  REQUIRE(y32.dtype() == DType::f32);
  REQUIRE(y64.dtype() == DType::f64);
  const double fe = rel_l2(y32, y64);
  INFO(what, ": forward rel L2 ", fe, " (K = ", tol_k[0], ", tol ", onednn_tol(tol_k[0]), ")");
  CHECK(fe <= onednn_tol(tol_k[0]));
  const Tensor v32 = leaf(y32.sizes(), -1.0, 1.0, 99).detach().to(DType::f32);
  const auto g32 = autograd::grad({y32}, in32, {v32});
  const auto g64 = autograd::grad({y64}, in64, {v32.to(DType::f64)});
  for (size_t i = 0; i < in32.size(); ++i) {
    REQUIRE(g32[i].dtype() == DType::f32);
    const double be = rel_l2(g32[i], g64[i]);
    INFO(what, ": grad of input ", i, " rel L2 ", be, " (K = ", tol_k[i + 1], ", tol ", onednn_tol(tol_k[i + 1]), ")");
    CHECK(be <= onednn_tol(tol_k[i + 1]));
  }
}

}  // namespace tse::test
