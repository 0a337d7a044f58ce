// Activations and unary math at 4M floats, forward, and gelu's backward kernel through the tape.
#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;
using bench::k4M;

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// y = f(x) over 4M floats in [lo, hi).
template <typename F>
Bench unary(Tensor (*ours)(const Tensor&), F f, float lo, float hi) {
  Tensor x = bench::uniform({k4M}, lo, hi, 11);
  auto out = bench::buffer(k4M);
  return {[=] { return ours(x); },
          [=](int nt) {
            const float* px = bench::cptr(x);
            float* po = out->data();
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < k4M; ++i) po[i] = f(px[i]);
          },
          out};
}

Tensor gelu_exact(const Tensor& x) { return ops::gelu(x); }

const bool registered = [] {
  constexpr double f = sizeof(float);
  // 0.5 x erfc(-x / sqrt 2) rather than 0.5 x (1 + erf(x / sqrt 2)): the same exact gelu, but
  // accurate in the negative tail, so the gate compares values rather than cancellation noise.
  bench::add({.name = "act.gelu",
              .shape = "[4194304]",
              .bytes = 2 * k4M * f,
              .rtol = 1e-5,
              .setup = [] {
                return unary(gelu_exact, [](float v) { return 0.5f * v * std::erfc(-v * kInvSqrt2); }, -6.f, 6.f);
              }});
  // Only the backward node: y = gelu(x) is recorded once, each call replays it with retain_graph.
  // Near x = -0.75 the derivative crosses zero through cancellation, hence the absolute floor.
  bench::add({.name = "act.gelu_bwd",
              .shape = "[4194304], dy -> dx",
              .bytes = 3 * k4M * f,
              .rtol = 1e-5,
              .atol = 1e-2,
              .setup = [] {
                Tensor x = bench::uniform({k4M}, -6.f, 6.f, 12).requires_grad_();
                Tensor g = bench::uniform({k4M}, -1.f, 1.f, 13);
                Tensor y = ops::gelu(x);
                auto out = bench::buffer(k4M);
                return Bench{[=] { return autograd::grad({y}, {x}, {g}, /*retain_graph=*/true)[0]; },
                             [=](int nt) {
                               const float *px = bench::cptr(x), *pg = bench::cptr(g);
                               float* po = out->data();
#pragma omp parallel for simd num_threads(nt) schedule(static)
                               for (int64_t i = 0; i < k4M; ++i) {
                                 float v = px[i];
                                 float cdf = 0.5f * std::erfc(-v * kInvSqrt2);
                                 float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
                                 po[i] = pg[i] * (cdf + v * pdf);
                               }
                             },
                             out};
              }});
  bench::add({.name = "act.sigmoid",
              .shape = "[4194304]",
              .bytes = 2 * k4M * f,
              .rtol = 1e-5,
              .setup = [] {
                return unary(ops::sigmoid, [](float v) { return 1.f / (1.f + std::exp(-v)); }, -8.f, 8.f);
              }});
  bench::add({.name = "act.tanh",
              .shape = "[4194304]",
              .bytes = 2 * k4M * f,
              .rtol = 1e-5,
              .setup = [] { return unary(ops::tanh, [](float v) { return std::tanh(v); }, -4.f, 4.f); }});
  bench::add({.name = "eltwise.exp",
              .shape = "[4194304]",
              .bytes = 2 * k4M * f,
              .rtol = 1e-5,
              .setup = [] { return unary(ops::exp, [](float v) { return std::exp(v); }, -4.f, 4.f); }});
  return true;
}();

}  // namespace
