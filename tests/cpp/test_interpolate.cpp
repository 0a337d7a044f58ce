// interpolate: a naive float64 reference written from ATen's formulas (UpSample.h), hand-computed
// values, f64 gradchecks for every mode, non-contiguous inputs and the documented errors.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "tests/cpp/gradcheck.hpp"

using namespace tse;
using tse::test::leaf;
using tse::test::values;

namespace {

constexpr double kA = -0.75;  // PyTorch's cubic convolution coefficient

/// Keys' cubic convolution kernel at distance d.
double cubic_kernel(double d) {
  d = std::abs(d);
  if (d <= 1) return (kA + 2) * d * d * d - (kA + 3) * d * d + 1;
  if (d < 2) return kA * d * d * d - 5 * kA * d * d + 8 * kA * d - 4 * kA;
  return 0;
}

/// (source index, weight) pairs of output index dst along one axis, as torch computes them.
/// sf is the user's scale_factor for this axis, 0 when the size was given. C is the type of the
/// source coordinate: torch computes it in the input's dtype, so a float32 result is compared
/// with coordinates rounded like torch's (weights and sums stay in float64).
template <typename C>
std::vector<std::pair<int64_t, double>> ref_taps(const std::string& mode, int64_t in, int64_t out, bool align,
                                                 double sf, int64_t dst) {
  if (mode == "nearest") {
    // The nearest index: floor(dst * scale), in float32 for every dtype as torch's floorf does.
    const C scale = sf > 0 ? static_cast<C>(1.0 / sf) : static_cast<C>(in) / static_cast<C>(out);
    const auto i = static_cast<int64_t>(std::floor(static_cast<float>(static_cast<C>(dst) * scale)));
    return {{std::min(i, in - 1), 1.0}};
  }
  C scale;
  if (align) {
    scale = out > 1 ? C(in - 1) / C(out - 1) : C(0);
  } else {
    scale = sf > 0 ? static_cast<C>(1.0 / sf) : C(in) / C(out);
  }
  double src = align ? C(dst) * scale : scale * (C(dst) + C(0.5)) - C(0.5);
  if (mode == "linear") {
    if (in == out) return {{dst, 1.0}};  // torch copies when the sizes agree, whatever the scale
    src = std::max(src, 0.0);            // clamped at 0 for linear, not for cubic
    const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
    const int64_t i1 = std::min(i0 + 1, in - 1);
    const double l = src - i0;
    return {{i0, 1 - l}, {i1, l}};
  }
  // bicubic: taps floor(src) - 1 .. floor(src) + 2, each weighted by its distance to src and
  // read from the border pixel when outside the input.
  std::vector<std::pair<int64_t, double>> taps;
  const auto f = static_cast<int64_t>(std::floor(src));
  for (int64_t k = f - 1; k <= f + 2; ++k) taps.push_back({std::clamp<int64_t>(k, 0, in - 1), cubic_kernel(src - k)});
  return taps;
}

/// Reference interpolate on float64 values; the 1-D case is a 2-D one with one row.
template <typename C = double>
Tensor reference(const Tensor& x, const Shape& out_spatial, const std::string& mode, bool align,
                 std::vector<double> sf) {
  const bool two_d = x.dim() == 4;
  const int64_t n = x.size(0), c = x.size(1);
  const int64_t ih = two_d ? x.size(2) : 1, iw = x.size(x.dim() - 1);
  const int64_t oh = two_d ? out_spatial[0] : 1, ow = out_spatial.back();
  if (sf.empty()) sf.assign(out_spatial.size(), 0.0);
  const double sfh = two_d ? sf[0] : 0.0, sfw = sf.back();
  const std::string axis_mode = mode == "bilinear" ? "linear" : mode == "bicubic" ? "cubic" : mode;
  const std::vector<double> xv = values(x);
  std::vector<double> out(static_cast<size_t>(n * c * oh * ow), 0.0);
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t z = 0; z < ow; ++z) {
        const auto th =
            two_d ? ref_taps<C>(axis_mode, ih, oh, align, sfh, y) : std::vector<std::pair<int64_t, double>>{{0, 1.0}};
        const auto tw = ref_taps<C>(axis_mode, iw, ow, align, sfw, z);
        double acc = 0;
        for (const auto& [hi, hw] : th)
          for (const auto& [wi, ww] : tw) acc += hw * ww * xv[static_cast<size_t>((p * ih + hi) * iw + wi)];
        out[static_cast<size_t>((p * oh + y) * ow + z)] = acc;
      }
  Shape os = {n, c};
  for (int64_t s : out_spatial) os.push_back(s);
  return ops::from_vector(out, os, DType::f64);
}

Tensor random(const Shape& sizes, uint64_t seed = 3) { return leaf(sizes, -1.0, 1.0, seed).detach(); }

struct Case {
  std::string mode;
  Shape in;  // full input shape
  Shape size;
  std::vector<double> scale;
  bool align;
};

Shape out_spatial(const Case& c) {
  if (!c.size.empty()) return c.size;
  Shape s;
  for (size_t d = 2; d < c.in.size(); ++d)
    s.push_back(
        static_cast<int64_t>(std::floor(double(c.in[d]) * (c.scale.size() == 1 ? c.scale[0] : c.scale[d - 2]))));
  return s;
}

std::vector<double> axis_scales(const Case& c) {
  if (c.scale.empty()) return {};
  return c.scale.size() == 1 ? std::vector<double>(c.in.size() - 2, c.scale[0]) : c.scale;
}

std::string describe(const Case& c) {
  std::string s = c.mode + " in " + shape_to_string(c.in);
  if (!c.size.empty()) s += " size " + shape_to_string(c.size);
  for (double v : c.scale) s += " sf " + std::to_string(v);
  return s + (c.align ? " align_corners" : "");
}

std::vector<Case> reference_cases() {
  std::vector<Case> cs = {
      {"nearest", {2, 3, 5}, {8}, {}, false},
      {"nearest", {2, 3, 5}, {3}, {}, false},
      {"nearest", {1, 2, 5}, {}, {2.0}, false},
      {"nearest", {1, 2, 5}, {}, {1.7}, false},
      {"nearest", {1, 2, 6}, {}, {0.5}, false},
      {"nearest", {1, 2, 4}, {6}, {}, false},
      {"nearest", {2, 2, 3, 4}, {5, 7}, {}, false},
      {"nearest", {1, 3, 6, 6}, {4, 3}, {}, false},
      {"nearest", {1, 2, 4, 5}, {}, {2.0, 0.75}, false},
      {"nearest", {1, 1, 6}, {74}, {}, false},
      {"nearest", {1, 1, 18}, {66}, {}, false},
  };
  for (bool align : {false, true}) {
    cs.push_back({"linear", {2, 3, 4}, {7}, {}, align});
    cs.push_back({"linear", {2, 3, 7}, {3}, {}, align});
    cs.push_back({"linear", {1, 2, 4}, {}, {2.5}, align});
    cs.push_back({"linear", {1, 2, 10}, {}, {0.6}, align});
    cs.push_back({"linear", {1, 2, 5}, {}, {1.1}, align});  // out == in with a scale != 1
    cs.push_back({"linear", {1, 1, 5}, {1}, {}, align});
    cs.push_back({"bilinear", {2, 2, 3, 4}, {6, 5}, {}, align});
    cs.push_back({"bilinear", {1, 3, 5, 6}, {2, 3}, {}, align});
    cs.push_back({"bilinear", {1, 2, 4, 5}, {}, {1.5}, align});
    cs.push_back({"bilinear", {1, 1, 6, 4}, {}, {0.5, 2.25}, align});
    cs.push_back({"bicubic", {2, 2, 4, 5}, {7, 9}, {}, align});
    cs.push_back({"bicubic", {1, 3, 6, 7}, {3, 4}, {}, align});
    cs.push_back({"bicubic", {1, 2, 4, 4}, {}, {2.0, 0.5}, align});
    cs.push_back({"bicubic", {1, 1, 3, 5}, {}, {1.5}, align});
    cs.push_back({"bicubic", {1, 1, 2, 3}, {1, 1}, {}, align});
  }
  return cs;
}

Tensor run(const Case& c, const Tensor& x) { return ops::interpolate(x, c.size, c.scale, c.mode, c.align); }

bool throws_value_error_naming(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    for (const auto& w : words)
      if (msg.find(w) == std::string::npos) return false;
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace

TEST_CASE("interpolate: hand-computed values") {
  const Tensor ramp2 = ops::from_vector(std::vector<double>{0, 1}, {1, 1, 2}, DType::f64);
  SUBCASE("linear [0, 1] to 3, align_corners=True") {
    CHECK(test::allclose(ops::interpolate(ramp2, {3}, {}, "linear", true),
                         ops::from_vector(std::vector<double>{0, 0.5, 1}, {1, 1, 3}, DType::f64), 0, 1e-15));
  }
  SUBCASE("linear [0, 1] to 4, align_corners=False") {
    CHECK(test::allclose(ops::interpolate(ramp2, {4}, {}, "linear", false),
                         ops::from_vector(std::vector<double>{0, 0.25, 0.75, 1}, {1, 1, 4}, DType::f64), 0, 1e-15));
  }
  SUBCASE("nearest picks floor(dst * in / out)") {
    const Tensor x = ops::from_vector(std::vector<double>{10, 11, 12, 13}, {1, 1, 4}, DType::f64);
    CHECK(values(ops::interpolate(x, {6}, {}, "nearest")) == std::vector<double>{10, 10, 11, 12, 12, 13});
    CHECK(values(ops::interpolate(x, {2}, {}, "nearest")) == std::vector<double>{10, 12});
  }
  SUBCASE("nearest rounds the source coordinate like torch") {
    // torch computes dst * scale in the input's dtype and floors it as a float32 (floorf).
    // 55 * (18 / 66) is 14.999999999999998 in float64, 15 once rounded to float32.
    const Tensor x18 = ops::arange(0, 18, 1, DType::f64).reshape({1, 1, 18});
    CHECK(values(ops::interpolate(x18, {66}, {}, "nearest"))[55] == 15);
    // 37 * (6 / 74) is 2.9999998 in float32 arithmetic: float32 inputs take index 2, float64 ones 3.
    const Tensor x6 = ops::arange(0, 6, 1, DType::f64).reshape({1, 1, 6});
    CHECK(values(ops::interpolate(x6.to(DType::f32), {74}, {}, "nearest"))[37] == 2);
    CHECK(values(ops::interpolate(x6, {74}, {}, "nearest"))[37] == 3);
  }
  SUBCASE("bicubic [0, 1, 2, 3] to 7 along W, align_corners=True") {
    // src = dst / 2; at src 0.5 the left taps are clamped to the border: 0.59375 * 1 - 0.09375 * 2.
    const Tensor x = ops::from_vector(std::vector<double>{0, 1, 2, 3}, {1, 1, 1, 4}, DType::f64);
    const auto y = values(ops::interpolate(x, {1, 7}, {}, "bicubic", true));
    const std::vector<double> expect = {0, 0.40625, 1, 1.5, 2, 2.59375, 3};
    REQUIRE(y.size() == expect.size());
    for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(expect[i]).epsilon(1e-14));
  }
  SUBCASE("bicubic keeps a constant image constant") {
    const Tensor x = ops::full({1, 2, 3, 4}, 2.5, DType::f64);
    for (double v : values(ops::interpolate(x, {7, 5}, {}, "bicubic", false))) CHECK(v == doctest::Approx(2.5));
  }
}

TEST_CASE("interpolate: matches the float64 reference (float64 and float32)") {
  for (const Case& c : reference_cases()) {
    CAPTURE(describe(c));
    const Tensor x = random(c.in, 11);
    const Tensor ref = reference(x, out_spatial(c), c.mode, c.align, axis_scales(c));
    const Tensor y64 = run(c, x);
    REQUIRE(y64.sizes() == ref.sizes());
    CHECK(test::allclose(y64, ref, 1e-12, 1e-12));
    const Tensor y32 = run(c, x.to(DType::f32));
    CHECK(y32.dtype() == DType::f32);
    CHECK(test::allclose(y32, reference<float>(x, out_spatial(c), c.mode, c.align, axis_scales(c)), 1e-5, 1e-6));
  }
}

TEST_CASE("interpolate: CLAP front-end shape, bicubic (1, 1, 1001, 64) to (1024, 64), align_corners") {
  const Tensor x = random({1, 1, 1001, 64}, 5);
  const Tensor y = ops::interpolate(x.to(DType::f32), {1024, 64}, {}, "bicubic", true);
  CHECK(y.sizes() == Shape{1, 1, 1024, 64});
  CHECK(test::allclose(y, reference<float>(x, {1024, 64}, "bicubic", true, {}), 1e-5, 1e-6));
  // float32 coordinates near row 1000 are off by up to ~6e-5 pixel (torch's too): against exact
  // float64 coordinates only that much agreement is possible.
  CHECK(test::allclose(y, reference(x, {1024, 64}, "bicubic", true, {}), 0, 5e-4));
  CHECK(test::allclose(ops::interpolate(x, {1024, 64}, {}, "bicubic", true),
                       reference(x, {1024, 64}, "bicubic", true, {}), 1e-12, 1e-12));
  // W is 64 -> 64 with align_corners: the frequency axis is untouched.
  const Tensor same = ops::interpolate(x, {1001, 64}, {}, "bicubic", true);
  CHECK(test::allclose(same, x, 0, 1e-15));
}

TEST_CASE("interpolate: float64 gradcheck for every mode, up and down, 1-D and 2-D") {
  std::vector<Case> cs = {
      {"nearest", {1, 2, 3}, {5}, {}, false},
      {"nearest", {1, 2, 5}, {3}, {}, false},
      {"nearest", {1, 2, 3, 2}, {5, 4}, {}, false},
      {"nearest", {2, 1, 4, 5}, {}, {0.5, 0.8}, false},
  };
  for (bool align : {false, true}) {
    cs.push_back({"linear", {1, 2, 3}, {7}, {}, align});
    cs.push_back({"linear", {2, 1, 7}, {3}, {}, align});
    cs.push_back({"linear", {1, 1, 4}, {}, {1.5}, align});
    cs.push_back({"bilinear", {1, 2, 2, 3}, {4, 5}, {}, align});
    cs.push_back({"bilinear", {1, 1, 5, 6}, {3, 2}, {}, align});
    cs.push_back({"bicubic", {1, 2, 3, 3}, {5, 4}, {}, align});
    cs.push_back({"bicubic", {1, 1, 6, 5}, {3, 2}, {}, align});
    cs.push_back({"bicubic", {1, 1, 2, 3}, {}, {2.0, 1.5}, align});
  }
  for (const Case& c : cs) {
    CAPTURE(describe(c));
    const Tensor x = leaf(c.in, -1.0, 1.0, 21);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return run(c, in[0]); }, {x});
  }
}

TEST_CASE("interpolate: float32 backward matches float64") {
  const Case cs[] = {{"nearest", {1, 2, 4, 6}, {7, 3}, {}, false},
                     {"linear", {2, 2, 9}, {4}, {}, false},
                     {"bilinear", {1, 2, 5, 4}, {8, 3}, {}, true},
                     {"bicubic", {1, 2, 5, 4}, {3, 9}, {}, false}};
  for (const Case& c : cs) {
    CAPTURE(describe(c));
    const Tensor x64 = leaf(c.in, -1.0, 1.0, 4);
    Tensor x32 = x64.detach().to(DType::f32);
    x32.requires_grad_(true);
    const Tensor y64 = run(c, x64);
    const Tensor gy = random(y64.sizes(), 9);
    y64.backward(gy);
    run(c, x32).backward(gy.to(DType::f32));
    CHECK(test::allclose(x32.grad(), x64.grad(), 1e-5, 1e-5));
  }
}

TEST_CASE("interpolate: non-contiguous input") {
  // (N, C, W, H) storage transposed to (N, C, H, W): a strided view.
  const Tensor base = leaf({2, 3, 6, 4}, -1.0, 1.0, 8);
  const Tensor xt = base.transpose(2, 3);
  REQUIRE_FALSE(xt.is_contiguous());
  for (const char* mode : {"nearest", "bilinear", "bicubic"}) {
    CAPTURE(mode);
    const bool align = std::string(mode) != "nearest";
    const Tensor y = ops::interpolate(xt, {5, 9}, {}, mode, align);
    CHECK(test::allclose(y, reference(xt.contiguous().detach(), {5, 9}, mode, align, {}), 1e-12, 1e-12));
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::interpolate(in[0].transpose(2, 3), {3, 5}, {}, mode, align);
        },
        {leaf({1, 2, 4, 3}, -1.0, 1.0, 2)});
  }
  // 1-D: every other element of a longer signal.
  const Tensor sig = random({1, 2, 10}, 6);
  const Tensor strided = sig.slice(2, 0, 10, 2);
  REQUIRE_FALSE(strided.is_contiguous());
  CHECK(test::allclose(ops::interpolate(strided, {8}, {}, "linear"),
                       reference(strided.contiguous(), {8}, "linear", false, {}), 1e-12, 1e-12));
  // A non-contiguous incoming gradient (the output is transposed before use).
  const Tensor x = leaf({1, 1, 3, 4}, -1.0, 1.0, 12);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return ops::mul(ops::interpolate(in[0], {5, 6}, {}, "bilinear").transpose(2, 3), 2.0).contiguous();
      },
      {x});
}

TEST_CASE("interpolate: bad arguments throw ValueError naming the op, the argument and the shapes") {
  const Tensor x3 = random({1, 2, 5});
  const Tensor x4 = random({1, 2, 4, 5});
  // wrong rank for the mode
  CHECK(throws_value_error_naming([&] { ops::interpolate(x4, {8}, {}, "linear"); },
                                  {"interpolate", "linear", "[1, 2, 4, 5]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(x3, {8, 8}, {}, "bilinear");
      },
      {"interpolate", "bilinear", "[1, 2, 5]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(x3, {8, 8}, {}, "bicubic");
      },
      {"interpolate", "bicubic", "[1, 2, 5]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(random({2, 5}), {8}, {}, "nearest");
      },
      {"interpolate", "[2, 5]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(random({1, 1, 2, 2, 2}), {4, 4, 4}, {}, "nearest");
      },
      {"interpolate", "[1, 1, 2, 2, 2]"}));
  // both or neither of size and scale_factor
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {8}, {2.0}, "nearest"); },
                                  {"interpolate", "both", "size", "scale_factor"}));
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {}, {}, "nearest"); },
                                  {"interpolate", "neither", "[1, 2, 5]"}));
  // wrong number of sizes / scales
  CHECK(throws_value_error_naming([&] { ops::interpolate(x4, {8}, {}, "bilinear"); },
                                  {"interpolate", "size", "[1, 2, 4, 5]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(x3, {}, {2.0, 2.0}, "linear");
      },
      {"interpolate", "scale_factor", "[1, 2, 5]"}));
  // non-positive sizes and scales, and scales that give an empty output
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {0}, {}, "linear"); }, {"interpolate", "size", "[0]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(x4, {4, -2}, {}, "nearest");
      },
      {"interpolate", "size", "[4, -2]"}));
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {}, {0.0}, "linear"); },
                                  {"interpolate", "scale_factor", "[1, 2, 5]"}));
  CHECK(
      throws_value_error_naming([&] { ops::interpolate(x3, {}, {-1.5}, "linear"); }, {"interpolate", "scale_factor"}));
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {}, {std::nan("")}, "linear"); },
                                  {"interpolate", "scale_factor"}));
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {}, {0.1}, "linear"); },
                                  {"interpolate", "scale_factor", "[1, 2, 5]"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(random({1, 2, 0}), {4}, {}, "linear");
      },
      {"interpolate", "[1, 2, 0]"}));
  // align_corners with nearest, unknown modes, non-floating input
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {8}, {}, "nearest", true); },
                                  {"interpolate", "align_corners", "nearest"}));
  CHECK(throws_value_error_naming([&] { ops::interpolate(x3, {8}, {}, "area"); },
                                  {"interpolate", "unknown mode", "area"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(random({1, 1, 2, 2, 2}), {4, 4, 4}, {}, "trilinear");
      },
      {"interpolate", "trilinear"}));
  CHECK(throws_value_error_naming(
      [&] {
        ops::interpolate(ops::zeros({1, 1, 4}, DType::i64), {8}, {}, "nearest");
      },
      {"interpolate", "input", "int64"}));
  CHECK_THROWS_AS(ops::interpolate(Tensor(), {8}, {}, "nearest"), ValueError);
}

TEST_CASE("interpolate: an empty batch gives an empty output") {
  const Tensor x = ops::zeros({0, 3, 4, 5}, DType::f32);
  CHECK(ops::interpolate(x, {8, 10}, {}, "bilinear").sizes() == Shape{0, 3, 8, 10});
}
