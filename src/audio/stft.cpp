// stft / istft: option checks, the window, padding and trimming (composed from differentiable
// ops), and the two framed transforms with their tape nodes. Kernels: src/cpu/fft.cpp.
//
// Both transforms are linear, so each backward is the other framed transform with per-bin
// weights (the adjoints of the one-sided real FFT and of its inverse):
//   stft:  X = F(frames(x) * w)        x_grad = OLA(w * irfft_u(G * a)),  a = 1 (DC, Nyquist), 1/2
//   istft: y = OLA(w * irfft_u(Y) / n)  Y_grad = F(frames(g) * w) * c,  c = 1/n (DC, Nyquist), 2/n
// where irfft_u is the unnormalised inverse over the Hermitian spectrum.
#include "tse/audio/stft.hpp"

#include <cmath>
#include <map>
#include <mutex>
#include <numbers>
#include <string>
#include <tuple>
#include <vector>

#include "src/cpu/fft.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/shape.hpp"

namespace tse::audio {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

using FramesRfftFn = void(const Tensor&, const Tensor&, const Tensor&, int64_t, const double*);
using OverlapAddFn = void(const Tensor&, const Tensor&, const Tensor&, int64_t, const double*, const Tensor&, int64_t);
const tse::detail::KernelTable<FramesRfftFn> k_frames_rfft{"stft", &cpu::fft::frames_rfft, nullptr};
const tse::detail::KernelTable<OverlapAddFn> k_overlap_add{"istft", &cpu::fft::overlap_add_irfft, nullptr};

/// Options with the defaults filled in, checked.
struct Resolved {
  int64_t n_fft, hop, win;
  int64_t bins() const { return n_fft / 2 + 1; }
};

Resolved resolve(const StftOptions& o, const char* op) {
  TSE_CHECK(o.n_fft >= 1, op, ": n_fft must be >= 1, got ", o.n_fft);
  const int64_t hop = o.hop_length == 0 ? std::max<int64_t>(o.n_fft / 4, 1) : o.hop_length;
  const int64_t win = o.win_length == 0 ? o.n_fft : o.win_length;
  TSE_CHECK(hop >= 1, op, ": hop_length must be >= 1 (0 selects n_fft / 4), got ", o.hop_length);
  TSE_CHECK(win >= 1 && win <= o.n_fft, op, ": win_length must be in [1, n_fft = ", o.n_fft, "] (0 selects n_fft), got ",
            o.win_length);
  return {o.n_fft, hop, win};
}

/// Per-bin weights of the transforms' adjoints (see the file comment).
std::vector<double> bin_weights(int64_t n_fft, double edge, double interior) {
  std::vector<double> s(static_cast<size_t>(n_fft / 2 + 1), interior);
  s.front() = edge;
  if (n_fft % 2 == 0) s.back() = edge;  // the Nyquist bin exists only for even n_fft
  return s;
}

/// frames (B, Lp) -> (B, F, T, 2); differentiable in x.
Tensor framed_rfft(const Tensor& x, const Tensor& window, int64_t hop, int64_t frames) {
  const int64_t B = x.size(0), Lp = x.size(1), n = window.numel();
  Tensor out = Tensor::empty({B, n / 2 + 1, frames, 2}, x.dtype(), x.device());
  const Tensor xc = x.detach().contiguous();
  k_frames_rfft.get(x.device())(out, xc, window, hop, nullptr);
  if (needs_grad({x})) {
    record("stft", {x}, {out}, [=](const Grads& g) -> Grads {
      Tensor gx = Tensor::empty({B, Lp}, g[0].dtype(), g[0].device());
      const std::vector<double> a = bin_weights(n, 1.0, 0.5);
      k_overlap_add.get(gx.device())(gx, g[0].contiguous(), window, hop, a.data(), Tensor(), 0);
      return {gx};
    });
  }
  return out;
}

/// spec (B, F, T, 2) -> (B, length): y = the overlap-added windowed inverse FFTs (with 1/n), of
/// n + hop (T - 1) samples, times envelope, from sample `offset` on (zeros past y's end), in one
/// kernel; differentiable in spec.
Tensor overlap_add(const Tensor& spec, const Tensor& window, int64_t hop, const Tensor& envelope, int64_t offset,
                   int64_t length) {
  const int64_t B = spec.size(0), T = spec.size(2), n = window.numel();
  const int64_t full = n + hop * (T - 1);
  Tensor out = Tensor::empty({B, length}, spec.dtype(), spec.device());
  const std::vector<double> inv_n = bin_weights(n, 1.0 / static_cast<double>(n), 1.0 / static_cast<double>(n));
  k_overlap_add.get(spec.device())(out, spec.detach().contiguous(), window, hop, inv_n.data(), envelope, offset);
  if (needs_grad({spec})) {
    record("istft", {spec}, {out}, [=](const Grads& g) -> Grads {
      // Back to the untrimmed signal: g * envelope at [offset, offset + kept), zeros elsewhere.
      const int64_t kept = std::max<int64_t>(0, std::min(length, full - offset));
      const Tensor g_full = ops::pad(g[0].narrow(1, 0, kept) * envelope.narrow(0, offset, kept),
                                     {offset, full - offset - kept});
      Tensor gs = Tensor::empty({B, n / 2 + 1, T, 2}, g[0].dtype(), g[0].device());
      const std::vector<double> c = bin_weights(n, 1.0 / static_cast<double>(n), 2.0 / static_cast<double>(n));
      k_frames_rfft.get(gs.device())(gs, g_full.contiguous(), window, hop, c.data());
      return {gs};
    });
  }
  return out;
}

/// 1 / the overlap-added squared window of `frames` frames, clamped at 1e-11 first as
/// torchlibrosa does (librosa skips tiny values instead). A constant of (options, frames,
/// dtype), so a few recent ones are kept: computing it costs as much as a third of the iSTFT.
Tensor inverse_envelope(const StftOptions& o, const Resolved& r, int64_t frames, DType dtype) {
  using Key = std::tuple<int64_t, int64_t, int64_t, std::string, int64_t, DType>;
  static std::mutex mu;
  static auto* cache = new std::map<Key, Tensor>();  // never destroyed (tensors outlive statics)
  const Key key{r.n_fft, r.hop, r.win, o.window, frames, dtype};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  const std::vector<double> w = ops::to_vector(stft_window(o, DType::f64));
  const int64_t full = r.n_fft + r.hop * (frames - 1);
  std::vector<double> env(static_cast<size_t>(full), 0.0);
  for (int64_t t = 0; t < frames; ++t) {
    double* e = env.data() + t * r.hop;
    for (int64_t m = 0; m < r.n_fft; ++m) e[m] += w[static_cast<size_t>(m)] * w[static_cast<size_t>(m)];
  }
  for (double& e : env) e = 1.0 / std::max(e, 1e-11);
  Tensor inv = ops::from_vector(env, {full}, dtype);
  std::lock_guard<std::mutex> lock(mu);
  if (cache->size() >= 16) cache->clear();
  cache->emplace(key, inv);
  return inv;
}

/// x's leading dims, and x as (prod(leading), last).
std::pair<Shape, Tensor> fold_leading(const Tensor& x, int64_t kept) {
  Shape lead(x.sizes().begin(), x.sizes().end() - kept);
  Shape folded{shape_numel(lead)};
  for (int64_t d = x.dim() - kept; d < x.dim(); ++d) folded.push_back(x.size(d));
  return {lead, x.reshape(folded)};
}

}  // namespace

Tensor stft_window(const StftOptions& options, DType dtype) {
  const Resolved r = resolve(options, "stft_window");
  TSE_CHECK(dtype == DType::f32 || dtype == DType::f64, "stft_window: dtype must be float32 or float64, got ", dtype);
  std::vector<double> w(static_cast<size_t>(r.n_fft), 0.0);
  const int64_t left = (r.n_fft - r.win) / 2;  // torch centres a short window in the frame
  const double N = static_cast<double>(r.win);
  for (int64_t m = 0; m < r.win; ++m) {
    const double phase = 2.0 * std::numbers::pi * static_cast<double>(m) / N;  // periodic: / N
    double v;
    if (options.window == "hann") {
      v = 0.5 - 0.5 * std::cos(phase);
    } else if (options.window == "hamming") {
      v = 0.54 - 0.46 * std::cos(phase);
    } else if (options.window == "rectangular") {
      v = 1.0;
    } else {
      throw ValueError(tse::detail::str_cat("stft: unknown window '", options.window,
                                            "' (expected 'hann', 'hamming' or 'rectangular')"));
    }
    w[static_cast<size_t>(left + m)] = v;
  }
  return ops::from_vector(w, {r.n_fft}, dtype);
}

Tensor stft(const Tensor& x, const StftOptions& options) {
  ops::detail::check_defined(x, "stft", "input");
  ops::detail::check_floating(x, "stft", "input");
  TSE_CHECK(x.dim() >= 1, "stft: argument 'input' must have at least 1 dim (..., samples), got shape ",
            x.shape_str());
  const Resolved r = resolve(options, "stft");
  const Tensor window = stft_window(options, x.dtype()).to(x.device());
  auto [lead, x2] = fold_leading(x, 1);
  const int64_t L = x2.size(1);
  if (options.center) {
    const int64_t p = r.n_fft / 2;
    TSE_CHECK(options.pad_mode != "reflect" || L > p, "stft: reflect padding of n_fft / 2 = ", p,
              " samples needs more than ", p, " samples, got input of shape ", x.shape_str());
    TSE_CHECK(options.pad_mode == "reflect" || options.pad_mode == "constant" || options.pad_mode == "replicate" ||
                  options.pad_mode == "circular",
              "stft: unknown pad_mode '", options.pad_mode, "' (expected 'reflect', 'constant', 'replicate' or 'circular')");
    TSE_CHECK(L > 0, "stft: argument 'input' is empty (shape ", x.shape_str(), ")");
    x2 = ops::pad(x2, {p, p}, options.pad_mode);
  }
  const int64_t Lp = x2.size(1);
  TSE_CHECK(Lp >= r.n_fft, "stft: input of shape ", x.shape_str(), " is shorter than n_fft = ", r.n_fft,
            options.center ? " after centring" : "", " (needs at least one full frame)");
  const int64_t frames = 1 + (Lp - r.n_fft) / r.hop;
  const Tensor spec = framed_rfft(x2, window, r.hop, frames);
  Shape out_sizes = lead;
  out_sizes.insert(out_sizes.end(), {r.bins(), frames, 2});
  return spec.reshape(out_sizes);
}

Tensor istft(const Tensor& spec, const StftOptions& options, int64_t length) {
  ops::detail::check_defined(spec, "istft", "input");
  ops::detail::check_floating(spec, "istft", "input");
  const Resolved r = resolve(options, "istft");
  TSE_CHECK(spec.dim() >= 3 && spec.size(spec.dim() - 1) == 2, "istft: argument 'input' must be (..., F, T, 2) ",
            "with (re, im) in the last dim, got shape ", spec.shape_str());
  TSE_CHECK(spec.size(spec.dim() - 3) == r.bins(), "istft: input of shape ", spec.shape_str(), " has ",
            spec.size(spec.dim() - 3), " bins, n_fft = ", r.n_fft, " needs ", r.bins());
  TSE_CHECK(spec.size(spec.dim() - 2) >= 1, "istft: input of shape ", spec.shape_str(), " has no frames");
  const Tensor window = stft_window(options, spec.dtype()).to(spec.device());
  auto [lead, s2] = fold_leading(spec, 3);
  const int64_t frames = s2.size(2);
  const int64_t full = r.n_fft + r.hop * (frames - 1);
  const int64_t start = options.center ? r.n_fft / 2 : 0;
  const int64_t natural = full - 2 * start;
  const int64_t out_len = length < 0 ? natural : length;
  TSE_CHECK(natural >= 0 || length >= 0, "istft: ", frames, " frames of hop ", r.hop, " are too few for n_fft = ",
            r.n_fft, " with center; pass length");
  const Tensor inv_envelope = inverse_envelope(options, r, frames, spec.dtype()).to(spec.device());
  const Tensor out = overlap_add(s2, window, r.hop, inv_envelope, start, out_len);
  Shape out_sizes = lead;
  out_sizes.push_back(out_len);
  return out.reshape(out_sizes);
}

}  // namespace tse::audio
