// Normalization layers at the shapes of the models, forward and backward: layer_norm over Swin
// stage-1 tokens and Conformer frames, the Conformer conv module's GroupNorm(8), and batch_norm
// in training and eval mode. Every peer is raw oneDNN, created once in setup over the same
// buffers:
// - layer_norm: the layer-normalization primitive libtse runs on, so the ratio is the cost of
//   the op layer (allocation, cache lookup, scratchpad, tape);
// - batch_norm: the batch-normalization primitive libtse chose not to use: on nchw data oneDNN
//   2.6 runs its ncsp kernel, which these rows show slower than libtse's plain loops;
// - group_norm (oneDNN 2.6 has none): the oneDNN-based alternative to libtse's hand-written
//   kernel, the layer-norm primitive on the (N * G, C / G * S) view plus plain per-channel loops
//   for the affine map (and, backward, for dy * weight and the weight gradients).
#include <omp.h>

#include <cmath>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "bench.hpp"
#include "tse/ops/normalization.hpp"

namespace {

using namespace tse;
using bench::Bench;
using dnnl::memory;
using dnnl::prop_kind;
using Flags = dnnl::normalization_flags;

constexpr float kEps = 1e-5f;
const Flags kAffine = Flags::use_scale | Flags::use_shift;

memory::desc plain_md(const memory::dims& dims) {
  memory::dims strides(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;) strides[d - 1] = strides[d] * dims[d];
  return {dims, memory::data_type::f32, strides};
}

// The peer's engine, stream and primitives with their arguments bound, and the buffers those
// arguments point into that no lambda holds (statistics, forward outputs). oneDNN sizes a
// primitive for the OpenMP team present when it is created, so setup creates them under the
// thread count the runner set for libtse.
struct Peer {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> prims;
  std::vector<std::shared_ptr<const void>> keep;

  Peer() { omp_set_num_threads(get_num_threads()); }
  memory mem(const memory::desc& md, const void* p) { return memory(md, engine, const_cast<void*>(p)); }
  void add(const dnnl::primitive_desc& pd, std::unordered_map<int, memory> args) {
    prims.emplace_back(dnnl::primitive(pd), std::move(args));
  }
  void exec(size_t i, int nt) {
    omp_set_num_threads(nt);
    prims[i].first.execute(stream, prims[i].second);
    stream.wait();
  }
};

// Copies parts one after another into out, as ours concatenates its gradients for the gate.
void concat_into(float* out, const std::vector<std::pair<const float*, int64_t>>& parts, int nt) {
  int64_t at = 0;
  for (const auto& [p, n] : parts) {
    float* dst = out + at;
#pragma omp parallel for simd schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) dst[i] = p[i];
    at += n;
  }
}

Tensor cat_grads(const Tensor& y, const std::vector<Tensor>& wrt, const Tensor& g) {
  std::vector<Tensor> flat;
  for (const Tensor& d : autograd::grad({y}, wrt, {g}, /*retain_graph=*/true)) flat.push_back(d.flatten());
  return ops::cat(flat);
}

// ---- layer_norm ---------------------------------------------------------------------------------

using LnFwd = dnnl::layer_normalization_forward;
using LnBwd = dnnl::layer_normalization_backward;

Bench layer_norm_fwd(int64_t R, int64_t D) {
  Tensor x = bench::uniform({R, D}, -1.f, 1.f, 61), w = bench::uniform({D}, 0.5f, 1.5f, 62);
  Tensor b = bench::uniform({D}, -0.5f, 0.5f, 63);
  auto out = bench::buffer(R * D);
  auto peer = std::make_shared<Peer>();
  const memory::desc data = plain_md({R, D}), stat = plain_md({R}), param = plain_md({D});
  peer->add(LnFwd::primitive_desc(LnFwd::desc(prop_kind::forward_inference, data, stat, kEps, kAffine), peer->engine),
            {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
             {DNNL_ARG_DST, peer->mem(data, out->data())},
             {DNNL_ARG_SCALE, peer->mem(param, bench::cptr(w))},
             {DNNL_ARG_SHIFT, peer->mem(param, bench::cptr(b))}});
  return {[=] { return ops::layer_norm(x, {D}, w, b); }, [=](int nt) { peer->exec(0, nt); }, out};
}

// The backward of y = layer_norm(x, w, b) for a fixed upstream gradient, on a graph built once
// and retained; ours returns dx, dweight, dbias concatenated and the peer pays the same copy.
Bench layer_norm_bwd(int64_t R, int64_t D) {
  Tensor x = bench::uniform({R, D}, -1.f, 1.f, 64).requires_grad_();
  Tensor w = bench::uniform({D}, 0.5f, 1.5f, 65).requires_grad_(),
         b = bench::uniform({D}, -0.5f, 0.5f, 66).requires_grad_();
  Tensor g = bench::uniform({R, D}, -1.f, 1.f, 67);
  Tensor y = ops::layer_norm(x, {D}, w, b);
  auto mean = bench::buffer(R), var = bench::buffer(R), fwd_out = bench::buffer(R * D);
  auto dx = bench::buffer(R * D), dw = bench::buffer(D), db = bench::buffer(D), out = bench::buffer(R * D + 2 * D);
  auto peer = std::make_shared<Peer>();
  peer->keep = {mean, var, fwd_out};
  const memory::desc data = plain_md({R, D}), stat = plain_md({R}), param = plain_md({D});
  const LnFwd::primitive_desc fwd(LnFwd::desc(prop_kind::forward_training, data, stat, kEps, kAffine), peer->engine);
  peer->add(fwd, {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
                  {DNNL_ARG_DST, peer->mem(data, fwd_out->data())},
                  {DNNL_ARG_MEAN, peer->mem(stat, mean->data())},
                  {DNNL_ARG_VARIANCE, peer->mem(stat, var->data())},
                  {DNNL_ARG_SCALE, peer->mem(param, bench::cptr(w))},
                  {DNNL_ARG_SHIFT, peer->mem(param, bench::cptr(b))}});
  peer->exec(0, get_num_threads());  // the statistics the backward reads
  peer->add(LnBwd::primitive_desc(LnBwd::desc(prop_kind::backward, data, data, stat, kEps, kAffine), peer->engine, fwd),
            {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
             {DNNL_ARG_DIFF_DST, peer->mem(data, bench::cptr(g))},
             {DNNL_ARG_MEAN, peer->mem(stat, mean->data())},
             {DNNL_ARG_VARIANCE, peer->mem(stat, var->data())},
             {DNNL_ARG_SCALE, peer->mem(param, bench::cptr(w))},
             {DNNL_ARG_SHIFT, peer->mem(param, bench::cptr(b))},  // required by 2.6, not read
             {DNNL_ARG_DIFF_SRC, peer->mem(data, dx->data())},
             {DNNL_ARG_DIFF_SCALE, peer->mem(param, dw->data())},
             {DNNL_ARG_DIFF_SHIFT, peer->mem(param, db->data())}});
  return {[=] {
            return cat_grads(y, {x, w, b}, g);
          },
          [=](int nt) {
            peer->exec(1, nt);
            concat_into(out->data(), {{dx->data(), R * D}, {dw->data(), D}, {db->data(), D}}, nt);
          },
          out};
}

// ---- group_norm ---------------------------------------------------------------------------------

struct GroupShape {
  int64_t N, C, S, G;
  int64_t rows() const { return N * G; }
  int64_t row_len() const { return C / G * S; }
  int64_t numel() const { return N * C * S; }
};

Bench group_norm_fwd(const GroupShape& s) {
  Tensor x = bench::uniform({s.N, s.C, s.S}, -1.f, 1.f, 71), w = bench::uniform({s.C}, 0.5f, 1.5f, 72);
  Tensor b = bench::uniform({s.C}, -0.5f, 0.5f, 73);
  auto out = bench::buffer(s.numel());
  auto peer = std::make_shared<Peer>();
  const memory::desc data = plain_md({s.rows(), s.row_len()}), stat = plain_md({s.rows()});
  peer->add(
      LnFwd::primitive_desc(LnFwd::desc(prop_kind::forward_inference, data, stat, kEps, Flags::none), peer->engine),
      {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))}, {DNNL_ARG_DST, peer->mem(data, out->data())}});
  const float *pw = bench::cptr(w), *pb = bench::cptr(b);
  return {[=] { return ops::group_norm(x, s.G, w, b); },
          [=](int nt) {
            peer->exec(0, nt);
            float* y = out->data();
            const int64_t C = s.C, S = s.S;
#pragma omp parallel for schedule(static) num_threads(nt)
            for (int64_t nc = 0; nc < s.N * C; ++nc) {
              const float sc = pw[nc % C], sh = pb[nc % C];
              float* row = y + nc * S;
#pragma omp simd
              for (int64_t i = 0; i < S; ++i) row[i] = row[i] * sc + sh;
            }
          },
          out};
}

// Backward through the layer-norm primitive: dxhat = dy * w (loop), dx from the primitive's
// backward_data, and dweight = sum dy * xhat, dbias = sum dy per channel (loop).
Bench group_norm_bwd(const GroupShape& s) {
  Tensor x = bench::uniform({s.N, s.C, s.S}, -1.f, 1.f, 74).requires_grad_();
  Tensor w = bench::uniform({s.C}, 0.5f, 1.5f, 75).requires_grad_();
  Tensor b = bench::uniform({s.C}, -0.5f, 0.5f, 76).requires_grad_();
  Tensor g = bench::uniform({s.N, s.C, s.S}, -1.f, 1.f, 77);
  Tensor y = ops::group_norm(x, s.G, w, b);
  const int64_t n = s.numel(), C = s.C, S = s.S, G = s.G;
  auto mean = bench::buffer(s.rows()), var = bench::buffer(s.rows()), fwd_out = bench::buffer(n);
  auto dxhat = bench::buffer(n), dx = bench::buffer(n), dw = bench::buffer(C), db = bench::buffer(C);
  auto out = bench::buffer(n + 2 * C);
  auto peer = std::make_shared<Peer>();
  peer->keep = {fwd_out};
  const memory::desc data = plain_md({s.rows(), s.row_len()}), stat = plain_md({s.rows()});
  const LnFwd::primitive_desc fwd(LnFwd::desc(prop_kind::forward_training, data, stat, kEps, Flags::none),
                                  peer->engine);
  peer->add(fwd, {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
                  {DNNL_ARG_DST, peer->mem(data, fwd_out->data())},
                  {DNNL_ARG_MEAN, peer->mem(stat, mean->data())},
                  {DNNL_ARG_VARIANCE, peer->mem(stat, var->data())}});
  peer->exec(0, get_num_threads());
  peer->add(LnBwd::primitive_desc(LnBwd::desc(prop_kind::backward_data, data, data, stat, kEps, Flags::none),
                                  peer->engine, fwd),
            {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
             {DNNL_ARG_DIFF_DST, peer->mem(data, dxhat->data())},
             {DNNL_ARG_MEAN, peer->mem(stat, mean->data())},
             {DNNL_ARG_VARIANCE, peer->mem(stat, var->data())},
             {DNNL_ARG_DIFF_SRC, peer->mem(data, dx->data())}});
  const float *px = bench::cptr(x), *pg = bench::cptr(g), *pw = bench::cptr(w);
  return {[=] {
            return cat_grads(y, {x, w, b}, g);
          },
          [=](int nt) {
            float* t = dxhat->data();
#pragma omp parallel for schedule(static) num_threads(nt)
            for (int64_t nc = 0; nc < s.N * C; ++nc) {
              const float wc = pw[nc % C];
#pragma omp simd
              for (int64_t i = 0; i < S; ++i) t[nc * S + i] = pg[nc * S + i] * wc;
            }
            peer->exec(1, nt);
            const float *pm = mean->data(), *pv = var->data();
            float *pdw = dw->data(), *pdb = db->data();
#pragma omp parallel for schedule(static) num_threads(nt)
            for (int64_t c = 0; c < C; ++c) {
              float sw = 0, sb = 0;
              for (int64_t k = 0; k < s.N; ++k) {
                const int64_t row = k * G + c / (C / G);
                const float m = pm[row], r = 1.f / std::sqrt(pv[row] + kEps);
                const float *gr = pg + (k * C + c) * S, *xr = px + (k * C + c) * S;
                float acc_w = 0, acc_b = 0;
#pragma omp simd reduction(+ : acc_w, acc_b)
                for (int64_t i = 0; i < S; ++i) {
                  acc_w += gr[i] * (xr[i] - m);
                  acc_b += gr[i];
                }
                sw += acc_w * r;
                sb += acc_b;
              }
              pdw[c] = sw;
              pdb[c] = sb;
            }
            concat_into(out->data(), {{dx->data(), n}, {dw->data(), C}, {db->data(), C}}, nt);
          },
          out};
}

// ---- batch_norm ---------------------------------------------------------------------------------

using BnFwd = dnnl::batch_normalization_forward;
using BnBwd = dnnl::batch_normalization_backward;

struct BnShape {
  int64_t N, C, H, W;
  int64_t numel() const { return N * C * H * W; }
  Shape sizes() const { return {N, C, H, W}; }
  memory::desc md() const { return plain_md({N, C, H, W}); }
};

// Forward: training (batch statistics, plus the running-statistics update ours does in place) or
// eval (use_global_stats over the running statistics).
Bench batch_norm_fwd(const BnShape& s, bool training) {
  Tensor x = bench::uniform(s.sizes(), -1.f, 1.f, 81), w = bench::uniform({s.C}, 0.5f, 1.5f, 82);
  Tensor b = bench::uniform({s.C}, -0.5f, 0.5f, 83);
  Tensor rm = bench::uniform({s.C}, -0.1f, 0.1f, 84), rv = bench::uniform({s.C}, 0.5f, 2.f, 85);
  auto out = bench::buffer(s.numel()), mean = bench::buffer(s.C), var = bench::buffer(s.C);
  auto peer_rm = bench::buffer(s.C), peer_rv = bench::buffer(s.C);
  auto peer = std::make_shared<Peer>();
  peer->keep = {rm.impl_ptr(), rv.impl_ptr()};
  const memory::desc data = s.md(), param = plain_md({s.C});
  const Flags flags = training ? kAffine : kAffine | Flags::use_global_stats;
  const prop_kind prop = training ? prop_kind::forward_training : prop_kind::forward_inference;
  const void* pmean = training ? static_cast<const void*>(mean->data()) : bench::cptr(rm);
  const void* pvar = training ? static_cast<const void*>(var->data()) : bench::cptr(rv);
  peer->add(BnFwd::primitive_desc(BnFwd::desc(prop, data, kEps, flags), peer->engine),
            {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
             {DNNL_ARG_DST, peer->mem(data, out->data())},
             {DNNL_ARG_MEAN, peer->mem(param, pmean)},
             {DNNL_ARG_VARIANCE, peer->mem(param, pvar)},
             {DNNL_ARG_SCALE, peer->mem(param, bench::cptr(w))},
             {DNNL_ARG_SHIFT, peer->mem(param, bench::cptr(b))}});
  const double count = static_cast<double>(s.numel() / s.C);
  return {[=] { return ops::batch_norm(x, rm, rv, w, b, training); },
          [=](int nt) {
            peer->exec(0, nt);
            if (!training) return;
            const float unbias = static_cast<float>(count / (count - 1));
            for (int64_t c = 0; c < s.C; ++c) {
              (*peer_rm)[c] = 0.9f * (*peer_rm)[c] + 0.1f * (*mean)[c];
              (*peer_rv)[c] = 0.9f * (*peer_rv)[c] + 0.1f * (*var)[c] * unbias;
            }
          },
          out};
}

Bench batch_norm_bwd(const BnShape& s, bool training) {
  Tensor x = bench::uniform(s.sizes(), -1.f, 1.f, 86).requires_grad_();
  Tensor w = bench::uniform({s.C}, 0.5f, 1.5f, 87).requires_grad_();
  Tensor b = bench::uniform({s.C}, -0.5f, 0.5f, 88).requires_grad_();
  Tensor rm = bench::uniform({s.C}, -0.1f, 0.1f, 89), rv = bench::uniform({s.C}, 0.5f, 2.f, 90);
  Tensor g = bench::uniform(s.sizes(), -1.f, 1.f, 91);
  // Training saves the batch statistics: no running statistics needed for this graph.
  Tensor y = training ? ops::batch_norm(x, Tensor(), Tensor(), w, b, true) : ops::batch_norm(x, rm, rv, w, b, false);
  const int64_t n = s.numel(), C = s.C;
  auto mean = bench::buffer(C), var = bench::buffer(C), fwd_out = bench::buffer(n);
  auto dx = bench::buffer(n), dw = bench::buffer(C), db = bench::buffer(C), out = bench::buffer(n + 2 * C);
  auto peer = std::make_shared<Peer>();
  peer->keep = {mean, var, fwd_out, rm.impl_ptr(), rv.impl_ptr()};
  const memory::desc data = s.md(), param = plain_md({C});
  const Flags flags = training ? kAffine : kAffine | Flags::use_global_stats;
  const void* pmean = training ? static_cast<const void*>(mean->data()) : bench::cptr(rm);
  const void* pvar = training ? static_cast<const void*>(var->data()) : bench::cptr(rv);
  const BnFwd::primitive_desc fwd(BnFwd::desc(prop_kind::forward_training, data, kEps, flags), peer->engine);
  peer->add(fwd, {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
                  {DNNL_ARG_DST, peer->mem(data, fwd_out->data())},
                  {DNNL_ARG_MEAN, peer->mem(param, pmean)},
                  {DNNL_ARG_VARIANCE, peer->mem(param, pvar)},
                  {DNNL_ARG_SCALE, peer->mem(param, bench::cptr(w))},
                  {DNNL_ARG_SHIFT, peer->mem(param, bench::cptr(b))}});
  if (training) peer->exec(0, get_num_threads());  // the batch statistics the backward reads
  peer->add(BnBwd::primitive_desc(BnBwd::desc(prop_kind::backward, data, data, kEps, flags), peer->engine, fwd),
            {{DNNL_ARG_SRC, peer->mem(data, bench::cptr(x))},
             {DNNL_ARG_DIFF_DST, peer->mem(data, bench::cptr(g))},
             {DNNL_ARG_MEAN, peer->mem(param, pmean)},
             {DNNL_ARG_VARIANCE, peer->mem(param, pvar)},
             {DNNL_ARG_SCALE, peer->mem(param, bench::cptr(w))},
             {DNNL_ARG_SHIFT, peer->mem(param, bench::cptr(b))},  // required by 2.6, not read
             {DNNL_ARG_DIFF_SRC, peer->mem(data, dx->data())},
             {DNNL_ARG_DIFF_SCALE, peer->mem(param, dw->data())},
             {DNNL_ARG_DIFF_SHIFT, peer->mem(param, db->data())}});
  return {[=] {
            return cat_grads(y, {x, w, b}, g);
          },
          [=](int nt) {
            peer->exec(1, nt);
            concat_into(out->data(), {{dx->data(), n}, {dw->data(), C}, {db->data(), C}}, nt);
          },
          out};
}

struct LnCase {
  const char* tag;  // model and shape, e.g. "sw_4096x128"
  const char* shape;
  int64_t R, D;
};

const bool registered = [] {
  // Gate: layer_norm runs the very primitive of the peer (1e-5 covers the cat); group_norm
  // compares two different algorithms, whose values agree to float rounding (atol 1e-3 on O(1)
  // values keeps outputs near zero from measuring cancellation). batch_norm sums 65536 values per
  // channel, which oneDNN's ncsp kernel does in float: against the f64 path its forward is 7x
  // and its dbias 10x further off than libtse's double-folded lanes (max abs 2.6e-6 vs 3.4e-7 for
  // y), so its gate is 1e-3 relative to |value| + 0.1.
  for (const LnCase& c :
       {LnCase{"sw_4096x128", "[4096,128] affine", 4096, 128}, LnCase{"cf_626x256", "[626,256] affine", 626, 256}}) {
    const std::string tag = c.tag, shape = c.shape;
    const int64_t R = c.R, D = c.D;
    bench::add(
        {.name = "norm.ln_" + tag, .shape = shape, .bytes = 8.0 * R * D, .rtol = 1e-5, .atol = 1e-5, .setup = [R, D] {
           return layer_norm_fwd(R, D);
         }});
    bench::add({.name = "norm_bwd.ln_" + tag,
                .shape = "bwd " + shape,
                .bytes = 12.0 * R * D,
                .rtol = 1e-5,
                .atol = 1e-5,
                .setup = [R, D] { return layer_norm_bwd(R, D); }});
  }
  const GroupShape gs{1, 256, 626, 8};
  bench::add({.name = "norm.gn_cf_1x256x626_g8",
              .shape = "[1,256,626] G=8 affine",
              .bytes = 8.0 * gs.numel(),
              .rtol = 1e-4,
              .atol = 1e-3,
              .setup = [gs] { return group_norm_fwd(gs); }});
  bench::add({.name = "norm_bwd.gn_cf_1x256x626_g8",
              .shape = "bwd [1,256,626] G=8 affine",
              .bytes = 12.0 * gs.numel(),
              .rtol = 1e-4,
              .atol = 1e-3,
              .setup = [gs] { return group_norm_bwd(gs); }});
  const BnShape bs{4, 64, 256, 64};
  for (bool training : {true, false}) {
    const std::string mode = training ? "train" : "eval";
    const std::string shape = "[4,64,256,64] " + mode;
    bench::add({.name = "norm.bn_" + mode + "_4x64x256x64",
                .shape = shape,
                .bytes = 8.0 * bs.numel(),
                .rtol = 1e-3,
                .atol = 0.1,
                .setup = [bs, training] { return batch_norm_fwd(bs, training); }});
    bench::add({.name = "norm_bwd.bn_" + mode + "_4x64x256x64",
                .shape = "bwd " + shape,
                .bytes = 12.0 * bs.numel(),
                .rtol = 1e-3,
                .atol = 0.1,
                .setup = [bs, training] { return batch_norm_bwd(bs, training); }});
  }
  return true;
}();

}  // namespace
