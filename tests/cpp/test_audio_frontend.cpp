// Resampling, spectral helpers, mel and metrics in C++: f64 gradchecks of every differentiable
// piece, the resampler against the polyphase formula written out here, and bad arguments.
// (Numerics against the official front-end and the metric oracles: tests/python/test_audio.py
// and test_metrics.py.)
#include <cmath>
#include <numeric>
#include <vector>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"

using namespace tse;
using tse::test::contains;
using tse::test::leaf;
using tse::test::thrown_message;
using tse::test::values;

TEST_CASE("resample equals the polyphase formula and passes the f64 gradcheck") {
  for (auto [orig, new_] : std::vector<std::pair<int64_t, int64_t>>{{32000, 48000}, {48000, 32000}, {16000, 44100}}) {
    const int64_t g = std::gcd(orig, new_), o = orig / g, n = new_ / g;
    const Tensor x = leaf({2, 57}, -1.0, 1.0, 9).detach();
    int64_t width = 0;
    const std::vector<double> k = values(audio::sinc_resample_kernel(o, n, DType::f64, &width));
    const int64_t taps = 2 * width + o, L = 57;
    const int64_t Lout = (n * L + o - 1) / o;
    const Tensor y = audio::resample(x, orig, new_);
    REQUIRE(y.sizes() == Shape{2, Lout});
    const std::vector<double> xv = values(x), yv = values(y);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < Lout; ++i) {
        const int64_t m = i / n, j = i % n;
        double want = 0;
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t s = m * o + t - width;
          if (s >= 0 && s < L) want += xv[static_cast<size_t>(b * L + s)] * k[static_cast<size_t>(j * taps + t)];
        }
        CHECK(yv[static_cast<size_t>(b * Lout + i)] == doctest::Approx(want).epsilon(1e-12));
      }
  }
  const Tensor x = leaf({2, 23}, -1.0, 1.0, 10);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::resample(in[0], 32000, 48000); }, {x});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::resample(in[0], 3, 2); }, {x});
  CHECK(audio::resample(x, 16000, 16000).is_same(x));
}

TEST_CASE("resample rejects bad rates, methods and soxr with gradients") {
  const Tensor x = ops::zeros({10});
  CHECK(contains(thrown_message<ValueError>([&] { audio::resample(x, -1, 16000); }), "sample rates"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::resample(x, 8000, 16000, "cubic"); }), "cubic"));
  const Tensor xg = leaf({10});
  CHECK(contains(thrown_message<ValueError>([&] { audio::resample(xg, 8000, 16000, "soxr_hq"); }), "not differentiable"));
  CHECK(audio::resample(xg.detach(), 8000, 16000, "soxr_hq").size(0) == 20);
}

TEST_CASE("spectral helpers and log-mel pass the f64 gradcheck") {
  const Tensor z = leaf({3, 4, 2}, -1.0, 1.0, 21);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::magnitude(in[0]); }, {z});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::magnitude(in[0], 1e-10); }, {z});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::phasor(in[0]); }, {z});
  const Tensor m = leaf({3, 4}, 0.1, 0.9, 22), w = leaf({3, 4, 2}, -1.0, 1.0, 23);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::mask_apply(in[0], in[1]); }, {m, z});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return audio::complex_mul(in[0], in[1]); }, {z, w});
  // The gradient of |z| at z = 0 is 0, not NaN.
  const Tensor zero = ops::zeros({2}, DType::f64).requires_grad_(true);
  const Tensor g = autograd::grad({audio::magnitude(zero)}, {zero})[0];
  CHECK(values(g) == std::vector<double>{0.0, 0.0});
  const Tensor power = leaf({2, 33, 5}, 0.01, 1.0, 24);
  const Tensor fb = audio::mel_filterbank(16000, 64, 8, 0, -1, false, "slaney", DType::f64);
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return audio::log_mel(in[0], fb); }, {power});
  const Tensor wave = leaf({1, 3000}, -1.0, 1.0, 25);
  const Tensor lm = audio::clap_logmel(wave.detach());
  CHECK(lm.sizes() == Shape{1, 7, 64});
  CHECK(audio::clap_logmel(wave.detach(), audio::ClapLength::pad).sizes() == Shape{1, 1024, 64});
  CHECK(audio::clap_logmel(wave.detach(), audio::ClapLength::stretch).sizes() == Shape{1, 1024, 64});
}

TEST_CASE("snr and si_sdr pass the f64 gradcheck, and their values are the formulas") {
  const Tensor est = leaf({2, 30}, -1.0, 1.0, 31), ref = leaf({2, 30}, -1.0, 1.0, 32).detach();
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return metrics::snr(in[0], ref); }, {est});
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return metrics::si_sdr(in[0], ref, true); }, {est});
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return metrics::clapsep_loss(in[0], ref); }, {est});
  const std::vector<double> e = values(est), r = values(ref);
  double num = 0, den = 0;
  for (int i = 0; i < 30; ++i) {
    num += r[i] * r[i];
    den += (r[i] - e[i]) * (r[i] - e[i]);
  }
  const double eps = std::numeric_limits<double>::epsilon();
  CHECK(values(metrics::snr(est, ref))[0] == doctest::Approx(10 * std::log10((num + eps) / (den + eps))).epsilon(1e-12));
  // sdr_bss of an estimate equal to a delayed reference is high: the filter absorbs the delay.
  const Tensor x = ops::randn({4000}, DType::f64);
  const Tensor delayed = ops::cat({ops::zeros({3}, DType::f64), x.narrow(0, 0, 3997)});
  CHECK(metrics::sdr_bss(delayed, x).item() > 30.0);
  CHECK(metrics::si_sdr(delayed, x).item() < 10.0);
}
