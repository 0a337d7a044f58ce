// Elementwise arithmetic, broadcasting and strided copies, plus the STREAM-triad row that shows
// the machine's bandwidth in the same run.
#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;
using bench::k4M;

// out = a op b over n contiguous floats.
template <typename Op>
Bench binary(Op op, Tensor (*ours)(const Tensor&, const Tensor&)) {
  Tensor a = bench::uniform({k4M}, -1.f, 1.f, 1), b = bench::uniform({k4M}, -1.f, 1.f, 2);
  auto out = bench::buffer(k4M);
  return {[=] { return ours(a, b); },
          [=](int nt) {
            const float *pa = bench::cptr(a), *pb = bench::cptr(b);
            float* po = out->data();
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < k4M; ++i) po[i] = op(pa[i], pb[i]);
          },
          out};
}

Tensor add2(const Tensor& a, const Tensor& b) { return ops::add(a, b); }

const bool registered = [] {
  constexpr double f = sizeof(float);
  bench::add({.name = "stream.triad",
              .shape = "[4194304] x3, a = b + s*c",
              .tags = {"short", "ref"},
              .bytes = 3 * k4M * f,
              .setup = [] {
                Tensor b = bench::uniform({k4M}, -1.f, 1.f, 3), c = bench::uniform({k4M}, -1.f, 1.f, 4);
                auto a = bench::buffer(k4M);
                constexpr float s = 3.f;
                return Bench{[=] { return ops::add(b, c, s); },
                             [=](int nt) {
                               const float *pb = bench::cptr(b), *pc = bench::cptr(c);
                               float* pa = a->data();
#pragma omp parallel for simd num_threads(nt) schedule(static)
                               for (int64_t i = 0; i < k4M; ++i) pa[i] = pb[i] + s * pc[i];
                             },
                             a};
              }});
  bench::add({.name = "eltwise.add",
              .shape = "[4194304] + [4194304]",
              .bytes = 3 * k4M * f,
              .setup = [] { return binary([](float x, float y) { return x + y; }, add2); }});
  bench::add({.name = "eltwise.mul",
              .shape = "[4194304] * [4194304]",
              .bytes = 3 * k4M * f,
              .setup = [] { return binary([](float x, float y) { return x * y; }, ops::mul); }});
  bench::add({.name = "eltwise.add_row_bcast",
              .shape = "[4096, 1024] + [1024]",
              .bytes = (2.0 * 4096 * 1024 + 1024) * f,
              .setup = [] {
                constexpr int64_t M = 4096, N = 1024;
                Tensor a = bench::uniform({M, N}, -1.f, 1.f, 5), b = bench::uniform({N}, -1.f, 1.f, 6);
                auto out = bench::buffer(M * N);
                return Bench{[=] { return a + b; },
                             [=](int nt) {
                               const float *pa = bench::cptr(a), *pb = bench::cptr(b);
                               float* po = out->data();
#pragma omp parallel for num_threads(nt) schedule(static)
                               for (int64_t i = 0; i < M; ++i)
#pragma omp simd
                                 for (int64_t j = 0; j < N; ++j) po[i * N + j] = pa[i * N + j] + pb[j];
                             },
                             out};
              }});
  // The peer walks 8x8 tiles: with rows 8 KiB apart every line of a column maps to the same L1
  // set, so taller tiles (or no tiling) measure set conflicts instead of a transpose.
  bench::add({.name = "copy.transpose",
              .shape = "[2048, 2048].t() -> contiguous",
              .bytes = 2.0 * 2048 * 2048 * f,
              .rtol = 0,
              .setup = [] {
                constexpr int64_t N = 2048, T = 8;
                Tensor x = bench::uniform({N, N}, -1.f, 1.f, 7);
                auto out = bench::buffer(N * N);
                return Bench{[=] { return x.t().contiguous(); },
                             [=](int nt) {
                               const float* px = bench::cptr(x);
                               float* po = out->data();
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static)
                               for (int64_t i0 = 0; i0 < N; i0 += T)
                                 for (int64_t j0 = 0; j0 < N; j0 += T)
                                   for (int64_t i = i0; i < i0 + T; ++i)
                                     for (int64_t j = j0; j < j0 + T; ++j) po[i * N + j] = px[j * N + i];
                             },
                             out};
              }});
  return true;
}();

}  // namespace
