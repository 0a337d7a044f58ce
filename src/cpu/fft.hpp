#pragma once
// FFTW3 on the CPU: a bounded cache of batched real-FFT plans, and the two framed-transform
// kernels every STFT-like op of libtse is built from (stft and istft, forward and backward).
//
// FFTW's rules (STYLE.md s.8) shape this file: the planner is not thread-safe, so plans are
// created and destroyed under one mutex; a plan may run concurrently on different arrays
// through the new-array execute functions, provided those arrays have the alignment of the
// arrays it was planned on. All arrays handed to a plan here are scratch buffers from our
// 64-byte-aligned allocator, at offsets that keep that alignment.
#include <cstddef>
#include <cstdint>

#include "src/core/lru_cache.hpp"
#include "tse/core/tensor.hpp"
#include "tse/export.hpp"

namespace tse::cpu::fft {

using PlanCacheStats = tse::detail::LruCacheStats;

/// Counters of the process-wide plan cache (tests and diagnostics).
TSE_API PlanCacheStats plan_cache_stats();
/// Capacity 0 disables caching (every call plans anew); shrinking evicts least recently used.
TSE_API void set_plan_cache_capacity(size_t capacity);

/// out (B, F, T, 2) = for every frame t of x (B, Lx): rfft(x[b, t*hop : t*hop + n] * window),
/// bin k scaled by bin_scale[k] when bin_scale is given (F = n/2 + 1, T = out.size(2)).
/// x, window (n) and bin_scale (F) are contiguous and of out's dtype; x holds the T frames.
void frames_rfft(const Tensor& out, const Tensor& x, const Tensor& window, int64_t hop, const double* bin_scale);

/// y (B, n + hop*(T-1)) = overlap-add over frames t of window * irfft_unnormalised(spec[b, :, t] *
/// bin_scale) placed at t*hop, where irfft_unnormalised(Y)[m] = sum over the full Hermitian
/// spectrum of Y[k] e^{+2 pi i k m / n} (no 1/n) and the imaginary parts of the DC and Nyquist
/// bins are ignored (as every real inverse FFT does); then out (B, Lout)[b, i] = y[b, offset + i]
/// * envelope[offset + i] (envelope undefined: 1; of y's length and out's dtype), zero past the
/// last frame. spec (B, F, T, 2) and envelope are contiguous; offset >= 0.
void overlap_add_irfft(const Tensor& out, const Tensor& spec, const Tensor& window, int64_t hop,
                       const double* bin_scale, const Tensor& envelope = Tensor(), int64_t offset = 0);

/// Unnormalised real FFTs of howmany contiguous rows of n samples of dtype (f32 or f64): out
/// holds howmany rows of n / 2 + 1 interleaved (re, im). Both buffers come from our allocator
/// (the plans' alignment); in is preserved.
void rfft_rows(DType dtype, int64_t n, int64_t howmany, const void* in, void* out);

/// The unnormalised inverse of rfft_rows (no 1/n): in (destroyed) -> out.
void irfft_rows(DType dtype, int64_t n, int64_t howmany, void* in, void* out);

}  // namespace tse::cpu::fft
