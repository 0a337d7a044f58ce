// conv1d, conv2d, conv_transpose1d, conv_transpose2d: naive f64 references (plain loops), values
// worked out by hand, "same" / "valid" padding, f64 gradchecks over strides, paddings, dilations,
// groups (depthwise included) and unbatched inputs, the adjoint identity between conv and
// conv_transpose, the f32 kernels (oneDNN, and the depthwise loops) against the f64 path at the
// models' shapes, errors, non-contiguous inputs, empty batches and the primitive cache.
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "src/cpu/onednn_context.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/ops/conv.hpp"

using namespace tse;
using tse::ops::Size2;
using tse::test::compare_f32_f64;
using tse::test::contains;
using tse::test::f32_leaf;
using tse::test::leaf;
using tse::test::thrown_message;
using tse::test::values;

namespace {

/// One 2-D convolution for the references: per dim (h, w) stride, dilation and left padding;
/// the output size is given (it encodes the right padding or the output_padding).
struct Geometry {
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, ph = 0, pw = 0, groups = 1;
};

/// Naive conv2d on the logical values: x (N, C, H, W), w (O, C / groups, KH, KW), y (N, O, OH, OW).
std::vector<double> ref_conv(const Tensor& x, const Tensor& w, const Tensor& bias, const Geometry& g,
                             const Shape& y_sizes) {
  const auto xv = values(x), wv = values(w);
  const auto bv = bias.defined() ? values(bias) : std::vector<double>();
  const Shape xs = x.sizes(), ws = w.sizes();
  const int64_t cg = ws[1], og = ws[0] / g.groups;
  std::vector<double> y(static_cast<size_t>(shape_numel(y_sizes)));
  for (int64_t i = 0; i < static_cast<int64_t>(y.size()); ++i) {
    const auto idx = test::unravel(i, y_sizes);  // n, o, oh, ow
    double acc = bv.empty() ? 0.0 : bv[idx[1]];
    for (int64_t cl = 0; cl < cg; ++cl)
      for (int64_t kh = 0; kh < ws[2]; ++kh)
        for (int64_t kw = 0; kw < ws[3]; ++kw) {
          const int64_t ih = idx[2] * g.sh - g.ph + kh * g.dh, iw = idx[3] * g.sw - g.pw + kw * g.dw;
          if (ih < 0 || ih >= xs[2] || iw < 0 || iw >= xs[3]) continue;
          const int64_t c = (idx[1] / og) * cg + cl;
          acc += xv[test::ravel({idx[0], c, ih, iw}, xs)] * wv[test::ravel({idx[1], cl, kh, kw}, ws)];
        }
    y[i] = acc;
  }
  return y;
}

/// Naive conv_transpose2d: x (N, Cin, H, W), w (Cin, Cout / groups, KH, KW), y (N, Cout, OH, OW);
/// every input element scatters into the outputs its taps reach (outside: cropped).
std::vector<double> ref_conv_transpose(const Tensor& x, const Tensor& w, const Tensor& bias, const Geometry& g,
                                       const Shape& y_sizes) {
  const auto xv = values(x), wv = values(w);
  const Shape xs = x.sizes(), ws = w.sizes();
  const int64_t cin_g = xs[1] / g.groups, og = ws[1];
  std::vector<double> y(static_cast<size_t>(shape_numel(y_sizes)), 0.0);
  if (bias.defined()) {
    const auto bv = values(bias);
    for (int64_t i = 0; i < static_cast<int64_t>(y.size()); ++i) y[i] = bv[test::unravel(i, y_sizes)[1]];
  }
  for (int64_t i = 0; i < x.numel(); ++i) {
    const auto idx = test::unravel(i, xs);  // n, ci, ih, iw
    for (int64_t ol = 0; ol < og; ++ol)
      for (int64_t kh = 0; kh < ws[2]; ++kh)
        for (int64_t kw = 0; kw < ws[3]; ++kw) {
          const int64_t oh = idx[2] * g.sh - g.ph + kh * g.dh, ow = idx[3] * g.sw - g.pw + kw * g.dw;
          if (oh < 0 || oh >= y_sizes[2] || ow < 0 || ow >= y_sizes[3]) continue;
          const int64_t o = (idx[1] / cin_g) * og + ol;
          y[test::ravel({idx[0], o, oh, ow}, y_sizes)] += xv[i] * wv[test::ravel({idx[1], ol, kh, kw}, ws)];
        }
  }
  return y;
}

/// t with a height-1 dim inserted before its last dim (a 1-D operand as a 2-D one, same values).
Tensor as_2d(const Tensor& t) {
  Shape s = t.sizes();
  s.insert(s.end() - 1, 1);
  return t.detach().reshape(s);
}

/// t with a batch dim of 1 in front.
Tensor batched(const Tensor& t) { return t.detach().unsqueeze(0); }

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  const auto g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element ", i, ": got ", g[i], " want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

/// <a, b> over all elements, in double.
double dot(const Tensor& a, const Tensor& b) {
  const auto x = values(a), y = values(b);
  REQUIRE(x.size() == y.size());
  double acc = 0;
  for (size_t i = 0; i < x.size(); ++i) acc += x[i] * y[i];
  return acc;
}

Tensor values_f64(const Shape& s, uint64_t seed) { return leaf(s, -1, 1, seed).detach(); }

/// The result of f on the f64 inputs and on their f32 copies, both checked against want.
void check_both_dtypes(const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& f, const Tensor& x,
                       const Tensor& w, const Tensor& b, const Shape& want_sizes, const std::vector<double>& want) {
  const Tensor y = f(x, w, b);
  CHECK(y.sizes() == want_sizes);
  CHECK(y.dtype() == DType::f64);
  check_close(y, want, 1e-12);
  auto to32 = [](const Tensor& t) { return t.defined() ? t.to(DType::f32) : Tensor(); };
  const Tensor y32 = f(to32(x), to32(w), to32(b));
  CHECK(y32.sizes() == want_sizes);
  CHECK(y32.dtype() == DType::f32);
  check_close(y32, want, 2e-5);
}

}  // namespace

TEST_CASE("conv1d and conv2d match a naive f64 reference over strides, paddings, dilations and groups") {
  struct Case {
    Shape x, w;
    int64_t sh, sw, ph, pw, dh, dw, groups;
    bool bias;
  };
  const std::vector<Case> cases2d = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, 1, 1, 0, 0, 1, 1, 1, true}, {{1, 4, 9, 8}, {6, 2, 3, 2}, 2, 1, 1, 0, 1, 2, 2, false},
      {{2, 3, 8, 8}, {6, 1, 3, 3}, 1, 2, 1, 2, 2, 1, 3, true},  // depthwise, multiplier 2
      {{1, 2, 5, 5}, {3, 2, 1, 1}, 1, 1, 0, 0, 1, 1, 1, true},  // pointwise
      {{1, 1, 8, 8}, {5, 1, 4, 4}, 4, 4, 0, 0, 1, 1, 1, true},  // patch embedding
      {{1, 2, 4, 5}, {2, 2, 3, 3}, 3, 2, 2, 1, 1, 1, 1, true},  // padding wider than what the stride reads
  };
  for (const auto& c : cases2d) {
    INFO("conv2d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.sh, ",", c.sw, " padding ", c.ph,
         ",", c.pw, " dilation ", c.dh, ",", c.dw, " groups ", c.groups);
    const Tensor x = values_f64(c.x, 1), w = values_f64(c.w, 2), b = c.bias ? values_f64({c.w[0]}, 3) : Tensor();
    const int64_t oh = (c.x[2] + 2 * c.ph - c.dh * (c.w[2] - 1) - 1) / c.sh + 1;
    const int64_t ow = (c.x[3] + 2 * c.pw - c.dw * (c.w[3] - 1) - 1) / c.sw + 1;
    const Shape ys = {c.x[0], c.w[0], oh, ow};
    const auto want = ref_conv(x, w, b, {c.sh, c.sw, c.dh, c.dw, c.ph, c.pw, c.groups}, ys);
    check_both_dtypes(
        [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return ops::conv2d(xi, wi, bi, {c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.groups);
        },
        x, w, b, ys, want);
    // Unbatched (C, H, W) for the first sample: the first sample's values, without the batch dim.
    const Tensor x0 = x.select(0, 0);
    const Tensor y0 = ops::conv2d(x0, w, b, {c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.groups);
    CHECK(y0.sizes() == Shape{c.w[0], oh, ow});
    check_close(batched(y0),
                ref_conv(batched(x0), w, b, {c.sh, c.sw, c.dh, c.dw, c.ph, c.pw, c.groups}, {1, c.w[0], oh, ow}),
                1e-12);
  }
  struct Case1 {
    Shape x, w;
    int64_t stride, padding, dilation, groups;
    bool bias;
  };
  const std::vector<Case1> cases1d = {
      {{2, 3, 11}, {4, 3, 3}, 1, 1, 1, 1, true}, {{1, 4, 13}, {6, 2, 4}, 2, 2, 1, 2, false},
      {{2, 4, 12}, {4, 1, 5}, 1, 2, 2, 4, true}, {{1, 8, 40}, {8, 1, 33}, 1, 16, 1, 8, true},  // Conformer-like
      {{2, 3, 9}, {5, 3, 1}, 1, 0, 1, 1, true},  {{1, 2, 10}, {3, 2, 3}, 3, 0, 2, 1, true},
  };
  for (const auto& c : cases1d) {
    INFO("conv1d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.stride, " padding ", c.padding,
         " dilation ", c.dilation, " groups ", c.groups);
    const Tensor x = values_f64(c.x, 4), w = values_f64(c.w, 5), b = c.bias ? values_f64({c.w[0]}, 6) : Tensor();
    const int64_t l = (c.x[2] + 2 * c.padding - c.dilation * (c.w[2] - 1) - 1) / c.stride + 1;
    const auto want =
        ref_conv(as_2d(x), as_2d(w), b, {1, c.stride, 1, c.dilation, 0, c.padding, c.groups}, {c.x[0], c.w[0], 1, l});
    check_both_dtypes(
        [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return ops::conv1d(xi, wi, bi, c.stride, c.padding, c.dilation, c.groups);
        },
        x, w, b, {c.x[0], c.w[0], l}, want);
    const Tensor y0 = ops::conv1d(x.select(0, 0), w, b, c.stride, c.padding, c.dilation, c.groups);
    CHECK(y0.sizes() == Shape{c.w[0], l});
  }
}

TEST_CASE("conv_transpose1d and conv_transpose2d match a naive f64 reference") {
  struct Case {
    Shape x, w;  // w (Cin, Cout / groups, KH, KW)
    int64_t sh, sw, ph, pw, oph, opw, dh, dw, groups;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4, 5}, {3, 2, 3, 3}, 1, 1, 0, 0, 0, 0, 1, 1, 1, true},
      {{1, 4, 3, 4}, {4, 3, 3, 2}, 2, 3, 1, 0, 1, 2, 1, 1, 2, false},
      {{1, 2, 5, 4}, {2, 1, 3, 3}, 2, 2, 1, 1, 0, 1, 2, 2, 2, true},  // depthwise, dilated
      {{1, 3, 4, 4}, {3, 1, 4, 4}, 4, 4, 0, 0, 0, 0, 1, 1, 1, true},  // inverse patch embedding
      {{1, 2, 3, 3}, {2, 2, 2, 3}, 1, 1, 0, 0, 1, 1, 2, 3, 1, true},  // output_padding < dilation only
      {{2, 2, 3, 4}, {2, 3, 3, 3}, 2, 1, 2, 1, 1, 0, 1, 1, 1, true},  // padding cropping taps
  };
  for (const auto& c : cases) {
    INFO("conv_transpose2d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.sh, ",", c.sw,
         " padding ", c.ph, ",", c.pw, " output_padding ", c.oph, ",", c.opw, " dilation ", c.dh, ",", c.dw, " groups ",
         c.groups);
    const Tensor x = values_f64(c.x, 7), w = values_f64(c.w, 8),
                 b = c.bias ? values_f64({c.w[1] * c.groups}, 9) : Tensor();
    const int64_t oh = (c.x[2] - 1) * c.sh - 2 * c.ph + c.dh * (c.w[2] - 1) + c.oph + 1;
    const int64_t ow = (c.x[3] - 1) * c.sw - 2 * c.pw + c.dw * (c.w[3] - 1) + c.opw + 1;
    const Shape ys = {c.x[0], c.w[1] * c.groups, oh, ow};
    const auto want = ref_conv_transpose(x, w, b, {c.sh, c.sw, c.dh, c.dw, c.ph, c.pw, c.groups}, ys);
    check_both_dtypes(
        [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return ops::conv_transpose2d(xi, wi, bi, {c.sh, c.sw}, {c.ph, c.pw}, {c.oph, c.opw}, c.groups, {c.dh, c.dw});
        },
        x, w, b, ys, want);
    const Tensor y0 =
        ops::conv_transpose2d(x.select(0, 0), w, b, {c.sh, c.sw}, {c.ph, c.pw}, {c.oph, c.opw}, c.groups, {c.dh, c.dw});
    CHECK(y0.sizes() == Shape{ys[1], oh, ow});
    check_close(batched(y0),
                ref_conv_transpose(batched(x.select(0, 0)), w, b, {c.sh, c.sw, c.dh, c.dw, c.ph, c.pw, c.groups},
                                   {1, ys[1], oh, ow}),
                1e-12);
  }
  struct Case1 {
    Shape x, w;
    int64_t stride, padding, output_padding, groups, dilation;
  };
  const std::vector<Case1> cases1d = {
      {{2, 3, 6}, {3, 2, 3}, 2, 1, 1, 1, 1},
      {{1, 4, 5}, {4, 1, 4}, 3, 0, 2, 4, 1},
      {{1, 2, 7}, {2, 3, 3}, 1, 2, 0, 1, 2},
      {{1, 2, 4}, {2, 2, 2}, 1, 0, 2, 1, 3},  // output_padding 2 >= stride
  };
  for (const auto& c : cases1d) {
    INFO("conv_transpose1d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.stride, " padding ",
         c.padding, " output_padding ", c.output_padding, " groups ", c.groups, " dilation ", c.dilation);
    const Tensor x = values_f64(c.x, 10), w = values_f64(c.w, 11), b = values_f64({c.w[1] * c.groups}, 12);
    const int64_t l = (c.x[2] - 1) * c.stride - 2 * c.padding + c.dilation * (c.w[2] - 1) + c.output_padding + 1;
    const auto want = ref_conv_transpose(as_2d(x), as_2d(w), b, {1, c.stride, 1, c.dilation, 0, c.padding, c.groups},
                                         {c.x[0], c.w[1] * c.groups, 1, l});
    check_both_dtypes(
        [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return ops::conv_transpose1d(xi, wi, bi, c.stride, c.padding, c.output_padding, c.groups, c.dilation);
        },
        x, w, b, {c.x[0], c.w[1] * c.groups, l}, want);
  }
}

TEST_CASE("conv values worked out by hand agree with torch") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", dt);
    // x = 1..16 in a 4x4 image, w = [[1, 0], [0, -1]]: every output is x[i][j] - x[i+1][j+1] = -5.
    const Tensor x = test::counting({1, 1, 4, 4}, dt);
    const Tensor w = ops::from_vector(std::vector<double>{1, 0, 0, -1}, {1, 1, 2, 2}, dt);
    check_close(ops::conv2d(x, w), std::vector<double>(9, -5.0), 1e-6);
    check_close(ops::conv2d(x, w, ops::full({1}, 0.5, dt)), std::vector<double>(9, -4.5), 1e-6);
    // stride 2, padding 1: windows at rows/cols -1, 1, 3; out = x[r][c] (top-left tap) - x[r+1][c+1].
    //   (-1,-1): 0 - 1 = -1   (-1, 1): 0 - 3 = -3   (-1, 3): 0 - 0 = 0
    //   ( 1,-1): 0 - 9 = -9   ( 1, 1): 6 - 11 = -5  ( 1, 3): 8 - 0 = 8
    //   ( 3,-1): 0 - 0 = 0    ( 3, 1): 14 - 0 = 14  ( 3, 3): 16 - 0 = 16
    check_close(ops::conv2d(x, w, Tensor(), 2, 1), {-1, -3, 0, -9, -5, 8, 0, 14, 16}, 1e-6);
    // conv1d [1, 2, 3, 4] with [1, 2], dilation 2: 1 + 2*3 = 7, 2 + 2*4 = 10.
    const Tensor a = ops::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 4}, dt);
    const Tensor k = ops::from_vector(std::vector<double>{1, 2}, {1, 1, 2}, dt);
    check_close(ops::conv1d(a, k, Tensor(), 1, 0, 2), {7, 10}, 1e-6);
    // conv_transpose1d [1, 2, 3] with [1, 1]: stride 2 copies each input twice, stride 1 sums neighbours.
    const Tensor t = ops::from_vector(std::vector<double>{1, 2, 3}, {1, 1, 3}, dt);
    const Tensor ones = ops::ones({1, 1, 2}, dt);
    check_close(ops::conv_transpose1d(t, ones, Tensor(), 2), {1, 1, 2, 2, 3, 3}, 1e-6);
    check_close(ops::conv_transpose1d(t, ones, Tensor(), 1), {1, 3, 5, 3}, 1e-6);
    // stride 2 gives [1, 1, 2, 2, 3, 3]: padding 1 crops its first and last, output_padding 1 gives the last back
    check_close(ops::conv_transpose1d(t, ones, Tensor(), 2, 1, 1), {1, 2, 2, 3, 3}, 1e-6);
  }
}

TEST_CASE("conv padding same and valid follow torch, the odd padding element on the right") {
  struct Case {
    Shape x, w;
    int64_t dh, dw;
  };
  // kernel extents d * (k - 1) + 1: odd (symmetric padding) and even (one more on the right / bottom)
  const std::vector<Case> cases = {
      {{1, 2, 7, 8}, {3, 2, 3, 3}, 1, 1},  // odd, odd
      {{1, 2, 7, 8}, {3, 2, 4, 2}, 1, 1},  // even, even
      {{2, 2, 9, 7}, {2, 1, 2, 4}, 3, 2},  // dilated: extents 4 (even) and 7 (odd); groups 2
      {{1, 3, 6, 8}, {3, 1, 1, 4}, 1, 2},  // 1 x 4 taps dilated to 7
  };
  for (const auto& c : cases) {
    INFO("x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " dilation ", c.dh, ",", c.dw);
    const int64_t groups = c.x[1] / c.w[1];
    const Tensor x = values_f64(c.x, 13), w = values_f64(c.w, 14), b = values_f64({c.w[0]}, 15);
    const int64_t th = c.dh * (c.w[2] - 1), tw = c.dw * (c.w[3] - 1);  // total padding
    // The reference pads left by total / 2; the output size pins the right padding to the rest.
    const Shape ys = {c.x[0], c.w[0], c.x[2], c.x[3]};
    const auto want = ref_conv(x, w, b, {1, 1, c.dh, c.dw, th / 2, tw / 2, groups}, ys);
    check_both_dtypes(
        [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return ops::conv2d(xi, wi, bi, 1, "same", {c.dh, c.dw}, groups);
        },
        x, w, b, ys, want);
    const Tensor valid = ops::conv2d(x, w, b, 1, std::string("valid"), {c.dh, c.dw}, groups);
    CHECK(values(valid) == values(ops::conv2d(x, w, b, 1, 0, {c.dh, c.dw}, groups)));
  }
  // conv1d: even kernel 4 -> padding 1 left, 2 right; dilation 3 on kernel 2 -> 1 left, 2 right.
  for (const auto& [k, d] : std::vector<std::pair<int64_t, int64_t>>{{4, 1}, {2, 3}, {5, 2}, {33, 1}}) {
    INFO("conv1d same, k ", k, " dilation ", d);
    const Tensor x = values_f64({2, 3, 40}, 16), w = values_f64({2, 3, k}, 17);
    const int64_t total = d * (k - 1);
    const auto want = ref_conv(as_2d(x), as_2d(w), Tensor(), {1, 1, 1, d, 0, total / 2, 1}, {2, 2, 1, 40});
    check_both_dtypes(
        [&](const Tensor& xi, const Tensor& wi, const Tensor&) { return ops::conv1d(xi, wi, Tensor(), 1, "same", d); },
        x, w, Tensor(), {2, 2, 40}, want);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) { return ops::conv1d(in[0], in[1], in[2], 1, "same", d); },
        {leaf({1, 3, 9}, -1, 1, 18), leaf({2, 3, std::min<int64_t>(k, 5)}, -1, 1, 19), leaf({2}, -1, 1, 20)});
  }
}

TEST_CASE("conv1d and conv2d pass the f64 gradcheck in input, weight and bias over the option space") {
  struct Case1 {
    Shape x, w;
    int64_t stride, padding, dilation, groups;
  };
  const std::vector<Case1> c1 = {
      {{2, 2, 7}, {3, 2, 3}, 1, 0, 1, 1},  {{1, 4, 9}, {4, 2, 3}, 2, 1, 1, 2},
      {{1, 2, 10}, {2, 2, 3}, 1, 2, 2, 1}, {{2, 3, 8}, {6, 1, 3}, 1, 1, 1, 3},  // depthwise, multiplier 2
      {{1, 4, 9}, {4, 1, 5}, 3, 2, 2, 4},                                       // depthwise, strided and dilated
      {{1, 2, 8}, {3, 2, 2}, 3, 0, 1, 1},                                       // stride skipping inputs
  };
  for (const auto& c : c1) {
    INFO("conv1d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.stride, " padding ", c.padding,
         " dilation ", c.dilation, " groups ", c.groups);
    const Tensor x = leaf(c.x, -1, 1, 21), w = leaf(c.w, -1, 1, 22), b = leaf({c.w[0]}, -1, 1, 23);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv1d(in[0], in[1], in[2], c.stride, c.padding, c.dilation, c.groups);
        },
        {x, w, b});
    // unbatched input, no bias
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv1d(in[0], in[1], Tensor(), c.stride, c.padding, c.dilation, c.groups);
        },
        {leaf({c.x[1], c.x[2]}, -1, 1, 24), w});
  }
  struct Case2 {
    Shape x, w;
    Size2 stride, padding, dilation;
    int64_t groups;
  };
  const std::vector<Case2> c2 = {
      {{1, 2, 5, 5}, {2, 2, 3, 3}, 1, 1, 1, 1},
      {{2, 2, 6, 5}, {4, 1, 3, 2}, {2, 1}, {1, 0}, {1, 2}, 2},
      {{1, 3, 6, 6}, {3, 1, 3, 3}, 2, 2, 2, 3},  // depthwise
      {{1, 1, 8, 8}, {3, 1, 4, 4}, 4, 0, 1, 1},  // patch embedding
  };
  for (const auto& c : c2) {
    INFO("conv2d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " groups ", c.groups);
    const Tensor x = leaf(c.x, -1, 1, 25), w = leaf(c.w, -1, 1, 26), b = leaf({c.w[0]}, -1, 1, 27);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv2d(in[0], in[1], in[2], c.stride, c.padding, c.dilation, c.groups);
        },
        {x, w, b});
    // each input alone: the other gradients must not be needed
    const Tensor xc = x.detach(), wc = w.detach();
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv2d(xc, in[0], Tensor(), c.stride, c.padding, c.dilation, c.groups);
        },
        {w});
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv2d(xc, wc, in[0], c.stride, c.padding, c.dilation, c.groups);
        },
        {b});
  }
}

TEST_CASE("conv_transpose1d and conv_transpose2d pass the f64 gradcheck over the option space") {
  struct Case1 {
    Shape x, w;
    int64_t stride, padding, output_padding, groups, dilation;
  };
  const std::vector<Case1> c1 = {
      {{2, 2, 4}, {2, 3, 3}, 1, 0, 0, 1, 1}, {{1, 4, 4}, {4, 2, 3}, 2, 1, 1, 2, 1},
      {{1, 3, 5}, {3, 2, 2}, 3, 0, 2, 3, 1},  // depthwise, multiplier 2
      {{1, 2, 4}, {2, 2, 3}, 1, 1, 1, 1, 2},  // output_padding below the dilation only
      {{1, 2, 3}, {2, 1, 2}, 2, 0, 0, 1, 3},
  };
  for (const auto& c : c1) {
    INFO("conv_transpose1d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.stride, " padding ",
         c.padding, " output_padding ", c.output_padding, " groups ", c.groups, " dilation ", c.dilation);
    const Tensor x = leaf(c.x, -1, 1, 31), w = leaf(c.w, -1, 1, 32), b = leaf({c.w[1] * c.groups}, -1, 1, 33);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv_transpose1d(in[0], in[1], in[2], c.stride, c.padding, c.output_padding, c.groups,
                                       c.dilation);
        },
        {x, w, b});
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv_transpose1d(in[0], in[1], Tensor(), c.stride, c.padding, c.output_padding, c.groups,
                                       c.dilation);
        },
        {leaf({c.x[1], c.x[2]}, -1, 1, 34), w});
  }
  struct Case2 {
    Shape x, w;
    Size2 stride, padding, output_padding;
    int64_t groups;
    Size2 dilation;
  };
  const std::vector<Case2> c2 = {
      {{1, 2, 3, 3}, {2, 2, 3, 3}, 1, 1, 0, 1, 1},
      {{1, 2, 3, 4}, {2, 2, 3, 2}, {2, 1}, {1, 0}, {1, 0}, 2, {1, 2}},
      {{1, 3, 2, 2}, {3, 1, 4, 4}, 4, 0, 0, 1, 1},  // inverse patch embedding
  };
  for (const auto& c : c2) {
    INFO("conv_transpose2d x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " groups ", c.groups);
    const Tensor x = leaf(c.x, -1, 1, 35), w = leaf(c.w, -1, 1, 36), b = leaf({c.w[1] * c.groups}, -1, 1, 37);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::conv_transpose2d(in[0], in[1], in[2], c.stride, c.padding, c.output_padding, c.groups,
                                       c.dilation);
        },
        {x, w, b});
  }
}

TEST_CASE("conv_transpose is the adjoint of conv in its input, with the same weight") {
  struct Case {
    Shape x, w;
    int64_t stride, padding, dilation, groups;
  };
  const std::vector<Case> cases = {
      {{2, 3, 6, 7}, {4, 3, 3, 3}, 1, 1, 1, 1},
      {{1, 4, 9, 8}, {6, 2, 3, 2}, 2, 1, 1, 2},
      {{1, 3, 10, 9}, {3, 1, 3, 3}, 3, 2, 2, 3},
      {{1, 1, 8, 8}, {8, 1, 4, 4}, 4, 0, 1, 1},
  };
  for (const auto& c : cases) {
    INFO("x ", shape_to_string(c.x), " w ", shape_to_string(c.w), " stride ", c.stride, " padding ", c.padding,
         " dilation ", c.dilation, " groups ", c.groups);
    for (DType dt : {DType::f64, DType::f32}) {
      INFO("dtype ", dt);
      const Tensor x = values_f64(c.x, 41).to(dt), w = values_f64(c.w, 42).to(dt);
      const Tensor cx = ops::conv2d(x, w, Tensor(), c.stride, c.padding, c.dilation, c.groups);
      const Tensor y = values_f64(cx.sizes(), 43).to(dt);
      // The output_padding that brings conv_transpose's output back to x's size (below the stride).
      auto output_padding = [&](int d) {
        return c.x[2 + d] - ((cx.size(2 + d) - 1) * c.stride - 2 * c.padding + c.dilation * (c.w[2 + d] - 1) + 1);
      };
      const Tensor ty = ops::conv_transpose2d(y, w, Tensor(), c.stride, c.padding,
                                              {output_padding(0), output_padding(1)}, c.groups, c.dilation);
      REQUIRE(ty.sizes() == x.sizes());
      const double lhs = dot(cx, y), rhs = dot(x, ty);
      CHECK(std::abs(lhs - rhs) <= (dt == DType::f64 ? 1e-12 : 1e-4) * (1 + std::abs(lhs)));
    }
  }
  // 1-D, Conformer depthwise geometry
  const Tensor x = values_f64({1, 8, 50}, 44), w = values_f64({8, 1, 33}, 45), y = values_f64({1, 8, 50}, 46);
  const double lhs = dot(ops::conv1d(x, w, Tensor(), 1, 16, 1, 8), y);
  const double rhs = dot(x, ops::conv_transpose1d(y, w, Tensor(), 1, 16, 0, 8));
  CHECK(std::abs(lhs - rhs) <= 1e-12 * (1 + std::abs(lhs)));
}

// The f64 gradchecks never run the f32 kernels; these run them forward and backward on the same
// inputs (f32 values, exact in f64) and bound the relative L2 error by 1e-6 * log2(K), K being the
// number of terms behind each output: forward Cg * KH * KW, input gradient about Og * KH * KW /
// stride^2 taps, weight and bias gradients N * OH * OW.
TEST_CASE("conv f32 (oneDNN and depthwise loops) matches the f64 path forward and backward at model shapes") {
  auto conv1d = [](int64_t padding, int64_t groups) {
    return [=](const std::vector<Tensor>& in) { return ops::conv1d(in[0], in[1], in[2], 1, padding, 1, groups); };
  };
  // Conformer depthwise conv module: 256 channels x 626 frames, 33 taps. x K = 33; dw, db K = 626.
  compare_f32_f64(conv1d(16, 256), {f32_leaf({1, 256, 626}, 1), f32_leaf({256, 1, 33}, 2), f32_leaf({256}, 3)},
                  {33, 33, 626, 626}, "depthwise conv1d k=33");
  // Conformer pointwise 256 -> 512 over 626 frames: y K = 256, dx K = 512, dw, db K = 626.
  compare_f32_f64(conv1d(0, 1), {f32_leaf({1, 256, 626}, 4), f32_leaf({512, 256, 1}, 5), f32_leaf({512}, 6)},
                  {256, 512, 626, 626}, "pointwise conv1d 256->512");
  // HTSAT patch embedding 1 -> 128, 4x4 stride 4 on 256x256: y K = 16, dx K = 128, dw, db K = 64 * 64.
  compare_f32_f64([](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], 4); },
                  {f32_leaf({1, 1, 256, 256}, 7), f32_leaf({128, 1, 4, 4}, 8), f32_leaf({128}, 9)},
                  {16, 128, 4096, 4096}, "patch embedding conv2d");
  // Its inverse, conv_transpose2d 128 -> 1 on 64x64: y K = 128, dx K = 16, dw K = 4096, db K = 256 * 256.
  compare_f32_f64([](const std::vector<Tensor>& in) { return ops::conv_transpose2d(in[0], in[1], in[2], 4); },
                  {f32_leaf({1, 128, 64, 64}, 10), f32_leaf({128, 1, 4, 4}, 11), f32_leaf({1}, 12)},
                  {128, 16, 4096, 65536}, "inverse patch embedding conv_transpose2d");
  // A grouped, padded 3x3 conv over a batch: y K = 8 * 9, dx K = 16 * 9, dw, db K = 2 * 24 * 24.
  compare_f32_f64([](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], 1, 1, 1, 2); },
                  {f32_leaf({2, 16, 24, 24}, 13), f32_leaf({32, 8, 3, 3}, 14), f32_leaf({32}, 15)},
                  {72, 144, 1152, 1152}, "grouped conv2d 3x3");
  // A strided transposed conv with output_padding (a negative right padding for oneDNN):
  // y K = 16 * 9 / 4, dx K = 8 * 9, dw K = 2 * 12 * 12, db K = 2 * 24 * 24.
  compare_f32_f64([](const std::vector<Tensor>& in) { return ops::conv_transpose2d(in[0], in[1], in[2], 2, 1, 1); },
                  {f32_leaf({2, 16, 12, 12}, 16), f32_leaf({16, 8, 3, 3}, 17), f32_leaf({8}, 18)}, {36, 72, 288, 1152},
                  "conv_transpose2d stride 2, output_padding 1");
}

TEST_CASE("conv ops reject bad arguments with messages naming the op, the argument and the shapes") {
  const Tensor x = ops::zeros({2, 4, 10}), w = ops::zeros({6, 2, 3});
  auto msg = [](const std::function<void()>& f) { return thrown_message<ValueError>(f); };
  std::string m = msg([&] { ops::conv1d(ops::zeros({4}), w); });
  CHECK(contains(m, "conv1d"));
  CHECK(contains(m, "'input'"));
  CHECK(contains(m, "[4]"));
  m = msg([&] { ops::conv1d(x, ops::zeros({6, 2})); });
  CHECK(contains(m, "'weight'"));
  CHECK(contains(m, "[6, 2]"));
  m = msg([&] { ops::conv1d(x, w); });  // 4 channels, weight expects 2 * 1
  CHECK(contains(m, "[2, 4, 10]"));
  CHECK(contains(m, "[6, 2, 3]"));
  CHECK(contains(m, "groups = 1"));
  m = msg([&] { ops::conv1d(ops::zeros({2, 6, 10}), ops::zeros({4, 2, 3}), Tensor(), 1, 0, 1, 3); });
  CHECK(contains(m, "not divisible by groups = 3"));
  m = msg([&] { ops::conv1d(x, w, ops::zeros({5}), 1, 0, 1, 2); });
  CHECK(contains(m, "'bias'"));
  CHECK(contains(m, "[5]"));
  CHECK(contains(msg([&] { ops::conv1d(x, w, Tensor(), 0, 0, 1, 2); }), "'stride' must be positive, got 0"));
  CHECK(contains(msg([&] { ops::conv1d(x, w, Tensor(), 1, -1, 1, 2); }), "'padding' must be non-negative, got -1"));
  CHECK(contains(msg([&] { ops::conv1d(x, w, Tensor(), 1, 0, 0, 2); }), "'dilation' must be positive, got 0"));
  CHECK(contains(msg([&] { ops::conv1d(x, w, Tensor(), 1, 0, 1, 0); }), "'groups' must be positive, got 0"));
  m = msg([&] { ops::conv1d(ops::zeros({1, 2, 3}), ops::zeros({1, 2, 3}), Tensor(), 1, 0, 2); });
  CHECK(contains(m, "dilated kernel size 5"));
  CHECK(contains(m, "[1, 2, 3]"));
  m = msg([&] { ops::conv2d(ops::zeros({1, 2, 3, 8}), ops::zeros({1, 2, 4, 3})); });
  CHECK(contains(m, "conv2d"));
  CHECK(contains(m, "[3, 8]"));
  CHECK(contains(m, "[4, 3]"));
  CHECK(contains(msg([&] {
                   ops::conv2d(ops::zeros({1, 2, 3, 8}), ops::zeros({1, 2, 1, 1}), Tensor(), {1, 0});
                 }),
                 "'stride' must be positive, got [1, 0]"));
  CHECK(contains(msg([&] { ops::conv1d(x, w, Tensor(), 2, "same", 1, 2); }), "strided"));
  CHECK(contains(msg([&] { ops::conv1d(x, w, Tensor(), 1, "full", 1, 2); }), "unknown padding mode 'full'"));
  CHECK(contains(msg([&] { ops::conv1d(ops::zeros({2, 4, 0}), w, Tensor(), 1, 1, 1, 2); }), "zero-size"));
  CHECK(contains(msg([&] { ops::conv1d(x, ops::zeros({6, 0, 3}), Tensor(), 1, 0, 1, 2); }), "zero-size"));
  // dtypes: mismatched, non-floating, undefined
  m = msg([&] { ops::conv1d(x, ops::zeros({6, 2, 3}, DType::f64), Tensor(), 1, 0, 1, 2); });
  CHECK(contains(m, "dtype mismatch"));
  CHECK(contains(m, "float64"));
  m = msg([&] { ops::conv1d(x, w, ops::zeros({6}, DType::f64), 1, 0, 1, 2); });
  CHECK(contains(m, "'bias'"));
  CHECK(contains(m, "float64"));
  CHECK(contains(msg([&] {
                   ops::conv1d(ops::zeros({2, 4, 10}, DType::i64), ops::zeros({6, 2, 3}, DType::i64));
                 }),
                 "float32 or float64"));
  CHECK(contains(msg([&] { ops::conv1d(Tensor(), w); }), "'input' is an undefined tensor"));
  CHECK(contains(msg([&] { ops::conv2d(ops::zeros({1, 2, 3, 3}), Tensor()); }), "'weight' is an undefined tensor"));
  // transposed: weight (Cin, Cout / groups, k), output_padding, output size
  m = msg([&] { ops::conv_transpose1d(x, ops::zeros({3, 2, 3})); });
  CHECK(contains(m, "conv_transpose1d"));
  CHECK(contains(m, "in_channels = 3"));
  m = msg([&] { ops::conv_transpose1d(x, ops::zeros({4, 2, 3}), Tensor(), 2, 0, 2); });
  CHECK(contains(m, "output_padding 2 must be smaller than stride 2 or dilation 1"));
  m = msg([&] { ops::conv_transpose2d(ops::zeros({1, 4, 1, 1}), ops::zeros({4, 2, 1, 1}), Tensor(), 1, 1); });
  CHECK(contains(m, "output size [-1, -1] is not positive"));
  CHECK(contains(m, "[1, 4, 1, 1]"));
  CHECK(contains(msg([&] {
                   ops::conv_transpose1d(x, ops::zeros({4, 2, 3}), ops::zeros({3}));
                 }),
                 "must have shape [2]"));
  CHECK(contains(msg([&] {
                   ops::conv_transpose1d(x, ops::zeros({4, 2, 3}), Tensor(), 1, 0, 0, 3);
                 }),
                 "not divisible by groups = 3"));
}

TEST_CASE("conv ops read non-contiguous inputs and weights correctly") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", dt);
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    // x (N, C, L) stored as (N, L, C); a weight stored transposed; a step-2 slice of a longer signal.
    const Tensor x_nlc = values_f64({2, 12, 4}, 51).to(dt), w_t = values_f64({3, 4, 5}, 52).to(dt),
                 b = values_f64({5}, 53).to(dt);
    const Tensor x = x_nlc.transpose(1, 2), w = w_t.transpose(0, 2);  // (2, 4, 12), (5, 4, 3)
    check_close(ops::conv1d(x, w, b, 2, 1), values(ops::conv1d(x.contiguous(), w.contiguous(), b, 2, 1)), tol);
    const Tensor sl = values_f64({2, 4, 24}, 54).to(dt).slice(2, 0, 24, 2);
    check_close(ops::conv1d(sl, w, b, 1, 1), values(ops::conv1d(sl.contiguous(), w.contiguous(), b, 1, 1)), tol);
    // conv2d on an NHWC-stored image; conv_transpose2d on a sliced batch; an expanded bias
    const Tensor img = values_f64({1, 6, 7, 3}, 55).to(dt).permute({0, 3, 1, 2});
    const Tensor w2 = values_f64({4, 3, 3, 3}, 56).to(dt), b2 = values_f64({1}, 57).to(dt).expand({4});
    check_close(ops::conv2d(img, w2, b2, 1, 1), values(ops::conv2d(img.contiguous(), w2, b2.contiguous(), 1, 1)), tol);
    const Tensor xb = values_f64({4, 3, 5, 5}, 58).to(dt).slice(0, 1, 4, 2), wt = values_f64({3, 2, 3, 3}, 59).to(dt);
    check_close(ops::conv_transpose2d(xb, wt, Tensor(), 2, 1, 1),
                values(ops::conv_transpose2d(xb.contiguous(), wt, Tensor(), 2, 1, 1)), tol);
  }
  // gradients flow back through the views
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::conv1d(in[0].transpose(1, 2), in[1], in[2], 2, 1); },
                  {leaf({2, 6, 3}, -1, 1, 60), leaf({2, 3, 3}, -1, 1, 61), leaf({2}, -1, 1, 62)});
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return ops::conv_transpose2d(in[0].permute({0, 3, 1, 2}), in[1], Tensor(), 2);
      },
      {leaf({1, 3, 3, 2}, -1, 1, 63), leaf({2, 2, 2, 2}, -1, 1, 64)});
}

TEST_CASE("conv ops handle an empty batch: empty results, zero weight and bias gradients") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO("dtype ", dt);
    for (int64_t groups : {1, 4}) {
      INFO("groups ", groups);
      Tensor x = ops::zeros({0, 4, 10}, dt).requires_grad_();
      Tensor w = ops::ones({4, 4 / groups, 3}, dt).requires_grad_(), b = ops::ones({4}, dt).requires_grad_();
      const Tensor y = ops::conv1d(x, w, b, 1, 1, 1, groups);
      CHECK(y.sizes() == Shape{0, 4, 10});
      auto g = autograd::grad({y}, {x, w, b}, {ops::ones({0, 4, 10}, dt)});
      CHECK(g[0].sizes() == Shape{0, 4, 10});
      check_close(g[1], std::vector<double>(static_cast<size_t>(w.numel()), 0.0), 0);
      check_close(g[2], std::vector<double>(4, 0.0), 0);
      const Tensor yt = ops::conv_transpose1d(x, w, b, 2, 0, 1, groups);
      CHECK(yt.sizes() == Shape{0, 4 / groups * groups, 22});
      g = autograd::grad({yt}, {x, w, b}, {ops::ones(yt.sizes(), dt)});
      CHECK(g[0].sizes() == Shape{0, 4, 10});
      check_close(g[1], std::vector<double>(static_cast<size_t>(w.numel()), 0.0), 0);
      check_close(g[2], std::vector<double>(4 / groups * groups, 0.0), 0);
    }
  }
}

TEST_CASE("conv: a second identical f32 call reuses the cached primitives") {
  using cpu::onednn::primitive_cache_stats;
  // Shapes no other test uses, so the first calls are misses.
  Tensor x = f32_leaf({1, 6, 29}, 71), w = f32_leaf({10, 6, 3}, 72), b = f32_leaf({10}, 73);
  const auto s0 = primitive_cache_stats();
  const Tensor y1 = ops::conv1d(x, w, b, 1, 1);
  const auto s1 = primitive_cache_stats();
  CHECK(s1.misses > s0.misses);
  const Tensor y2 = ops::conv1d(x, w, b, 1, 1);
  const auto s2 = primitive_cache_stats();
  CHECK(s2.misses == s1.misses);
  CHECK(s2.hits > s1.hits);
  CHECK(values(y1) == values(y2));
  // the backward passes too: the second backward creates nothing
  autograd::grad({y2}, {x, w, b}, {ops::ones(y2.sizes())});
  const auto s3 = primitive_cache_stats();
  CHECK(s3.misses > s2.misses);
  autograd::grad({ops::conv1d(x, w, b, 1, 1)}, {x, w, b}, {ops::ones(y2.sizes())});
  CHECK(primitive_cache_stats().misses == s3.misses);
  // another stride is another problem
  ops::conv1d(x, w, b, 2, 1);
  CHECK(primitive_cache_stats().misses > s3.misses);
}

TEST_CASE("conv forward gives the same values with and without a tape") {
  const Tensor x = f32_leaf({2, 8, 30}, 81), w = f32_leaf({12, 8, 5}, 82), b = f32_leaf({12}, 83);
  const Tensor with_grad = ops::conv1d(x, w, b, 2, 2);
  REQUIRE(with_grad.requires_grad());
  NoGradGuard ng;
  const Tensor without = ops::conv1d(x, w, b, 2, 2);
  CHECK_FALSE(without.requires_grad());
  CHECK(test::rel_l2(without, with_grad) <= 1e-7);
}
