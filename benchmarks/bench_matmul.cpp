// GEMMs at the shapes of the models (Conformer, MaskNet, Swin): linear layers forward and
// backward, Swin's batched window attention, and linear under bf16 autocast (gemm_bf16.*: the
// peer runs oneDNN's bf16 matmul on operands converted in setup, so the ratio includes what
// autocast costs per call: converting the activation; the weight's copy is cached). The peer is
// not a loop nest but the raw oneDNN matmul primitive libtse itself runs on, created once in setup
// over the same buffers and memory layouts, so the ratio is what libtse's op layer costs on top of
// oneDNN (output allocation, primitive-cache lookup, scratchpad, tape).
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "bench.hpp"
#include "onednn_peer.hpp"

namespace {

using namespace tse;
using bench::Bench;
using dnnl::memory;
using bench::f32_md;
using bench::OneDnnPeer;

// Positive operands: every output is a sum of positive terms, so its relative rounding error
// stays near sqrt(K) * 2^-24 whatever the blocking, and rtol 1e-4 means something everywhere
// (signed data would put outputs near zero, where the relative error measures cancellation).
constexpr double kRtol = 1e-4;

// linear(x, W): x (M, K) row-major, W (N, K) read as the column-major (K, N) matrix W^T.
Bench linear_fwd(int64_t M, int64_t N, int64_t K) {
  Tensor x = bench::uniform({M, K}, 0.f, 1.f, 51), w = bench::uniform({N, K}, 0.f, 1.f, 52);
  auto out = bench::buffer(M * N);
  auto peer = std::make_shared<OneDnnPeer>();
  peer->add(f32_md({M, K}, {K, 1}), bench::cptr(x), f32_md({K, N}, {1, K}), bench::cptr(w), f32_md({M, N}, {N, 1}),
            out->data());
  return {[=] { return ops::linear(x, w); }, [=](int nt) { peer->run(nt); }, out};
}

// linear(x, W) under bf16 autocast against oneDNN's bf16 matmul on the same rounded operands (the
// products are exact in f32 either way, so only the summation order differs).
Bench linear_bf16(int64_t M, int64_t N, int64_t K) {
  Tensor x = bench::uniform({M, K}, 0.f, 1.f, 51), w = bench::uniform({N, K}, 0.f, 1.f, 52);
  const Tensor xb = x.to(DType::bf16), wb = w.to(DType::bf16);
  auto out = bench::buffer(M * N);
  auto peer = std::make_shared<OneDnnPeer>();
  peer->add(bench::bf16_md({M, K}, {K, 1}), xb.data_ptr(), bench::bf16_md({K, N}, {1, K}), wb.data_ptr(),
            f32_md({M, N}, {N, 1}), out->data());
  return {[=] {
            AutocastGuard bf16;
            return ops::linear(x, w);
          },
          [=](int nt) { peer->run(nt); }, out};
}

// The backward of y = linear(x, W) for a fixed upstream gradient g: dx = g W, dW = g^T x, on a
// graph built once and retained, so only the backward is timed. The gate needs one tensor, so
// ours returns dx and dW concatenated; the peer pays the same copy, keeping the ratio about the
// GEMMs.
Bench linear_bwd(int64_t M, int64_t N, int64_t K) {
  Tensor x = bench::uniform({M, K}, 0.f, 1.f, 53).requires_grad_();
  Tensor w = bench::uniform({N, K}, 0.f, 1.f, 54).requires_grad_();
  Tensor g = bench::uniform({M, N}, 0.f, 1.f, 55);
  Tensor y = ops::linear(x, w);
  auto dx = bench::buffer(M * K), dw = bench::buffer(N * K), out = bench::buffer(M * K + N * K);
  auto peer = std::make_shared<OneDnnPeer>();
  peer->add(f32_md({M, N}, {N, 1}), bench::cptr(g), f32_md({N, K}, {K, 1}), bench::cptr(w), f32_md({M, K}, {K, 1}),
            dx->data());
  peer->add(f32_md({N, M}, {1, N}), bench::cptr(g), f32_md({M, K}, {K, 1}), bench::cptr(x), f32_md({N, K}, {K, 1}),
            dw->data());
  return {[=] {
            std::vector<Tensor> d = autograd::grad({y}, {x, w}, {g}, /*retain_graph=*/true);
            return ops::cat({d[0].flatten(), d[1].flatten()});
          },
          [=](int nt) {
            peer->run(nt);
            const float *px = dx->data(), *pw = dw->data();
            float* po = out->data();
            const int64_t nx = M * K, nw = N * K;
#pragma omp parallel num_threads(nt)
            {
#pragma omp for simd schedule(static) nowait
              for (int64_t i = 0; i < nx; ++i) po[i] = px[i];
#pragma omp for simd schedule(static)
              for (int64_t i = 0; i < nw; ++i) po[nx + i] = pw[i];
            }
          },
          out};
}

// Swin window attention, 64 windows x 4 heads of 64 tokens, head dim 32.
constexpr int64_t kWin = 256, kTok = 64, kHead = 32;

// scores = q @ k^T, k^T a transposed view read in place.
Bench attn_qk() {
  Tensor q = bench::uniform({kWin, kTok, kHead}, 0.f, 1.f, 56), k = bench::uniform({kWin, kTok, kHead}, 0.f, 1.f, 57);
  auto out = bench::buffer(kWin * kTok * kTok);
  auto peer = std::make_shared<OneDnnPeer>();
  peer->add(f32_md({kWin, kTok, kHead}, {kTok * kHead, kHead, 1}), bench::cptr(q),
            f32_md({kWin, kHead, kTok}, {kTok * kHead, 1, kHead}), bench::cptr(k),
            f32_md({kWin, kTok, kTok}, {kTok * kTok, kTok, 1}), out->data());
  return {[=] { return ops::matmul(q, k.transpose(1, 2)); }, [=](int nt) { peer->run(nt); }, out};
}

// context = attn @ v.
Bench attn_av() {
  Tensor a = bench::uniform({kWin, kTok, kTok}, 0.f, 1.f, 58), v = bench::uniform({kWin, kTok, kHead}, 0.f, 1.f, 59);
  auto out = bench::buffer(kWin * kTok * kHead);
  auto peer = std::make_shared<OneDnnPeer>();
  peer->add(f32_md({kWin, kTok, kTok}, {kTok * kTok, kTok, 1}), bench::cptr(a),
            f32_md({kWin, kTok, kHead}, {kTok * kHead, kHead, 1}), bench::cptr(v),
            f32_md({kWin, kTok, kHead}, {kTok * kHead, kHead, 1}), out->data());
  return {[=] { return ops::bmm(a, v); }, [=](int nt) { peer->run(nt); }, out};
}

struct Shape3 {
  const char* model;
  int64_t M, N, K;
};

std::string name(const char* family, const Shape3& s) {
  std::string n = family;
  n += s.model;
  n += '_';
  n += std::to_string(s.M);
  n += 'x';
  n += std::to_string(s.N);
  n += 'x';
  n += std::to_string(s.K);
  return n;
}

// "[M,K] @ [N,K]^T", the operands of linear(x, W).
std::string linear_shape(const Shape3& s) {
  const std::string m = std::to_string(s.M), n = std::to_string(s.N), k = std::to_string(s.K);
  return std::string("[") + m + "," + k + "] @ [" + n + "," + k + "]^T";
}

const bool registered = [] {
  // M x N x K: M rows (frames or tokens), N outputs, K inputs.
  const Shape3 forward[] = {
      {"cf", 626, 256, 256},   {"cf", 626, 1024, 256}, {"cf", 626, 256, 1024},  {"cf", 626, 513, 256},
      {"mn", 1001, 1920, 640}, {"mn", 1001, 640, 640}, {"mn", 1001, 2560, 640}, {"mn", 1001, 640, 2560},
      {"mn", 1001, 640, 577},  {"sw", 4096, 384, 128}, {"sw", 4096, 512, 128},  {"sw", 4096, 128, 512},
      {"sw", 1024, 768, 256},  {"sw", 256, 1536, 512}, {"sw", 64, 3072, 1024},
  };
  for (const Shape3& s : forward) {
    bench::add({.name = name("gemm.", s),
                .shape = linear_shape(s),
                .flops = 2.0 * s.M * s.N * s.K,
                .rtol = kRtol,
                .setup = [s] { return linear_fwd(s.M, s.N, s.K); }});
  }
  if (autocast::native_bf16()) {
    const Shape3 bf16_shapes[] = {{"mn", 1001, 2560, 640}, {"mn", 1001, 640, 2560}, {"sw", 4096, 384, 128},
                                  {"sw", 256, 1536, 512}, {"sw", 64, 3072, 1024}};
    for (const Shape3& s : bf16_shapes)
      bench::add({.name = name("gemm_bf16.", s),
                  .shape = linear_shape(s) + " bf16 autocast",
                  .flops = 2.0 * s.M * s.N * s.K,
                  .rtol = kRtol,
                  .setup = [s] { return linear_bf16(s.M, s.N, s.K); }});
  }
  const Shape3 backward[] = {{"cf", 626, 256, 256}, {"mn", 1001, 640, 640}, {"sw", 4096, 384, 128}};
  for (const Shape3& s : backward) {
    bench::add({.name = name("gemm_bwd.", s),
                .shape = std::string("bwd ") + linear_shape(s),
                .flops = 4.0 * s.M * s.N * s.K,
                .rtol = kRtol,
                .setup = [s] { return linear_bwd(s.M, s.N, s.K); }});
  }
  constexpr double attn_flops = 2.0 * kWin * kTok * kTok * kHead;
  bench::add({.name = "gemm.sw_attn_qk",
              .shape = "[256,64,32] @ [256,64,32]^T",
              .flops = attn_flops,
              .rtol = kRtol,
              .setup = attn_qk});
  bench::add({.name = "gemm.sw_attn_av",
              .shape = "[256,64,64] @ [256,64,32]",
              .flops = attn_flops,
              .rtol = kRtol,
              .setup = attn_av});
  return true;
}();

}  // namespace
