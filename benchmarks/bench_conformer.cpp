// ConformerTSE at the paper size (16 x 256, 4 heads, FFN 1024, kernel 33, query 512) on 10 s at
// 32 kHz (626 frames): forward (no grad) and forward + backward, batch 1 and 4. The peer is the
// model's GEMMs alone, run raw through oneDNN primitives (every linear layer, the position
// projection, the three attention products per head; for the backward also each GEMM's dX and
// dW): ratio = GEMM-sum time / model time, so 1 / ratio is the model's overhead over its GEMMs.
// The rows are tagged "model" and "long" (seconds per call); each prints the process's peak RSS.
#include "bench.hpp"
#include "conformer_gemms.hpp"

namespace {

using namespace tse;
using bench::Bench;
using bench::gemm_peer;
using bench::model_gemms;
using bench::peak_rss;

constexpr int64_t kSamples = 320000;  // 10 s at 32 kHz -> 626 frames at hop 512

Bench model_bench(int64_t B, bool backward) {
  manual_seed(0);
  auto model = std::make_shared<models::ConformerTSE>();
  model->eval();  // dropout is 0 anyway; GroupNorm has no running stats
  Tensor mix = bench::uniform({B, kSamples}, -0.5f, 0.5f, 91);
  Tensor q = bench::uniform({B, 512}, -0.1f, 0.1f, 92);
  const int64_t T = 1 + kSamples / model->config().hop_length;
  auto peer = gemm_peer(model_gemms(model->config(), B, T), backward);
  auto out = bench::buffer(1);
  if (!backward)
    return {[=] {
              NoGradGuard ng;
              return model->forward(mix, q);
            },
            [=](int nt) { peer->run(nt); }, out};
  return {[=] {
            model->zero_grad();
            Tensor loss = ops::mean(ops::mul(model->forward(mix, q), mix));
            loss.backward();
            return loss.detach();
          },
          [=](int nt) { peer->run(nt); }, out};
}

double model_flops(int64_t B, bool backward) {
  models::ConformerTSEConfig c;
  return bench::model_gemm_flops(c, B, 1 + kSamples / c.hop_length, backward);
}

const bool registered = [] {
  for (int64_t B : {1, 4})
    for (bool bwd : {false, true}) {
      const std::string n = std::string("conformer_tse.") + (bwd ? "fwd_bwd" : "fwd") + "_b" + std::to_string(B);
      bench::add({.name = n,
                  .shape = "[" + std::to_string(B) + ", 320000] 10 s, 626 frames",
                  .tags = {"model", "long"},
                  .flops = model_flops(B, bwd),
                  .compare = false,
                  .note = peak_rss,
                  .setup = [B, bwd] { return model_bench(B, bwd); }});
    }
  return true;
}();

}  // namespace
