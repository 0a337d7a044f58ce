// Spectral helpers, mel filterbanks, power_to_db and the CLAP front-end: compositions of
// differentiable core ops, plus librosa's filterbank constants computed exactly as librosa does.
#include "tse/audio/spectral.hpp"

#include <cmath>
#include <vector>

#include "src/ops/op_utils.hpp"
#include "tse/audio/stft.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/interpolate.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse::audio {
namespace {

void check_complex(const Tensor& spec, const char* op, const char* arg) {
  ops::detail::check_defined(spec, op, arg);
  ops::detail::check_floating(spec, op, arg);
  TSE_CHECK(spec.dim() >= 1 && spec.size(spec.dim() - 1) == 2, op, ": argument '", arg,
            "' must hold (re, im) in a last dim of size 2, got shape ", spec.shape_str());
}

Tensor re(const Tensor& z) { return z.select(z.dim() - 1, 0); }
Tensor im(const Tensor& z) { return z.select(z.dim() - 1, 1); }

// librosa's mel scales (librosa.core.convert.hz_to_mel / mel_to_hz), operation for operation.
constexpr double kSlaneyFsp = 200.0 / 3;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = (kMinLogHz - 0.0) / kSlaneyFsp;

double slaney_logstep() { return std::log(6.4) / 27.0; }

double hz_to_mel(double f, bool htk) {
  if (htk) return 2595.0 * std::log10(1.0 + f / 700.0);
  double mel = (f - 0.0) / kSlaneyFsp;
  if (f >= kMinLogHz) mel = kMinLogMel + std::log(f / kMinLogHz) / slaney_logstep();
  return mel;
}

double mel_to_hz(double m, bool htk) {
  if (htk) return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
  double f = 0.0 + kSlaneyFsp * m;
  if (m >= kMinLogMel) f = kMinLogHz * std::exp(slaney_logstep() * (m - kMinLogMel));
  return f;
}

}  // namespace

Tensor magnitude(const Tensor& spec, double eps) {
  check_complex(spec, "magnitude", "spec");
  TSE_CHECK(eps >= 0, "magnitude: eps must be >= 0, got ", eps);
  if (eps == 0.0) return ops::norm(spec, 2.0, {spec.dim() - 1});  // its gradient is 0 at z = 0
  return ops::sqrt(ops::clamp_min(ops::sum(spec * spec, {spec.dim() - 1}), eps));
}

Tensor phasor(const Tensor& spec, double clamp) {
  check_complex(spec, "phasor", "spec");
  TSE_CHECK(clamp > 0, "phasor: clamp must be > 0, got ", clamp);
  return ops::div(spec, ops::clamp_min(magnitude(spec), clamp).unsqueeze(spec.dim() - 1));
}

Tensor polar(const Tensor& mag, const Tensor& unit) {
  ops::detail::check_defined(mag, "polar", "mag");
  check_complex(unit, "polar", "phasor");
  return ops::mul(mag.unsqueeze(mag.dim()), unit);
}

Tensor complex_mul(const Tensor& a, const Tensor& b) {
  check_complex(a, "complex_mul", "a");
  check_complex(b, "complex_mul", "b");
  const Tensor r = re(a) * re(b) - im(a) * im(b);
  const Tensor i = re(a) * im(b) + im(a) * re(b);
  return ops::stack({r, i}, -1);
}

Tensor mask_apply(const Tensor& mask, const Tensor& spec) {
  check_complex(spec, "mask_apply", "spec");
  ops::detail::check_defined(mask, "mask_apply", "mask");
  return polar(ops::relu(ops::mul(mask, magnitude(spec))), phasor(spec));
}

Tensor mel_filterbank(double sr, int64_t n_fft, int64_t n_mels, double fmin, double fmax, bool htk,
                      const std::string& norm, DType dtype) {
  TSE_CHECK(sr > 0 && std::isfinite(sr), "mel_filterbank: sr must be a positive rate, got ", sr);
  TSE_CHECK(n_fft >= 2, "mel_filterbank: n_fft must be >= 2, got ", n_fft);
  TSE_CHECK(n_mels >= 1, "mel_filterbank: n_mels must be >= 1, got ", n_mels);
  if (fmax < 0) fmax = sr / 2;
  TSE_CHECK(fmin >= 0 && fmin < fmax && fmax <= sr / 2, "mel_filterbank: need 0 <= fmin < fmax <= sr / 2 = ", sr / 2,
            ", got fmin ", fmin, ", fmax ", fmax);
  TSE_CHECK(norm == "slaney" || norm == "none", "mel_filterbank: norm must be 'slaney' or 'none', got '", norm, "'");
  const int64_t F = n_fft / 2 + 1;
  // np.linspace(mel(fmin), mel(fmax), n_mels + 2): start + i * step, the last point exact.
  const double lo = hz_to_mel(fmin, htk), hi = hz_to_mel(fmax, htk);
  const double step = (hi - lo) / static_cast<double>(n_mels + 1);
  std::vector<double> mel_f(static_cast<size_t>(n_mels + 2));
  for (int64_t i = 0; i < n_mels + 2; ++i)
    mel_f[static_cast<size_t>(i)] = mel_to_hz(i == n_mels + 1 ? hi : static_cast<double>(i) * step + lo, htk);
  // np.fft.rfftfreq(n_fft, 1 / sr) = k * (1 / (n_fft * (1 / sr))).
  const double bin_hz = 1.0 / (static_cast<double>(n_fft) * (1.0 / sr));
  std::vector<double> out(static_cast<size_t>(n_mels * F));
  for (int64_t i = 0; i < n_mels; ++i) {
    const double f0 = mel_f[static_cast<size_t>(i)], f1 = mel_f[static_cast<size_t>(i + 1)],
                 f2 = mel_f[static_cast<size_t>(i + 2)];
    const double enorm = 2.0 / (f2 - f0);
    for (int64_t k = 0; k < F; ++k) {
      const double fk = static_cast<double>(k) * bin_hz;
      const double lower = -(f0 - fk) / (f1 - f0), upper = (f2 - fk) / (f2 - f1);
      // librosa stores the triangle in a float32 array, then scales it in place (2 roundings).
      const float tri = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      const float w = norm == "slaney" ? static_cast<float>(static_cast<double>(tri) * enorm) : tri;
      out[static_cast<size_t>(i * F + k)] = static_cast<double>(w);
    }
  }
  return ops::from_vector(out, {n_mels, F}, dtype);
}

Tensor power_to_db(const Tensor& x, double amin, double ref, double top_db) {
  ops::detail::check_defined(x, "power_to_db", "input");
  ops::detail::check_floating(x, "power_to_db", "input");
  TSE_CHECK(amin > 0, "power_to_db: amin must be > 0, got ", amin);
  TSE_CHECK(ref > 0, "power_to_db: ref must be > 0, got ", ref);
  const double offset = 10.0 * std::log10(std::max(amin, ref));
  Tensor db = ops::sub(ops::mul(ops::log10(ops::clamp_min(x, amin)), 10.0), offset);
  if (top_db >= 0 && db.numel() > 0) {
    const double floor = ops::amax(db.detach()).item() - top_db;
    db = ops::clamp_min(db, floor);
  }
  return db;
}

Tensor log_mel(const Tensor& power, const Tensor& filterbank, double amin, double ref, double top_db) {
  ops::detail::check_defined(power, "log_mel", "power");
  ops::detail::check_defined(filterbank, "log_mel", "filterbank");
  TSE_CHECK(filterbank.dim() == 2 && power.dim() >= 2 && power.size(power.dim() - 2) == filterbank.size(1),
            "log_mel: power (..., F, T) ", power.shape_str(), " and filterbank (n_mels, F) ", filterbank.shape_str(),
            " do not match");
  return power_to_db(ops::matmul(filterbank, power), amin, ref, top_db);
}

Tensor clap_logmel(const Tensor& wave_48k, ClapLength length) {
  ops::detail::check_defined(wave_48k, "clap_logmel", "wave");
  constexpr int64_t kFrames = 1024;
  StftOptions o;
  o.n_fft = 1024;
  o.hop_length = 480;
  const Tensor spec = stft(wave_48k, o);                   // (..., 513, T, 2)
  Tensor power = ops::sum(spec * spec, {spec.dim() - 1});  // (..., 513, T)
  const int64_t T = power.size(power.dim() - 1);
  if (length == ClapLength::pad) power = ops::pad(power, {0, kFrames - T});  // negative crops
  // The filterbank is a constant of the front-end: build it once per dtype.
  // (never destroyed: tensors must not outlive the allocator at exit).
  static const Tensor* fb32 = new Tensor(mel_filterbank(48000, 1024, 64, 50, 14000, false, "slaney", DType::f32));
  static const Tensor* fb64 = new Tensor(mel_filterbank(48000, 1024, 64, 50, 14000, false, "slaney", DType::f64));
  const Tensor& fb = power.dtype() == DType::f64 ? *fb64 : *fb32;
  Tensor mel = log_mel(power, fb.to(power.device())).transpose(power.dim() - 2, power.dim() - 1);  // (..., T', 64)
  if (length == ClapLength::stretch && T != kFrames) {
    TSE_CHECK(T < kFrames, "clap_logmel: ", T, " frames exceed HTSAT's 1024 (clips up to 10.23 s at 48 kHz)");
    const Shape lead(mel.sizes().begin(), mel.sizes().end() - 2);
    const Tensor img = mel.reshape({shape_numel(lead), 1, T, 64});
    mel = ops::interpolate(img, {kFrames, 64}, {}, "bicubic", true);
    Shape sizes = lead;
    sizes.insert(sizes.end(), {kFrames, 64});
    mel = mel.reshape(sizes);
  }
  return mel;
}

}  // namespace tse::audio
