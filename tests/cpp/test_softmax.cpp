// softmax, log_softmax: a naive f64 reference (plain loops) in f64 and f32 over every dim, row
// sums and log_softmax == log(softmax), PyTorch's non-finite rules (masks, all -inf, +inf, NaN)
// on both kernels (oneDNN rows and the strided-axis loops), non-contiguous views, 0-D and size-1
// dims, f64 gradchecks over dims, the f32 kernels against the f64 path at model shapes, errors,
// 0-size inputs and the primitive cache.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "src/cpu/onednn_context.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"
#include "tse/ops/softmax.hpp"

using namespace tse;
using tse::test::compare_f32_f64;
using tse::test::contains;
using tse::test::f32_leaf;
using tse::test::leaf;
using tse::test::ravel;
using tse::test::thrown_message;
using tse::test::unravel;
using tse::test::values;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string op_name(bool log) { return log ? "log_softmax" : "softmax"; }

Tensor apply(bool log, const Tensor& x, int64_t dim) { return log ? ops::log_softmax(x, dim) : ops::softmax(x, dim); }

/// Naive softmax / log_softmax of x's logical values along dim (wrapped), by multi-indices.
std::vector<double> ref_softmax(const Tensor& x, int64_t dim, bool log) {
  const std::vector<double> v = values(x);
  const Shape sizes = x.dim() == 0 ? Shape{1} : x.sizes();
  const int64_t d = dim < 0 ? dim + static_cast<int64_t>(sizes.size()) : dim;
  std::vector<double> out(v.size());
  for (int64_t flat = 0; flat < static_cast<int64_t>(v.size()); ++flat) {
    std::vector<int64_t> idx = unravel(flat, sizes);
    double m = -kInf;
    for (idx[d] = 0; idx[d] < sizes[d]; ++idx[d]) m = std::max(m, v[ravel(idx, sizes)]);
    double sum = 0;
    for (idx[d] = 0; idx[d] < sizes[d]; ++idx[d]) sum += std::exp(v[ravel(idx, sizes)] - m);
    const double xv = v[flat];
    out[flat] = log ? (xv - m) - std::log(sum) : std::exp(xv - m) / sum;
  }
  return out;
}

void check_close(const Tensor& got, const std::vector<double>& want, double rtol, double atol) {
  const std::vector<double> g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element ", i, ": got ", g[i], " want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

/// A (rows, n) tensor from rows of values, in dtype.
Tensor rows_of(const std::vector<std::vector<double>>& rows, DType dt) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return ops::from_vector(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, dt);
}

}  // namespace

TEST_CASE("softmax and log_softmax match a naive reference over every dim, in f64 and f32") {
  const Tensor x = leaf({3, 4, 5, 6}, -4, 4, 1).detach();
  for (bool log : {false, true}) {
    for (int64_t dim : {0, 1, 2, 3, -1, -3}) {
      INFO(op_name(log), " dim ", dim);
      check_close(apply(log, x, dim), ref_softmax(x, dim, log), 1e-12, 1e-14);
      const Tensor x32 = x.to(DType::f32);
      const Tensor y32 = apply(log, x32, dim);
      CHECK(y32.dtype() == DType::f32);
      check_close(y32, ref_softmax(x32, dim, log), 2e-6, 1e-7);
    }
  }
  // 1-D and 2-D shapes with rows longer than a vector and ragged tails.
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{33}, Shape{5, 19}}) {
    const Tensor t = leaf(s, -3, 3, 2).detach();
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor tt = t.to(dt);
      check_close(ops::softmax(tt, -1), ref_softmax(tt, -1, false), dt == DType::f64 ? 1e-12 : 2e-6, 1e-14);
      check_close(ops::log_softmax(tt, 0), ref_softmax(tt, 0, true), dt == DType::f64 ? 1e-12 : 2e-6, 1e-7);
    }
  }
}

TEST_CASE("softmax rows sum to 1 and log_softmax equals log(softmax) in f64") {
  const Tensor x = leaf({4, 6, 50}, -10, 10, 3).detach();
  for (int64_t dim : {0, 1, 2}) {
    INFO("dim ", dim);
    for (DType dt : {DType::f64, DType::f32}) {
      const std::vector<double> sums = values(ops::sum(ops::softmax(x.to(dt), dim), {dim}));
      for (double s : sums) CHECK(std::abs(s - 1.0) <= (dt == DType::f64 ? 1e-13 : 1e-6));
    }
    check_close(ops::log_softmax(x, dim), values(ops::log(ops::softmax(x, dim))), 1e-12, 1e-13);
  }
}

TEST_CASE("softmax follows PyTorch for -inf masks, all -inf rows, +inf and NaN, on every kernel") {
  // Row 0: a mask; row 1: all -inf; row 2: +inf; row 3: NaN; row 4: a -100 mask (exp underflows);
  // row 5: two +inf. Every kernel sees these rows: f32 along a unit-stride axis (oneDNN), f32
  // along a strided axis (the transposed copy, dim 0) and f64.
  const std::vector<std::vector<double>> rows = {
      {1.0, -kInf, 2.0, -kInf, 0.5, 3.0, -kInf, 1.5, 0.0},
      {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf},
      {1.0, kInf, 2.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0},
      {1.0, 2.0, kNaN, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0},
      {0.3, -100.0, -100.0, 0.1, -100.0, 0.2, -100.0, -100.0, 0.0},
      {kInf, 0.0, kInf, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0},
  };
  const int64_t n = 9;
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool along_columns : {false, true}) {
      for (bool log : {false, true}) {
        INFO(std::string(dtype_name(dt)), " ", op_name(log),
             std::string(along_columns ? " along dim 0" : " along dim 1"));
        const Tensor x = rows_of(rows, dt);
        // dim 0 of the transposed copy holds the same rows along a strided axis
        const Tensor xin = along_columns ? x.t().contiguous() : x;
        Tensor y = apply(log, xin, along_columns ? 0 : 1);
        if (along_columns) y = y.t().contiguous();
        const std::vector<double> yv = values(y);
        const std::vector<double> want = ref_softmax(x.to(DType::f64), 1, log);
        for (int64_t i = 0; i < n; ++i) {
          INFO("column ", i);
          // masked entries: exactly 0 / -inf; finite entries as the reference
          if (rows[0][i] == -kInf) {
            CHECK(yv[i] == (log ? -kInf : 0.0));
          } else {
            CHECK(std::abs(yv[i] - want[i]) <= 2e-6 * std::abs(want[i]) + 1e-7);
          }
          for (int64_t r : {1, 2, 3, 5}) CHECK(std::isnan(yv[r * n + i]));
          CHECK(std::isfinite(yv[4 * n + i]));
          CHECK(std::abs(yv[4 * n + i] - want[4 * n + i]) <= 2e-6 * std::abs(want[4 * n + i]) + 1e-7);
        }
        // Gradients through the masked row are finite, and 0 at masked entries for softmax.
        const Tensor xm = ops::from_vector(rows[0], {n}, dt).requires_grad_();
        const Tensor ym = apply(log, xm, 0);
        const std::vector<double> g = values(autograd::grad({ym}, {xm}, {leaf({n}, -1, 1, 4).detach().to(dt)})[0]);
        for (int64_t i = 0; i < n; ++i) {
          CHECK(std::isfinite(g[i]));
          if (rows[0][i] == -kInf && !log) CHECK(g[i] == 0.0);
        }
      }
    }
  }
}

TEST_CASE("softmax reads transposed, permuted and sliced views like their contiguous copies") {
  const Tensor base = leaf({4, 6, 10}, -3, 3, 5).detach();
  for (DType dt : {DType::f64, DType::f32}) {
    const Tensor b = base.to(dt);
    const std::vector<Tensor> views = {b.transpose(1, 2), b.permute({2, 0, 1}), b.slice(2, 1, 10, 3),
                                       b.transpose(0, 2).slice(0, 0, 10, 2)};
    for (size_t v = 0; v < views.size(); ++v) {
      for (bool log : {false, true}) {
        for (int64_t dim : {0, 1, 2}) {
          INFO(std::string(dtype_name(dt)), " view ", v, " ", op_name(log), " dim ", dim);
          REQUIRE(!views[v].is_contiguous());
          const Tensor y = apply(log, views[v], dim);
          CHECK(y.is_contiguous());
          CHECK(values(y) == values(apply(log, views[v].contiguous(), dim)));
          check_close(y, ref_softmax(views[v], dim, log), dt == DType::f64 ? 1e-12 : 2e-6, 1e-7);
        }
      }
    }
  }
}

TEST_CASE("softmax of 0-D tensors and size-1 dims") {
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", std::string(dtype_name(dt)));
    const Tensor s = ops::scalar_tensor(3.5, dt);
    for (int64_t dim : {0, -1}) {
      const Tensor y = ops::softmax(s, dim), l = ops::log_softmax(s, dim);
      CHECK(y.dim() == 0);
      CHECK(y.item() == 1.0);
      CHECK(l.dim() == 0);
      CHECK(l.item() == 0.0);
    }
    const Tensor x = leaf({3, 1, 4}, -2, 2, 6).detach().to(dt);
    for (double v : values(ops::softmax(x, 1))) CHECK(v == 1.0);
    for (double v : values(ops::log_softmax(x, -2))) CHECK(v == 0.0);
  }
  // A 0-D softmax is constant: its gradient is 0.
  const Tensor s = ops::scalar_tensor(0.25, DType::f64).requires_grad_();
  CHECK(autograd::grad({ops::softmax(s, 0)}, {s})[0].item() == 0.0);
  CHECK(autograd::grad({ops::log_softmax(s, -1)}, {s})[0].item() == 0.0);
}

TEST_CASE("softmax and log_softmax pass the f64 gradcheck over dims, views and masks") {
  const Tensor x = leaf({2, 3, 4}, -2, 2, 7);
  for (bool log : {false, true}) {
    for (int64_t dim : {0, 1, 2, -1}) {
      INFO(op_name(log), " dim ", dim);
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return apply(log, in[0], dim); }, {x});
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return apply(log, in[0].transpose(0, 2), dim); }, {x});
    }
    INFO(op_name(log), " 0-D and a long row");
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return apply(log, in[0], 0); }, {leaf({}, -1, 1, 8)});
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return apply(log, in[0], -1); }, {leaf({2, 37}, -2, 2, 9)});
  }
  // A -inf mask (a constant added to the input): the masked entries get no gradient.
  std::vector<double> mask(24, 0.0);
  for (size_t i = 0; i < 12; i += 3) mask[i] = -kInf;  // no row along dim 0 or 2 is all -inf
  const Tensor m = ops::from_vector(mask, {2, 3, 4}, DType::f64);
  for (int64_t dim : {0, 2}) {
    INFO("masked softmax dim ", dim);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::softmax(ops::add(in[0], m), dim); }, {x});
  }
}

// The f64 gradchecks never run the f32 kernels; these do, forward and backward, on exact f32
// inputs. K is the row length: each output and gradient is a sum over one row.
TEST_CASE("softmax f32 (oneDNN forward, loops backward) matches the f64 path at model shapes") {
  auto sm = [](const std::vector<Tensor>& in) { return ops::softmax(in[0], -1); };
  auto lsm = [](const std::vector<Tensor>& in) { return ops::log_softmax(in[0], -1); };
  // Swin window attention scores: 64 windows x 4 heads, rows of 64 tokens.
  compare_f32_f64(sm, {f32_leaf({256, 64, 64}, 1)}, {64, 64}, "softmax 256x64x64");
  compare_f32_f64(lsm, {f32_leaf({256, 64, 64}, 2)}, {64, 64}, "log_softmax 256x64x64");
  // MaskNet attention scores over 1001 frames (2 of its 8 heads, to keep the f64 copy small).
  compare_f32_f64(sm, {f32_leaf({2, 1001, 1001}, 3)}, {1001, 1001}, "softmax 2x1001x1001");
  // A strided axis (the loops in f32 too): softmax over the heads of (8, 64, 96).
  auto sm0 = [](const std::vector<Tensor>& in) { return ops::softmax(in[0], 0); };
  auto lsm1 = [](const std::vector<Tensor>& in) { return ops::log_softmax(in[0], 1); };
  compare_f32_f64(sm0, {f32_leaf({8, 64, 96}, 4)}, {8, 8}, "softmax dim 0 of 8x64x96");
  compare_f32_f64(lsm1, {f32_leaf({8, 64, 96}, 5)}, {64, 64}, "log_softmax dim 1 of 8x64x96");
}

TEST_CASE("softmax loops give the same bits whatever the thread count splits") {
  // Rows (dim -1) and column groups (dim 1) of the loops, forward and backward; 3 threads split
  // both unevenly.
  const Tensor x = leaf({5, 301, 67}, -4, 4, 12).requires_grad_(), g = leaf({5, 301, 67}, -1, 1, 13).detach();
  for (bool log : {false, true}) {
    for (int64_t dim : {1, 2}) {
      INFO(op_name(log), " dim ", dim);
      tse::test::check_same_bits_across_threads([&] {
        const Tensor y = apply(log, x, dim);
        return std::vector<Tensor>{y, autograd::grad({y}, {x}, {g})[0]};
      });
    }
  }
}

TEST_CASE("softmax and log_softmax reject bad arguments with messages naming the op and shape") {
  const Tensor x = ops::zeros({2, 3, 4});
  std::string msg = thrown_message<IndexError>([&] { ops::softmax(x, 3); });
  CHECK(contains(msg, "softmax"));
  CHECK(contains(msg, "dim 3"));
  CHECK(contains(msg, "[2, 3, 4]"));
  msg = thrown_message<IndexError>([&] { ops::log_softmax(x, -4); });
  CHECK(contains(msg, "log_softmax"));
  CHECK(contains(msg, "dim -4"));
  CHECK(contains(msg, "[-3, 2]"));
  CHECK(contains(thrown_message<IndexError>([&] { ops::softmax(ops::scalar_tensor(1.0), 1); }), "[-1, 0]"));
  msg = thrown_message<ValueError>([&] { ops::softmax(Tensor(), 0); });
  CHECK(contains(msg, "softmax"));
  CHECK(contains(msg, "'input'"));
  msg = thrown_message<ValueError>([&] { ops::log_softmax(ops::zeros({2, 3}, DType::i64), 1); });
  CHECK(contains(msg, "log_softmax"));
  CHECK(contains(msg, "int64"));
  CHECK(contains(msg, "[2, 3]"));
}

TEST_CASE("softmax of 0-size tensors gives 0-size results and gradients") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& s : {Shape{0, 5}, Shape{3, 0}, Shape{2, 0, 4}}) {
      for (int64_t dim : {0, -1}) {
        INFO(std::string(dtype_name(dt)), " shape ", shape_to_string(s), " dim ", dim);
        Tensor x = ops::zeros(s, dt).requires_grad_();
        for (bool log : {false, true}) {
          const Tensor y = apply(log, x, dim);
          CHECK(y.sizes() == s);
          CHECK(autograd::grad({y}, {x}, {ops::zeros(s, dt)})[0].sizes() == s);
        }
      }
    }
  }
}

TEST_CASE("softmax: a second identical f32 call is a primitive cache hit") {
  using cpu::onednn::primitive_cache_stats;
  // A shape no other test uses, so the first call is a miss.
  const Tensor x = f32_leaf({37, 53}, 11).detach();
  const auto s0 = primitive_cache_stats();
  const Tensor y1 = ops::softmax(x, 1);
  const auto s1 = primitive_cache_stats();
  CHECK(s1.misses == s0.misses + 1);
  const Tensor y2 = ops::softmax(x, 1);
  const auto s2 = primitive_cache_stats();
  CHECK(s2.hits == s1.hits + 1);
  CHECK(s2.misses == s1.misses);
  CHECK(values(y1) == values(y2));
  // Another row length is another primitive; the same rows as a (37, 1, 53) view are not.
  ops::softmax(x.slice(1, 0, 52), 1);
  CHECK(primitive_cache_stats().misses == s2.misses + 1);
  ops::softmax(x.unsqueeze(1), -1);
  CHECK(primitive_cache_stats().misses == s2.misses + 1);
}
