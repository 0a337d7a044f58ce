// stft / istft: a naive DFT reference (plain loops over the torch.stft definition), FFT
// properties (linearity, impulse, time shift), perfect reconstruction for the configs of
// MODELS.md, f64 gradchecks of both transforms and the adjoint identity, errors, plan caching.
#include <cmath>
#include <numbers>
#include <vector>

#include "src/cpu/fft.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"

using namespace tse;
using audio::StftOptions;
using tse::test::contains;
using tse::test::leaf;
using tse::test::rel_l2;
using tse::test::thrown_message;
using tse::test::values;

namespace {

StftOptions opts(int64_t n_fft, int64_t hop, int64_t win = 0, bool center = true, const char* pad = "reflect",
                 const char* window = "hann") {
  StftOptions o;
  o.n_fft = n_fft;
  o.hop_length = hop;
  o.win_length = win;
  o.center = center;
  o.pad_mode = pad;
  o.window = window;
  return o;
}

/// torch.stft written out for a 1-D signal: reflect/constant pad, periodic window centred in the
/// frame, plain DFT sums. Returns (F, T, 2) row-major.
std::vector<double> naive_stft(const std::vector<double>& x, const StftOptions& o, int64_t* frames) {
  const int64_t n = o.n_fft, hop = o.hop_length, win = o.win_length ? o.win_length : n;
  std::vector<double> xp;
  const int64_t L = static_cast<int64_t>(x.size()), p = o.center ? n / 2 : 0;
  for (int64_t i = -p; i < L + p; ++i) {
    int64_t j = i;
    if (o.pad_mode == std::string("reflect")) {
      if (j < 0) j = -j;
      if (j >= L) j = 2 * (L - 1) - j;
      xp.push_back(x[static_cast<size_t>(j)]);
    } else {
      xp.push_back(j < 0 || j >= L ? 0.0 : x[static_cast<size_t>(j)]);
    }
  }
  std::vector<double> w(static_cast<size_t>(n), 0.0);
  for (int64_t m = 0; m < win; ++m)
    w[static_cast<size_t>((n - win) / 2 + m)] =
        o.window == std::string("hann") ? 0.5 - 0.5 * std::cos(2 * std::numbers::pi * m / win) : 1.0;
  const int64_t T = 1 + (static_cast<int64_t>(xp.size()) - n) / hop, F = n / 2 + 1;
  std::vector<double> out(static_cast<size_t>(F * T * 2));
  for (int64_t k = 0; k < F; ++k)
    for (int64_t t = 0; t < T; ++t) {
      double re = 0, im = 0;
      for (int64_t m = 0; m < n; ++m) {
        const double v = xp[static_cast<size_t>(t * hop + m)] * w[static_cast<size_t>(m)];
        const double a = -2 * std::numbers::pi * static_cast<double>(k * m % n) / static_cast<double>(n);
        re += v * std::cos(a);
        im += v * std::sin(a);
      }
      out[static_cast<size_t>((k * T + t) * 2)] = re;
      out[static_cast<size_t>((k * T + t) * 2 + 1)] = im;
    }
  *frames = T;
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

TEST_CASE("stft matches a naive DFT of the torch.stft definition in f64 and f32") {
  struct Config {
    StftOptions o;
    int64_t L;
  };
  const std::vector<Config> configs = {
      {opts(16, 4), 50},                        // reflect, centred
      {opts(16, 5, 10), 47},                    // short window centred in the frame, hop not dividing n
      {opts(15, 4), 40},                        // odd n_fft (no Nyquist bin)
      {opts(8, 3, 0, false), 30},               // no centring
      {opts(16, 4, 0, true, "constant"), 33},   // zero padding
      {opts(12, 12, 0, true, "reflect", "rectangular"), 61},
      {opts(64, 16), 300},                      // more frames than one block of 16
      // Even n runs as a complex FFT of n/2 points plus a pairing pass (scalar below n = 16,
      // vectorised from n = 16, odd n/2 included); odd n through FFTW's r2c.
      {opts(2, 1), 9},
      {opts(4, 2), 15},
      {opts(6, 2), 21},
      {opts(10, 3), 31},
      {opts(18, 5), 60},
      {opts(22, 7), 70},
      {opts(1024, 64, 0, true, "constant"), 20000},  // CLAPSep's n_fft, 313 frames: several tiles of 128
  };
  for (const Config& c : configs) {
    const Tensor x64 = leaf({c.L}, -1.0, 1.0, 3).detach();
    int64_t T = 0;
    const std::vector<double> want = naive_stft(values(x64), c.o, &T);
    const Tensor got64 = audio::stft(x64, c.o);
    CHECK(got64.sizes() == Shape{c.o.n_fft / 2 + 1, T, 2});
    CHECK(max_abs_diff(values(got64), want) <= 1e-12 * max_abs(want));
    const Tensor got32 = audio::stft(x64.to(DType::f32), c.o);
    CHECK(got32.dtype() == DType::f32);
    CHECK(max_abs_diff(values(got32), want) <= 2e-6 * max_abs(want));
  }
}

TEST_CASE("stft is batched over leading dims and reads non-contiguous inputs") {
  const StftOptions o = opts(32, 8);
  const Tensor x = leaf({2, 3, 100}, -1.0, 1.0, 5).detach();
  const Tensor all = audio::stft(x, o);
  REQUIRE(all.sizes() == Shape{2, 3, 17, 13, 2});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(values(all.select(0, i).select(0, j)) == values(audio::stft(x.select(0, i).select(0, j), o)));
  // A transposed view: (100, 3) read as (3, 100).
  const Tensor xt = x.select(0, 0).transpose(0, 1).contiguous().transpose(0, 1);
  CHECK(values(audio::stft(xt, o)) == values(all.select(0, 0)));
}

TEST_CASE("stft properties: linearity, impulse response, time shift by the hop") {
  const StftOptions o = opts(32, 8, 0, false);
  const Tensor a = leaf({200}, -1.0, 1.0, 11).detach(), b = leaf({200}, -1.0, 1.0, 12).detach();
  const std::vector<double> lhs = values(audio::stft(a * 2.0 + b * (-3.0), o));
  const std::vector<double> sa = values(audio::stft(a, o)), sb = values(audio::stft(b, o));
  std::vector<double> rhs(sa.size());
  for (size_t i = 0; i < sa.size(); ++i) rhs[i] = 2 * sa[i] - 3 * sb[i];
  CHECK(max_abs_diff(lhs, rhs) <= 1e-12 * max_abs(rhs));

  // A unit impulse at sample m of the first frame with a rectangular window: X[k] = e^{-2 pi i k m / n}.
  std::vector<double> imp(32, 0.0);
  imp[5] = 1.0;
  const std::vector<double> X = values(audio::stft(ops::from_vector(imp, {32}, DType::f64), opts(32, 32, 0, false, "reflect", "rectangular")));
  for (int64_t k = 0; k <= 16; ++k) {
    CHECK(X[static_cast<size_t>(2 * k)] == doctest::Approx(std::cos(-2 * std::numbers::pi * k * 5 / 32.0)).epsilon(1e-12));
    CHECK(X[static_cast<size_t>(2 * k + 1)] == doctest::Approx(std::sin(-2 * std::numbers::pi * k * 5 / 32.0)).epsilon(1e-12));
  }

  // Delaying the signal by one hop moves every frame one step later.
  const Tensor shifted = ops::cat({ops::zeros({8}, DType::f64), a.narrow(0, 0, 192)});
  const Tensor s0 = audio::stft(a, o), s1 = audio::stft(shifted, o);
  const int64_t T = s0.size(1);
  CHECK(max_abs_diff(values(s1.narrow(1, 1, T - 1)), values(s0.narrow(1, 0, T - 1))) <= 1e-12 * max_abs(sa));
}

TEST_CASE("istft inverts stft for the configs of MODELS.md") {
  struct Config {
    int64_t n_fft, hop, sr;
  };
  // CLAPSep / Saijo / AudioSep / DCASE / HTSAT STFTs, on 0.5 s of noise.
  for (const Config c : {Config{1024, 320, 32000}, Config{1024, 512, 32000}, Config{2048, 320, 32000},
                         Config{1024, 160, 16000}, Config{1024, 480, 48000}}) {
    const int64_t L = c.sr / 2 + 7;  // not a multiple of the hop
    const Tensor x = ops::randn({2, L}, DType::f32);
    const StftOptions o = opts(c.n_fft, c.hop);
    const Tensor y = audio::istft(audio::stft(x, o), o, L);
    REQUIRE(y.sizes() == x.sizes());
    INFO("n_fft ", c.n_fft, " hop ", c.hop);
    CHECK(rel_l2(y, x) <= 1e-6);
    const Tensor x64 = x.to(DType::f64);
    CHECK(rel_l2(audio::istft(audio::stft(x64, o), o, L), x64) <= 1e-13);
  }
}

namespace {

/// The unnormalised inverse DFT over the Hermitian extension of each frame's half spectrum (the
/// imaginary parts of the DC and, for even n, Nyquist bins ignored), windowed and overlap-added,
/// without centring or envelope: spec (F, T, 2) -> n + hop (T - 1) samples.
std::vector<double> naive_overlap_add(const std::vector<double>& spec, int64_t n, int64_t hop, int64_t T,
                                      const std::vector<double>& w) {
  const int64_t F = n / 2 + 1;
  std::vector<double> y(static_cast<size_t>(n + hop * (T - 1)), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t m = 0; m < n; ++m) {
      double acc = 0;
      for (int64_t k = 0; k < n; ++k) {
        const int64_t kk = k < F ? k : n - k;  // X[n - k] = conj(X[k])
        const double re = spec[static_cast<size_t>((kk * T + t) * 2)];
        double im = spec[static_cast<size_t>((kk * T + t) * 2 + 1)];
        if (kk == 0 || (n % 2 == 0 && kk == n / 2)) im = 0;
        if (k >= F) im = -im;
        const double a = 2 * std::numbers::pi * static_cast<double>(k * m % n) / static_cast<double>(n);
        acc += re * std::cos(a) - im * std::sin(a);
      }
      y[static_cast<size_t>(t * hop + m)] += acc * w[static_cast<size_t>(m)];
    }
  return y;
}

}  // namespace

TEST_CASE("istft matches a naive overlap-add of inverse DFTs in f64 and f32, for any spectrum") {
  // Random spectra, not the STFT of any signal: nonzero imaginary DC / Nyquist parts must be
  // ignored as every real inverse FFT does. center=false, so istft = OLA / envelope.
  // hop n/4: tasks of 16 frames, both parities, the last task even or odd; hop 1 at n = 64:
  // tasks grouped to 64 frames so that only neighbours overlap.
  struct Config {
    int64_t n, hop;
  };
  for (const Config c : {Config{2, 1}, Config{4, 1}, Config{6, 1}, Config{8, 2}, Config{10, 2}, Config{15, 3},
                         Config{16, 4}, Config{18, 4}, Config{22, 5}, Config{64, 16}, Config{64, 1}, Config{1024, 256}}) {
    const int64_t n = c.n, hop = c.hop, T = n >= 1024 ? 40 : 150;
    const StftOptions o = opts(n, hop, 0, false);
    const Tensor spec = leaf({n / 2 + 1, T, 2}, -1.0, 1.0, 55).detach();
    const std::vector<double> w = values(audio::stft_window(o, DType::f64));
    std::vector<double> want = naive_overlap_add(values(spec), n, hop, T, w);
    std::vector<double> env(want.size(), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t m = 0; m < n; ++m) env[static_cast<size_t>(t * hop + m)] += w[static_cast<size_t>(m)] * w[static_cast<size_t>(m)];
    for (size_t i = 0; i < want.size(); ++i) want[i] = want[i] / static_cast<double>(n) / std::max(env[i], 1e-11);
    INFO("n_fft ", n, " hop ", hop);
    const Tensor got64 = audio::istft(spec, o);
    CHECK(max_abs_diff(values(got64), want) <= 1e-12 * max_abs(want));
    const Tensor got32 = audio::istft(spec.to(DType::f32), o);
    CHECK(max_abs_diff(values(got32), want) <= 2e-6 * max_abs(want));
  }
}

TEST_CASE("stft and istft give the same bits on 1 and 2 threads") {
  // The frames are tiled by thread count (short inputs on more threads take smaller tiles); the
  // FFT blocks of 16 frames, and so every rounding, must not move with them.
  struct Threads {
    explicit Threads(int n) : saved(get_num_threads()) { set_num_threads(n); }
    ~Threads() { set_num_threads(saved); }
    int saved;
  };
  const StftOptions o = opts(1024, 320);
  for (const int64_t L : {int64_t{8000}, int64_t{100000}}) {
    const Tensor x = ops::randn({2, L});
    std::vector<double> spec1, spec2, y1, y2;
    {
      Threads one(1);
      const Tensor s = audio::stft(x, o);
      spec1 = values(s);
      y1 = values(audio::istft(s, o, L));
    }
    {
      Threads two(2);
      const Tensor s = audio::stft(x, o);
      spec2 = values(s);
      y2 = values(audio::istft(s, o, L));
    }
    CHECK(spec1 == spec2);
    CHECK(y1 == y2);
  }
}

TEST_CASE("istft output length: natural length, trimmed and zero-padded") {
  const StftOptions o = opts(16, 4);
  const Tensor x = leaf({37}, -1.0, 1.0, 21).detach();
  const Tensor spec = audio::stft(x, o);
  const int64_t T = spec.size(1);
  const Tensor natural = audio::istft(spec, o);
  CHECK(natural.size(0) == 4 * (T - 1));
  CHECK(rel_l2(natural, x.narrow(0, 0, natural.size(0))) <= 1e-13);
  const Tensor shorter = audio::istft(spec, o, 20);
  CHECK(values(shorter) == values(natural.narrow(0, 0, 20)));
  const Tensor longer = audio::istft(spec, o, 60);
  REQUIRE(longer.size(0) == 60);
  const std::vector<double> lv = values(longer);
  const int64_t full = 16 + 4 * (T - 1) - 8;
  for (int64_t i = full; i < 60; ++i) CHECK(lv[static_cast<size_t>(i)] == 0.0);
}

TEST_CASE("stft and istft pass the f64 gradcheck") {
  for (const StftOptions& o : {opts(16, 4), opts(16, 5, 12), opts(15, 4), opts(8, 3, 0, false), opts(16, 4, 0, true, "constant")}) {
    const Tensor x = leaf({2, 41}, -1.0, 1.0, 31);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return audio::stft(in[0], o); }, {x});
    Tensor spec = audio::stft(x.detach(), o).detach();
    spec.requires_grad_(true);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return audio::istft(in[0], o, 41); }, {spec});
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return audio::istft(in[0], o, 30); }, {spec});
  }
}

TEST_CASE("stft's backward is its adjoint: <stft(x), y> == <x, stft^T(y)>") {
  const StftOptions o = opts(64, 16);
  const Tensor x = leaf({500}, -1.0, 1.0, 41);
  const Tensor X = audio::stft(x, o);
  const Tensor y = leaf(X.sizes(), -1.0, 1.0, 42).detach();
  const Tensor gx = autograd::grad({X}, {x}, {y})[0];
  const double lhs = ops::sum(X.detach() * y).item();
  const double rhs = ops::sum(x.detach() * gx).item();
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
}

TEST_CASE("stft and istft reject bad arguments with messages naming them") {
  const Tensor x = ops::zeros({100});
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(x, opts(0, 4)); }), "n_fft"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(x, opts(16, -1)); }), "hop_length"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(x, opts(16, 4, 17)); }), "win_length"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(x, opts(16, 4, 0, true, "reflect", "kaiser")); }), "kaiser"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(x, opts(16, 4, 0, true, "mirror")); }), "pad_mode"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(ops::zeros({8}), opts(16, 4)); }), "reflect"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(ops::zeros({8}), opts(16, 4, 0, false)); }), "shorter than n_fft"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(ops::zeros({0}), opts(16, 4, 0, true, "constant")); }), "empty"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::stft(ops::zeros({100}, DType::i64), opts(16, 4)); }), "stft"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::istft(ops::zeros({9, 5}), opts(16, 4)); }), "(..., F, T, 2)"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::istft(ops::zeros({8, 5, 2}), opts(16, 4)); }), "needs 9"));
  CHECK(contains(thrown_message<ValueError>([&] { audio::istft(ops::zeros({9, 0, 2}), opts(16, 4)); }), "no frames"));
}

TEST_CASE("stft plans are cached per transform size") {
  const Tensor x = ops::randn({4000});
  const StftOptions o = opts(256, 64);
  audio::stft(x, o);
  const auto before = cpu::fft::plan_cache_stats();
  audio::stft(x, o);
  const auto after = cpu::fft::plan_cache_stats();
  CHECK(after.misses == before.misses);
  CHECK(after.hits > before.hits);
}
