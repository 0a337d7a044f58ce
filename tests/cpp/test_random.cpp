// Philox4x32-10 (known-answer vectors), the default generator's state, rand/randn/randint
// statistics and reproducibility, and dropout.
#include <cmath>
#include <limits>
#include <map>

#include "src/cpu/random.hpp"
#include "tests/cpp/gradcheck.hpp"

using namespace tse;
using tse::test::leaf;
using tse::test::values;

namespace {

/// Restores the default generator and the thread count when a test ends.
struct RandomScope {
  GeneratorState state = get_rng_state();
  int threads = get_num_threads();
  ~RandomScope() {
    set_rng_state(state);
    set_num_threads(threads);
  }
};

struct Moments {
  double mean = 0, var = 0, min = 0, max = 0;
};

Moments moments(const Tensor& t) {
  const auto v = values(t);
  Moments m{0, 0, v[0], v[0]};
  for (double x : v) {
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= static_cast<double>(v.size() - 1);
  return m;
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes() || a.dtype() != b.dtype()) return false;
  const auto x = values(a), y = values(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (!(x[i] == y[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("random: Philox4x32-10 reproduces the Random123 known-answer vectors") {
  using cpu::philox4x32_10;
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) == cpu::PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
        cpu::PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
        cpu::PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("random: rand follows the counter layout (block b = Philox(offset + b), top 24 bits per word)") {
  RandomScope scope;
  const uint64_t seed = 0x0123456789abcdefULL, offset = 0xfffffffffffffffeULL;  // the counter crosses 2^64
  set_rng_state({seed, offset});
  const auto got = values(ops::rand({11}));
  for (int64_t i = 0; i < 11; ++i) {
    const uint64_t c = offset + static_cast<uint64_t>(i / 4);
    const auto w = cpu::philox4x32_10({static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0, 0},
                                      {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
    CHECK(got[i] == static_cast<double>(w[i % 4] >> 8) / 16777216.0);
  }
  CHECK(get_rng_state().offset == offset + 3);  // ceil(11 / 4) blocks, wrapping past 2^64
  CHECK(get_rng_state().seed == seed);
}

TEST_CASE("random: the same seed gives the same numbers, other seeds and later draws differ") {
  RandomScope scope;
  const Tensor x = leaf({50}).detach();
  auto draw_all = [&] {
    return std::vector<Tensor>{ops::rand({3, 7}),           ops::rand({5}, DType::f64), ops::randn({9}),
                               ops::randn({4}, DType::f64), ops::randint(-5, 5, {6}),   ops::dropout(x, 0.3)};
  };
  manual_seed(42);
  const auto a = draw_all();
  manual_seed(42);
  const auto b = draw_all();
  manual_seed(43);
  const auto c = draw_all();
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(same_values(a[i], b[i]));
    CHECK_FALSE(same_values(a[i], c[i]));
  }
  manual_seed(42);
  const Tensor first = ops::rand({100});
  const Tensor second = ops::rand({100});
  CHECK_FALSE(same_values(first, second));
}

TEST_CASE("random: element i depends only on (seed, offset, i), not on the shape or the count") {
  RandomScope scope;
  for (DType dt : {DType::f32, DType::f64}) {
    set_rng_state({7, 100});
    const auto longer = values(ops::rand({100}, dt));
    set_rng_state({7, 100});
    const auto shorter = values(ops::rand({10}, dt));
    set_rng_state({7, 100});
    const auto shaped = values(ops::rand({2, 5}, dt));
    for (size_t i = 0; i < 10; ++i) {
      CHECK(shorter[i] == longer[i]);
      CHECK(shaped[i] == longer[i]);
    }
    set_rng_state({7, 100});
    const auto nl = values(ops::randn({33}, dt));
    set_rng_state({7, 100});
    const auto ns = values(ops::randn({5}, dt));
    for (size_t i = 0; i < 5; ++i) CHECK(ns[i] == nl[i]);
  }
}

TEST_CASE("random: results do not depend on the thread count") {
  RandomScope scope;
  const Tensor x = ops::ones({600, 1000});
  auto draw_all = [&] {
    set_rng_state({2024, 5});
    return std::vector<Tensor>{ops::rand({600000}),
                               ops::rand({600000}, DType::f64),
                               ops::randn({600000}),
                               ops::randn({600000}, DType::f64),
                               ops::randint(0, 1000, {600000}),
                               ops::dropout(x, 0.25)};
  };
  set_num_threads(1);
  const auto one = draw_all();
  set_num_threads(2);
  const auto two = draw_all();
  for (size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    CHECK(same_values(one[i], two[i]));
  }
}

TEST_CASE("random: state save/restore and manual_seed") {
  RandomScope scope;
  manual_seed(99);
  CHECK(get_rng_state().seed == 99);
  CHECK(get_rng_state().offset == 0);
  ops::rand({10});
  const GeneratorState saved = get_rng_state();
  CHECK(saved.offset == 3);  // 10 f32 values, 4 per block
  const Tensor a = ops::randn({20}, DType::f64);
  CHECK(get_rng_state().offset == saved.offset + 10);  // 2 f64 normals per block
  ops::randint(0, 3, {5});
  CHECK(get_rng_state().offset == saved.offset + 13);  // 2 integers per block
  set_rng_state(saved);
  CHECK(same_values(ops::randn({20}, DType::f64), a));
  // An empty draw consumes nothing.
  const GeneratorState before = get_rng_state();
  CHECK(ops::rand({0, 3}).numel() == 0);
  CHECK(get_rng_state().offset == before.offset);
}

TEST_CASE("random: rand is uniform on in 0..1 (1M samples, f32 24 bits, f64 53 bits)") {
  RandomScope scope;
  manual_seed(1);
  const int64_t n = 1000000;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor u = ops::rand({n}, dt);
    CHECK(u.dtype() == dt);
    const Moments m = moments(u);
    // 6 standard errors: sd(mean) = sqrt(1/12 / n), sd(var) = sqrt((1/80 - 1/144) / n).
    CHECK(std::abs(m.mean - 0.5) < 6 * std::sqrt(1.0 / 12 / n));
    CHECK(std::abs(m.var - 1.0 / 12) < 6 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
    CHECK(m.min >= 0.0);
    CHECK(m.max < 1.0);
    // Ten equal bins, chi-square with 9 degrees of freedom: 30 is far past its 99.9th percentile.
    std::vector<double> bins(10, 0.0);
    for (double v : values(u)) bins[static_cast<size_t>(v * 10)] += 1;
    double chi2 = 0;
    for (double b : bins) chi2 += (b - n / 10.0) * (b - n / 10.0) / (n / 10.0);
    CHECK(chi2 < 30.0);
  }
  // f64 values use bits below float's 24: some are not multiples of 2^-24.
  int finer = 0;
  for (double v : values(ops::rand({100}, DType::f64))) finer += std::fmod(v * 16777216.0, 1.0) != 0.0;
  CHECK(finer > 90);
  for (double v : values(ops::rand({100}))) CHECK(std::fmod(v * 16777216.0, 1.0) == 0.0);
}

TEST_CASE("random: randn is standard normal (1M samples)") {
  RandomScope scope;
  manual_seed(2);
  const int64_t n = 1000000;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor z = ops::randn({n}, dt);
    CHECK(z.dtype() == dt);
    const Moments m = moments(z);
    CHECK(std::abs(m.mean) < 6 * std::sqrt(1.0 / n));
    CHECK(std::abs(m.var - 1.0) < 6 * std::sqrt(2.0 / n));
    int64_t within1 = 0, within2 = 0;
    double fourth = 0;
    for (double v : values(z)) {
      within1 += std::abs(v) < 1.0;
      within2 += std::abs(v) < 2.0;
      fourth += v * v * v * v;
    }
    // P(|z| < 1) = 0.682689, P(|z| < 2) = 0.954500, E z^4 = 3 (sd of the mean of z^4: sqrt(96 / n)).
    CHECK(std::abs(within1 / double(n) - 0.682689) < 6 * std::sqrt(0.682689 * 0.317311 / n));
    CHECK(std::abs(within2 / double(n) - 0.954500) < 6 * std::sqrt(0.9545 * 0.0455 / n));
    CHECK(std::abs(fourth / n - 3.0) < 6 * std::sqrt(96.0 / n));
    CHECK(m.max < 7.0);
    CHECK(m.min > -7.0);
  }
}

TEST_CASE("random: randint is uniform on (low, high) for int64, int32, float32 and float64") {
  RandomScope scope;
  manual_seed(3);
  const int64_t n = 1000000;
  for (DType dt : {DType::i64, DType::i32, DType::f32, DType::f64}) {
    CAPTURE(dt);
    const Tensor r = ops::randint(-3, 7, {n}, dt);
    CHECK(r.dtype() == dt);
    std::map<double, int64_t> counts;
    for (double v : values(r)) counts[v] += 1;
    REQUIRE(counts.size() == 10);
    CHECK(counts.begin()->first == -3);
    CHECK(counts.rbegin()->first == 6);
    double chi2 = 0;
    for (const auto& [v, c] : counts) {
      CHECK(v == std::floor(v));
      chi2 += (c - n / 10.0) * (c - n / 10.0) / (n / 10.0);
    }
    CHECK(chi2 < 30.0);
    const Moments m = moments(r);
    // Discrete uniform on 10 values: mean 1.5, variance (10^2 - 1) / 12.
    CHECK(std::abs(m.mean - 1.5) < 6 * std::sqrt(99.0 / 12 / n));
    CHECK(std::abs(m.var - 99.0 / 12) < 0.05);
  }
  // A range of one value, and the whole int64 span.
  for (double v : values(ops::randint(5, 6, {20}))) CHECK(v == 5);
  const Tensor wide = ops::randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), {1000});
  int64_t negative = 0;
  for (int64_t i = 0; i < 1000; ++i) negative += wide.data<int64_t>()[i] < 0;
  CHECK(negative > 400);
  CHECK(negative < 600);
}

TEST_CASE("random: rand/randn/randint errors") {
  CHECK_THROWS_AS(ops::rand({2}, DType::i64), ValueError);
  CHECK_THROWS_AS(ops::randn({2}, DType::f16), ValueError);
  CHECK_THROWS_AS(ops::rand({2, -1}), ValueError);
  CHECK_THROWS_AS(ops::randn({-3}), ValueError);
  CHECK_THROWS_AS(ops::randint(3, 3, {2}), ValueError);
  CHECK_THROWS_AS(ops::randint(4, 1, {2}), ValueError);
  CHECK_THROWS_AS(ops::randint(0, 10, {2}, DType::b8), ValueError);
  CHECK_THROWS_AS(ops::randint(0, int64_t(1) << 40, {2}, DType::i32), ValueError);
  CHECK_THROWS_AS(ops::randint(0, (int64_t(1) << 24) + 2, {2}, DType::f32), ValueError);
  CHECK_THROWS_AS(ops::randint(0, 10, {-1}), ValueError);
  CHECK(values(ops::randint(std::numeric_limits<int32_t>::max() - 1, int64_t(std::numeric_limits<int32_t>::max()) + 1,
                            {4}, DType::i32))[0] >= std::numeric_limits<int32_t>::max() - 1);
  const GeneratorState before = get_rng_state();
  CHECK_THROWS_AS(ops::rand({2}, DType::f32, Device::cuda(0)), NotImplementedError);
  CHECK_THROWS_AS(ops::randn({2}, DType::f32, Device::cuda(0)), NotImplementedError);
  CHECK_THROWS_AS(ops::randint(0, 2, {2}, DType::i64, Device::cuda(0)), NotImplementedError);
  CHECK(get_rng_state().offset == before.offset);
  try {
    ops::randint(5, 5, {2});
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("randint") != std::string::npos);
  }
}

// ---- dropout ---------------------------------------------------------------------------------------

TEST_CASE("dropout: p = 0 and eval mode return the input itself, p = 1 gives zeros and a zero gradient") {
  Tensor x = leaf({3, 4});
  CHECK(ops::dropout(x, 0.0).is_same(x));
  CHECK(ops::dropout(x, 0.7, false).is_same(x));
  const Tensor z = ops::dropout(x, 1.0);
  for (double v : values(z)) CHECK(v == 0.0);
  ops::sum(z).backward();
  for (double g : values(x.grad())) CHECK(g == 0.0);
}

TEST_CASE("dropout: the mask keeps elements where rand would draw >= p, scaled by 1/(1-p)") {
  RandomScope scope;
  const int64_t n = 1000000;
  for (double p : {0.1, 0.5, 0.9}) {
    CAPTURE(p);
    const Tensor x = ops::full({n}, 2.0, DType::f64);
    set_rng_state({5, 17});
    const auto out = values(ops::dropout(x, p));
    set_rng_state({5, 17});
    const auto u = values(ops::rand({n}));
    int64_t dropped = 0;
    bool all_match = true;
    for (int64_t i = 0; i < n; ++i) {
      const bool kept = u[i] >= p;
      dropped += !kept;
      all_match = all_match && out[i] == (kept ? 2.0 / (1.0 - p) : 0.0);
    }
    CHECK(all_match);
    CHECK(std::abs(dropped / double(n) - p) < 6 * std::sqrt(p * (1 - p) / n));
    // E[dropout(x)] = x.
    double mean = 0;
    for (double v : out) mean += v;
    mean /= n;
    CHECK(std::abs(mean - 2.0) < 6 * 2.0 * std::sqrt(p / (1 - p) / n));
  }
}

TEST_CASE("dropout: non-contiguous float32 input uses the mask of its logical (row-major) order") {
  RandomScope scope;
  const Tensor base = leaf({6, 5}).detach().to(DType::f32);
  const Tensor xt = base.t();  // [5, 6], transposed strides
  set_rng_state({8, 0});
  const Tensor a = ops::dropout(xt, 0.4);
  set_rng_state({8, 0});
  const Tensor b = ops::dropout(xt.contiguous(), 0.4);
  CHECK(a.dtype() == DType::f32);
  CHECK(same_values(a, b));
  const auto xv = values(xt), av = values(a);
  for (size_t i = 0; i < xv.size(); ++i) CHECK((av[i] == 0.0 || av[i] == doctest::Approx(xv[i] / 0.6)));
}

TEST_CASE("dropout: backward uses the forward mask (gradcheck with the state reset per evaluation)") {
  RandomScope scope;
  const GeneratorState at{77, 3};
  for (double p : {0.2, 0.5}) {
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          set_rng_state(at);
          return ops::dropout(in[0], p);
        },
        {leaf({4, 5})});
  }
  Tensor x = leaf({40});
  set_rng_state(at);
  const Tensor y = ops::dropout(x, 0.5);
  ops::sum(y).backward();
  const auto g = values(x.grad()), yv = values(y), xv = values(x);
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(yv[i] / xv[i]));
}

TEST_CASE("dropout: errors") {
  const Tensor x = ops::ones({3});
  CHECK_THROWS_AS(ops::dropout(x, -0.1), ValueError);
  CHECK_THROWS_AS(ops::dropout(x, 1.5), ValueError);
  CHECK_THROWS_AS(ops::dropout(x, std::numeric_limits<double>::quiet_NaN()), ValueError);
  CHECK_THROWS_AS(ops::dropout(ops::ones({3}, DType::i64), 0.5), ValueError);
  CHECK_THROWS_AS(ops::dropout(Tensor(), 0.5), ValueError);
  try {
    ops::dropout(x, 2.0);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("dropout") != std::string::npos);
  }
}
