// avg_pool1d, avg_pool2d: a naive f64 reference (PyTorch's window loops) in f64 and f32 for every
// combination of ceil_mode x count_include_pad x padding x stride x kernel, PyTorch's edge cases
// by hand (the ceil_mode overhang, the dropped window that would start in the right padding),
// divisor_override, f64 gradchecks, non-contiguous and unbatched inputs, 0-size batches, the f32
// kernels against the f64 path at model shapes, and errors.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/ops/pooling.hpp"

using namespace tse;
using tse::test::compare_f32_f64;
using tse::test::contains;
using tse::test::counting;
using tse::test::f32_leaf;
using tse::test::leaf;
using tse::test::thrown_message;
using tse::test::values;

namespace {

struct Pool2d {
  int64_t kh, kw, sh, sw, ph, pw;
  bool ceil_mode, count_include_pad;
  std::optional<int64_t> divisor;
};

std::string describe(const Pool2d& p) {
  std::string s = "kernel " + std::to_string(p.kh) + "x" + std::to_string(p.kw) + " stride " + std::to_string(p.sh) +
                  "x" + std::to_string(p.sw) + " padding " + std::to_string(p.ph) + "x" + std::to_string(p.pw);
  s += p.ceil_mode ? " ceil" : " floor";
  s += p.count_include_pad ? " include_pad" : " exclude_pad";
  if (p.divisor) s += " divisor " + std::to_string(*p.divisor);
  return s;
}

/// PyTorch's pooling_output_shape.
int64_t ref_out_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t out = (in + 2 * p - k + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

/// PyTorch's CPU avg_pool2d loops, on the logical values of x (N, C, H, W); sets *out_sizes.
std::vector<double> ref_avg_pool2d(const Tensor& x, const Pool2d& p, Shape* out_sizes) {
  const std::vector<double> v = values(x);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = ref_out_size(H, p.kh, p.sh, p.ph, p.ceil_mode),
                OW = ref_out_size(W, p.kw, p.sw, p.pw, p.ceil_mode);
  std::vector<double> out;
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
        int64_t h1 = std::min(h0 + p.kh, H + p.ph), w1 = std::min(w0 + p.kw, W + p.pw);
        const int64_t pool_size = (h1 - h0) * (w1 - w0);
        h0 = std::max<int64_t>(h0, 0);
        w0 = std::max<int64_t>(w0, 0);
        h1 = std::min(h1, H);
        w1 = std::min(w1, W);
        double sum = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) sum += v[(nc * H + h) * W + w];
        const int64_t divide = p.divisor ? *p.divisor : p.count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
        out.push_back(sum / static_cast<double>(divide));
      }
  *out_sizes = {N, C, OH, OW};
  return out;
}

Tensor pool2d(const Tensor& x, const Pool2d& p) {
  return ops::avg_pool2d(x, {p.kh, p.kw}, {p.sh, p.sw}, {p.ph, p.pw}, p.ceil_mode, p.count_include_pad, p.divisor);
}

/// avg_pool1d as the reference's 2-D pool with a 1 x k kernel.
Pool2d as_2d(int64_t k, int64_t s, int64_t p, bool ceil_mode, bool include) {
  return {1, k, 1, s, 0, p, ceil_mode, include, std::nullopt};
}

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  const std::vector<double> g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element ", i, ": got ", g[i], " want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

/// Every option combination with padding <= kernel / 2 that gives a non-empty output for an
/// input of h x w (both kernels, strides below, equal to and above the kernel).
std::vector<Pool2d> option_grid(int64_t h, int64_t w) {
  std::vector<Pool2d> grid;
  const int64_t kernels[][2] = {{3, 3}, {2, 3}, {1, 2}};
  const int64_t strides[][2] = {{1, 1}, {2, 2}, {3, 3}, {2, 1}, {1, 4}};
  for (const auto& k : kernels)
    for (const auto& s : strides)
      for (int64_t ph = 0; ph <= k[0] / 2; ++ph)
        for (int64_t pw = 0; pw <= k[1] / 2; ++pw)
          for (bool ceil_mode : {false, true})
            for (bool include : {false, true}) {
              if (ref_out_size(h, k[0], s[0], ph, ceil_mode) < 1 || ref_out_size(w, k[1], s[1], pw, ceil_mode) < 1)
                continue;
              grid.push_back({k[0], k[1], s[0], s[1], ph, pw, ceil_mode, include, std::nullopt});
            }
  return grid;
}

}  // namespace

TEST_CASE("avg_pool2d matches PyTorch's loops for every ceil_mode x count_include_pad x padding x stride") {
  // 7 x 6 puts ceil_mode overhangs, dropped windows and unread tails on both axes.
  const Tensor x = leaf({2, 3, 7, 6}, -1, 1, 1).detach();
  const std::vector<Pool2d> grid = option_grid(7, 6);
  CHECK(grid.size() > 100);
  for (const Pool2d& p : grid) {
    INFO(describe(p));
    Shape sizes;
    const std::vector<double> want = ref_avg_pool2d(x, p, &sizes);
    const Tensor y = pool2d(x, p);
    CHECK(y.sizes() == sizes);
    check_close(y, want, 1e-14);
    const Tensor x32 = x.to(DType::f32);
    const Tensor y32 = pool2d(x32, p);
    CHECK(y32.dtype() == DType::f32);
    check_close(y32, ref_avg_pool2d(x32, p, &sizes), 1e-6);
    // unbatched (C, H, W) is the same pool
    CHECK(values(pool2d(x.select(0, 1), p)) == values(y.select(0, 1)));
  }
}

TEST_CASE("avg_pool2d with divisor_override divides every window sum by the override") {
  const Tensor x = leaf({1, 2, 5, 7}, -1, 1, 2).detach();
  for (int64_t d : {1, 5, -3}) {
    for (Pool2d p : {Pool2d{3, 3, 2, 2, 1, 1, true, true, std::nullopt}, Pool2d{2, 2, 2, 2, 0, 0, false, false, {}},
                     Pool2d{3, 2, 1, 3, 1, 0, true, false, {}}}) {
      p.divisor = d;
      INFO(describe(p));
      Shape sizes;
      check_close(pool2d(x, p), ref_avg_pool2d(x, p, &sizes), 1e-14);
      check_close(pool2d(x.to(DType::f32), p), ref_avg_pool2d(x.to(DType::f32), p, &sizes), 1e-6);
    }
  }
  // by hand: 2x2 sums of 1..16 over 4x4, divided by 3
  const Tensor c = counting({1, 1, 4, 4});
  check_close(ops::avg_pool2d(c, {2}, {}, {0}, false, true, 3), {14.0 / 3, 22.0 / 3, 46.0 / 3, 54.0 / 3}, 1e-15);
}

TEST_CASE("avg_pool1d matches PyTorch's loops for every option combination") {
  const Tensor x = leaf({2, 3, 11}, -1, 1, 3).detach();
  for (int64_t k : {1, 2, 3, 4, 5})
    for (int64_t s : {0, 1, 2, 3, 5, 6})
      for (int64_t p = 0; p <= k / 2; ++p)
        for (bool ceil_mode : {false, true})
          for (bool include : {false, true}) {
            const Pool2d p2 = as_2d(k, s == 0 ? k : s, p, ceil_mode, include);
            INFO(describe(p2), " (1-D, stride argument ", s, ")");
            Shape sizes;
            const std::vector<double> want = ref_avg_pool2d(x.unsqueeze(2), p2, &sizes);
            const Tensor y = ops::avg_pool1d(x, k, s, p, ceil_mode, include);
            CHECK(y.sizes() == Shape{2, 3, sizes[3]});
            check_close(y, want, 1e-14);
            check_close(ops::avg_pool1d(x.to(DType::f32), k, s, p, ceil_mode, include),
                        ref_avg_pool2d(x.to(DType::f32).unsqueeze(2), p2, &sizes), 1e-6);
            CHECK(values(ops::avg_pool1d(x.select(0, 0), k, s, p, ceil_mode, include)) == values(y.select(0, 0)));
          }
}

TEST_CASE("avg_pool follows PyTorch at the ceil_mode edges, checked by hand") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    // L = 6, kernel 3, stride 2, padding 1, ceil_mode: windows start at -1, 1, 3, 5; the last one,
    // [5, 8), overhangs the padded input [-1, 7) by one: include_pad divides it by 2, not 3.
    const Tensor ones6 = ops::ones({1, 1, 6}, dt);
    check_close(ops::avg_pool1d(ones6, 3, 2, 1, true, true), {2.0 / 3, 1, 1, 0.5}, 1e-7);
    check_close(ops::avg_pool1d(ones6, 3, 2, 1, true, false), {1, 1, 1, 1}, 1e-7);
    check_close(ops::avg_pool1d(ones6, 3, 2, 1, false, true), {2.0 / 3, 1, 1}, 1e-7);
    // L = 5, kernel 2, stride 2, padding 1, ceil_mode: a 4th window would start at 5, in the
    // right padding; PyTorch drops it.
    const Tensor ones5 = ops::ones({1, 1, 5}, dt);
    check_close(ops::avg_pool1d(ones5, 2, 2, 1, true, true), {0.5, 1, 1}, 1e-7);
    // L = 4, kernel 3, stride 2, padding 1: ceil_mode adds the window [3, 6) of 1 input element,
    // 1 padded zero and 1 element of overhang.
    const Tensor c4 = counting({1, 1, 4}, dt);
    check_close(ops::avg_pool1d(c4, 3, 2, 1, false, true), {1.0, 3.0}, 1e-7);
    check_close(ops::avg_pool1d(c4, 3, 2, 1, true, true), {1.0, 3.0, 2.0}, 1e-7);
    check_close(ops::avg_pool1d(c4, 3, 2, 1, true, false), {1.5, 3.0, 4.0}, 1e-7);
    // A kernel wider than the input is fine while a window fits: L = 2, kernel 5, stride 4, ceil.
    check_close(ops::avg_pool1d(ops::ones({1, 1, 2}, dt), 5, 4, 2, true, true), {2.0 / 5}, 1e-7);
    // 2-D: both axes overhang at once (4 x 4, kernel 3, stride 2, padding 1, ceil_mode).
    const Tensor y = ops::avg_pool2d(ops::ones({1, 1, 4, 4}, dt), {3}, {2}, {1}, true, true);
    check_close(y, {4.0 / 9, 2.0 / 3, 1.0 / 3, 2.0 / 3, 1, 0.5, 1.0 / 3, 0.5, 0.25}, 1e-7);
  }
}

TEST_CASE("avg_pool1d and avg_pool2d pass the f64 gradcheck over the option space") {
  const Tensor x = leaf({1, 2, 5, 6}, -1, 1, 4);
  const std::vector<Pool2d> cases = {
      {2, 2, 2, 2, 0, 0, false, true, std::nullopt},  // the model's 2x2
      {3, 3, 1, 1, 1, 1, false, true, std::nullopt},  // overlapping windows
      {3, 3, 2, 2, 1, 1, true, true, std::nullopt},   // ceil overhang, include_pad
      {3, 3, 2, 2, 1, 1, true, false, std::nullopt},  // ceil overhang, exclude_pad
      {2, 3, 3, 1, 1, 1, true, false, std::nullopt},  // stride > kernel along H (unread rows)
      {3, 2, 2, 3, 0, 1, true, true, std::nullopt},   // stride > kernel along W
      {3, 3, 2, 2, 1, 0, false, true, 4},             // divisor_override
  };
  for (const Pool2d& p : cases) {
    INFO(describe(p));
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return pool2d(in[0], p); }, {x});
  }
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return pool2d(in[0].transpose(2, 3), {2, 3, 1, 2, 1, 1, true, false, {}});
      },
      {x});
  const Tensor x1 = leaf({2, 2, 9}, -1, 1, 5);
  const std::vector<Pool2d> cases1d = {as_2d(4, 4, 0, false, true), as_2d(3, 2, 1, true, true),
                                       as_2d(3, 2, 1, true, false), as_2d(2, 3, 1, false, true),
                                       as_2d(5, 1, 2, false, false)};
  for (const Pool2d& p : cases1d) {
    INFO("1-D ", describe(p));
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return ops::avg_pool1d(in[0], p.kw, p.sw, p.pw, p.ceil_mode, p.count_include_pad);
        },
        {x1});
  }
}

TEST_CASE("avg_pool reads transposed, permuted and sliced inputs like their contiguous copies") {
  const Tensor base = leaf({2, 6, 8, 10}, -1, 1, 6).detach();
  for (DType dt : {DType::f64, DType::f32}) {
    const Tensor b = base.to(dt);
    const Pool2d p{3, 2, 2, 2, 1, 1, true, false, std::nullopt};
    for (const Tensor& v : {b.transpose(2, 3), b.permute({1, 0, 2, 3}), b.slice(3, 1, 10, 2), b.slice(1, 0, 6, 3)}) {
      INFO(std::string(dtype_name(dt)), " view of shape ", v.shape_str());
      REQUIRE(!v.is_contiguous());
      Shape sizes;
      const Tensor y = pool2d(v, p);
      CHECK(values(y) == values(pool2d(v.contiguous(), p)));
      check_close(y, ref_avg_pool2d(v, p, &sizes), dt == DType::f64 ? 1e-14 : 1e-6);
    }
    const Tensor v1 = b.select(0, 0).transpose(0, 2).slice(0, 0, 10, 3);  // (4, 8, 6) -> pool over the last dim
    CHECK(values(ops::avg_pool1d(v1, 3, 2, 1, true)) == values(ops::avg_pool1d(v1.contiguous(), 3, 2, 1, true)));
  }
}

TEST_CASE("avg_pool gives the same bits whatever the thread count splits") {
  // 3 planes of 301 rows: two or three threads split the rows inside a plane, where the
  // backward's ring of spread rows restarts.
  const Tensor x = leaf({1, 3, 301, 257}, -1, 1, 7).detach().to(DType::f32).requires_grad_();
  const Tensor g = leaf({1, 3, 151, 129}, -1, 1, 8).detach().to(DType::f32);
  tse::test::check_same_bits_across_threads([&] {
    const Tensor y = ops::avg_pool2d(x, {3}, {2}, {1}, true, true);
    return std::vector<Tensor>{y, autograd::grad({y}, {x}, {g})[0]};
  });
}

TEST_CASE("avg_pool of an empty batch gives an empty result and gradient") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = ops::zeros({0, 3, 4, 4}, dt).requires_grad_();
    const Tensor y = ops::avg_pool2d(x, {2});
    CHECK(y.sizes() == Shape{0, 3, 2, 2});
    CHECK(autograd::grad({y}, {x}, {ops::zeros({0, 3, 2, 2}, dt)})[0].sizes() == Shape{0, 3, 4, 4});
    Tensor x1 = ops::zeros({0, 2, 9}, dt).requires_grad_();
    const Tensor y1 = ops::avg_pool1d(x1, 3, 2, 1, true);
    CHECK(y1.sizes() == Shape{0, 2, 5});
    CHECK(autograd::grad({y1}, {x1}, {ops::zeros({0, 2, 5}, dt)})[0].sizes() == Shape{0, 2, 9});
  }
}

// No oneDNN here (see src/cpu/pooling.cpp), but the f32 instantiation of the loops still has to
// hold float32 rounding at the model shapes. K is the window size: every output sums one window,
// every input gradient one (non-overlapping) window's share.
TEST_CASE("avg_pool f32 matches the f64 path forward and backward at model shapes") {
  auto p2 = [](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], {2}, {2}); };
  compare_f32_f64(p2, {f32_leaf({1, 64, 256, 64}, 1)}, {4, 4}, "avg_pool2d 2x2 on 1x64x256x64");
  auto p1 = [](const std::vector<Tensor>& in) { return ops::avg_pool1d(in[0], 4); };
  compare_f32_f64(p1, {f32_leaf({1, 256, 1024}, 2)}, {4, 4}, "avg_pool1d 4 on 1x256x1024");
  // overlapping 3x3 windows, padding and ceil_mode: 9 terms per output, up to 9 windows per input
  auto p3 = [](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], {3}, {1}, {1}, true, false); };
  compare_f32_f64(p3, {f32_leaf({2, 16, 33, 31}, 3)}, {9, 9}, "avg_pool2d 3x3 stride 1");
}

TEST_CASE("avg_pool rejects bad arguments with messages naming the op, argument and shape") {
  const Tensor x = ops::zeros({2, 3, 8, 8});
  auto msg = [](auto&& f) { return thrown_message<ValueError>(f); };
  std::string m = msg([&] { ops::avg_pool2d(x, {3}, {1}, {2}); });
  CHECK(contains(m, "avg_pool2d"));
  CHECK(contains(m, "padding 2"));
  CHECK(contains(m, "half"));
  CHECK(contains(m, "[2, 3, 8, 8]"));
  m = msg([&] { ops::avg_pool2d(x, {9, 2}); });
  CHECK(contains(m, "empty"));
  CHECK(contains(m, "kernel_size 9"));
  CHECK(contains(m, "[2, 3, 8, 8]"));
  m = msg([&] { ops::avg_pool1d(ops::zeros({1, 2, 3}), 8, 1, 2); });  // kernel 8 > padded input 3 + 2 * 2
  CHECK(contains(m, "avg_pool1d"));
  CHECK(contains(m, "empty"));
  m = msg([&] { ops::avg_pool2d(x, {0, 2}); });
  CHECK(contains(m, "kernel_size must be positive"));
  m = msg([&] { ops::avg_pool2d(x, {2}, {2, -1}); });
  CHECK(contains(m, "stride must be positive"));
  CHECK(contains(m, "along W"));
  CHECK(contains(msg([&] { ops::avg_pool2d(x, {2}, {0}); }), "stride must be positive"));
  CHECK(contains(msg([&] { ops::avg_pool1d(ops::zeros({2, 3, 8}), 2, -2); }), "stride must be positive"));
  CHECK(contains(msg([&] { ops::avg_pool1d(ops::zeros({2, 3, 8}), -1); }), "kernel_size must be positive"));
  CHECK(contains(msg([&] { ops::avg_pool2d(x, {3}, {1}, {-1}); }), "non-negative"));
  m = msg([&] { ops::avg_pool2d(ops::zeros({8, 8}), {2}); });
  CHECK(contains(m, "4-D or 3-D"));
  CHECK(contains(m, "[8, 8]"));
  m = msg([&] { ops::avg_pool1d(x, 2); });
  CHECK(contains(m, "avg_pool1d"));
  CHECK(contains(m, "[2, 3, 8, 8]"));
  CHECK(contains(msg([&] { ops::avg_pool2d(ops::zeros({2, 0, 8, 8}), {2}); }), "non-empty"));
  CHECK(contains(msg([&] { ops::avg_pool1d(ops::zeros({3, 0}), 1); }), "non-empty"));
  CHECK(contains(msg([&] { ops::avg_pool2d(x, {2, 2, 2}); }), "'kernel_size'"));
  CHECK(contains(msg([&] { ops::avg_pool2d(x, {2}, {}, {0}, false, true, 0); }), "divisor_override"));
  CHECK(contains(msg([&] { ops::avg_pool2d(ops::zeros({2, 3, 8, 8}, DType::i32), {2}); }), "int32"));
  CHECK(contains(msg([&] { ops::avg_pool1d(Tensor(), 2); }), "'input'"));
}
