// The CLAP front-end stretch: a (1, 1, 1001, 64) log-mel map resized to (1, 1, 1024, 64) with
// bicubic, align_corners=True, forward and backward. The peer is separable cubic convolution as
// plain loops (a pass along W, then one along H, through a buffer), with the taps of
// torch.nn.functional.interpolate: A = -0.75, coordinates in f32, border-clamped indices.
#include <omp.h>

#include <algorithm>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;

constexpr int64_t kIH = 1001, kIW = 64, kOH = 1024, kOW = 64;

// Source indices and weights of the 4 taps of each output index along one axis.
struct Taps {
  std::vector<int64_t> idx;
  std::vector<float> w;
};

// ATen rounds the source coordinate to f32 before taking its fraction. GCC would otherwise fuse
// scale * o - i0 into one FMA, moving the fraction by up to half an ulp of the coordinate (3e-5
// near row 600) and the output by as much, which the gate rightly reports.
__attribute__((optimize("fp-contract=off"))) Taps cubic_taps(int64_t in, int64_t out) {
  Taps t{std::vector<int64_t>(static_cast<size_t>(4 * out)), std::vector<float>(static_cast<size_t>(4 * out))};
  const float scale = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
  constexpr float a = -0.75f;
  auto near = [](float x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };
  auto far = [](float x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };
  for (int64_t o = 0; o < out; ++o) {
    const float s = scale * static_cast<float>(o);
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(s)), in - 1);
    const float f = std::clamp(s - static_cast<float>(i0), 0.f, 1.f);
    const float u = 1 - f;
    const float w[4] = {far(f + 1), near(f), near(u), far(u + 1)};
    for (int64_t j = 0; j < 4; ++j) {
      t.idx[static_cast<size_t>(4 * o + j)] = std::clamp<int64_t>(i0 - 1 + j, 0, in - 1);
      t.w[static_cast<size_t>(4 * o + j)] = w[j];
    }
  }
  return t;
}

Tensor stretch(const Tensor& x) { return ops::interpolate(x, {kOH, kOW}, {}, "bicubic", /*align_corners=*/true); }

// Inputs and upstream gradients in [0.5, 1.5): the weights sum to 1 and the negative outer taps
// are small, so outputs stay near 1 and the relative gate never meets cancellation.
Bench forward() {
  Tensor x = bench::uniform({1, 1, kIH, kIW}, 0.5f, 1.5f, 61);
  auto rows = bench::buffer(kIH * kOW), out = bench::buffer(kOH * kOW);
  return {[=] { return stretch(x); },
          [=](int nt) {
            // The taps are part of the work: ours computes them every call too.
            const Taps th = cubic_taps(kIH, kOH), tw = cubic_taps(kIW, kOW);
            const float* px = bench::cptr(x);
            float *pr = rows->data(), *po = out->data();
#pragma omp parallel num_threads(nt)
            {
#pragma omp for schedule(static)
              for (int64_t r = 0; r < kIH; ++r)
                for (int64_t o = 0; o < kOW; ++o) {
                  float acc = 0;
                  for (int64_t j = 0; j < 4; ++j) acc += tw.w[4 * o + j] * px[r * kIW + tw.idx[4 * o + j]];
                  pr[r * kOW + o] = acc;
                }
#pragma omp for schedule(static)
              for (int64_t o = 0; o < kOH; ++o) {
                const float* r0 = pr + th.idx[4 * o] * kOW;
                const float* r1 = pr + th.idx[4 * o + 1] * kOW;
                const float* r2 = pr + th.idx[4 * o + 2] * kOW;
                const float* r3 = pr + th.idx[4 * o + 3] * kOW;
                const float w0 = th.w[4 * o], w1 = th.w[4 * o + 1], w2 = th.w[4 * o + 2], w3 = th.w[4 * o + 3];
#pragma omp simd
                for (int64_t c = 0; c < kOW; ++c) po[o * kOW + c] = w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c];
              }
            }
          },
          out};
}

// The adjoint of the same two passes on a retained graph: scatter along W into a (1024, 64)
// buffer, then along H into dx.
Bench backward() {
  Tensor x = bench::uniform({1, 1, kIH, kIW}, 0.5f, 1.5f, 62).requires_grad_();
  Tensor g = bench::uniform({1, 1, kOH, kOW}, 0.5f, 1.5f, 63);
  Tensor y = stretch(x);
  auto rows = bench::buffer(kOH * kIW), dx = bench::buffer(kIH * kIW);
  return {[=] { return autograd::grad({y}, {x}, {g}, /*retain_graph=*/true)[0]; },
          [=](int nt) {
            const Taps th = cubic_taps(kIH, kOH), tw = cubic_taps(kIW, kOW);
            const float* pg = bench::cptr(g);
            float *pr = rows->data(), *pd = dx->data();
#pragma omp parallel num_threads(nt)
            {
#pragma omp for schedule(static)
              for (int64_t r = 0; r < kOH; ++r) {
                float* row = pr + r * kIW;
                std::fill(row, row + kIW, 0.f);
                for (int64_t o = 0; o < kOW; ++o)
                  for (int64_t j = 0; j < 4; ++j) row[tw.idx[4 * o + j]] += tw.w[4 * o + j] * pg[r * kOW + o];
              }
              // After the W pass (its barrier), each thread owns a band of dx rows and applies the
              // taps that land in it: no two threads write one row.
              const int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
              const int64_t r0 = kIH * t / nth, r1 = kIH * (t + 1) / nth;
              std::fill(pd + r0 * kIW, pd + r1 * kIW, 0.f);
              for (int64_t o = 0; o < kOH; ++o)
                for (int64_t j = 0; j < 4; ++j) {
                  const int64_t i = th.idx[4 * o + j];
                  if (i < r0 || i >= r1) continue;
                  float* d = pd + i * kIW;
                  const float* s = pr + o * kIW;
                  const float w = th.w[4 * o + j];
#pragma omp simd
                  for (int64_t c = 0; c < kIW; ++c) d[c] += w * s[c];
                }
            }
          },
          dx};
}

const bool registered = [] {
  constexpr double bytes = (kIH * kIW + kOH * kOW) * sizeof(float);
  bench::add({.name = "interp.bicubic",
              .shape = "[1,1,1001,64] -> [1,1,1024,64]",
              .bytes = bytes,
              .rtol = 1e-5,
              .setup = forward});
  bench::add({.name = "interp.bicubic_bwd",
              .shape = "dx of [1,1,1001,64]->[1024,64]",
              .bytes = bytes,
              .rtol = 1e-5,
              .setup = backward});
  return true;
}();

}  // namespace
