#include "tse/nn/audio.hpp"

#include <sstream>

#include "tse/audio/spectral.hpp"
#include "tse/core/error.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/reduction.hpp"

namespace tse::nn {
namespace {

std::string stft_repr(const audio::StftOptions& o) {
  std::ostringstream os;
  os << "n_fft=" << o.n_fft << ", hop_length=" << (o.hop_length ? o.hop_length : o.n_fft / 4)
     << ", win_length=" << (o.win_length ? o.win_length : o.n_fft) << ", window='" << o.window
     << "', center=" << (o.center ? "True" : "False");
  return os.str();
}

}  // namespace

STFT::STFT(audio::StftOptions o) : options(std::move(o)) { (void)audio::stft_window(options); }  // validates
std::string STFT::extra_repr() const { return stft_repr(options); }

ISTFT::ISTFT(audio::StftOptions o) : options(std::move(o)) { (void)audio::stft_window(options); }
std::string ISTFT::extra_repr() const { return stft_repr(options); }

LogMel::LogMel(LogMelOptions o) : options(std::move(o)) {
  TSE_CHECK(options.power > 0, "LogMel: power must be positive, got ", options.power);
  (void)audio::stft_window(options.stft);
  filterbank = audio::mel_filterbank(options.sample_rate, options.stft.n_fft, options.n_mels, options.fmin, options.fmax,
                                     options.htk, options.norm, options.dtype);
  register_buffer("filterbank", &filterbank, BufferKind::non_persistent);
}

std::string LogMel::extra_repr() const {
  std::ostringstream os;
  os << "sample_rate=" << options.sample_rate << ", " << stft_repr(options.stft) << ", n_mels=" << options.n_mels
     << ", power=" << options.power;
  return os.str();
}

Tensor LogMel::forward(const Tensor& wave) const {
  Tensor spec = audio::stft(wave, options.stft);
  // |X|^2 straight from (re, im) (no square root to differentiate at 0); other powers via |X|.
  Tensor power = options.power == 2.0 ? ops::sum(ops::mul(spec, spec), {-1})
                                      : ops::pow(audio::magnitude(spec), options.power);
  return audio::log_mel(power, filterbank, options.amin, options.ref, options.top_db);
}

}  // namespace tse::nn
