#pragma once
/// \file stft.hpp
/// Short-time Fourier transforms with torch.stft / torch.istft semantics (and therefore
/// torchlibrosa's and librosa's for the same arguments), on real (..., F, T, 2) spectra where the
/// last dim holds (re, im). float32 and float64 on CPU through FFTW (one cached plan per
/// transform size); both transforms are differentiable (their backward is their adjoint).
#include <cstdint>
#include <string>

#include "tse/core/tensor.hpp"

namespace tse::audio {

struct StftOptions {
  int64_t n_fft = 1024;
  /// Samples between frames; 0 means n_fft / 4 (torch's default).
  int64_t hop_length = 0;
  /// Window length <= n_fft, centred in the frame with zeros around it; 0 means n_fft.
  int64_t win_length = 0;
  /// "hann" (periodic, torch.hann_window's default), "hamming" (periodic), "rectangular".
  std::string window = "hann";
  /// Pads n_fft / 2 samples on both sides so that frame t is centred on sample t * hop.
  bool center = true;
  /// Padding of center = true: "reflect" (torch's and librosa's default), "constant" (zeros),
  /// "replicate" or "circular".
  std::string pad_mode = "reflect";
};

/// The window a StftOptions describes, n_fft long (win_length centred), in dtype.
TSE_API Tensor stft_window(const StftOptions& options, DType dtype = DType::f32);

/// x (..., L) -> (..., F, T, 2) with F = n_fft / 2 + 1 and T = 1 + (L + 2 (n_fft / 2) - n_fft) /
/// hop (center) or 1 + (L - n_fft) / hop: X[k, t] = sum_m x[t hop + m] w[m] e^{-2 pi i k m /
/// n_fft}, not normalised. ValueError when x is too short (reflect padding needs L > n_fft / 2;
/// without centring L >= n_fft), on bad options, or for a non-floating x.
TSE_API Tensor stft(const Tensor& x, const StftOptions& options = {});

/// The inverse of stft for the same options: inverse real FFT of each frame (1/n_fft), times
/// the window, overlap-added and divided by the overlap-added squared window (clamped at 1e-11,
/// as torchlibrosa), then with center the first n_fft / 2 samples dropped. The output has
/// `length` samples (trimmed, or zero-padded at the end) or, for length < 0, n_fft + hop (T - 1)
/// (minus 2 (n_fft / 2) with center). spec is (..., F, T, 2) with F = n_fft / 2 + 1; the
/// imaginary parts of the DC and Nyquist bins are ignored, as by any real inverse FFT.
TSE_API Tensor istft(const Tensor& spec, const StftOptions& options = {}, int64_t length = -1);

}  // namespace tse::audio
