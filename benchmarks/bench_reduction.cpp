// Reductions: everything to a scalar, over the contiguous last dim (rows), and over the outer dim
// (columns, the shape of a bias gradient). Inputs are in [0, 1) so that the relative error of a
// float sum is meaningful (no cancellation to zero).
#include <omp.h>

#include <algorithm>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;
using bench::k4M;

constexpr int64_t M = 4096, N = 1024;

// out[i] = scale * sum_j x[i, j] over the last dim.
Bench rows(Tensor (*ours)(const Tensor&), float scale) {
  Tensor x = bench::uniform({M, N}, 0.f, 1.f, 22);
  auto out = bench::buffer(M);
  return {[=] { return ours(x); },
          [=](int nt) {
            const float* px = bench::cptr(x);
            float* po = out->data();
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < M; ++i) {
              float s = 0;
#pragma omp simd reduction(+ : s)
              for (int64_t j = 0; j < N; ++j) s += px[i * N + j];
              po[i] = s * scale;
            }
          },
          out};
}

const bool registered = [] {
  constexpr double f = sizeof(float);
  bench::add({.name = "reduce.sum_all",
              .shape = "[4194304] -> []",
              .bytes = k4M * f,
              .rtol = 1e-5,
              .setup = [] {
                Tensor x = bench::uniform({k4M}, 0.f, 1.f, 21);
                auto out = bench::buffer(1);
                return Bench{[=] { return ops::sum(x); },
                             [=](int nt) {
                               const float* px = bench::cptr(x);
                               float s = 0;
#pragma omp parallel for simd num_threads(nt) schedule(static) reduction(+ : s)
                               for (int64_t i = 0; i < k4M; ++i) s += px[i];
                               (*out)[0] = s;
                             },
                             out};
              }});
  bench::add({.name = "reduce.sum_rows",
              .shape = "[4096, 1024] -> [4096]",
              .bytes = (M * N + M) * f,
              .rtol = 1e-5,
              .setup = [] { return rows([](const Tensor& x) { return ops::sum(x, {1}); }, 1.f); }});
  bench::add({.name = "reduce.mean_rows",
              .shape = "[4096, 1024] -> [4096]",
              .bytes = (M * N + M) * f,
              .rtol = 1e-5,
              .setup = [] { return rows([](const Tensor& x) { return ops::mean(x, {1}); }, 1.f / N); }});
  bench::add({.name = "reduce.amax_rows",
              .shape = "[4096, 1024] -> [4096]",
              .bytes = (M * N + M) * f,
              .rtol = 0,
              .setup = [] {
                Tensor x = bench::uniform({M, N}, 0.f, 1.f, 24);
                auto out = bench::buffer(M);
                return Bench{[=] { return ops::amax(x, {1}); },
                             [=](int nt) {
                               const float* px = bench::cptr(x);
                               float* po = out->data();
#pragma omp parallel for num_threads(nt) schedule(static)
                               for (int64_t i = 0; i < M; ++i) {
                                 float m = px[i * N];
#pragma omp simd reduction(max : m)
                                 for (int64_t j = 1; j < N; ++j) m = std::max(m, px[i * N + j]);
                                 po[i] = m;
                               }
                             },
                             out};
              }});
  // Each thread owns a block of columns and walks all rows, accumulating a row of partial sums.
  bench::add({.name = "reduce.sum_cols",
              .shape = "[4096, 1024] -> [1024]",
              .bytes = (M * N + N) * f,
              .rtol = 1e-5,
              .setup = [] {
                Tensor x = bench::uniform({M, N}, 0.f, 1.f, 23);
                auto out = bench::buffer(N);
                return Bench{[=] { return ops::sum(x, {0}); },
                             [=](int nt) {
                               const float* px = bench::cptr(x);
                               float* po = out->data();
#pragma omp parallel num_threads(nt)
                               {
                                 const int t = omp_get_thread_num(), T = omp_get_num_threads();
                                 const int64_t j0 = N * t / T, j1 = N * (t + 1) / T;
                                 for (int64_t j = j0; j < j1; ++j) po[j] = 0;
                                 for (int64_t i = 0; i < M; ++i)
#pragma omp simd
                                   for (int64_t j = j0; j < j1; ++j) po[j] += px[i * N + j];
                               }
                             },
                             out};
              }});
  return true;
}();

}  // namespace
