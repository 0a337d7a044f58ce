// CPU interpolate kernels: nearest, linear/bilinear and bicubic resampling of (N, C, L) and
// (N, C, H, W) tensors, forward and adjoint.
//
// Every mode is separable: an output pixel is sum_a wh[a] * sum_b ww[b] * x[ih[a], iw[b]] over
// KH x KW taps. The taps (source indices and weights) of each output row and column are
// computed once per call, following ATen's UpSample.h formulas in the input's dtype as PyTorch's
// CPU kernels do, so results match torch.nn.functional.interpolate to rounding. A 1-D input is a
// 2-D one with a single row and one identity tap along H.
#include "src/cpu/interpolate.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"

namespace tse::cpu {
namespace {

/// Source indices and weights of every output index along one axis, k per output index.
template <typename T>
struct Taps {
  int64_t k = 1;
  std::vector<int64_t> idx;
  std::vector<T> w;
};

constexpr int64_t taps_per_index(InterpMode m) {
  return m == InterpMode::nearest ? 1 : m == InterpMode::linear ? 2 : 4;
}

/// ATen floors source coordinates with floorf whatever the dtype; doing the same keeps the
/// chosen taps identical to PyTorch's for float64 too.
template <typename T>
int64_t floor_index(T v) {
  return static_cast<int64_t>(std::floor(static_cast<float>(v)));
}

/// in / out, or 1 / scale_factor when the user gave one (align_corners ignores it).
template <typename T>
T axis_scale(int64_t in, int64_t out, bool align_corners, double user_scale) {
  if (align_corners) return out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  return user_scale > 0 ? static_cast<T>(1.0 / user_scale) : static_cast<T>(in) / static_cast<T>(out);
}

/// Keys' cubic convolution weights for fractional offset t in [0, 1] (A = -0.75, as ATen).
template <typename T>
void cubic_weights(T t, T* w) {
  const T a = T(-0.75);
  auto near = [a](T x) { return ((a + T(2)) * x - (a + T(3))) * x * x + T(1); };       // |x| <= 1
  auto far = [a](T x) { return ((a * x - T(5) * a) * x + T(8) * a) * x - T(4) * a; };  // 1 < |x| < 2
  const T u = T(1) - t;
  w[0] = far(t + T(1));
  w[1] = near(t);
  w[2] = near(u);
  w[3] = far(u + T(1));
}

template <typename T>
Taps<T> make_taps(InterpMode mode, int64_t in, int64_t out, bool align_corners, double user_scale) {
  Taps<T> t;
  t.k = taps_per_index(mode);
  t.idx.resize(static_cast<size_t>(out * t.k));
  t.w.resize(static_cast<size_t>(out * t.k));
  // align_corners is meaningless for nearest (the op rejects it; the identity H taps of a 1-D
  // input pass it through).
  const bool align = mode != InterpMode::nearest && align_corners;
  const T scale = axis_scale<T>(in, out, align, user_scale);
  auto source = [&](int64_t i) {
    return align ? scale * static_cast<T>(i) : scale * (static_cast<T>(i) + T(0.5)) - T(0.5);
  };
  for (int64_t i = 0; i < out; ++i) {
    int64_t* idx = &t.idx[static_cast<size_t>(i * t.k)];
    T* w = &t.w[static_cast<size_t>(i * t.k)];
    switch (mode) {
      case InterpMode::nearest: {
        // PyTorch's legacy 'nearest': floor(dst * scale), no half-pixel offset.
        idx[0] = std::min(floor_index(scale * static_cast<T>(i)), in - 1);
        w[0] = T(1);
        break;
      }
      case InterpMode::linear: {
        if (in == out) {  // ATen copies here even when a scale_factor != 1 was given
          idx[0] = idx[1] = i;
          w[0] = T(1);
          w[1] = T(0);
          break;
        }
        // Linear modes clamp negative coordinates to 0 (the first output pixels copy the border).
        const T s = std::max(source(i), T(0));
        const int64_t i0 = std::min(floor_index(s), in - 1);
        const T lambda = std::clamp(s - static_cast<T>(i0), T(0), T(1));
        idx[0] = i0;
        idx[1] = i0 + (i0 < in - 1 ? 1 : 0);
        w[0] = T(1) - lambda;
        w[1] = lambda;
        break;
      }
      case InterpMode::cubic: {
        // No clamp of the coordinate for cubic: a negative one moves the taps past the border,
        // where they are clamped to the edge pixel.
        const T s = source(i);
        const int64_t i0 = std::min(floor_index(s), in - 1);
        cubic_weights(std::clamp(s - static_cast<T>(i0), T(0), T(1)), w);
        for (int64_t j = 0; j < 4; ++j) idx[j] = std::clamp<int64_t>(i0 - 1 + j, 0, in - 1);
        break;
      }
    }
  }
  return t;
}

struct Geometry {
  int64_t planes, ih, iw, oh, ow;
};

Geometry geometry(const Tensor& in, const Tensor& out) {
  const bool two_d = in.dim() == 4;
  return {in.size(0) * in.size(1), two_d ? in.size(2) : 1, in.size(in.dim() - 1), two_d ? out.size(2) : 1,
          out.size(out.dim() - 1)};
}

/// Taps along H (identity for 1-D inputs) and along W.
template <typename T>
std::pair<Taps<T>, Taps<T>> axis_taps(const Geometry& g, bool two_d, const InterpParams& p) {
  const InterpMode h_mode = two_d ? p.mode : InterpMode::nearest;
  return {make_taps<T>(h_mode, g.ih, g.oh, p.align_corners, p.scale_h),
          make_taps<T>(p.mode, g.iw, g.ow, p.align_corners, p.scale_w)};
}

template <typename T, int KH, int KW>
void forward_plane_rows(const Geometry& g, const Taps<T>& th, const Taps<T>& tw, const T* x, T* y) {
  // Rows of all planes are independent: parallel over (plane, output row).
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, g.ow * KH * KW));
  parallel_for(0, g.planes * g.oh, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t plane = r / g.oh, oh = r % g.oh;
      const T* xp = x + plane * g.ih * g.iw;
      const int64_t* hi = &th.idx[static_cast<size_t>(oh * KH)];
      const T* hw = &th.w[static_cast<size_t>(oh * KH)];
      T* yr = y + r * g.ow;
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        const int64_t* wi = &tw.idx[static_cast<size_t>(ow * KW)];
        const T* ww = &tw.w[static_cast<size_t>(ow * KW)];
        T acc = T(0);
        for (int a = 0; a < KH; ++a) {
          const T* row = xp + hi[a] * g.iw;
          T inner = T(0);
          for (int b = 0; b < KW; ++b) inner += ww[b] * row[wi[b]];
          acc += hw[a] * inner;
        }
        yr[ow] = acc;
      }
    }
  });
}

template <typename T, int KH, int KW>
void backward_planes(const Geometry& g, const Taps<T>& th, const Taps<T>& tw, const T* gy, T* gx) {
  // Taps of neighbouring outputs overlap, so the scatter is serial within a plane.
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, g.oh * g.ow * KH * KW));
  parallel_for(0, g.planes, grain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      T* gxp = gx + plane * g.ih * g.iw;
      std::fill(gxp, gxp + g.ih * g.iw, T(0));
      const T* gyp = gy + plane * g.oh * g.ow;
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        const int64_t* hi = &th.idx[static_cast<size_t>(oh * KH)];
        const T* hw = &th.w[static_cast<size_t>(oh * KH)];
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const int64_t* wi = &tw.idx[static_cast<size_t>(ow * KW)];
          const T* ww = &tw.w[static_cast<size_t>(ow * KW)];
          const T v = gyp[oh * g.ow + ow];
          for (int a = 0; a < KH; ++a) {
            T* row = gxp + hi[a] * g.iw;
            const T va = hw[a] * v;
            for (int b = 0; b < KW; ++b) row[wi[b]] += ww[b] * va;
          }
        }
      }
    }
  });
}

/// Calls f.template operator()<KH, KW>() for the tap counts of the mode and rank.
template <typename F>
void dispatch_taps(InterpMode mode, bool two_d, F&& f) {
  switch (mode) {
    case InterpMode::nearest:
      f.template operator()<1, 1>();
      return;
    case InterpMode::linear:
      if (two_d) {
        f.template operator()<2, 2>();
      } else {
        f.template operator()<1, 2>();
      }
      return;
    case InterpMode::cubic:
      f.template operator()<4, 4>();
      return;
  }
}

}  // namespace

void interpolate(const Tensor& out, const Tensor& x, const InterpParams& p) {
  const Geometry g = geometry(x, out);
  const bool two_d = x.dim() == 4;
  dispatch_floating(x.dtype(), "interpolate", [&]<typename T>() {
    const auto taps = axis_taps<T>(g, two_d, p);
    dispatch_taps(p.mode, two_d, [&]<int KH, int KW>() {
      forward_plane_rows<T, KH, KW>(g, taps.first, taps.second, x.data<T>(), out.data<T>());
    });
  });
}

void interpolate_backward(const Tensor& grad_x, const Tensor& grad_out, const InterpParams& p) {
  const Geometry g = geometry(grad_x, grad_out);
  const bool two_d = grad_x.dim() == 4;
  dispatch_floating(grad_x.dtype(), "interpolate_backward", [&]<typename T>() {
    const auto taps = axis_taps<T>(g, two_d, p);
    dispatch_taps(p.mode, two_d, [&]<int KH, int KW>() {
      backward_planes<T, KH, KW>(g, taps.first, taps.second, grad_out.data<T>(), grad_x.data<T>());
    });
  });
}

}  // namespace tse::cpu
