// CPU kernels of the attention family: rel_shift and the fused rel-pos softmax, forward and
// backward.
//
// rel_shift's row i reads the contiguous slice [T-1-i, 2T-1-i) of its input row, so both
// directions are row copies; the backward also zeroes the T-1 positions a row never reads.
//
// rel_pos_softmax follows the loops of softmax.cpp (PyTorch's order of operations: shift by the
// max, exponentiate, sum, scale), with the scores (ac + bd_shifted) * scale formed in the output
// row first: each input element is read once and the row stays in L1 between the passes. The
// non-finite rules of ops::softmax therefore hold here too: exp(-inf) is exactly 0, and NaN, +inf
// or an all -inf row makes the sum NaN. Every row is computed by one thread from its own data,
// so the result does not depend on the thread count.
#include "src/cpu/attention.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/elementwise.hpp"
#include "src/cpu/matmul.hpp"
#include "src/cpu/row_folds.hpp"
#include "src/cpu/vec_math.hpp"

namespace tse::cpu {
namespace {

using rows::row_dot;
using rows::row_max;
using rows::row_min;
using rows::row_sum;

/// Calls row(r, i) for every row r (query i = r % T), in parallel chunks of about
/// kParallelGrain elements of work.
template <typename Row>
void for_each_row(const RelShape& s, int64_t work_per_row, const Row& row) {
  using tse::detail::kParallelGrain;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(work_per_row, 1));
  tse::detail::parallel_for(0, s.rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) row(r, r % s.T);
  });
}

/// The output row d (T values) scattered into the input-shaped row o (2T-1 values) for query i.
template <typename T>
void scatter_row(T* o, const T* d, int64_t n, int64_t i) {
  const int64_t lead = n - 1 - i;  // positions [0, lead) and [lead + n, 2n - 1) are never read
  std::fill(o, o + lead, T(0));
  std::memcpy(o + lead, d, static_cast<size_t>(n) * sizeof(T));
  std::fill(o + lead + n, o + 2 * n - 1, T(0));
}

template <typename T>
void rel_shift_loops(const Tensor& out, const Tensor& x, const RelShape& s) {
  const int64_t n = s.T, w = 2 * n - 1;
  const T* xp = static_cast<const T*>(x.data_ptr());
  T* op = static_cast<T*>(out.data_ptr());
  for_each_row(s, n, [&](int64_t r, int64_t i) {
    std::memcpy(op + r * n, xp + r * w + (n - 1 - i), static_cast<size_t>(n) * sizeof(T));
  });
}

template <typename T>
void rel_shift_backward_loops(const Tensor& grad_x, const Tensor& grad_out, const RelShape& s) {
  const int64_t n = s.T, w = 2 * n - 1;
  const T* gp = static_cast<const T*>(grad_out.data_ptr());
  T* op = static_cast<T*>(grad_x.data_ptr());
  for_each_row(s, w, [&](int64_t r, int64_t i) { scatter_row(op + r * w, gp + r * n, n, i); });
}

/// One row of the forward in four passes over the row: scores, max, exp (shifted), scale.
template <typename T>
void softmax_row(const T* a, const T* b, T* o, int64_t n, T c) {
  for (int64_t j = 0; j < n; ++j) o[j] = (a[j] + b[j]) * c;
  const T m = row_max(o, n);
  for (int64_t j = 0; j < n; ++j) o[j] -= m;
  vm::exp(o, o, n);
  const T inv = T(1) / row_sum(o, n);
  for (int64_t j = 0; j < n; ++j) o[j] *= inv;
}

#if defined(TSE_VEC_MATH)
/// The float row in three passes (scores with their max, exp with its sum, scale): the compiler
/// does not fuse a store with a fold on its own, and the row is read from memory only once. The
/// max keeps max_op's rule (_mm256_max_ps returns its second operand when either is NaN, so NaN
/// never wins), and the tail goes through the same vector exp on a padded copy, as vm::exp does.
template <>
void softmax_row<float>(const float* a, const float* b, float* o, int64_t n, float c) {
  const __m256 vc = _mm256_set1_ps(c);
  __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 sc = _mm256_mul_ps(_mm256_add_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j)), vc);
    _mm256_storeu_ps(o + j, sc);
    vmax = _mm256_max_ps(sc, vmax);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float m = lanes[0];
  for (int l = 1; l < 8; ++l) m = rows::max_op(m, lanes[l]);
  for (; j < n; ++j) {
    o[j] = (a[j] + b[j]) * c;
    m = rows::max_op(m, o[j]);
  }
  const __m256 vm = _mm256_set1_ps(m);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(o + j), vm));
    _mm256_storeu_ps(o + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  _mm256_store_ps(lanes, vsum);
  float sum = 0;
  for (int l = 0; l < 8; ++l) sum += lanes[l];
  if (j < n) {
    alignas(32) float buf[8] = {};
    for (int64_t t = j; t < n; ++t) buf[t - j] = o[t] - m;
    _mm256_store_ps(buf, _ZGVdN8v_expf(_mm256_load_ps(buf)));
    for (int64_t t = j; t < n; ++t) sum += (o[t] = buf[t - j]);
  }
  const __m256 vinv = _mm256_set1_ps(1.0f / sum);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_loadu_ps(o + j), vinv));
  const float inv = 1.0f / sum;
  for (; j < n; ++j) o[j] *= inv;
}
#endif

template <typename T>
void softmax_loops(const Tensor& y, const Tensor& ac, const Tensor& bd, double scale, const RelShape& s) {
  const int64_t n = s.T, w = 2 * n - 1;
  const T* ap = static_cast<const T*>(ac.data_ptr());
  const T* bp = static_cast<const T*>(bd.data_ptr());
  T* yp = static_cast<T*>(y.data_ptr());
  const T c = static_cast<T>(scale);
  for_each_row(s, 2 * n, [&](int64_t r, int64_t i) {
    softmax_row<T>(ap + r * n, bp + r * w + (n - 1 - i), yp + r * n, n, c);
  });
}

template <typename T>
void softmax_backward_loops(const Tensor& grad_ac, const Tensor& grad_bd, const Tensor& grad_y, const Tensor& y,
                            double scale, const RelShape& s) {
  const int64_t n = s.T, w = 2 * n - 1;
  const T* gp = static_cast<const T*>(grad_y.data_ptr());
  const T* yp = static_cast<const T*>(y.data_ptr());
  T* gap = grad_ac.defined() ? static_cast<T*>(grad_ac.data_ptr()) : nullptr;
  T* gbp = grad_bd.defined() ? static_cast<T*>(grad_bd.data_ptr()) : nullptr;
  const T c = static_cast<T>(scale);
  for_each_row(s, 3 * n, [&](int64_t r, int64_t i) {
    const T* g = gp + r * n;
    const T* yr = yp + r * n;
    const T dot = row_dot(g, yr, n);
    // d goes straight into grad_ac's row when there is one, else into the middle of grad_bd's.
    T* d = gap ? gap + r * n : gbp + r * w + (n - 1 - i);
    for (int64_t j = 0; j < n; ++j) d[j] = yr[j] * (g[j] - dot) * c;
    if (gbp) {
      T* o = gbp + r * w;
      if (gap) {
        scatter_row(o, d, n, i);
      } else {
        std::fill(o, o + (n - 1 - i), T(0));
        std::fill(o + (2 * n - 1 - i), o + w, T(0));
      }
    }
  });
}

template <typename T>
void window_softmax_loops(const Tensor& y, const Tensor& scores, const Tensor& bias, const Tensor& mask, double scale,
                          const WindowShape& s) {
  const int64_t n = s.n, H = s.heads, rows = s.windows * H * n;
  const T* sp = static_cast<const T*>(scores.data_ptr());
  const T* bp = static_cast<const T*>(bias.data_ptr());
  const T* mp = mask.defined() ? static_cast<const T*>(mask.data_ptr()) : nullptr;
  T* yp = static_cast<T*>(y.data_ptr());
  const T c = static_cast<T>(scale);
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / (4 * n));
  tse::detail::parallel_for(0, rows, grain, [&](int64_t b0, int64_t e0) {
    for (int64_t r = b0; r < e0; ++r) {
      const int64_t i = r % n, h = (r / n) % H, w = r / (n * H);
      const T* a = sp + r * n;
      const T* bias_row = bp + (h * n + i) * n;
      T* o = yp + r * n;
      if (mp) {
        const T* m = mp + ((w % s.mask_windows) * n + i) * n;
        for (int64_t j = 0; j < n; ++j) o[j] = a[j] * c + bias_row[j] + m[j];
      } else {
        for (int64_t j = 0; j < n; ++j) o[j] = a[j] * c + bias_row[j];
      }
      const T mx = row_max(o, n);
      for (int64_t j = 0; j < n; ++j) o[j] -= mx;
      vm::exp(o, o, n);
      const T inv = T(1) / row_sum(o, n);
      for (int64_t j = 0; j < n; ++j) o[j] *= inv;
    }
  });
}

template <typename T>
void window_softmax_backward_loops(const Tensor& grad_scores, const Tensor& grad_bias, const Tensor& grad_y,
                                   const Tensor& y, double scale, const WindowShape& s) {
  const int64_t n = s.n, H = s.heads, rows = s.windows * H * n, block = H * n * n;
  const T* gp = static_cast<const T*>(grad_y.data_ptr());
  const T* yp = static_cast<const T*>(y.data_ptr());
  // d goes into grad_scores (scaled after the bias sum has read it), else into a scratch buffer.
  Tensor d_store = grad_scores.defined() ? grad_scores : Tensor::empty(y.sizes(), y.dtype(), y.device());
  T* dp = static_cast<T*>(d_store.data_ptr());
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / (3 * n));
  tse::detail::parallel_for(0, rows, grain, [&](int64_t b0, int64_t e0) {
    for (int64_t r = b0; r < e0; ++r) {
      const T* g = gp + r * n;
      const T* yr = yp + r * n;
      const T dot = row_dot(g, yr, n);
      T* d = dp + r * n;
      for (int64_t j = 0; j < n; ++j) d[j] = yr[j] * (g[j] - dot);
    }
  });
  if (grad_bias.defined()) {
    T* bp = static_cast<T*>(grad_bias.data_ptr());
    tse::detail::parallel_for(0, block, std::max<int64_t>(1, tse::detail::kParallelGrain / s.windows),
                              [&](int64_t b0, int64_t e0) {
                                for (int64_t k = b0; k < e0; ++k) {
                                  T acc = 0;
                                  for (int64_t w = 0; w < s.windows; ++w) acc += dp[w * block + k];
                                  bp[k] = acc;
                                }
                              });
  }
  if (grad_scores.defined()) {
    const T c = static_cast<T>(scale);
    tse::detail::parallel_for(0, rows * n, tse::detail::kParallelGrain, [&](int64_t b0, int64_t e0) {
      for (int64_t k = b0; k < e0; ++k) dp[k] *= c;
    });
  }
}

}  // namespace

void window_softmax(const Tensor& y, const Tensor& scores, const Tensor& bias, const Tensor& mask, double scale,
                    const WindowShape& s) {
  if (y.numel() == 0) return;
  dispatch_floating(y.dtype(), "window_softmax",
                    [&]<typename T>() { window_softmax_loops<T>(y, scores, bias, mask, scale, s); });
}

void window_softmax_backward(const Tensor& grad_scores, const Tensor& grad_bias, const Tensor& grad_y, const Tensor& y,
                             double scale, const WindowShape& s) {
  if (y.numel() == 0) return;
  dispatch_floating(y.dtype(), "window_softmax",
                    [&]<typename T>() { window_softmax_backward_loops<T>(grad_scores, grad_bias, grad_y, y, scale, s); });
}

void rel_shift(const Tensor& out, const Tensor& x, const RelShape& s) {
  if (out.numel() == 0) return;
  dispatch_floating(out.dtype(), "rel_shift", [&]<typename T>() { rel_shift_loops<T>(out, x, s); });
}

void rel_shift_backward(const Tensor& grad_x, const Tensor& grad_out, const RelShape& s) {
  if (grad_x.numel() == 0) return;
  dispatch_floating(grad_x.dtype(), "rel_shift",
                    [&]<typename T>() { rel_shift_backward_loops<T>(grad_x, grad_out, s); });
}

void rel_pos_softmax(const Tensor& y, const Tensor& ac, const Tensor& bd, double scale, const RelShape& s) {
  if (y.numel() == 0) return;
  dispatch_floating(y.dtype(), "rel_pos_softmax", [&]<typename T>() { softmax_loops<T>(y, ac, bd, scale, s); });
}

void rel_pos_softmax_backward(const Tensor& grad_ac, const Tensor& grad_bd, const Tensor& grad_y, const Tensor& y,
                              double scale, const RelShape& s) {
  if (y.numel() == 0) return;
  dispatch_floating(y.dtype(), "rel_pos_softmax",
                    [&]<typename T>() { softmax_backward_loops<T>(grad_ac, grad_bd, grad_y, y, scale, s); });
}

// ---- scaled dot-product attention ------------------------------------------------------------------

namespace {

/// Matrices [m0, m0 + count) of a (BH, R, C) tensor, rows [r0, r0 + n) of each, as a view.
Tensor block_of(const Tensor& t, int64_t m0, int64_t count, int64_t r0, int64_t n) {
  return Tensor::from_storage(t.storage(), {count, n, t.size(2)}, {t.stride(0), t.stride(1), t.stride(2)},
                              t.storage_offset() + m0 * t.stride(0) + r0 * t.stride(1), t.dtype());
}

/// The last two dims of a 3-D view swapped.
Tensor transposed(const Tensor& m) {
  return Tensor::from_storage(m.storage(), {m.size(0), m.size(2), m.size(1)}, {m.stride(0), m.stride(2), m.stride(1)},
                              m.storage_offset(), m.dtype());
}

/// p = softmax(s * scale) along each of the n rows of Tk scores; s is overwritten with the
/// probabilities (p may alias it). Three passes over a row: its extreme,
/// the exponentials with their sum, the normalised (and converted) probabilities.
template <typename T, typename P>
void scaled_softmax_rows(T* s, P* p, int64_t n, int64_t Tk, T scale) {
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / (4 * Tk));
  tse::detail::parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      T* x = s + r * Tk;
      const T top = (scale >= 0 ? row_max(x, Tk) : row_min(x, Tk)) * scale;  // max of x * scale
      const T inv = T(1) / vm::exp_affine_sum(x, x, Tk, scale, top);
      for (int64_t j = 0; j < Tk; ++j) x[j] *= inv;
      if constexpr (std::is_same_v<P, BFloat16>) {
        round_to_bf16(x, p + r * Tk, Tk);  // autocast's rounding, as the composite's cast of P
      } else if (p != s) {
        std::copy(x, x + Tk, p + r * Tk);
      }
    }
  });
}

}  // namespace

void scaled_dot_product_attention(const Tensor& out, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  if (out.numel() == 0) return;
  const int64_t BH = q.size(0), Tq = q.size(1), Tk = k.size(1);
  const DType acc = out.dtype();
  // Each step takes `group` matrices at once (a batched GEMM oneDNN splits over the threads; one
  // matrix on one thread, where bigger row blocks run faster) and `block` query rows of each, so
  // that the step's scores stay within 512 KiB, in L2 beside the operands.
  const int nt = get_num_threads();
  const int64_t group = std::min<int64_t>(BH, nt > 1 ? 2 * nt : 1);
  const int64_t block = std::clamp<int64_t>(
      (int64_t{512} << 10) / (group * Tk * static_cast<int64_t>(itemsize(acc))), 16, std::max<int64_t>(Tq, 16));
  const Tensor scores = Tensor::empty({group, std::min(block, Tq), Tk}, acc, out.device());
  const Tensor probs = q.dtype() == DType::bf16 ? Tensor::empty(scores.sizes(), DType::bf16, out.device()) : scores;
  const int64_t dv = v.size(2);
  const Tensor context = group > 1 ? Tensor::empty({group, std::min(block, Tq), dv}, acc, out.device()) : Tensor();
  for (int64_t m0 = 0; m0 < BH; m0 += group) {
    const int64_t G = std::min(group, BH - m0);
    const Tensor kt = transposed(block_of(k, m0, G, 0, Tk)), vb = block_of(v, m0, G, 0, Tk);
    for (int64_t r0 = 0; r0 < Tq; r0 += block) {
      const int64_t n = std::min(block, Tq - r0);
      const Tensor s = Tensor::from_storage(scores.storage(), {G, n, Tk}, {n * Tk, Tk, 1}, 0, acc);
      const Tensor p = Tensor::from_storage(probs.storage(), {G, n, Tk}, {n * Tk, Tk, 1}, 0, probs.dtype());
      matmul(s, block_of(q, m0, G, r0, n), kt, Tensor());
      dispatch_floating(acc, "scaled_dot_product_attention", [&]<typename T>() {
        T* sp = static_cast<T*>(s.data_ptr());
        if constexpr (std::is_same_v<T, float>) {
          if (p.dtype() == DType::bf16) {  // autocast: f32 scores, bf16 probabilities
            scaled_softmax_rows<float, BFloat16>(sp, static_cast<BFloat16*>(p.data_ptr()), G * n, Tk,
                                                 static_cast<float>(scale));
            return;
          }
        }
        scaled_softmax_rows<T, T>(sp, sp, G * n, Tk, static_cast<T>(scale));
      });
      const Tensor o = block_of(out, m0, G, r0, n);
      if (G == 1) {
        matmul(o, p, vb, Tensor());
      } else {  // the kernel writes contiguous results; o's matrices are Tq rows apart
        const Tensor o_c = Tensor::from_storage(context.storage(), {G, n, dv}, {n * dv, dv, 1}, 0, acc);
        matmul(o_c, p, vb, Tensor());
        copy(o, o_c);
      }
    }
  }
}

}  // namespace tse::cpu
