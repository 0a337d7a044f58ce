// The training data pipeline (tse::train): one MixtureSampler batch of 16 x 1 s at 32 kHz from
// the built-in train bank (the Trainer needs >= 100 mixtures/s from it), and loading + splitting
// the built-in bank. Both need the Debian sound packages (scripts/setup-deps).
//   batch peer: plain loops doing the arithmetic floor of a batch on fixed draws: per item a
//     crop of a target and an interferer clip, their powers, the SNR scale, the sum and the peak
//     normalisation (no label draws, redraws, looping, gain or speed variants);
//   split peer: decoding only (audio::load of every catalog file at 32 kHz, mono), i.e. what
//     the split adds on top of the decoder (trimming, time split, speed variants by libsoxr).
// The random draws differ between the sides, so the gate only requires finite results.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "bench.hpp"

namespace {

using namespace tse;
using bench::Bench;

constexpr int64_t kB = 16, kL = 32000;

const train::HeldOutSplit& builtin_split() {
  static const train::HeldOutSplit s = train::split_builtin();
  return s;
}

Bench batch_case() {
  const auto bank = builtin_split().train;
  auto sampler = std::make_shared<train::MixtureSampler>(bank, train::MixtureOptions{}, 0);
  auto index = std::make_shared<int64_t>(0);
  auto out = bench::buffer(kB * kL);
  // The peer's fixed draws: item b mixes clip b with clip b + 1 (mod clips), cropped or padded.
  return {[=] { return sampler->batch((*index)++, kB).mixture; },
          [=](int nt) {
            const auto& clips = bank->clips();
            const int64_t n = static_cast<int64_t>(clips.size());
#pragma omp parallel for num_threads(nt)
            for (int64_t b = 0; b < kB; ++b) {
              std::vector<float> t(kL, 0.f), x(kL, 0.f);
              const Tensor& ct = clips[static_cast<size_t>(b % n)].samples;
              const Tensor& cx = clips[static_cast<size_t>((b + 1) % n)].samples;
              std::memcpy(t.data(), ct.data<float>(), static_cast<size_t>(std::min(kL, ct.numel())) * 4);
              std::memcpy(x.data(), cx.data<float>(), static_cast<size_t>(std::min(kL, cx.numel())) * 4);
              double pt = 0, px = 0;
              for (int64_t i = 0; i < kL; ++i) pt += double(t[i]) * t[i], px += double(x[i]) * x[i];
              const auto g = static_cast<float>(px > 0 ? std::sqrt(pt / px) : 0.0);
              float* m = out->data() + b * kL;
              float peak = 0.f;
              for (int64_t i = 0; i < kL; ++i) {
                m[i] = t[i] + g * x[i];
                peak = std::max(peak, std::fabs(m[i]));
              }
              if (peak > 1.f)
                for (int64_t i = 0; i < kL; ++i) m[i] *= 0.9f / peak;
            }
          },
          out};
}

std::string mixtures_per_second() {
  const train::MixtureSampler s(builtin_split().train, train::MixtureOptions{}, 1);
  const int reps = 32;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) s.batch(i, kB);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.0f mixtures/s (1 s at 32 kHz, batches of %ld, %d threads)", reps * kB / sec,
                static_cast<long>(kB), get_num_threads());
  return buf;
}

Bench split_case() {
  const train::SoundCatalog cat = train::SoundCatalog::builtin();
  auto out = bench::buffer(1);
  return {[] {
            const train::HeldOutSplit s = train::split_builtin();
            Tensor t = Tensor::empty({1});
            t.data<float>()[0] = static_cast<float>(s.train->total_samples() + s.test->total_samples());
            return t;
          },
          [=](int) {
            int64_t total = 0;
            for (const train::SoundClip& c : cat.clips) total += audio::load(c.path, 32000, true).samples.numel();
            (*out)[0] = static_cast<float>(total);
          },
          out};
}

const bool registered = [] {
  bench::add({.name = "data.mixture_batch",
              .shape = "[16, 32000] 16 x 1 s at 32 kHz, built-in train bank",
              .tags = {"data", "short"},
              .bytes = 3.0 * kB * kL * 4,
              .compare = false,
              .note = mixtures_per_second,
              .setup = batch_case});
  bench::add({.name = "data.split_builtin",
              .shape = "39 files -> train 34 / test 25 clips at 32 kHz, 5 speeds",
              .tags = {"data", "long"},
              .compare = false,
              .setup = split_case});
  return true;
}();

}  // namespace
