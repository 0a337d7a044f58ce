#pragma once
/// \file audio.hpp
/// The audio front-end as modules: STFT / ISTFT (tse::audio::stft / istft with fixed options) and
/// LogMel (power spectrogram -> mel -> dB, librosa's filterbank held as a non-persistent buffer,
/// so checkpoints do not carry it). No parameters; all differentiable.
#include "tse/audio/stft.hpp"
#include "tse/nn/module.hpp"

namespace tse::nn {

/// x (..., L) -> (..., F, T, 2).
class TSE_API STFT : public Module {
 public:
  explicit STFT(audio::StftOptions options = {});
  std::string type_name() const override { return "STFT"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const { return audio::stft(x, options); }
  Tensor operator()(const Tensor& x) const { return forward(x); }
  audio::StftOptions options;
};

/// spec (..., F, T, 2) -> (..., length) (length < 0: what the frames cover).
class TSE_API ISTFT : public Module {
 public:
  explicit ISTFT(audio::StftOptions options = {});
  std::string type_name() const override { return "ISTFT"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& spec, int64_t length = -1) const { return audio::istft(spec, options, length); }
  Tensor operator()(const Tensor& spec, int64_t length = -1) const { return forward(spec, length); }
  audio::StftOptions options;
};

/// Waveform (..., L) -> log-mel (..., n_mels, T) in dB: |stft|^power -> mel filterbank (librosa,
/// Slaney by default) -> power_to_db(amin, ref, top_db).
struct LogMelOptions {
  double sample_rate = 32000;
  audio::StftOptions stft{};
  int64_t n_mels = 64;
  double fmin = 0.0;
  double fmax = -1.0;  // < 0: sample_rate / 2
  double power = 2.0;
  bool htk = false;
  std::string norm = "slaney";
  double amin = 1e-10;
  double ref = 1.0;
  double top_db = -1.0;  // < 0: none
  DType dtype = DType::f32;
};
class TSE_API LogMel : public Module {
 public:
  explicit LogMel(LogMelOptions options = {});
  std::string type_name() const override { return "LogMel"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& wave) const;
  Tensor operator()(const Tensor& wave) const { return forward(wave); }
  LogMelOptions options;
  Tensor filterbank;  // (n_mels, n_fft / 2 + 1), non-persistent buffer
};

}  // namespace tse::nn
