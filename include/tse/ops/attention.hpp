#pragma once
/// \file attention.hpp
/// Relative-position multi-head self-attention as ESPnet's RelPositionMultiHeadedAttention
/// computes it (the "new" rel_pos of the Conformer; MODELS.md Part B s.2.3 and the golden
/// README shared/golden/conformer s.3): the rel_shift index map, the fused score softmax, the
/// sinusoidal relative-position table and the attention core between the projections.
/// float32 or float64 on CPU; rel_shift, rel_pos_softmax and rel_pos_attention are differentiable
/// in every tensor argument. Outputs are new contiguous tensors.
#include <cstdint>
#include <optional>

#include "tse/core/tensor.hpp"

namespace tse::ops {

/// ESPnet's rel_shift: x (..., T, 2T-1) -> (..., T, T) with out[..., i, j] = x[..., i, T-1-i+j].
/// Column k of x belongs to relative distance r = T-1-k (the rows of rel_position_table), so
/// out[..., i, j] is the entry for r = i - j. The gradient scatters into zeros of x's shape (the
/// positions read are distinct). ValueError naming the op when x has fewer than 2 dims, when its
/// last dim is not 2T-1 for T its second-to-last, or when it is not float32/float64.
TSE_API Tensor rel_shift(const Tensor& x);

/// The fused score path softmax((ac + rel_shift(bd_raw)) * scale, -1) in one pass:
/// ac (..., T, T) the content scores (q+u)·k, bd_raw (..., T, 2T-1) the position scores (q+v)·p
/// before the shift; the leading dims of ac and bd_raw are equal (no broadcasting). Returns the
/// probabilities (..., T, T). Non-finite scores follow ops::softmax (a -inf entry gets 0; a row
/// holding NaN or +inf, or only -inf, is NaN throughout). The backward saves the output only:
/// d_scores = scale * y * (g - sum(g * y)), d_ac = d_scores, and d_bd_raw scatters d_scores into
/// zeros of bd_raw's shape. ValueError naming the argument for a shape or dtype mismatch.
TSE_API Tensor rel_pos_softmax(const Tensor& ac, const Tensor& bd_raw, double scale);

/// Swin's windowed score softmax in one pass (HTSAT's WindowAttention between q k^T and attn v):
/// softmax(scores * scale + bias[h] + mask[w % nW], -1) with scores (B * nW, H, n, n) the raw
/// q k^T, bias (H, n, n) the relative-position bias of every head, mask (nW, n, n) the shifted-
/// window mask or undefined. Differentiable in scores and bias (the mask is a constant): the
/// backward saves the output only. Non-finite scores follow ops::softmax. ValueError naming the
/// argument for shapes that do not fit, dtype or device mismatches.
TSE_API Tensor window_softmax(const Tensor& scores, const Tensor& bias, const Tensor& mask, double scale);

/// softmax(q k^T * scale, -1) v, PyTorch's F.scaled_dot_product_attention without a mask or
/// dropout: q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv) -> (..., Tq, dv), one float dtype
/// (float32 / float64) and equal leading dims; scale defaults to 1 / sqrt(d). The CPU forward is
/// fused (blocks of query rows, probabilities kept in cache): the (Tq, Tk) attention matrix is
/// never stored. Under autocast q k^T and P v read bf16 operands, the softmax stays f32. The
/// backward recomputes the probabilities from the saved q, k and v (memory as the composite's
/// backward). ValueError naming the argument for ranks, shapes,
/// dtypes or devices that do not fit, for Tk = 0 and for a non-finite scale.
TSE_API Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                            std::optional<double> scale = std::nullopt);

/// How rel_position_table evaluates the sinusoids.
enum class RelPosTable {
  /// ESPnet's float32 steps (golden README s.3.1): w_m = fl32(exp(fl32(2m) * fl32(-ln(10000)/D)))
  /// with a correctly rounded exp (or the given `frequencies`), arg = fl32(|r| * w_m), value =
  /// fl32(sin or cos of arg in double), sin negated for r < 0; then cast to the dtype. PyTorch's
  /// float32 exp is 1 ulp off for some m, so this table is within about 5e-8 * T of ESPnet's;
  /// with ESPnet's own frequencies (the golden files' const.div_term) within 1 float32 ulp.
  espnet_f32,
  /// The double formula sin/cos(r * 10000^(-2m/D)), then cast. Off ESPnet's table by up to
  /// about 1.2e-7 * T (4.8e-5 at T 626): more accurate, not bit-compatible.
  exact,
};

/// ESPnet's RelPositionalEncoding table, [1, 2T-1, d_model]: row k holds relative distance
/// r = T-1-k (r = T-1 ... -(T-1)); column 2m is sin(r w_m), column 2m+1 is cos(r w_m),
/// w_m = 10000^(-2m/d_model). `frequencies` (D/2 values, espnet_f32 only) replaces the computed
/// w_m. Not differentiable (it has no inputs). T >= 1; ValueError for T < 1, an odd or
/// non-positive d_model, a non-floating dtype or frequencies of the wrong size.
TSE_API Tensor rel_position_table(int64_t T, int64_t d_model, DType dtype = DType::f32,
                                  RelPosTable recipe = RelPosTable::espnet_f32, const Tensor& frequencies = Tensor());

/// The core of ESPnet's RelPositionMultiHeadedAttention between its projections, with H heads of
/// d_k = D/H contiguous features (head h = features [h d_k, (h+1) d_k)):
///   q, k, v     (B, T, D)       linear_q/k/v of the input, bias included
///   p           (P, 2T-1, D)    linear_pos(rel_position_table) without bias; P = 1 or B
///   pos_bias_u  (H, d_k)        added to q for the content scores
///   pos_bias_v  (H, d_k)        added to q for the position scores
/// ac[b,h,i,j] = (q_i + u_h)·k_j, bd_raw[b,h,i,k] = (q_i + v_h)·p_k, attn = rel_pos_softmax(ac,
/// bd_raw, 1/sqrt(d_k)) (B, H, T, T); returns attn·v with the heads concatenated back, (B, T, D),
/// ready for linear_out. When attn_out is given it receives attn (part of the graph, for tests and
/// inspection; before dropout). dropout_p > 0 drops probabilities (scaling the rest) before the
/// product with v, as ESPnet's attention dropout in training. Differentiable in every tensor
/// argument through its differentiable parts (no tape node of its own). No mask (the Conformer of
/// MODELS.md uses none).
/// ValueError naming the argument for a shape, dtype or device mismatch, or num_heads not
/// dividing D.
TSE_API Tensor rel_pos_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                                 const Tensor& pos_bias_u, const Tensor& pos_bias_v, int64_t num_heads,
                                 Tensor* attn_out = nullptr, double dropout_p = 0.0);

}  // namespace tse::ops
