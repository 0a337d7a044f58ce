// The attention family: rel_shift, rel_pos_softmax (checks, dispatch, tape nodes; kernels in
// src/cpu/attention.cpp), rel_position_table, and rel_pos_attention, a composite of
// differentiable ops.
//
// rel_pos_attention arranges every GEMM on views, never copies: q + u is computed as
// (B, T, H, d_k) and permuted to (B, H, T, d_k), whose last two dims are a row-major matrix with
// leading stride D; k and p permuted to (.., H, d_k, T) are column-major matrices with leading
// stride D. matmul reads such operands in place at any batch strides (src/ops/matmul.cpp); p's
// batch of 1 broadcasts against B. The only copy is the final (B, H, T, d_k) -> (B, T, D)
// regrouping of the heads.
#include "tse/ops/attention.hpp"

#include <cmath>
#include <vector>

#include "src/cpu/attention.hpp"
#include "src/cpu/matmul.hpp"
#include "src/dispatch.hpp"
#include "src/ops/autocast.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"
#include "tse/ops/softmax.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using tse::detail::KernelTable;
using tse::detail::RelShape;

namespace {

const KernelTable<tse::detail::RelShiftFn> k_rel_shift{"rel_shift", &cpu::rel_shift, nullptr};
const KernelTable<tse::detail::RelShiftBackwardFn> k_rel_shift_backward{"rel_shift_backward",
                                                                        &cpu::rel_shift_backward, nullptr};
const KernelTable<tse::detail::RelPosSoftmaxFn> k_rel_pos_softmax{"rel_pos_softmax", &cpu::rel_pos_softmax, nullptr};
const KernelTable<tse::detail::RelPosSoftmaxBackwardFn> k_rel_pos_softmax_backward{
    "rel_pos_softmax_backward", &cpu::rel_pos_softmax_backward, nullptr};

const KernelTable<tse::detail::WindowSoftmaxFn> k_window_softmax{"window_softmax", &cpu::window_softmax, nullptr};
const KernelTable<tse::detail::SdpaFn> k_sdpa{"scaled_dot_product_attention", &cpu::scaled_dot_product_attention,
                                              nullptr};
const KernelTable<tse::detail::WindowSoftmaxBackwardFn> k_window_softmax_backward{
    "window_softmax_backward", &cpu::window_softmax_backward, nullptr};

/// Checks that x is a float (..., T, 2T-1) tensor and returns its RelShape.
RelShape position_scores_shape(const Tensor& x, const char* op, const char* arg) {
  detail::check_defined(x, op, arg);
  detail::check_floating(x, op, arg);
  TSE_CHECK(x.dim() >= 2, op, ": argument '", arg, "' must have at least 2 dims (..., T, 2T-1), got shape ",
            x.shape_str());
  const int64_t T = x.size(-2), w = x.size(-1);
  TSE_CHECK(T >= 1 && w == 2 * T - 1, op, ": argument '", arg, "' of shape ", x.shape_str(),
            " must be (..., T, 2T-1): its last dim is ", w, ", expected 2T-1 = ", 2 * T - 1, " for T = ", T);
  return {x.numel() / w, T};
}

/// x's shape with the last dim replaced by n.
Shape with_last(const Shape& s, int64_t n) {
  Shape r = s;
  r.back() = n;
  return r;
}

}  // namespace

Tensor rel_shift(const Tensor& x) {
  const char* op = "rel_shift";
  const RelShape s = position_scores_shape(x, op, "input");
  Tensor out = Tensor::empty(with_last(x.sizes(), s.T), x.dtype(), x.device());
  k_rel_shift.get(x.device(), op)(out, x.detach().contiguous(), s);
  if (needs_grad({x})) {
    const Shape x_sizes = x.sizes();
    record(op, {x}, {out}, [s, x_sizes, op](const Grads& g) -> Grads {
      Tensor gx = Tensor::empty(x_sizes, g[0].dtype(), g[0].device());
      k_rel_shift_backward.get(gx.device(), op)(gx, g[0].contiguous(), s);
      return {gx};
    });
  }
  return out;
}

Tensor rel_pos_softmax(const Tensor& ac, const Tensor& bd_raw, double scale) {
  const char* op = "rel_pos_softmax";
  const RelShape s = position_scores_shape(bd_raw, op, "bd_raw");
  detail::check_defined(ac, op, "ac");
  detail::check_floating(ac, op, "ac");
  detail::check_same_device(ac, bd_raw, op);
  TSE_CHECK(ac.dtype() == bd_raw.dtype(), op, ": dtype mismatch: 'ac' is ", ac.dtype(), ", 'bd_raw' is ",
            bd_raw.dtype());
  TSE_CHECK(ac.sizes() == with_last(bd_raw.sizes(), s.T), op, ": argument 'ac' must have shape ",
            shape_to_string(with_last(bd_raw.sizes(), s.T)), " ((..., T, T) for 'bd_raw' of shape ",
            bd_raw.shape_str(), "), got ", ac.shape_str());
  TSE_CHECK(std::isfinite(scale), op, ": scale must be finite, got ", scale);
  Tensor out = Tensor::empty(ac.sizes(), ac.dtype(), ac.device());
  k_rel_pos_softmax.get(ac.device(), op)(out, ac.detach().contiguous(), bd_raw.detach().contiguous(), scale, s);
  if (needs_grad({ac, bd_raw})) {
    const bool ra = ac.requires_grad(), rb = bd_raw.requires_grad();
    const Shape bd_sizes = bd_raw.sizes();
    record(op, {ac, bd_raw}, {out}, [=, sy = SavedTensor(out)](const Grads& g) -> Grads {
      const Tensor y = sy.unpack(op);
      Tensor ga = ra ? Tensor::empty(y.sizes(), y.dtype(), y.device()) : Tensor();
      Tensor gb = rb ? Tensor::empty(bd_sizes, y.dtype(), y.device()) : Tensor();
      k_rel_pos_softmax_backward.get(y.device(), op)(ga, gb, g[0].contiguous(), y, scale, s);
      return {ga, gb};
    });
  }
  return out;
}

Tensor window_softmax(const Tensor& scores, const Tensor& bias, const Tensor& mask, double scale) {
  const char* op = "window_softmax";
  detail::check_defined(scores, op, "scores");
  detail::check_floating(scores, op, "scores");
  detail::check_defined(bias, op, "bias");
  TSE_CHECK(scores.dim() == 4 && scores.size(2) == scores.size(3), op,
            ": argument 'scores' must be (B * nW, H, n, n), got ", scores.shape_str());
  const int64_t Bw = scores.size(0), H = scores.size(1), n = scores.size(2);
  TSE_CHECK(bias.sizes() == Shape({H, n, n}), op, ": argument 'bias' must be (", H, ", ", n, ", ", n, "), got ",
            bias.shape_str());
  TSE_CHECK(bias.dtype() == scores.dtype(), op, ": dtype mismatch: 'scores' is ", scores.dtype(), ", 'bias' is ",
            bias.dtype());
  detail::check_same_device(scores, bias, op);
  int64_t nW = 0;
  if (mask.defined()) {
    nW = mask.dim() == 3 ? mask.size(0) : 0;
    TSE_CHECK(mask.dim() == 3 && mask.size(1) == n && mask.size(2) == n && nW > 0 && Bw % nW == 0, op,
              ": argument 'mask' must be (nW, ", n, ", ", n, ") with nW dividing ", Bw, ", got ", mask.shape_str());
    TSE_CHECK(mask.dtype() == scores.dtype(), op, ": dtype mismatch: 'scores' is ", scores.dtype(), ", 'mask' is ",
              mask.dtype());
    detail::check_same_device(scores, mask, op);
  }
  TSE_CHECK(std::isfinite(scale), op, ": scale must be finite, got ", scale);
  const tse::detail::WindowShape s{Bw, H, nW, n};
  Tensor out = Tensor::empty(scores.sizes(), scores.dtype(), scores.device());
  k_window_softmax.get(scores.device(), op)(out, scores.detach().contiguous(), bias.detach().contiguous(),
                                            mask.defined() ? mask.detach().contiguous() : Tensor(), scale, s);
  if (needs_grad({scores, bias})) {
    const bool rs = scores.requires_grad(), rb = bias.requires_grad();
    record(op, {scores, bias}, {out}, [=, sy = SavedTensor(out)](const Grads& g) -> Grads {
      const Tensor y = sy.unpack(op);
      Tensor gs = rs ? Tensor::empty(y.sizes(), y.dtype(), y.device()) : Tensor();
      Tensor gb = rb ? Tensor::empty({H, n, n}, y.dtype(), y.device()) : Tensor();
      k_window_softmax_backward.get(y.device(), op)(gs, gb, g[0].contiguous(), y, scale, s);
      return {gs, gb};
    });
  }
  return out;
}

namespace {

/// t (..., R, C) as (B, R, C) over its folded leading dims: a view where the strides allow, else
/// a contiguous copy.
Tensor batch_of_matrices(const Tensor& t) {
  const int64_t r = t.dim();
  int64_t batch = 1, stride = t.size(r - 2) * t.stride(r - 2), next = -1;
  bool foldable = true;
  for (int64_t d = r - 3; d >= 0; --d) {
    batch *= t.size(d);
    if (t.size(d) == 1) continue;
    if (next < 0) {
      stride = t.stride(d);
    } else if (t.stride(d) != next) {
      foldable = false;
    }
    next = t.stride(d) * t.size(d);
  }
  if (!foldable) return batch_of_matrices(t.contiguous());
  const Tensor m = Tensor::from_storage(t.storage(), {batch, t.size(r - 2), t.size(r - 1)},
                                        {std::max<int64_t>(stride, 1), t.stride(r - 2), t.stride(r - 1)},
                                        t.storage_offset(), t.dtype());
  return tse::detail::matmul_operand_ok(m) ? m : m.contiguous();
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  detail::check_defined(q, op, "q");
  detail::check_defined(k, op, "k");
  detail::check_defined(v, op, "v");
  detail::check_same_device(q, k, op);
  detail::check_same_device(q, v, op);
  TSE_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::f64, op, ": argument 'q' must be float32 or float64, got ",
            q.dtype(), " (for bf16 GEMMs use autocast)");
  TSE_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), op, ": dtype mismatch: 'q' is ", q.dtype(), ", 'k' is ",
            k.dtype(), ", 'v' is ", v.dtype());
  TSE_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op,
            ": q (..., Tq, d), k (..., Tk, d) and v (..., Tk, dv) need one rank >= 2, got ", q.shape_str(), ", ",
            k.shape_str(), ", ", v.shape_str());
  const int64_t r = q.dim(), Tq = q.size(r - 2), d = q.size(r - 1), Tk = k.size(r - 2), dv = v.size(r - 1);
  const Shape lead(q.sizes().begin(), q.sizes().end() - 2);
  const auto lead_of = [](const Tensor& t) { return Shape(t.sizes().begin(), t.sizes().end() - 2); };
  TSE_CHECK(lead_of(k) == lead && lead_of(v) == lead, op, ": leading dims differ: q ", q.shape_str(), ", k ",
            k.shape_str(), ", v ", v.shape_str());
  TSE_CHECK(k.size(r - 1) == d, op, ": 'k' ", k.shape_str(), " must end in d = ", d, " as 'q' ", q.shape_str());
  TSE_CHECK(v.size(r - 2) == Tk, op, ": 'v' ", v.shape_str(), " must have Tk = ", Tk, " rows as 'k' ", k.shape_str());
  TSE_CHECK(Tk > 0, op, ": 'k' ", k.shape_str(), " holds no keys (Tk = 0): the softmax is undefined");
  const double s = scale.value_or(1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(d, 1))));
  TSE_CHECK(std::isfinite(s), op, ": scale must be finite, got ", s);

  const DType operand = tse::detail::gemm_operand_dtype(q.dtype());
  Shape out_sizes = lead;
  out_sizes.push_back(Tq);
  out_sizes.push_back(dv);
  Tensor out = Tensor::empty(out_sizes, q.dtype(), q.device());
  const auto cast = [&](const Tensor& t) { return tse::detail::cast_operand(batch_of_matrices(t.detach()), operand); };
  k_sdpa.get(q.device(), op)(batch_of_matrices(out), cast(q), cast(k), cast(v), s);

  if (needs_grad({q, k, v})) {
    SavedTensor sq(q), sk(k), sv(v);
    record(op, {q, k, v}, {out}, [=](const Grads& g) -> Grads {
      // The composite's gradients from recomputed probabilities, in the forward's GEMM precision.
      const AutocastGuard mode(operand == DType::bf16);
      const Tensor q_ = sq.unpack(op), k_ = sk.unpack(op), v_ = sv.unpack(op);
      const Tensor p = softmax(mul(matmul(q_, transpose(k_, -2, -1)), s), -1);
      const Tensor gv = matmul(transpose(p, -2, -1), g[0]);
      const Tensor dp = matmul(g[0], transpose(v_, -2, -1));
      const Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, true)));
      return {mul(matmul(ds, k_), s), mul(matmul(transpose(ds, -2, -1), q_), s), gv};
    });
  }
  return out;
}

Tensor rel_position_table(int64_t T, int64_t d_model, DType dtype, RelPosTable recipe, const Tensor& frequencies) {
  const char* op = "rel_position_table";
  TSE_CHECK(T >= 1, op, ": T must be >= 1, got ", T);
  TSE_CHECK(d_model > 0 && d_model % 2 == 0, op, ": d_model must be positive and even (sin/cos pairs), got ",
            d_model);
  TSE_CHECK(dtype == DType::f32 || dtype == DType::f64, op, ": dtype must be float32 or float64, got ", dtype);
  const int64_t rows = 2 * T - 1, D = d_model;
  std::vector<double> given;
  if (frequencies.defined()) {
    TSE_CHECK(recipe == RelPosTable::espnet_f32, op, ": frequencies apply to the espnet_f32 recipe only");
    TSE_CHECK(frequencies.dim() == 1 && frequencies.size(0) == D / 2, op, ": frequencies must be (", D / 2,
              ") for d_model ", D, ", got ", frequencies.shape_str());
    given = to_vector(frequencies);
  }
  std::vector<double> table(static_cast<size_t>(rows * D));
  if (recipe == RelPosTable::espnet_f32) {
    // ESPnet: div_term = exp(arange(0, D, 2, float32) * -(ln(10000) / D)), all float32.
    const float c = static_cast<float>(-std::log(10000.0) / static_cast<double>(D));
    for (int64_t m = 0; m < D / 2; ++m) {
      // A correctly rounded float32 exp (PyTorch's vectorised one is 1 ulp off for some m, which
      // the caller can reproduce by passing ESPnet's stored frequencies).
      const float w = given.empty() ? static_cast<float>(std::exp(static_cast<double>(static_cast<float>(2 * m) * c)))
                                    : static_cast<float>(given[static_cast<size_t>(m)]);
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t r = T - 1 - k;
        const double a = static_cast<double>(static_cast<float>(r < 0 ? -r : r) * w);  // fl32(|r| w)
        const double sn = static_cast<float>(std::sin(a)), cs = static_cast<float>(std::cos(a));
        table[static_cast<size_t>(k * D + 2 * m)] = r < 0 ? -sn : sn;
        table[static_cast<size_t>(k * D + 2 * m + 1)] = cs;
      }
    }
  } else {
    for (int64_t m = 0; m < D / 2; ++m) {
      const double w = std::pow(10000.0, -static_cast<double>(2 * m) / static_cast<double>(D));
      for (int64_t k = 0; k < rows; ++k) {
        const double a = static_cast<double>(T - 1 - k) * w;
        table[static_cast<size_t>(k * D + 2 * m)] = std::sin(a);
        table[static_cast<size_t>(k * D + 2 * m + 1)] = std::cos(a);
      }
    }
  }
  return from_vector(table, {1, rows, D}, dtype);
}

Tensor rel_pos_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                         const Tensor& pos_bias_u, const Tensor& pos_bias_v, int64_t num_heads, Tensor* attn_out,
                         double dropout_p) {
  const char* op = "rel_pos_attention";
  const std::pair<const Tensor*, const char*> args[] = {{&q, "q"}, {&k, "k"}, {&v, "v"}, {&p, "p"},
                                                        {&pos_bias_u, "pos_bias_u"}, {&pos_bias_v, "pos_bias_v"}};
  for (const auto& [t, name] : args) {
    detail::check_defined(*t, op, name);
    detail::check_floating(*t, op, name);
    detail::check_same_device(q, *t, op);
    TSE_CHECK(t->dtype() == q.dtype(), op, ": dtype mismatch: '", name, "' is ", t->dtype(), ", 'q' is ", q.dtype());
  }
  TSE_CHECK(q.dim() == 3, op, ": argument 'q' must be 3-D (B, T, D), got shape ", q.shape_str());
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2);
  TSE_CHECK(k.sizes() == q.sizes(), op, ": argument 'k' must have the shape of 'q' ", q.shape_str(), ", got ",
            k.shape_str());
  TSE_CHECK(v.sizes() == q.sizes(), op, ": argument 'v' must have the shape of 'q' ", q.shape_str(), ", got ",
            v.shape_str());
  TSE_CHECK(num_heads > 0 && D % num_heads == 0, op, ": num_heads ", num_heads,
            " must be positive and divide the feature size D = ", D, " of 'q' ", q.shape_str());
  TSE_CHECK(T >= 1, op, ": argument 'q' ", q.shape_str(), " has no frames (T = 0)");
  const int64_t H = num_heads, dk = D / H, P = p.dim() == 3 ? p.size(0) : -1;
  TSE_CHECK(p.dim() == 3 && (P == 1 || P == B) && p.size(1) == 2 * T - 1 && p.size(2) == D, op,
            ": argument 'p' must have shape [1 or B, 2T-1, D] = [1 or ", B, ", ", 2 * T - 1, ", ", D,
            "] for 'q' of shape ", q.shape_str(), ", got ", p.shape_str());
  for (const auto& [t, name] : {std::pair<const Tensor*, const char*>{&pos_bias_u, "pos_bias_u"},
                                std::pair<const Tensor*, const char*>{&pos_bias_v, "pos_bias_v"}}) {
    TSE_CHECK(t->dim() == 2 && t->size(0) == H && t->size(1) == dk, op, ": argument '", name,
              "' must have shape [num_heads, d_k] = [", H, ", ", dk, "], got ", t->shape_str());
  }
  // (B, T, D) -> (B, H, T, d_k) views; + u / + v broadcast over (B, T) before the permute.
  const Shape heads{B, T, H, dk};
  const Tensor q4 = q.reshape(heads);
  const Tensor qu = ops::add(q4, pos_bias_u).permute({0, 2, 1, 3});
  const Tensor qv = ops::add(q4, pos_bias_v).permute({0, 2, 1, 3});
  const Tensor kt = k.reshape(heads).permute({0, 2, 3, 1});              // (B, H, d_k, T)
  const Tensor pt = p.reshape({P, 2 * T - 1, H, dk}).permute({0, 2, 3, 1});  // (P, H, d_k, 2T-1)
  const Tensor vh = v.reshape(heads).permute({0, 2, 1, 3});              // (B, H, T, d_k)
  const Tensor ac = ops::matmul(qu, kt);                                 // (B, H, T, T)
  const Tensor bd_raw = ops::matmul(qv, pt);                             // (B, H, T, 2T-1)
  const Tensor attn = rel_pos_softmax(ac, bd_raw, 1.0 / std::sqrt(static_cast<double>(dk)));
  if (attn_out) *attn_out = attn;
  // ESPnet drops the probabilities (training only; the caller passes p = 0 in eval).
  const Tensor kept = dropout_p > 0.0 ? ops::dropout(attn, dropout_p, true) : attn;
  return ops::matmul(kept, vh).permute({0, 2, 1, 3}).reshape({B, T, D});
}

}  // namespace tse::ops
