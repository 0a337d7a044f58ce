// CPU kernels of average pooling, forward and adjoint, for every dtype.
//
// Not oneDNN: on the plain layouts our tensors have (ncw / nchw), oneDNN 2.6 pools with its
// simple_nchw reference kernel, 5-20x slower than the loops here; its JIT kernels need the
// blocked nCw8c / nChw8c layout, and with the two reorders that route is no faster than these
// loops (0.7-1.4x; benchmarks/bench_pooling.cpp times both). These loops also apply PyTorch's
// divisor exactly, which oneDNN cannot: its include-padding average divides a ceil_mode window
// that overhangs the padded input by the full kernel size, and it has no divisor_override.
//
// Average pooling is separable. Output (oh, ow) is
//   weight_h[oh] * weight_w[ow] * sum of x[h][w] over the window rows h and columns w,
// because PyTorch's divisor is a product of one count per axis (or divisor_override), so each
// output row is a vertical sum of its window's input rows into a zero-padded row buffer, then
// horizontal window sums of that buffer (padding and overhang read zeros). The adjoint spreads
// each weighted grad_out row over the padded row (the transpose of the window sums), then each
// grad_x row sums the spread rows of the windows covering it, kept in a small ring.
#include "src/cpu/pooling.hpp"

#include <algorithm>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"

namespace tse::cpu {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// Input rows [window_begin, window_end) of output o along axis a (never empty: the op layer's
/// output sizes keep every window overlapping the input).
int64_t window_begin(const PoolAxis& a, int64_t o) { return std::max<int64_t>(0, o * a.stride - a.pad); }
int64_t window_end(const PoolAxis& a, int64_t o) { return std::min(a.in, o * a.stride - a.pad + a.kernel); }

/// Outputs [first_window, last_window] whose windows cover input index i (may be empty when
/// the stride exceeds the kernel, or for input the last window does not reach).
int64_t first_window(const PoolAxis& a, int64_t i) {
  return std::max<int64_t>(0, floor_div(i + a.pad - a.kernel, a.stride) + 1);
}
int64_t last_window(const PoolAxis& a, int64_t i) { return std::min(a.out - 1, floor_div(i + a.pad, a.stride)); }

/// The length of a padded row buffer: the padded input or the reach of the last window.
int64_t padded_length(const PoolAxis& a) { return std::max(a.pad + a.in, (a.out - 1) * a.stride + a.kernel); }

/// PyTorch's divisor as one factor per output row and column: 1 / the window's count along the
/// axis, the count clipped to the padded input (count_include_pad) or to the input.
template <typename T>
std::vector<T> axis_weights(const PoolAxis& a, bool count_include_pad) {
  std::vector<T> w(static_cast<size_t>(a.out));
  for (int64_t o = 0; o < a.out; ++o) {
    const int64_t start = o * a.stride - a.pad, padded_end = std::min(start + a.kernel, a.in + a.pad);
    const int64_t count = count_include_pad ? padded_end - start : window_end(a, o) - window_begin(a, o);
    w[static_cast<size_t>(o)] = T(1) / static_cast<T>(count);
  }
  return w;
}

template <typename T>
struct Weights {
  std::vector<T> h, w;
  explicit Weights(const AvgPoolParams& p) {
    if (p.divisor_override != 0) {
      h.assign(static_cast<size_t>(p.h.out), T(1));
      w.assign(static_cast<size_t>(p.w.out), T(1) / static_cast<T>(p.divisor_override));
    } else {
      h = axis_weights<T>(p.h, p.count_include_pad);
      w = axis_weights<T>(p.w, p.count_include_pad);
    }
  }
};

/// Calls f.template operator()<S>() with S the W stride when it is 1-4 (the strided loops then
/// vectorise with fixed shuffles), else S = 0 (a runtime stride).
template <typename F>
void with_static_stride(int64_t stride, const F& f) {
  switch (stride) {
    case 1:
      f.template operator()<1>();
      return;
    case 2:
      f.template operator()<2>();
      return;
    case 3:
      f.template operator()<3>();
      return;
    case 4:
      f.template operator()<4>();
      return;
    default:
      f.template operator()<0>();
      return;
  }
}

/// Work units of roughly kParallelGrain element operations, for parallel_for's grain.
int64_t grain_for(int64_t cost_per_task) {
  return std::max<int64_t>(1, tse::detail::kParallelGrain / std::max<int64_t>(cost_per_task, 1));
}

// ---- forward ---------------------------------------------------------------------------------------

/// Output rows [begin, end) of the (planes * OH) rows; padded: a zeroed row buffer.
template <typename T, int64_t S>
void forward_rows(const T* x, T* y, const AvgPoolParams& p, const Weights<T>& wt, int64_t begin, int64_t end,
                  T* padded) {
  const PoolAxis &h = p.h, &w = p.w;
  const int64_t stride = S ? S : w.stride;
  // Windows that neither pad nor overhang a row can read a single input row in place (1-D).
  const bool inside_row = w.pad == 0 && padded_length(w) == w.in;
  T* row = padded + w.pad;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t oh = t % h.out;
    const T* plane = x + (t / h.out) * h.in * w.in;
    const int64_t h0 = window_begin(h, oh), h1 = window_end(h, oh);
    const T* sums = plane + h0 * w.in;  // the window rows' vertical sums, w.pad zeros first
    if (h1 - h0 > 1 || !inside_row) {
      std::copy(sums, sums + w.in, row);
      for (int64_t r = h0 + 1; r < h1; ++r) {
        const T* xr = plane + r * w.in;
        for (int64_t i = 0; i < w.in; ++i) row[i] += xr[i];
      }
      sums = padded;
    }
    T* o = y + t * w.out;
    for (int64_t ow = 0; ow < w.out; ++ow) o[ow] = sums[ow * stride];
    for (int64_t j = 1; j < w.kernel; ++j)
      for (int64_t ow = 0; ow < w.out; ++ow) o[ow] += sums[ow * stride + j];
    const T wr = wt.h[static_cast<size_t>(oh)];
    for (int64_t ow = 0; ow < w.out; ++ow) o[ow] *= wr * wt.w[static_cast<size_t>(ow)];
  }
}

template <typename T>
void forward(const Tensor& out, const Tensor& x, const AvgPoolParams& p) {
  const Weights<T> wt(p);
  const T* xp = static_cast<const T*>(x.data_ptr());
  T* yp = static_cast<T*>(out.data_ptr());
  const int64_t planes = x.numel() / (p.h.in * p.w.in);
  const int64_t grain = grain_for(p.h.kernel * p.w.in + p.w.kernel * p.w.out);
  with_static_stride(p.w.stride, [&]<int64_t S>() {
    tse::detail::parallel_for(0, planes * p.h.out, grain, [&](int64_t b, int64_t e) {
      std::vector<T> padded(static_cast<size_t>(padded_length(p.w)), T(0));
      forward_rows<T, S>(xp, yp, p, wt, b, e, padded.data());
    });
  });
}

// ---- adjoint ---------------------------------------------------------------------------------------

/// The adjoint of one output row's horizontal window sums: dst (W) = the input-row gradient of
/// grad_out row g scaled by row weight wr and the column weights. The windows are spread into
/// the padded row buffer, or straight into dst when they neither pad nor overhang the row.
template <typename T, int64_t S>
void spread_row(const T* g, T wr, const std::vector<T>& weight_w, const PoolAxis& w, T* scaled, T* padded, T* dst) {
  const int64_t stride = S ? S : w.stride, length = padded_length(w);
  T* target = w.pad == 0 && length == w.in ? dst : padded;
  for (int64_t ow = 0; ow < w.out; ++ow) scaled[ow] = g[ow] * (wr * weight_w[static_cast<size_t>(ow)]);
  if (w.kernel == stride) {
    // Disjoint windows tile [0, OW * stride) exactly; the rest of the row gets no gradient.
    for (int64_t j = 0; j < w.kernel; ++j)
      for (int64_t ow = 0; ow < w.out; ++ow) target[ow * stride + j] = scaled[ow];
    std::fill(target + w.out * stride, target + length, T(0));
  } else {
    std::fill(target, target + length, T(0));
    for (int64_t j = 0; j < w.kernel; ++j)
      for (int64_t ow = 0; ow < w.out; ++ow) target[ow * stride + j] += scaled[ow];
  }
  if (target == padded) std::copy(padded + w.pad, padded + w.pad + w.in, dst);
}

/// grad_x rows [begin, end) of the (planes * H) rows. Spread rows are made once each, on first
/// use, into a ring of as many rows as windows can cover one input row.
template <typename T, int64_t S>
void backward_rows(const T* gy, T* gx, const AvgPoolParams& p, const Weights<T>& wt, int64_t begin, int64_t end) {
  const PoolAxis &h = p.h, &w = p.w;
  const int64_t ring_rows = (h.kernel + h.stride - 1) / h.stride;
  std::vector<T> ring(static_cast<size_t>(ring_rows * w.in)), scaled(static_cast<size_t>(w.out));
  std::vector<T> padded(static_cast<size_t>(padded_length(w)), T(0));
  auto ring_row = [&](int64_t oh) { return ring.data() + (oh % ring_rows) * w.in; };
  int64_t plane = -1, made = -1;  // spread rows of `plane` up to `made` are in the ring
  for (int64_t t = begin; t < end; ++t) {
    T* out = gx + t * w.in;
    const int64_t ih = t % h.in, lo = first_window(h, ih), hi = last_window(h, ih);
    if (lo > hi) {
      std::fill(out, out + w.in, T(0));
      continue;
    }
    if (t / h.in != plane) {
      plane = t / h.in;
      made = -1;
    }
    made = std::max(made, lo - 1);
    while (made < hi) {
      ++made;
      spread_row<T, S>(gy + (plane * h.out + made) * w.out, wt.h[static_cast<size_t>(made)], wt.w, w, scaled.data(),
                       padded.data(), ring_row(made));
    }
    std::copy(ring_row(lo), ring_row(lo) + w.in, out);
    for (int64_t oh = lo + 1; oh <= hi; ++oh) {
      const T* src = ring_row(oh);
      for (int64_t i = 0; i < w.in; ++i) out[i] += src[i];
    }
  }
}

template <typename T>
void backward(const Tensor& grad_x, const Tensor& grad_out, const AvgPoolParams& p) {
  const Weights<T> wt(p);
  const T* gp = static_cast<const T*>(grad_out.data_ptr());
  T* xp = static_cast<T*>(grad_x.data_ptr());
  const int64_t planes = grad_x.numel() / (p.h.in * p.w.in);
  const int64_t grain = grain_for(2 * p.w.in + p.w.kernel * p.w.out);
  with_static_stride(p.w.stride, [&]<int64_t S>() {
    tse::detail::parallel_for(0, planes * p.h.in, grain,
                              [&](int64_t b, int64_t e) { backward_rows<T, S>(gp, xp, p, wt, b, e); });
  });
}

}  // namespace

void avg_pool(const Tensor& out, const Tensor& x, const AvgPoolParams& p) {
  if (out.numel() == 0) return;
  dispatch_floating(out.dtype(), "avg_pool", [&]<typename T>() { forward<T>(out, x, p); });
}

void avg_pool_backward(const Tensor& grad_x, const Tensor& grad_out, const AvgPoolParams& p) {
  if (grad_x.numel() == 0) return;
  dispatch_floating(grad_x.dtype(), "avg_pool", [&]<typename T>() { backward<T>(grad_x, grad_out, p); });
}

}  // namespace tse::cpu
