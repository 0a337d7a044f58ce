#pragma once
// The constants official CLAP / CLAPSep checkpoints store although they follow from formulas
// (torchlibrosa's STFT / ISTFT conv rows and OLA window, librosa's mel matrix, torchaudio's
// resampler kernel): computed in float64 so load_state_dict can check a file's copies
// (MODELS.md A s.2, addendum D2/D4). Private to libtse.
#include <cmath>
#include <cstdint>
#include <vector>

#include "tse/ops/factory.hpp"

namespace tse::models::detail {

inline double periodic_hann(int64_t n, int64_t N) {
  return 0.5 - 0.5 * std::cos(2.0 * M_PI * static_cast<double>(n) / static_cast<double>(N));
}

// exp(-+2 pi i k n / N) with the angle reduced mod N first (exact for integer k n).
inline double dft_angle(int64_t k, int64_t n, int64_t N) {
  return 2.0 * M_PI * static_cast<double>((k * n) % N) / static_cast<double>(N);
}

/// torchlibrosa STFT conv_real / conv_imag weight [N/2 + 1, 1, N]: w[n] cos(2 pi k n / N) and
/// -w[n] sin(2 pi k n / N).
inline Tensor stft_conv_weight(int64_t N, bool imag) {
  const int64_t F = N / 2 + 1;
  std::vector<double> w(static_cast<size_t>(F * N));
  for (int64_t k = 0; k < F; ++k)
    for (int64_t n = 0; n < N; ++n) {
      const double a = dft_angle(k, n, N);
      w[static_cast<size_t>(k * N + n)] = periodic_hann(n, N) * (imag ? -std::sin(a) : std::cos(a));
    }
  return ops::from_vector(w, {F, 1, N}, DType::f64);
}

/// torchlibrosa ISTFT conv_real / conv_imag weight [N, N, 1]: entry [n, k] = w[n] cos or
/// sin(2 pi k n / N) / N (the inverse DFT of the full spectrum, windowed for overlap-add).
inline Tensor istft_conv_weight(int64_t N, bool imag) {
  std::vector<double> w(static_cast<size_t>(N * N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < N; ++k) {
      const double a = dft_angle(k, n, N);
      w[static_cast<size_t>(n * N + k)] = periodic_hann(n, N) * (imag ? std::sin(a) : std::cos(a)) / static_cast<double>(N);
    }
  return ops::from_vector(w, {N, N, 1}, DType::f64);
}

/// torchlibrosa ISTFT ola_window [N]: w[n]^2.
inline Tensor ola_window(int64_t N) {
  std::vector<double> w(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) w[static_cast<size_t>(n)] = periodic_hann(n, N) * periodic_hann(n, N);
  return ops::from_vector(w, {N}, DType::f64);
}

}  // namespace tse::models::detail
