// CLAPSep at the released size (HTSAT-base encoder with LoRA rank 16, decoder 128, MaskNet 640 x 3)
// on 10 s at 32 kHz (1001 frames; MODELS.md A s.11: 77.5 GFLOP):
//   clapsep.window_attention.s{0..3}_{fwd,fwd_bwd}: WindowAttention at the 4 encoder stage shapes,
//     the fused score softmax (ops::window_softmax) against the composite of HTSAT's own ops
//     (the peer; ratio > 1: fused faster);
//   clapsep.htsat_encode_b1: the HTSAT encoder from the log-mel (LoRA merged);
//   clapsep.forward_b1: the whole separation (LoRA merged, as for inference);
//   clapsep.forward_b1_bf16: the same under bf16 autocast (peer: the GEMMs in bf16; the weights'
//     bf16 copies are cached across calls, the activations converted in every call);
//   clapsep.train_step_b2: forward + backward of the fine-tuning scope (frozen encoder, LoRA).
// The model rows' peer is the same work's GEMMs alone, run raw through oneDNN primitives: ratio = GEMM-sum
// time / libtse time, so 1 / ratio is libtse's overhead over its GEMMs. Rows tagged "model" are
// long (seconds per call) and print the process's peak RSS.
#include "bench.hpp"
#include "conformer_gemms.hpp"
#include "tse/models/clapsep.hpp"

namespace {

using namespace tse;
using bench::Bench;
using bench::Gemm;
using bench::gemm_peer;
using bench::peak_rss;

constexpr int64_t kSamples = 320000;  // 10 s at 32 kHz
constexpr int64_t kFrames = 1001;

// One Swin block's GEMMs over N tokens of width C with nH heads in 8 x 8 windows.
void swin_block_gemms(std::vector<Gemm>& g, int64_t B, int64_t N, int64_t C, int64_t heads) {
  const int64_t BN = B * N, windows = BN / 64, hd = C / heads;
  g.push_back({1, BN, 3 * C, C, false, true});            // qkv
  g.push_back({windows * heads, 64, 64, hd, false, true});  // q k^T
  g.push_back({windows * heads, 64, hd, 64});              // attn v
  g.push_back({1, BN, C, C, false, true});                // proj
  g.push_back({1, BN, 4 * C, C, false, true});            // fc1
  g.push_back({1, BN, C, 4 * C, false, true});            // fc2
}

// The encoder's GEMMs (patch embed and merges as GEMMs; LoRA merged), released HTSAT-base.
std::vector<Gemm> encoder_gemms(int64_t B) {
  std::vector<Gemm> g{{1, B * 1024, 64, 513, false, false},  // log-mel
                      {1, B * 4096, 128, 16, false, true}};  // patch embed (4 x 4 conv)
  const int64_t depths[] = {2, 2, 12, 2};
  for (int s = 0; s < 4; ++s) {
    const int64_t N = 4096 >> (2 * s), C = 128 << s;
    for (int64_t b = 0; b < depths[s]; ++b) swin_block_gemms(g, B, N, C, 4 << s);
    if (s < 3) g.push_back({1, B * N / 4, 2 * C, 4 * C, false, true});  // PatchMerging reduction
  }
  return g;
}

std::vector<Gemm> decoder_gemms(int64_t B) {
  std::vector<Gemm> g{{1, B * 64, 1024, 1024, false, true}, {1, B, 2048, 1024, false, true}};  // film: proj, gamma|beta
  for (int i = 0; i < 4; ++i) {
    const int s = 3 - i;
    const int64_t N = 4096 >> (2 * s), C = 128 << s;
    if (i > 0) g.push_back({1, B * N / 4, 4 * C, 2 * C, false, true});  // PatchExpand (2C -> 4C)
    swin_block_gemms(g, B, N, C, 4 << s);
    g.push_back({1, B * N, C, C, false, true});     // skip feature_proj
    g.push_back({1, B, 2 * C, 1024, false, true});  // skip gamma|beta
  }
  g.push_back({1, B * 4096, 16, 128, false, false});  // inverse patch embed (4 x 4 transposed conv)
  const int64_t T = B * kFrames, D = 640;
  g.push_back({1, T, D, 577, false, true});  // mask_net.0
  for (int l = 0; l < 3; ++l) {
    g.push_back({1, T, 3 * D, D, false, true});             // in_proj
    g.push_back({B * 8, kFrames, kFrames, 80, false, true});  // q k^T
    g.push_back({B * 8, kFrames, 80, kFrames});              // attn v
    g.push_back({1, T, D, D, false, true});                 // out_proj
    g.push_back({1, T, 4 * D, D, false, true});             // linear1
    g.push_back({1, T, D, 4 * D, false, true});             // linear2
  }
  g.push_back({1, T, 513, D, false, true});  // mask_net.3
  return g;
}

double flops_of(const std::vector<Gemm>& gs) {
  double f = 0;
  for (const Gemm& g : gs) f += 2.0 * static_cast<double>(g.batch * g.M * g.N * g.K);
  return f;
}

// Training: every decoder GEMM with its dX and dW; the frozen encoder's GEMMs with dX only (the
// gradient reaches the LoRA factors through the activations; their own dW GEMMs are rank 16).
std::vector<Gemm> train_gemms(int64_t B) {
  std::vector<Gemm> all;
  for (const Gemm& g : encoder_gemms(B)) {
    all.push_back(g);
    all.push_back({g.batch, g.M, g.K, g.N, false, !g.b_t});
  }
  for (const Gemm& g : decoder_gemms(B)) {
    all.push_back(g);
    all.push_back({g.batch, g.M, g.K, g.N, false, !g.b_t});
    all.push_back({g.batch, g.K, g.N, g.M, true, false});
  }
  return all;
}

std::shared_ptr<models::CLAPSep> released_model(bool merged) {
  manual_seed(0);
  auto model = std::make_shared<models::CLAPSep>();
  model->eval();
  if (merged) model->merge_lora(true);
  return model;
}

Bench forward_bench(bool bf16) {
  auto model = released_model(true);
  Tensor mix = bench::uniform({1, kSamples}, -0.5f, 0.5f, 91);
  Tensor q = bench::uniform({1, 1024}, -0.1f, 0.1f, 92);
  std::vector<Gemm> gs = encoder_gemms(1);
  for (const Gemm& g : decoder_gemms(1)) gs.push_back(g);
  auto peer = gemm_peer(gs, false, bf16);
  return {[=] {
            NoGradGuard ng;
            AutocastGuard autocast(bf16);
            return model->forward(mix, q);
          },
          [=](int nt) { peer->run(nt); }, bench::buffer(1)};
}

Bench encoder_bench() {
  auto model = released_model(true);
  Tensor logmel = bench::uniform({1, 1, 1024, 64}, -60.f, 0.f, 93);
  auto peer = gemm_peer(encoder_gemms(1), false);
  return {[=] {
            NoGradGuard ng;
            return model->audio_branch->encode(logmel).stages.back();
          },
          [=](int nt) { peer->run(nt); }, bench::buffer(1)};
}

Bench train_bench() {
  auto model = released_model(false);
  model->train();
  Tensor mix = bench::uniform({2, kSamples}, -0.5f, 0.5f, 94);
  Tensor target = bench::uniform({2, kSamples}, -0.2f, 0.2f, 95);
  Tensor q = bench::uniform({2, 1024}, -0.1f, 0.1f, 96);
  auto peer = gemm_peer(train_gemms(2), false);
  return {[=] {
            model->zero_grad();
            Tensor loss = metrics::clapsep_loss(model->forward(mix, q), target);
            loss.backward();
            return loss.detach();
          },
          [=](int nt) { peer->run(nt); }, bench::buffer(1)};
}

// The composite WindowAttention core (HTSAT's own op sequence: scaled q, q k^T, + bias, + mask,
// softmax, attn v), the peer of the fused ops::window_softmax path inside nn::WindowAttention.
Tensor composite_attention(const nn::WindowAttention& a, const Tensor& x, const Tensor& mask) {
  const int64_t Bw = x.size(0), n = x.size(1), C = a.dim, H = a.num_heads, hd = C / H;
  const Tensor qkv = ops::permute(ops::reshape(a.qkv->forward(x), {Bw, n, 3, H, hd}), {2, 0, 3, 1, 4});
  const Tensor q = ops::mul(ops::select(qkv, 0, 0), 1.0 / std::sqrt(static_cast<double>(hd)));
  Tensor s = ops::add(ops::matmul(q, ops::transpose(ops::select(qkv, 0, 1), -2, -1)), ops::unsqueeze(a.relative_position_bias(), 0));
  if (mask.defined()) {
    const int64_t nW = mask.size(0);
    s = ops::reshape(ops::add(ops::reshape(s, {Bw / nW, nW, H, n, n}), ops::reshape(mask, {1, nW, 1, n, n})), {Bw, H, n, n});
  }
  const Tensor out = ops::matmul(ops::softmax(s, -1), ops::select(qkv, 0, 2));
  return a.proj->forward(ops::reshape(ops::transpose(out, 1, 2), {Bw, n, C}));
}

// WindowAttention at stage s of the encoder (B = 1, shifted-window mask in stages 0-2, LoRA
// merged): the fused module against the composite, forward or forward + backward (dx).
Bench attention_bench(int s, bool backward) {
  manual_seed(1);
  const int64_t N = 4096 >> (2 * s), C = 128 << s, heads = 4 << s;
  nn::SwinOptions o{.window_size = 8, .lora_rank = 16};
  auto attn = std::make_shared<nn::WindowAttention>(C, heads, o);
  attn->qkv->merge();
  attn->proj->merge();
  attn->eval();
  const Tensor x = bench::uniform({N / 64, 64, C}, -1.f, 1.f, 97);
  const Tensor mask = s < 3 ? nn::shifted_window_mask(64 >> s, 64 >> s, 8, 4) : Tensor();
  auto expect = bench::buffer(x.numel());
  auto run = [=](bool fused) {
    if (!backward) {
      NoGradGuard ng;
      return fused ? attn->forward(x, mask) : composite_attention(*attn, x, mask);
    }
    Tensor xg = x.detach().requires_grad_();
    Tensor y = fused ? attn->forward(xg, mask) : composite_attention(*attn, xg, mask);
    ops::sum(ops::mul(y, y)).backward();
    return xg.grad();
  };
  return {[=] { return run(true); },
          [=](int) {
            const Tensor r = run(false).contiguous();
            std::copy(r.data<float>(), r.data<float>() + r.numel(), expect->begin());
          },
          expect};
}

const bool registered = [] {
  for (int s = 0; s < 4; ++s)
    for (bool bwd : {false, true}) {
      const int64_t N = 4096 >> (2 * s), C = 128 << s;
      std::vector<Gemm> gs;
      swin_block_gemms(gs, 1, N, C, 4 << s);
      gs.resize(4);
      bench::add({.name = "clapsep.window_attention.s" + std::to_string(s) + (bwd ? "_fwd_bwd" : "_fwd"),
                  .shape = "[" + std::to_string(N / 64) + " windows, 64, " + std::to_string(C) + "], " +
                           std::to_string(4 << s) + " heads",
                  .flops = flops_of(gs) * (bwd ? 3 : 1),
                  .rtol = 1e-3,
                  .atol = 1e-3,
                  .setup = [s, bwd] { return attention_bench(s, bwd); }});
    }
  bench::add({.name = "clapsep.htsat_encode_b1",
              .shape = "[1, 1, 1024, 64] log-mel, HTSAT-base, LoRA merged",
              .tags = {"model", "long"},
              .flops = flops_of(encoder_gemms(1)),
              .compare = false,
              .note = peak_rss,
              .setup = encoder_bench});
  std::vector<Gemm> fwd = encoder_gemms(1);
  for (const Gemm& g : decoder_gemms(1)) fwd.push_back(g);
  for (bool bf16 : {false, true}) {
    if (bf16 && !autocast::native_bf16()) continue;
    bench::add({.name = bf16 ? "clapsep.forward_b1_bf16" : "clapsep.forward_b1",
                .shape = std::string("[1, 320000] 10 s at 32 kHz, released config, LoRA merged") +
                         (bf16 ? ", bf16 autocast" : ""),
                .tags = {"model", "long"},
                .flops = flops_of(fwd),
                .compare = false,
                .note = peak_rss,
                .setup = [bf16] { return forward_bench(bf16); }});
  }
  bench::add({.name = "clapsep.train_step_b2",
              .shape = "[2, 320000] fine-tuning scope (frozen encoder + LoRA, decoder)",
              .tags = {"model", "long"},
              .flops = flops_of(train_gemms(2)),
              .compare = false,
              .note = peak_rss,
              .setup = train_bench});
  return true;
}();

}  // namespace
