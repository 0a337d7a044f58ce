// The audio front-end at the models' sizes: STFT, iSTFT and STFT+iSTFT of 10 s at 32 kHz
// (n_fft 1024, hop 320: CLAPSep's), batch 1 and 8; the HTSAT log-mel of 10 s at 48 kHz; the
// 32k -> 48k resampler. The STFT peer is a raw FFTW loop doing the same framing into the same
// (F, T, 2) layout: reflect padding, window multiply, one r2c per frame with a FFTW_MEASURE
// plan, frames split across the threads (iSTFT: c2r per frame, window, overlap-add, / sum w^2).
#include <fftw3.h>
#include <omp.h>

#include <cmath>
#include <numbers>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;

constexpr int64_t kNfft = 1024, kHop = 320, kBins = kNfft / 2 + 1;
constexpr int64_t kLen = 320000;  // 10 s at 32 kHz
constexpr int64_t kFrames = 1 + kLen / kHop;
constexpr int64_t kFull = kNfft + kHop * (kFrames - 1);

audio::StftOptions clapsep_stft() {
  audio::StftOptions o;
  o.n_fft = kNfft;
  o.hop_length = kHop;
  return o;
}

/// The raw FFTW side: one plan per direction for a single frame, per-thread aligned buffers.
struct RawStft {
  RawStft() {
    window.resize(kNfft);
    for (int64_t m = 0; m < kNfft; ++m) window[m] = static_cast<float>(0.5 - 0.5 * std::cos(2 * std::numbers::pi * m / kNfft));
    float* r = fftwf_alloc_real(kNfft);
    fftwf_complex* c = fftwf_alloc_complex(kBins);
    r2c = fftwf_plan_dft_r2c_1d(kNfft, r, c, FFTW_MEASURE);
    c2r = fftwf_plan_dft_c2r_1d(kNfft, c, r, FFTW_MEASURE);
    fftwf_free(r);
    fftwf_free(c);
    env.assign(kFull, 0.f);
    for (int64_t t = 0; t < kFrames; ++t)
      for (int64_t m = 0; m < kNfft; ++m) env[t * kHop + m] += window[m] * window[m];
    for (float& e : env) e = 1.f / std::max(e, 1e-11f);
  }

  // x (B, L) -> spec (B, F, T, 2)
  void stft(const float* x, float* spec, int64_t B, int nt) const {
#pragma omp parallel num_threads(nt)
    {
      float* fr = fftwf_alloc_real(kNfft);
      fftwf_complex* c = fftwf_alloc_complex(kBins);
#pragma omp for collapse(2)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < kFrames; ++t) {
          const float* xb = x + b * kLen;
          for (int64_t m = 0; m < kNfft; ++m) {
            int64_t s = t * kHop + m - kNfft / 2;  // reflect padding
            if (s < 0) s = -s;
            if (s >= kLen) s = 2 * (kLen - 1) - s;
            fr[m] = xb[s] * window[m];
          }
          fftwf_execute_dft_r2c(r2c, fr, c);
          float* o = spec + b * kBins * kFrames * 2 + t * 2;
          for (int64_t k = 0; k < kBins; ++k) {
            o[k * kFrames * 2] = c[k][0];
            o[k * kFrames * 2 + 1] = c[k][1];
          }
        }
      fftwf_free(fr);
      fftwf_free(c);
    }
  }

  // spec (B, F, T, 2) -> y (B, L); frames (B, T, n) scratch, then an overlap-add per sample.
  void istft(const float* spec, float* y, float* frames, int64_t B, int nt) const {
#pragma omp parallel num_threads(nt)
    {
      float* fr = fftwf_alloc_real(kNfft);
      fftwf_complex* c = fftwf_alloc_complex(kBins);
#pragma omp for collapse(2)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < kFrames; ++t) {
          const float* s = spec + b * kBins * kFrames * 2 + t * 2;
          for (int64_t k = 0; k < kBins; ++k) {
            c[k][0] = s[k * kFrames * 2] / kNfft;
            c[k][1] = s[k * kFrames * 2 + 1] / kNfft;
          }
          c[0][1] = c[kBins - 1][1] = 0.f;
          fftwf_execute_dft_c2r(c2r, c, fr);
          float* f = frames + (b * kFrames + t) * kNfft;
          for (int64_t m = 0; m < kNfft; ++m) f[m] = fr[m] * window[m];
        }
      fftwf_free(fr);
      fftwf_free(c);
#pragma omp for collapse(2)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < kLen; ++i) {
          const int64_t s = i + kNfft / 2;  // centre trim
          const int64_t t_hi = std::min<int64_t>(kFrames - 1, s / kHop);
          float acc = 0.f;
          for (int64_t t = t_hi; t >= 0 && s - t * kHop < kNfft; --t) acc += frames[(b * kFrames + t) * kNfft + s - t * kHop];
          y[b * kLen + i] = acc * env[s];
        }
    }
  }

  std::vector<float> window, env;
  fftwf_plan r2c, c2r;
};

std::shared_ptr<RawStft> raw() {
  static std::shared_ptr<RawStft> r = std::make_shared<RawStft>();
  return r;
}

Bench stft_case(int64_t B) {
  const Tensor x = bench::uniform({B, kLen}, -1.f, 1.f, 71);
  auto out = bench::buffer(B * kBins * kFrames * 2);
  auto peer = raw();
  return {[=] { return audio::stft(x, clapsep_stft()); }, [=](int nt) { peer->stft(bench::cptr(x), out->data(), B, nt); }, out};
}

Bench istft_case(int64_t B) {
  const Tensor spec = audio::stft(bench::uniform({B, kLen}, -1.f, 1.f, 72), clapsep_stft());
  auto out = bench::buffer(B * kLen);
  auto frames = bench::buffer(B * kFrames * kNfft);
  auto peer = raw();
  return {[=] { return audio::istft(spec, clapsep_stft(), kLen); },
          [=](int nt) { peer->istft(bench::cptr(spec), out->data(), frames->data(), B, nt); }, out};
}

Bench roundtrip_case(int64_t B) {
  const Tensor x = bench::uniform({B, kLen}, -1.f, 1.f, 73);
  auto out = bench::buffer(B * kLen);
  auto spec = bench::buffer(B * kBins * kFrames * 2);
  auto frames = bench::buffer(B * kFrames * kNfft);
  auto peer = raw();
  return {[=] { return audio::istft(audio::stft(x, clapsep_stft()), clapsep_stft(), kLen); },
          [=](int nt) {
            peer->stft(bench::cptr(x), spec->data(), B, nt);
            peer->istft(spec->data(), out->data(), frames->data(), B, nt);
          },
          out};
}

// Front-ends without a raw peer in this process (their numerics are checked against the official
// code in tests/python/test_audio.py): timed alone, the gate only checks run-to-run determinism.
Bench clap_logmel_case() {
  const Tensor x = bench::uniform({1, 480000}, -0.5f, 0.5f, 74);
  const std::vector<double> v = ops::to_vector(audio::clap_logmel(x));
  auto out = std::make_shared<std::vector<float>>(v.begin(), v.end());
  return {[=] { return audio::clap_logmel(x); }, [](int) {}, out};
}

Bench resample_case() {
  const Tensor x = bench::uniform({1, kLen}, -0.5f, 0.5f, 75);
  const std::vector<double> v = ops::to_vector(audio::resample(x, 32000, 48000));
  auto out = std::make_shared<std::vector<float>>(v.begin(), v.end());
  return {[=] { return audio::resample(x, 32000, 48000); }, [](int) {}, out};
}

// A metric of 10 s at 32 kHz (estimate = reference + noise), timed alone like the front-ends.
Bench metric_case(Tensor (*metric)(const Tensor&, const Tensor&)) {
  const Tensor ref = bench::uniform({1, kLen}, -0.5f, 0.5f, 76);
  const Tensor est = ops::add(ref, bench::uniform({1, kLen}, -0.1f, 0.1f, 77));
  const std::vector<double> v = ops::to_vector(metric(est, ref));
  auto out = std::make_shared<std::vector<float>>(v.begin(), v.end());
  return {[=] { return metric(est, ref); }, [](int) {}, out};
}

Tensor si_sdr_default(const Tensor& e, const Tensor& r) { return metrics::si_sdr(e, r); }
Tensor sdr_bss_default(const Tensor& e, const Tensor& r) { return metrics::sdr_bss(e, r); }

const bool registered = [] {
  // One r2c of n points costs about 2.5 n log2 n flops (FFTW's convention for real transforms).
  const double fft_flops = 2.5 * kNfft * std::log2(static_cast<double>(kNfft)) * kFrames;
  for (int64_t B : {1, 8}) {
    const std::string b = std::to_string(B);
    bench::add({.name = "stft.b" + b, .shape = "[" + b + ", 320000] n_fft 1024 hop 320", .flops = fft_flops * B,
                .rtol = 1e-4, .atol = 1.0, .setup = [B] { return stft_case(B); }});  // |X| ~ 10
    bench::add({.name = "istft.b" + b, .shape = "[" + b + ", 513, 1001, 2] -> 320000", .flops = fft_flops * B,
                .rtol = 1e-4, .atol = 1e-2, .setup = [B] { return istft_case(B); }});  // |x| ~ 1
    bench::add({.name = "stft_istft.b" + b, .shape = "[" + b + ", 320000] round trip", .flops = 2 * fft_flops * B,
                .rtol = 1e-4, .atol = 1e-2, .setup = [B] { return roundtrip_case(B); }});
  }
  bench::add({.name = "clap_logmel", .shape = "[1, 480000] 48 kHz -> [1, 1001, 64]",
              .flops = 2.5 * 1024 * 10 * 1001 + 2.0 * 1001 * 513 * 64, .rtol = 1e-5, .atol = 1e-4,
              .time_peer = false, .setup = clap_logmel_case});
  bench::add({.name = "resample.32k_48k", .shape = "[1, 320000] -> [1, 480000]", .flops = 2.0 * 480000 * 16,
              .rtol = 1e-6, .atol = 1e-6, .time_peer = false, .setup = resample_case});
  bench::add({.name = "metric.si_sdr", .shape = "[1, 320000]", .bytes = 2.0 * kLen * 4, .rtol = 1e-6,
              .atol = 1e-6, .time_peer = false, .setup = [] { return metric_case(si_sdr_default); }});
  bench::add({.name = "metric.sdr_bss", .shape = "[1, 320000] 512 taps", .bytes = 2.0 * kLen * 4, .rtol = 1e-6,
              .atol = 1e-6, .time_peer = false, .setup = [] { return metric_case(sdr_bss_default); }});
  return true;
}();

}  // namespace
