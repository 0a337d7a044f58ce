// Relative-position attention at the Conformer paper shape (H 4, d_k 64, T 626, B 1 and 4):
// the fused score softmax rel_pos_softmax forward and backward, and the whole rel_pos_attention
// core forward and forward+backward. Then scaled_dot_product_attention at CLAPSep's MaskNet shape
// (8 heads of 80 over 1001 frames), fused against softmax(q k^T s) v, in f32 and bf16 autocast.
//
// The peer is not a loop nest but the unfused composite the fused op replaces, through libtse's
// own ops in the same run: softmax(mul(add(ac, rel_shift(bd_raw)), scale), -1) for the score
// path, and the same attention with that composite in place of rel_pos_softmax. The ratio is then
// what the fusion saves (three extra passes over the (B, H, T, T) scores and their tape nodes).
// The peer copies its result into the gate's buffer only on the first call at each thread count
// (the gate's call), so the timed calls are the composite alone.
#include <cmath>
#include <cstring>
#include <memory>

#include "bench.hpp"
#include "tse/ops/attention.hpp"

namespace {

using namespace tse;
using bench::Bench;

constexpr int64_t kHeads = 4, kDk = 64, kT = 626, kD = kHeads * kDk;
constexpr double kScale = 0.125;  // 1 / sqrt(d_k)

/// A peer that runs `f` and hands its result to the gate once per thread count.
struct GatedPeer {
  std::shared_ptr<std::vector<float>> expect;
  int last_threads = 0;

  template <typename F>
  void run(int threads, const F& f) {
    const Tensor r = f();
    if (threads == last_threads) return;
    last_threads = threads;
    const Tensor c = r.contiguous();
    expect->resize(static_cast<size_t>(c.numel()));
    std::memcpy(expect->data(), c.data_ptr(), expect->size() * sizeof(float));
  }
};

template <typename Ours, typename Peer>
Bench gated(Ours ours, Peer peer) {
  auto state = std::make_shared<GatedPeer>();
  state->expect = bench::buffer(0);
  return {ours, [state, peer](int n) { state->run(n, peer); }, state->expect};
}

Tensor composite_softmax(const Tensor& ac, const Tensor& bd) {
  return ops::softmax(ops::mul(ops::add(ac, ops::rel_shift(bd)), kScale), -1);
}

// Scores of attention scale: ac and bd_raw in [-8, 8) times the scale 1/8.
Bench softmax_forward(int64_t B) {
  const Tensor ac = bench::uniform({B, kHeads, kT, kT}, -8.f, 8.f, 71);
  const Tensor bd = bench::uniform({B, kHeads, kT, 2 * kT - 1}, -8.f, 8.f, 72);
  return gated([=] { return ops::rel_pos_softmax(ac, bd, kScale); }, [=] { return composite_softmax(ac, bd); });
}

// The backward for a fixed upstream gradient on graphs built once and retained; the result
// compared is d bd_raw (it holds d ac too, shifted, plus the zeros of the unread positions).
Bench softmax_backward(int64_t B) {
  const Tensor ac = bench::uniform({B, kHeads, kT, kT}, -8.f, 8.f, 73).requires_grad_();
  const Tensor bd = bench::uniform({B, kHeads, kT, 2 * kT - 1}, -8.f, 8.f, 74).requires_grad_();
  const Tensor g = bench::uniform({B, kHeads, kT, kT}, -1.f, 1.f, 75);
  const Tensor y = ops::rel_pos_softmax(ac, bd, kScale), y_peer = composite_softmax(ac, bd);
  return gated([=] { return autograd::grad({y}, {ac, bd}, {g}, /*retain_graph=*/true)[1]; },
               [=] { return autograd::grad({y_peer}, {ac, bd}, {g}, /*retain_graph=*/true)[1]; });
}

struct AttentionInputs {
  std::vector<Tensor> t;  // q, k, v, p, pos_bias_u, pos_bias_v
};

// Projected activations of unit scale; p batch 1 as linear_pos(table) gives it.
AttentionInputs attention_inputs(int64_t B, bool grad) {
  AttentionInputs in;
  in.t = {bench::uniform({B, kT, kD}, -1.f, 1.f, 81),          bench::uniform({B, kT, kD}, -1.f, 1.f, 82),
          bench::uniform({B, kT, kD}, -1.f, 1.f, 83),          bench::uniform({1, 2 * kT - 1, kD}, -1.f, 1.f, 84),
          bench::uniform({kHeads, kDk}, -0.1f, 0.1f, 85), bench::uniform({kHeads, kDk}, -0.1f, 0.1f, 86)};
  if (grad)
    for (Tensor& x : in.t) x.requires_grad_();
  return in;
}

Tensor ours_attention(const std::vector<Tensor>& t) {
  return ops::rel_pos_attention(t[0], t[1], t[2], t[3], t[4], t[5], kHeads);
}

// The same attention with the unfused score path (the layout of src/ops/attention.cpp).
Tensor composite_attention(const std::vector<Tensor>& t) {
  const int64_t B = t[0].size(0);
  const Shape heads{B, kT, kHeads, kDk};
  const Tensor q4 = t[0].reshape(heads);
  const Tensor qu = ops::add(q4, t[4]).permute({0, 2, 1, 3}), qv = ops::add(q4, t[5]).permute({0, 2, 1, 3});
  const Tensor ac = ops::matmul(qu, t[1].reshape(heads).permute({0, 2, 3, 1}));
  const Tensor bd = ops::matmul(qv, t[3].reshape({1, 2 * kT - 1, kHeads, kDk}).permute({0, 2, 3, 1}));
  const Tensor attn = composite_softmax(ac, bd);
  return ops::matmul(attn, t[2].reshape(heads).permute({0, 2, 1, 3})).permute({0, 2, 1, 3}).reshape({B, kT, kD});
}

Bench attention_forward(int64_t B) {
  const AttentionInputs in = attention_inputs(B, false);
  return gated([=] { return ours_attention(in.t); }, [=] { return composite_attention(in.t); });
}

// Forward and backward of all six inputs; the result compared is d q.
Bench attention_step(int64_t B) {
  const AttentionInputs in = attention_inputs(B, true);
  const Tensor g = bench::uniform({B, kT, kD}, -1.f, 1.f, 87);
  return gated([=] { return autograd::grad({ours_attention(in.t)}, in.t, {g})[0]; },
               [=] { return autograd::grad({composite_attention(in.t)}, in.t, {g})[0]; });
}

std::string dims(int64_t B) {
  return "B " + std::to_string(B) + " H 4 T 626 d_k 64";
}

// MaskNet's attention core: the fused op against the composite it replaces, both under the same
// autocast mode (bf16: the same roundings; the gate allows for probabilities rounded apart).
Bench sdpa_forward(bool bf16) {
  const Tensor q = bench::uniform({1, 8, 1001, 80}, -1.f, 1.f, 81), k = bench::uniform({1, 8, 1001, 80}, -1.f, 1.f, 82);
  const Tensor v = bench::uniform({1, 8, 1001, 80}, -1.f, 1.f, 83);
  const double scale = 1.0 / std::sqrt(80.0);
  return gated(
      [=] {
        AutocastGuard autocast(bf16);
        return ops::scaled_dot_product_attention(q, k, v, scale);
      },
      [=] {
        AutocastGuard autocast(bf16);
        return ops::matmul(ops::softmax(ops::mul(ops::matmul(q, ops::transpose(k, -2, -1)), scale), -1), v);
      });
}

const bool registered = [] {
  for (int64_t B : {1, 4}) {
    const std::string b = "_b" + std::to_string(B);
    const double scores = static_cast<double>(B * kHeads * kT * kT);  // elements of (B, H, T, T)
    const double pos = static_cast<double>(B * kHeads * kT * (2 * kT - 1));
    const std::vector<std::string> tags{B == 1 ? "short" : "long"};
    // forward: read ac and bd_raw, write y; backward: read y and g, write d ac and d bd_raw
    bench::add({.name = "attention.rel_pos_softmax" + b + "_fwd",
                .shape = dims(B) + " [B,H,T,T] + [B,H,T,2T-1]",
                .tags = tags,
                .bytes = 4.0 * (2 * scores + pos),
                .rtol = 1e-5,
                .atol = 1e-7,
                .setup = [B] { return softmax_forward(B); }});
    bench::add({.name = "attention.rel_pos_softmax" + b + "_bwd",
                .shape = "bwd " + dims(B),
                .tags = tags,
                .bytes = 4.0 * (3 * scores + pos),
                .rtol = 1e-4,
                .atol = 1e-6,
                .setup = [B] { return softmax_backward(B); }});
    // GEMM flops: ac (T x T), bd_raw (T x 2T-1) and attn·v (T x d_k over T), 2 per MAC; the
    // backward does two GEMMs per forward GEMM.
    const double fwd_flops = 2.0 * static_cast<double>(B * kHeads * kT * kDk) * (4.0 * kT - 1.0);
    bench::add({.name = "attention.rel_pos_attention" + b + "_fwd",
                .shape = dims(B) + " q,k,v [B,T,256] p [1,2T-1,256]",
                .tags = tags,
                .flops = fwd_flops,
                .rtol = 1e-4,
                .atol = 1e-3,
                .setup = [B] { return attention_forward(B); }});
    bench::add({.name = "attention.rel_pos_attention" + b + "_fwdbwd",
                .shape = "fwd+bwd " + dims(B),
                .tags = tags,
                .flops = 3.0 * fwd_flops,
                .rtol = 1e-4,
                .atol = 1e-3,
                .setup = [B] { return attention_step(B); }});
  }
  for (bool bf16 : {false, true}) {
    if (bf16 && !autocast::native_bf16()) continue;
    constexpr double flops = 2.0 * 2 * 8 * 1001.0 * 1001.0 * 80;
    bench::add({.name = std::string("attention.sdpa_masknet") + (bf16 ? "_bf16" : "") + "_fwd",
                .shape = std::string("q,k,v [1,8,1001,80]") + (bf16 ? " bf16 autocast" : ""),
                .flops = flops,
                .rtol = bf16 ? 2e-2 : 1e-3,  // outputs ~0.02 (means of 1001 values); atol covers those near 0
                .atol = bf16 ? 2e-3 : 1e-4,
                .setup = [bf16] { return sdpa_forward(bf16); }});
  }
  return true;
}();

}  // namespace
