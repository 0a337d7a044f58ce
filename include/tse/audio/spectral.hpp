#pragma once
/// \file spectral.hpp
/// Helpers on spectra in the (..., 2) = (re, im) layout of stft, and the mel front-end: mel
/// filterbanks exactly as librosa's, power_to_db, log-mel and the CLAP (HTSAT) front-end of
/// MODELS.md A s.2.2. All differentiable (f32/f64), composed from the core ops.
#include <cstdint>
#include <string>

#include "tse/core/tensor.hpp"

namespace tse::audio {

/// |z| over the last dim (..., 2) -> (...). eps = 0: sqrt(re^2 + im^2), gradient 0 at z = 0;
/// eps > 0: sqrt(max(re^2 + im^2, eps)) (AudioSep's magnitude uses eps = 1e-10).
TSE_API Tensor magnitude(const Tensor& spec, double eps = 0.0);
/// The unit phasor (cos, sin) = (re, im) / max(|z|, clamp) (CLAPSep's and torchlibrosa's
/// magphase, clamp 1e-10), (..., 2).
TSE_API Tensor phasor(const Tensor& spec, double clamp = 1e-10);
/// mag (...) and a phasor (..., 2) -> mag * phasor, (..., 2).
TSE_API Tensor polar(const Tensor& mag, const Tensor& phasor);
/// Complex product of a (..., 2) and b (..., 2) (broadcasting over the leading dims).
TSE_API Tensor complex_mul(const Tensor& a, const Tensor& b);
/// CLAPSep's masking: relu(mask * |X|) with the mixture's phase, mask (...) and X (..., 2).
TSE_API Tensor mask_apply(const Tensor& mask, const Tensor& spec);

/// librosa.filters.mel: [n_mels, n_fft / 2 + 1] triangles on the Slaney (htk = false) or HTK mel
/// scale between fmin and fmax (fmax < 0: sr / 2), norm "slaney" (area-normalised, 2 / width)
/// or "none". The values are librosa's float32 numbers bit for bit (MODELS.md A addendum s.7:
/// the triangles are rounded to float32 before the Slaney factor), returned in dtype.
TSE_API Tensor mel_filterbank(double sr, int64_t n_fft, int64_t n_mels, double fmin = 0.0, double fmax = -1.0,
                              bool htk = false, const std::string& norm = "slaney", DType dtype = DType::f32);

/// librosa.power_to_db: 10 log10(max(x, amin)) - 10 log10(max(amin, ref)); with top_db >= 0
/// the result is clamped below at (its maximum over the whole tensor) - top_db; top_db < 0: no clamp.
TSE_API Tensor power_to_db(const Tensor& x, double amin = 1e-10, double ref = 1.0, double top_db = -1.0);

/// power (..., F, T) and filterbank (n_mels, F) -> power_to_db(filterbank @ power), (..., n_mels, T).
TSE_API Tensor log_mel(const Tensor& power, const Tensor& filterbank, double amin = 1e-10, double ref = 1.0,
                       double top_db = -1.0);

/// How the HTSAT front-end brings a clip to HTSAT's 1024 frames (MODELS.md A s.2.2).
enum class ClapLength {
  none,     // keep the STFT's frames
  stretch,  // frozen CLAP: bicubic (align_corners) interpolation of the log-mel to 1024 frames
  pad,      // CLAPSep's LoRA encoder: zero-pad (or crop) the power spectrogram to 1024 frames
};

/// The HTSAT / CLAP front-end: 48 kHz audio (..., L) -> log-mel (..., frames, 64) in dB, with
/// n_fft 1024, hop 480, periodic Hann, centred reflect padding, power 2, 64 Slaney mels from 50
/// to 14000 Hz, amin 1e-10, no top_db. stretch needs at most 1024 frames (10.23 s).
TSE_API Tensor clap_logmel(const Tensor& wave_48k, ClapLength length = ClapLength::none);

}  // namespace tse::audio
