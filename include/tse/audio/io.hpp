#pragma once
/// \file io.hpp
/// Audio files through libsndfile (WAV, FLAC, OGG/Vorbis, Opus, MP3 as the installed libsndfile
/// supports), mixing at a given SNR, and segment helpers.
#include <cstdint>
#include <string>

#include "tse/core/tensor.hpp"

namespace tse::audio {

struct AudioInfo {
  int64_t sample_rate = 0;
  int64_t channels = 0;
  int64_t frames = 0;
  std::string format;   // "WAV", "FLAC", "OGG", "MPEG", ...
  std::string subtype;  // "PCM_16", "PCM_24", "FLOAT", "VORBIS", "OPUS", ...
};

/// The header of a file. IOError naming the file when it cannot be opened or parsed.
TSE_API AudioInfo info(const std::string& path);

struct LoadedAudio {
  Tensor samples;  // float32 (channels, frames), or (1, frames) with mono
  int64_t sample_rate = 0;
};

/// Reads a whole file as float32 (channels, frames) (PCM scaled to [-1, 1)). mono averages the
/// channels; sr > 0 resamples with libsoxr's high quality (what librosa.load does), sr = 0 keeps
/// the file's rate. IOError naming the file when it is missing, unreadable, malformed, truncated
/// (fewer frames than its header states) or empty; ValueError when it holds NaN or Inf.
TSE_API LoadedAudio load(const std::string& path, int64_t sr = 0, bool mono = false);

/// Writes x (frames) or (channels, frames) at sample rate sr; the container comes from the
/// extension (.wav .flac .ogg .opus .mp3), subtype "FLOAT" (WAV only), "PCM_16", "PCM_24",
/// "VORBIS", "OPUS" or "MP3" ("" picks the container's usual one: FLOAT for WAV, PCM_16 for FLAC).
/// PCM subtypes clip to [-1, 1] (never wrap); returns the number of samples clipped. The file is
/// written to a temporary name in the same folder and renamed into place, so an existing file is
/// never left half-written. ValueError on NaN/Inf samples, an unknown extension or subtype.
TSE_API int64_t save(const std::string& path, const Tensor& x, int64_t sr, const std::string& subtype = "");

struct Mixture {
  Tensor mixture;  // target + scaled noise, peak-normalised when asked
  Tensor target;   // the target with the same normalisation applied
  Tensor noise;    // the scaled noise with the same normalisation applied
  Tensor gain;     // (...) the normalisation gain applied to all three (1 where none)
};

/// The DCASE / CLAPSep recipe (MODELS.md B s.7.4): noise scaled so that
/// 10 log10(mean(target^2) / mean(noise^2)) = snr_db, mixture = target + noise; with
/// peak_normalize, items whose mixture peak exceeds 1 are scaled (all three signals) so that the
/// peak is 0.9. target and noise are (..., L) of one shape; a silent noise is left silent.
TSE_API Mixture mix_at_snr(const Tensor& target, const Tensor& noise, double snr_db, bool peak_normalize = true);

/// x (..., L) cut to its first `length` samples or zero-padded at the end to `length`.
TSE_API Tensor pad_or_trim(const Tensor& x, int64_t length);

/// A `length`-sample segment of x (..., L) starting at a uniformly drawn offset (the same for all
/// leading dims; zero-padded when L < length), from the global generator (tse::manual_seed).
TSE_API Tensor random_segment(const Tensor& x, int64_t length);

}  // namespace tse::audio
