#pragma once
// Internal kernel interface of the attention family (rel_shift, rel_pos_softmax, window_softmax,
// scaled_dot_product_attention). The op layer
// has checked shapes and dtypes and made every operand contiguous: a (..., T, T) tensor is `rows`
// rows of T elements and a (..., T, 2T-1) tensor `rows` rows of 2T-1, where row r is query
// i = r % T of its (..., T) block.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

struct RelShape {
  int64_t rows = 0;  // product of every dim but the last
  int64_t T = 0;
};

/// out (rows, T)[r, j] = x (rows, 2T-1)[r, T-1-i+j], i = r % T.
using RelShiftFn = void(const Tensor& out, const Tensor& x, const RelShape& s);
/// grad_x (rows, 2T-1): grad_out (rows, T) scattered back to the positions rel_shift read, 0 elsewhere.
using RelShiftBackwardFn = void(const Tensor& grad_x, const Tensor& grad_out, const RelShape& s);
/// y = softmax((ac + rel_shift(bd)) * scale) along each row. y, ac (rows, T), bd (rows, 2T-1).
using RelPosSoftmaxFn = void(const Tensor& y, const Tensor& ac, const Tensor& bd, double scale, const RelShape& s);
/// d = scale * y * (g - sum(g * y)) per row; grad_ac = d (rows, T) and grad_bd (rows, 2T-1) = d
/// scattered as in RelShiftBackwardFn. Either gradient may be undefined (not written).
using RelPosSoftmaxBackwardFn = void(const Tensor& grad_ac, const Tensor& grad_bd, const Tensor& grad_y,
                                     const Tensor& y, double scale, const RelShape& s);

/// Windowed attention scores (Swin): `rows` = windows * heads * n rows of n scores, window w of
/// the batch using mask window w % mask_windows (mask_windows 0: no mask), head h its bias block.
struct WindowShape {
  int64_t windows = 0;       // B * nW
  int64_t heads = 0;
  int64_t mask_windows = 0;  // nW of the mask, 0 without one
  int64_t n = 0;             // tokens per window
};
/// y = softmax(scores * scale + bias[h] + mask[w % nW]) per row; y, scores (windows, heads, n, n),
/// bias (heads, n, n), mask (mask_windows, n, n) or undefined.
using WindowSoftmaxFn = void(const Tensor& y, const Tensor& scores, const Tensor& bias, const Tensor& mask, double scale,
                             const WindowShape& s);
/// d = y * (g - sum(g * y)) per row; grad_scores = scale * d and grad_bias = sum of d over the
/// windows (a fixed order: the same bits at any thread count). Either may be undefined.
using WindowSoftmaxBackwardFn = void(const Tensor& grad_scores, const Tensor& grad_bias, const Tensor& grad_y,
                                     const Tensor& y, double scale, const WindowShape& s);

/// out (BH, Tq, dv) = softmax(q k^T * scale) v for each of BH matrix triples: q (BH, Tq, d),
/// k (BH, Tk, d), v (BH, Tk, dv), Tk >= 1, every matrix matmul_operand_ok, one dtype (f32, f64,
/// or autocast's bf16 with an f32 out); out contiguous.
using SdpaFn = void(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, double scale);

}  // namespace detail

namespace cpu {
using namespace detail;
/// Row copies (each output row is one contiguous slice of its input row), parallel over rows.
RelShiftFn rel_shift;
RelShiftBackwardFn rel_shift_backward;
/// Vectorised loops (libmvec exp for float32), parallel over rows, float32 and float64.
RelPosSoftmaxFn rel_pos_softmax;
RelPosSoftmaxBackwardFn rel_pos_softmax_backward;
WindowSoftmaxFn window_softmax;
WindowSoftmaxBackwardFn window_softmax_backward;
/// Flash-style on the GEMM kernel: blocks of query rows whose scores (block x Tk) stay in L2, a
/// row softmax in place, the probabilities (bf16 under autocast) straight into the block's P v;
/// the (Tq, Tk) probabilities never go to memory.
SdpaFn scaled_dot_product_attention;
}  // namespace cpu

}  // namespace tse
