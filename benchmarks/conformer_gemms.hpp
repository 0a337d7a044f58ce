#pragma once
// The GEMMs of one ConformerTSE forward (and backward) at a batch and frame count, run raw
// through oneDNN as the peer of the model-level rows (bench_conformer, bench_train): ratio =
// GEMM-sum time / model time, so 1 / ratio is the model's overhead over its GEMMs.
#include <sys/resource.h>

#include <memory>
#include <string>
#include <vector>

#include "bench.hpp"
#include "onednn_peer.hpp"
#include "tse/models/conformer_tse.hpp"

namespace tse::bench {

struct Gemm {
  int64_t batch, M, N, K;  // (batch x) [M, K] @ [K, N]
  bool a_t = false;        // A stored [K, M] (read transposed), as dW = dY^T X
  bool b_t = false;        // B stored [N, K] (read transposed), as a Linear's weight or k^T, p^T
};

// Every GEMM of one ConformerTSE forward at batch B (MODELS.md B s.2.3 and s.2.5).
inline std::vector<Gemm> model_gemms(const models::ConformerTSEConfig& c, int64_t B, int64_t T) {
  const int64_t BT = B * T, D = c.d_model, F = c.n_bins(), H = c.num_heads, dk = D / H, P = 2 * T - 1;
  // The layouts the model's ops hand to oneDNN: Linear reads its [out, in] weight transposed;
  // the scores read k and p transposed.
  std::vector<Gemm> g{{1, BT, D, F, false, true}};  // embed.0
  for (int64_t l = 0; l < c.num_layers; ++l) {
    g.push_back({1, BT, D, D, false, true});                       // cond linear1
    g.push_back({1, B, 2 * D, c.query_dim, false, true});          // FiLM gamma and beta
    g.push_back({1, BT, D, D, false, true});                       // cond linear2
    g.push_back({1, BT, c.ffn_dim, D, false, true});               // macaron w_1
    g.push_back({1, BT, D, c.ffn_dim, false, true});               // macaron w_2
    for (int i = 0; i < 3; ++i) g.push_back({1, BT, D, D, false, true});  // q, k, v
    g.push_back({1, P, D, D, false, true});                        // linear_pos (table shared by the batch)
    g.push_back({B * H, T, T, dk, false, true});                   // (q + u) k^T
    g.push_back({B * H, T, P, dk, false, true});                   // (q + v) p^T
    g.push_back({B * H, T, dk, T});                   // attn v
    g.push_back({1, BT, D, D, false, true});                       // linear_out
    g.push_back({1, BT, 2 * D, D, false, true});                   // pointwise_conv1
    g.push_back({1, BT, D, D, false, true});                       // pointwise_conv2
    g.push_back({1, BT, c.ffn_dim, D, false, true});               // w_1
    g.push_back({1, BT, D, c.ffn_dim, false, true});               // w_2
  }
  g.push_back({1, BT, F, D, false, true});  // mask_head
  return g;
}

// The GEMMs over three shared scratch buffers (their values do not matter for the timing); bf16
// reads the operand buffers as bf16 (autocast's GEMMs, f32 out).
inline std::shared_ptr<OneDnnPeer> gemm_peer(const std::vector<Gemm>& gemms, bool with_backward, bool bf16 = false) {
  auto peer = std::make_shared<OneDnnPeer>();
  std::vector<Gemm> all;
  for (const Gemm& g : gemms) {
    all.push_back(g);
    if (with_backward) {
      all.push_back({g.batch, g.M, g.K, g.N, false, !g.b_t});  // dX = dY B^T
      all.push_back({g.batch, g.K, g.N, g.M, true, false});    // dB = A^T dY (dW^T for a Linear)
    }
  }
  int64_t na = 0, nb = 0, nc = 0;
  for (const Gemm& g : all) {
    na = std::max(na, g.batch * g.M * g.K);
    nb = std::max(nb, g.batch * g.K * g.N);
    nc = std::max(nc, g.batch * g.M * g.N);
  }
  static std::vector<std::shared_ptr<std::vector<float>>> keep;  // alive as long as the peers
  auto a = buffer(na), b = buffer(nb), c = buffer(nc);
  std::fill(a->begin(), a->end(), 0.5f), std::fill(b->begin(), b->end(), 0.25f);
  keep.insert(keep.end(), {a, b, c});
  const auto operand_md = bf16 ? bf16_md : f32_md;
  for (const Gemm& g : all)
    peer->add(operand_md({g.batch, g.M, g.K}, {g.M * g.K, g.a_t ? 1 : g.K, g.a_t ? g.M : 1}), a->data(),
              operand_md({g.batch, g.K, g.N}, {g.K * g.N, g.b_t ? 1 : g.N, g.b_t ? g.K : 1}), b->data(),
              f32_md({g.batch, g.M, g.N}, {g.M * g.N, g.N, 1}), c->data());
  return peer;
}

inline std::string peak_rss() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return "peak RSS " + std::to_string(u.ru_maxrss / 1024) + " MB";
}


/// Multiply-adds x 2 of the GEMMs (x 3 with the backward's dX and dW).
inline double model_gemm_flops(const models::ConformerTSEConfig& c, int64_t B, int64_t T, bool backward) {
  double f = 0;
  for (const Gemm& g : model_gemms(c, B, T)) f += 2.0 * static_cast<double>(g.batch * g.M * g.N * g.K);
  return backward ? 3 * f : f;
}

}  // namespace tse::bench
