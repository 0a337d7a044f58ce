#pragma once
/// \file resample.hpp
/// Sample-rate conversion of (..., L) signals by a rational factor.
#include <cstdint>
#include <string>

#include "tse/core/tensor.hpp"

namespace tse::audio {

/// Resamples x (..., L) from orig_sr to new_sr (positive integers) -> (..., ceil(L new / orig))
/// after reducing the ratio by the gcd.
/// - "sinc_hann": torchaudio's Resample (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99)
///   sample for sample (MODELS.md A s.2.1 and addendum D1: for float32 the kernel's phase term is
///   rounded to float32 first, exactly as torchaudio; float64 uses a float64 phase, as
///   Resample(dtype=torch.float64)). Differentiable in x.
/// - "soxr_hq": libsoxr at its high-quality setting, for users' files (not differentiable;
///   output length round(L new / orig)).
/// Equal rates return x itself (torchaudio returns the input unchanged too).
TSE_API Tensor resample(const Tensor& x, int64_t orig_sr, int64_t new_sr, const std::string& method = "sinc_hann");

/// torchaudio's polyphase kernel for orig -> new (already reduced by their gcd): (new, taps) in
/// dtype, taps = 2 ceil(6 orig / (0.99 min(orig, new))) + orig, and its half-width.
TSE_API Tensor sinc_resample_kernel(int64_t orig, int64_t new_, DType dtype, int64_t* width = nullptr);

}  // namespace tse::audio
