// resample: torchaudio's windowed-sinc polyphase resampler (differentiable) and libsoxr.
//
// torchaudio pads the signal by width on the left and width + orig on the right, then runs a
// strided conv1d with one filter per output phase: out[m new + j] = sum_k xpad[m orig + k]
// kernel[j, k], cut to ceil(L new / orig) samples. The loops below do exactly that; the backward
// scatters the same products back (the conv's adjoint), then crops the padding.
#include "tse/audio/resample.hpp"

#include <soxr.h>

#include <cmath>
#include <numbers>
#include <numeric>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/shape.hpp"

namespace tse::audio {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

constexpr double kLowpassFilterWidth = 6.0;
constexpr double kRolloff = 0.99;

struct Polyphase {
  int64_t orig, new_, width, taps;
};

Polyphase polyphase(int64_t orig, int64_t new_) {
  const double base = static_cast<double>(std::min(orig, new_)) * kRolloff;
  const int64_t width = static_cast<int64_t>(std::ceil(kLowpassFilterWidth * static_cast<double>(orig) / base));
  return {orig, new_, width, 2 * width + orig};
}

// Both directions run on the phase decomposition of the padded signal: with tap k = a orig + r,
// xpad[m orig + k] = phase_r[m + a] where phase_r[q] = xpad[q orig + r]. So each output phase j is
// a sum of orig * ceil(taps / orig) scaled, shifted copies of contiguous phase streams: plain
// vectorisable loops over m, blocked so the streams and the accumulator stay in L1.
constexpr int64_t kBlock = 1024;

/// Per-item geometry of the phase streams.
struct Streams {
  int64_t frames;  // output frames m (each gives new_ samples)
  int64_t shifts;  // a = 0..shifts-1 with a orig + r < taps
  int64_t length;  // samples per phase stream
};

Streams streams(const Polyphase& p, int64_t Lout) {
  const int64_t frames = (Lout + p.new_ - 1) / p.new_;
  const int64_t shifts = (p.taps + p.orig - 1) / p.orig;
  return {frames, shifts, frames + shifts};
}

/// out (B, Lout) = the polyphase filter over x (B, L) zero-padded by width on the left.
template <typename T>
void resample_forward(T* out, const T* x, const T* kernel, const Polyphase& p, int64_t B, int64_t L, int64_t Lout) {
  const Streams st = streams(p, Lout);
  tse::detail::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> phase(static_cast<size_t>(p.orig * st.length)), acc(static_cast<size_t>(kBlock));
    for (int64_t b = b0; b < b1; ++b) {
      const T* xb = x + b * L;
      for (int64_t r = 0; r < p.orig; ++r)
        for (int64_t q = 0; q < st.length; ++q) {
          const int64_t s = q * p.orig + r - p.width;
          phase[static_cast<size_t>(r * st.length + q)] = s >= 0 && s < L ? xb[s] : T(0);
        }
      for (int64_t m0 = 0; m0 < st.frames; m0 += kBlock) {
        const int64_t M = std::min(kBlock, st.frames - m0);
        for (int64_t j = 0; j < p.new_; ++j) {
          T* __restrict a_ = acc.data();
          std::fill(a_, a_ + M, T(0));
          for (int64_t a = 0; a < st.shifts; ++a)
            for (int64_t r = 0; r < p.orig; ++r) {
              const int64_t k = a * p.orig + r;
              if (k >= p.taps) break;
              const T c = kernel[j * p.taps + k];
              const T* __restrict src = phase.data() + r * st.length + m0 + a;
              for (int64_t i = 0; i < M; ++i) a_[i] += c * src[i];
            }
          T* ob = out + b * Lout;
          for (int64_t i = 0; i < M; ++i) {
            const int64_t o = (m0 + i) * p.new_ + j;
            if (o < Lout) ob[o] = a_[i];
          }
        }
      }
    }
  });
}

/// gx (B, L) = the adjoint of resample_forward applied to g (B, Lout).
template <typename T>
void resample_backward(T* gx, const T* g, const T* kernel, const Polyphase& p, int64_t B, int64_t L, int64_t Lout) {
  const Streams st = streams(p, Lout);
  tse::detail::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> gphase(static_cast<size_t>(p.orig * st.length)), gj(static_cast<size_t>(st.frames));
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(gphase.begin(), gphase.end(), T(0));
      const T* gb = g + b * Lout;
      for (int64_t j = 0; j < p.new_; ++j) {
        for (int64_t m = 0; m < st.frames; ++m) {
          const int64_t o = m * p.new_ + j;
          gj[static_cast<size_t>(m)] = o < Lout ? gb[o] : T(0);
        }
        // phase_r[m + a] received c * g_j[m]: add the shifted, scaled g_j to each stream.
        for (int64_t a = 0; a < st.shifts; ++a)
          for (int64_t r = 0; r < p.orig; ++r) {
            const int64_t k = a * p.orig + r;
            if (k >= p.taps) break;
            const T c = kernel[j * p.taps + k];
            T* __restrict dst = gphase.data() + r * st.length + a;
            const T* __restrict src = gj.data();
            for (int64_t m = 0; m < st.frames; ++m) dst[m] += c * src[m];
          }
      }
      T* gxb = gx + b * L;
      for (int64_t s = 0; s < L; ++s) {
        const int64_t pos = s + p.width;
        gxb[s] = gphase[static_cast<size_t>((pos % p.orig) * st.length + pos / p.orig)];
      }
    }
  });
}

Tensor resample_sinc(const Tensor& x2, int64_t orig, int64_t new_) {
  const Polyphase p = polyphase(orig, new_);
  const Tensor kernel = sinc_resample_kernel(orig, new_, x2.dtype());
  const int64_t B = x2.size(0), L = x2.size(1);
  const int64_t Lout = (new_ * L + orig - 1) / orig;  // ceil(new L / orig)
  const Tensor xc = x2.detach().contiguous();
  Tensor out = Tensor::empty({B, Lout}, x2.dtype());
  cpu::dispatch_floating(x2.dtype(), "resample", [&]<typename T>() {
    resample_forward<T>(out.data<T>(), xc.data<T>(), kernel.data<T>(), p, B, L, Lout);
  });
  if (needs_grad({x2})) {
    record("resample", {x2}, {out}, [=](const Grads& g) -> Grads {
      const Tensor gc = g[0].contiguous();
      Tensor gx = Tensor::empty({B, L}, gc.dtype());
      cpu::dispatch_floating(gc.dtype(), "resample", [&]<typename T>() {
        resample_backward<T>(gx.data<T>(), gc.data<T>(), kernel.data<T>(), p, B, L, Lout);
      });
      return {gx};
    });
  }
  return out;
}

Tensor resample_soxr(const Tensor& x2, int64_t orig, int64_t new_) {
  TSE_CHECK(!x2.requires_grad() || !autograd::GradMode::is_enabled(), "resample: method 'soxr_hq' is not differentiable; ",
            "use 'sinc_hann' or detach the input");
  const Tensor xc = x2.detach().contiguous();
  const int64_t B = xc.size(0), L = xc.size(1);
  const int64_t Lout = static_cast<int64_t>(std::llround(static_cast<double>(L) * static_cast<double>(new_) /
                                                        static_cast<double>(orig)));
  Tensor out = Tensor::empty({B, Lout}, xc.dtype());
  const soxr_datatype_t type = xc.dtype() == DType::f64 ? SOXR_FLOAT64_I : SOXR_FLOAT32_I;
  const size_t elem = xc.dtype() == DType::f64 ? sizeof(double) : sizeof(float);
  tse::detail::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const soxr_io_spec_t io = soxr_io_spec(type, type);
      const soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
      const soxr_runtime_spec_t rt = soxr_runtime_spec(1);  // our threads, not soxr's
      size_t done = 0;
      const soxr_error_t err = soxr_oneshot(static_cast<double>(orig), static_cast<double>(new_), 1,
                                            static_cast<const char*>(xc.data_ptr()) + b * L * elem,
                                            static_cast<size_t>(L), nullptr,
                                            static_cast<char*>(out.data_ptr()) + b * Lout * elem,
                                            static_cast<size_t>(Lout), &done, &io, &q, &rt);
      if (err) throw BackendError(tse::detail::str_cat("resample: libsoxr failed: ", err));
      // soxr may deliver a few samples fewer than requested at the very end: zero them.
      char* tail = static_cast<char*>(out.data_ptr()) + (b * Lout + static_cast<int64_t>(done)) * elem;
      std::fill(tail, tail + (Lout - static_cast<int64_t>(done)) * elem, 0);
    }
  });
  return out;
}

}  // namespace

Tensor sinc_resample_kernel(int64_t orig, int64_t new_, DType dtype, int64_t* width_out) {
  TSE_CHECK(orig >= 1 && new_ >= 1, "sinc_resample_kernel: rates must be >= 1, got ", orig, " and ", new_);
  TSE_CHECK(dtype == DType::f32 || dtype == DType::f64, "sinc_resample_kernel: dtype must be float32 or float64, got ",
            dtype);
  const Polyphase p = polyphase(orig, new_);
  const double base = static_cast<double>(std::min(orig, new_)) * kRolloff;
  const double scale = base / static_cast<double>(orig);
  std::vector<double> k(static_cast<size_t>(new_ * p.taps));
  for (int64_t j = 0; j < new_; ++j) {
    // torch.arange(0, -new, -1, dtype) / new: float32 by default (addendum D1).
    const double phase = dtype == DType::f32
                             ? static_cast<double>(static_cast<float>(-static_cast<float>(j)) / static_cast<float>(new_))
                             : -static_cast<double>(j) / static_cast<double>(new_);
    for (int64_t i = 0; i < p.taps; ++i) {
      const double idx = static_cast<double>(i - p.width) / static_cast<double>(orig);
      double t = (phase + idx) * base;
      t = std::clamp(t, -kLowpassFilterWidth, kLowpassFilterWidth);
      const double c = std::cos(t * std::numbers::pi / kLowpassFilterWidth / 2);
      const double window = c * c;
      const double tp = t * std::numbers::pi;
      const double sinc = tp == 0 ? 1.0 : std::sin(tp) / tp;
      k[static_cast<size_t>(j * p.taps + i)] = sinc * (window * scale);
    }
  }
  if (width_out) *width_out = p.width;
  return ops::from_vector(k, {new_, p.taps}, dtype);
}

Tensor resample(const Tensor& x, int64_t orig_sr, int64_t new_sr, const std::string& method) {
  ops::detail::check_defined(x, "resample", "input");
  ops::detail::check_floating(x, "resample", "input");
  TSE_CHECK(x.device().is_cpu(), "resample: only CPU tensors are supported yet, got ", x.device());
  TSE_CHECK(x.dim() >= 1, "resample: argument 'input' must be (..., samples), got shape ", x.shape_str());
  TSE_CHECK(orig_sr > 0 && new_sr > 0, "resample: sample rates must be positive integers, got orig_sr ", orig_sr,
            " and new_sr ", new_sr);
  TSE_CHECK(method == "sinc_hann" || method == "soxr_hq", "resample: unknown method '", method,
            "' (expected 'sinc_hann' or 'soxr_hq')");
  if (orig_sr == new_sr) return x;
  const int64_t g = std::gcd(orig_sr, new_sr);
  const Shape lead(x.sizes().begin(), x.sizes().end() - 1);
  const Tensor x2 = x.reshape({shape_numel(lead), x.size(x.dim() - 1)});
  const Tensor y = method == "sinc_hann" ? resample_sinc(x2, orig_sr / g, new_sr / g)
                                         : resample_soxr(x2, orig_sr / g, new_sr / g);
  Shape sizes = lead;
  sizes.push_back(y.size(1));
  return y.reshape(sizes);
}

}  // namespace tse::audio
