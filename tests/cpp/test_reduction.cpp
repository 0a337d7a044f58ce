// Reductions (sum, mean, var, max/min, argmax/argmin, amax/amin, logsumexp, norm) against plain
// float64 loops, finite-difference gradchecks, and the documented errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/reference.hpp"

using namespace tse;
using tse::test::leaf;
using tse::test::values;
using tse::test::unravel;
using tse::test::ravel;
using tse::test::counting;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The groups of a reduction: for each output (row-major over the kept dims), the input values
/// folded into it, in row-major order. reduced[d] says whether dim d is reduced.
std::vector<std::vector<double>> groups(const std::vector<double>& x, const Shape& sizes,
                                        const std::vector<bool>& reduced) {
  int64_t n_out = 1;
  for (size_t d = 0; d < sizes.size(); ++d)
    if (!reduced[d]) n_out *= sizes[d];
  std::vector<std::vector<double>> g(static_cast<size_t>(n_out));
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    const auto idx = unravel(i, sizes);
    int64_t o = 0;
    for (size_t d = 0; d < sizes.size(); ++d)
      if (!reduced[d]) o = o * sizes[d] + idx[d];
    g[o].push_back(x[i]);
  }
  return g;
}

std::vector<bool> mask_of(const Shape& dims, int64_t ndim) {
  std::vector<bool> m(static_cast<size_t>(ndim), dims.empty());
  for (int64_t d : dims) m[(d + ndim) % ndim] = true;
  return m;
}

Shape out_shape(const Shape& sizes, const std::vector<bool>& reduced, bool keepdim) {
  Shape s;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (!reduced[d])
      s.push_back(sizes[d]);
    else if (keepdim)
      s.push_back(1);
  }
  return s;
}

using Fold = std::function<double(const std::vector<double>&)>;

/// The reference result of folding every group with f.
std::vector<double> reference(const Tensor& x, const Shape& dims, const Fold& f) {
  std::vector<double> out;
  for (const auto& g : groups(values(x), x.sizes(), mask_of(dims, x.dim()))) out.push_back(f(g));
  return out;
}

double ref_sum(const std::vector<double>& g) {
  double s = 0;
  for (double v : g) s += v;
  return s;
}
double ref_mean(const std::vector<double>& g) { return ref_sum(g) / static_cast<double>(g.size()); }
double ref_var(const std::vector<double>& g, int64_t correction) {
  const double m = ref_mean(g);
  double s = 0;
  for (double v : g) s += (v - m) * (v - m);
  return s / static_cast<double>(static_cast<int64_t>(g.size()) - correction);
}
double ref_max(const std::vector<double>& g) {
  double m = -kInf;
  for (double v : g) {
    if (std::isnan(v)) return v;
    m = std::max(m, v);
  }
  return m;
}
double ref_min(const std::vector<double>& g) {
  double m = kInf;
  for (double v : g) {
    if (std::isnan(v)) return v;
    m = std::min(m, v);
  }
  return m;
}
double ref_logsumexp(const std::vector<double>& g) {
  const double m = ref_max(g);
  if (std::isinf(m)) return m;
  double s = 0;
  for (double v : g) s += std::exp(v - m);
  return m + std::log(s);
}
double ref_norm(const std::vector<double>& g, double p) {
  if (std::isinf(p)) {
    double m = 0;
    for (double v : g) m = std::max(m, std::abs(v));
    return m;
  }
  double s = 0;
  for (double v : g) s += std::pow(std::abs(v), p);
  return std::pow(s, 1.0 / p);
}

void check_close(const Tensor& got, const std::vector<double>& want, const Shape& want_shape, double rtol = 1e-5,
                 double atol = 1e-6) {
  REQUIRE(got.sizes() == want_shape);
  const auto g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(want[i])) {
      CHECK(std::isnan(g[i]));
    } else if (std::isinf(want[i])) {
      CHECK(g[i] == want[i]);
    } else {
      CHECK_MESSAGE(std::abs(g[i] - want[i]) <= atol + rtol * std::abs(want[i]), "element ", i, ": got ", g[i],
                    ", want ", want[i]);
    }
  }
}

/// The dim sets every over-dims reduction is checked on, for a 3-d input.
const std::vector<Shape> kDimSets = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {-3, -1}, {2, 0}, {0, 1, 2}};

/// A deterministic non-trivial f64 tensor of the given shape.
Tensor sample(const Shape& sizes, uint64_t seed = 3, double lo = -2.0, double hi = 2.0) {
  return leaf(sizes, lo, hi, seed).detach();
}

}  // namespace

// ---- sum and mean --------------------------------------------------------------------------------

TEST_CASE("reduction: sum and mean match a float64 reference over dims, negative dims and keepdim") {
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = sample({2, 3, 4}).to(dt);
    for (const Shape& dims : kDimSets) {
      for (bool keepdim : {false, true}) {
        CAPTURE(shape_to_string(dims));
        CAPTURE(keepdim);
        const Shape s = out_shape(x.sizes(), mask_of(dims, 3), keepdim);
        check_close(ops::sum(x, dims, keepdim), reference(x, dims, ref_sum), s);
        check_close(ops::mean(x, dims, keepdim), reference(x, dims, ref_mean), s);
        CHECK(ops::sum(x, dims, keepdim).dtype() == dt);
      }
    }
  }
}

TEST_CASE("reduction: sum and mean of transposed, sliced and broadcast (expanded) inputs") {
  const Tensor base = sample({4, 6, 5});
  const Tensor transposed = base.transpose(0, 2);                  // [5, 6, 4]
  const Tensor sliced = base.slice(1, 1, 6, 2).slice(2, 0, 5, 2);  // [4, 3, 3], strided
  const Tensor expanded = sample({1, 3, 1}).expand({2, 3, 4});     // zero strides
  for (const Tensor& x : {transposed, sliced, expanded}) {
    for (const Shape& dims : kDimSets) {
      CAPTURE(x.shape_str());
      CAPTURE(shape_to_string(dims));
      const Shape s = out_shape(x.sizes(), mask_of(dims, 3), false);
      check_close(ops::sum(x, dims), reference(x, dims, ref_sum), s);
      check_close(ops::mean(x, dims), reference(x, dims, ref_mean), s);
      check_close(ops::sum(x.to(DType::f32), dims), reference(x, dims, ref_sum), s);
    }
  }
}

TEST_CASE("reduction: sum and mean of a 0-d input, over no dims, dim 0 and dim -1") {
  const Tensor x = ops::scalar_tensor(2.5, DType::f64);
  for (const Shape& dims : std::vector<Shape>{{}, {0}, {-1}}) {
    for (bool keepdim : {false, true}) {
      CHECK(ops::sum(x, dims, keepdim).dim() == 0);
      CHECK(ops::sum(x, dims, keepdim).item() == 2.5);
      CHECK(ops::mean(x, dims, keepdim).item() == 2.5);
    }
  }
  CHECK_THROWS_AS(ops::sum(x, {1}), IndexError);
}

TEST_CASE("reduction: integer and bool sums give int64") {
  const std::vector<int64_t> data = {3, -1, 4, 1, -5, 9, 2, 6};
  const Tensor x64 = ops::from_vector(data, {2, 4});
  for (const Tensor& x : {x64, x64.to(DType::i32)}) {
    const Tensor all = ops::sum(x);
    CHECK(all.dtype() == DType::i64);
    CHECK(all.item() == 19);
    const Tensor rows = ops::sum(x, {1});
    CHECK(rows.dtype() == DType::i64);
    CHECK(values(rows) == std::vector<double>{7, 12});
    CHECK(values(ops::sum(x.t(), {1})) == std::vector<double>{-2, 8, 6, 7});
  }
  const Tensor b = ops::gt(x64, ops::scalar_tensor(1.5, DType::f64));  // 3, 4, 9, 2, 6
  CHECK(ops::sum(b).dtype() == DType::i64);
  CHECK(ops::sum(b).item() == 5);
  CHECK(values(ops::sum(b, {0})) == std::vector<double>{1, 1, 2, 1});
  // Beyond int32: the accumulator is 64-bit.
  const Tensor big = ops::full({4}, 2.0e9, DType::i32);
  CHECK(ops::sum(big).item() == 8.0e9);
  CHECK_THROWS_AS(ops::mean(x64), ValueError);
}

TEST_CASE("reduction: a 4M-element float32 sum is accurate to 1e-6 relative") {
  const int64_t n = int64_t(1) << 22;
  std::vector<float> data(static_cast<size_t>(n));
  uint64_t s = 12345;
  for (auto& v : data) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<float>(static_cast<double>(s >> 40) / 16777216.0);  // [0, 1), exact in float
  }
  double want = 0;
  for (float v : data) want += v;
  const Tensor x = ops::from_vector(data, {n});
  CHECK(std::abs(ops::sum(x).item() - want) <= 1e-6 * want);
  // The same data as columns (the column-blocked loop) and as rows (the inner loop).
  const Tensor m = x.view({2048, 2048});
  const auto cols = values(ops::sum(m, {0}));
  const auto rows = values(ops::sum(m, {1}));
  for (int64_t j = 0; j < 2048; j += 511) {
    double c = 0, r = 0;
    for (int64_t i = 0; i < 2048; ++i) {
      c += data[i * 2048 + j];
      r += data[j * 2048 + i];
    }
    CHECK(std::abs(cols[j] - c) <= 1e-6 * c);
    CHECK(std::abs(rows[j] - r) <= 1e-6 * r);
  }
}

TEST_CASE("reduction: sum and mean gradients (gradcheck)") {
  for (const Shape& dims : std::vector<Shape>{{}, {1}, {0, 2}, {-1}}) {
    for (bool keepdim : {false, true}) {
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::sum(in[0], dims, keepdim); }, {leaf({2, 3, 4})});
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::mean(in[0], dims, keepdim); },
                      {leaf({2, 3, 4})});
    }
  }
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::sum(in[0].t(), {1}); }, {leaf({3, 4})});
}

TEST_CASE("reduction: repeated dims are a ValueError and out-of-range dims an IndexError") {
  const Tensor x = sample({2, 3});
  CHECK_THROWS_AS(ops::sum(x, {1, 1}), ValueError);
  CHECK_THROWS_AS(ops::sum(x, {1, -1}), ValueError);
  CHECK_THROWS_AS(ops::sum(x, {2}), IndexError);
  CHECK_THROWS_AS(ops::sum(x, {-3}), IndexError);
  CHECK_THROWS_AS(ops::mean(x, {0, -2}), ValueError);
  CHECK_THROWS_AS(ops::var(x, {5}), IndexError);
  CHECK_THROWS_AS(ops::amax(x, {0, 0}), ValueError);
  CHECK_THROWS_AS(ops::logsumexp(x, {2}), IndexError);
  CHECK_THROWS_AS(ops::norm(x, 2.0, {1, 1}), ValueError);
  CHECK_THROWS_AS(ops::max(x, 2), IndexError);
  CHECK_THROWS_AS(ops::argmin(x, -3), IndexError);
  CHECK_THROWS_AS(ops::sum(Tensor()), ValueError);
  try {
    ops::sum(x, {0, 0});
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("sum") != std::string::npos);
  }
}

// ---- var -------------------------------------------------------------------------------------------

TEST_CASE("reduction: var matches a float64 reference for corrections 0, 1, 2") {
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = sample({3, 4, 5}).to(dt);
    for (const Shape& dims : kDimSets) {
      for (int64_t correction : {0, 1, 2}) {
        for (bool keepdim : {false, true}) {
          CAPTURE(shape_to_string(dims));
          CAPTURE(correction);
          const Shape s = out_shape(x.sizes(), mask_of(dims, 3), keepdim);
          check_close(ops::var(x, dims, correction, keepdim),
                      reference(x, dims, [&](const std::vector<double>& g) { return ref_var(g, correction); }), s, 1e-5,
                      1e-6);
        }
      }
    }
  }
  // Non-contiguous input.
  const Tensor t = sample({4, 5}).t();
  check_close(ops::var(t, {1}), reference(t, {1}, [](const std::vector<double>& g) { return ref_var(g, 1); }), {5});
}

TEST_CASE("reduction: var keeps its precision on a large offset, and one element with correction 1 is NaN") {
  // Values 1e4 + [0, 1): a one-pass sum(x^2) - n mean^2 in float32 would lose every digit.
  const Tensor x = ops::add(sample({1000}, 11, 0.0, 1.0), 1.0e4);
  const double want = ref_var(values(x), 1);
  const Tensor x32 = x.to(DType::f32);
  const double want32 = ref_var(values(x32), 1);
  CHECK(std::abs(ops::var(x32).item() - want32) <= 1e-4 * want32);
  CHECK(std::abs(ops::var(x).item() - want) <= 1e-10 * want);
  CHECK(std::isnan(ops::var(ops::ones({1}, DType::f64)).item()));
  CHECK(ops::var(ops::ones({1}, DType::f64), {}, 0).item() == 0.0);
}

TEST_CASE("reduction: var gradient (gradcheck) and errors") {
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::var(in[0]); }, {leaf({3, 4})});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::var(in[0], {1}, 0, true); }, {leaf({3, 4})});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::var(in[0].t(), {0, -1}, 2); }, {leaf({4, 5})});
  CHECK_THROWS_AS(ops::var(sample({3}), {}, -1), ValueError);
  CHECK_THROWS_AS(ops::var(ops::zeros({3}, DType::i64)), ValueError);
}

// ---- max / min along a dim -------------------------------------------------------------------------

TEST_CASE("reduction: max/min along a dim match a reference for values and indices") {
  const Tensor base = sample({3, 4, 5});
  for (const Tensor& x : {base, base.to(DType::f32), base.transpose(0, 2), base.slice(2, 0, 5, 2)}) {
    for (int64_t dim : {0, 1, 2, -1, -3}) {
      for (bool keepdim : {false, true}) {
        CAPTURE(x.shape_str());
        CAPTURE(dim);
        const int64_t d = (dim + 3) % 3;
        const auto xv = values(x);
        std::vector<double> wmax_v, wmin_v, wmax_i, wmin_i;
        // Plain loops: for every output position, scan the reduced dim.
        Shape kept_sizes = x.sizes();
        kept_sizes[d] = 1;
        for (int64_t o = 0; o < shape_numel(kept_sizes); ++o) {
          auto idx = unravel(o, kept_sizes);
          double best_max = 0, best_min = 0;
          int64_t imax = -1, imin = -1;
          for (int64_t j = 0; j < x.size(d); ++j) {
            idx[d] = j;
            int64_t lin = 0;
            for (int64_t k = 0; k < 3; ++k) lin = lin * x.size(k) + idx[k];
            const double v = xv[lin];
            if (imax < 0 || v > best_max) best_max = v, imax = j;
            if (imin < 0 || v < best_min) best_min = v, imin = j;
          }
          wmax_v.push_back(best_max);
          wmax_i.push_back(static_cast<double>(imax));
          wmin_v.push_back(best_min);
          wmin_i.push_back(static_cast<double>(imin));
        }
        const Shape s = out_shape(x.sizes(), mask_of({dim}, 3), keepdim);
        const auto [mv, mi] = ops::max(x, dim, keepdim);
        const auto [nv, ni] = ops::min(x, dim, keepdim);
        CHECK(mi.dtype() == DType::i64);
        CHECK(mv.dtype() == x.dtype());
        check_close(mv, wmax_v, s, 0, 0);
        check_close(nv, wmin_v, s, 0, 0);
        check_close(mi, wmax_i, s, 0, 0);
        check_close(ni, wmin_i, s, 0, 0);
        check_close(ops::argmax(x, dim, keepdim), wmax_i, s, 0, 0);
        check_close(ops::argmin(x, dim, keepdim), wmin_i, s, 0, 0);
      }
    }
  }
}

TEST_CASE("reduction: max/min pick the first index on ties and the first NaN over numbers") {
  const Tensor x =
      ops::from_vector(std::vector<double>{1, 7, 7, 2, kNaN, 3, kNaN, 9, -1, -1, 5, -1}, {3, 4}, DType::f64);
  const auto [mv, mi] = ops::max(x, 1);
  CHECK(values(mi) == std::vector<double>{1, 0, 2});
  const auto mvv = values(mv);
  CHECK(mvv[0] == 7);
  CHECK(std::isnan(mvv[1]));
  CHECK(mvv[2] == 5);
  const auto [nv, ni] = ops::min(x, 1);
  CHECK(values(ni) == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(values(nv)[1]));
  CHECK(values(ops::argmax(x.to(DType::f32), 1)) == std::vector<double>{1, 0, 2});
  CHECK(values(ops::argmin(x, 0)) == std::vector<double>{1, 2, 1, 2});
  // A single row long enough to be split across threads keeps the first of two equal maxima.
  std::vector<double> row(200000, 0.0);
  row[150001] = 4.0;
  row[70000] = 4.0;
  const Tensor r = ops::from_vector(row, {200000}, DType::f64);
  CHECK(ops::argmax(r, 0).item() == 70000);
  row[180000] = kNaN;
  CHECK(ops::argmax(ops::from_vector(row, {200000}, DType::f64), 0).item() == 180000);
}

TEST_CASE("reduction: max/min/argmax on int32, int64, bool and 0-d inputs") {
  const std::vector<int64_t> data = {4, -2, 9, 9, 0, -7};
  for (DType dt : {DType::i64, DType::i32}) {
    const Tensor x = ops::from_vector(data, {2, 3}).to(dt);
    const auto [v, i] = ops::max(x, 1);
    CHECK(v.dtype() == dt);
    CHECK(values(v) == std::vector<double>{9, 9});
    CHECK(values(i) == std::vector<double>{2, 0});
    CHECK(values(ops::min(x, 0).first) == std::vector<double>{4, -2, -7});
    CHECK(values(ops::amax(x)) == std::vector<double>{9});
    CHECK(values(ops::amin(x, {1})) == std::vector<double>{-2, -7});
  }
  const Tensor b = ops::gt(ops::from_vector(data, {2, 3}), ops::scalar_tensor(5.0, DType::f64));
  CHECK(values(ops::argmax(b, 1)) == std::vector<double>{2, 0});
  CHECK(values(ops::amax(b, {0})) == std::vector<double>{1, 0, 1});
  const Tensor s = ops::scalar_tensor(3.0, DType::f64);
  const auto [sv, si] = ops::max(s, 0);
  CHECK(sv.dim() == 0);
  CHECK(sv.item() == 3.0);
  CHECK(si.item() == 0);
  CHECK(ops::argmin(s, -1, true).dim() == 0);
}

TEST_CASE("reduction: max/min gradients go to the selected index (gradcheck, ties to the first)") {
  for (int64_t dim : {0, 1, -1}) {
    for (bool keepdim : {false, true}) {
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::max(in[0], dim, keepdim).first; },
                      {leaf({3, 4})});
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::min(in[0], dim, keepdim).first; },
                      {leaf({3, 4})});
    }
  }
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::max(in[0].t(), 1).first; }, {leaf({4, 3})});
  Tensor x = ops::from_vector(std::vector<double>{1, 5, 5, 2}, {4}, DType::f64).requires_grad_();
  ops::max(x, 0).first.backward();
  CHECK(values(x.grad()) == std::vector<double>{0, 1, 0, 0});
  Tensor s = ops::scalar_tensor(2.0, DType::f64).requires_grad_();
  ops::min(s, 0).first.backward();
  CHECK(s.grad().item() == 1.0);
  CHECK_FALSE(ops::argmax(leaf({3}), 0).requires_grad());
}

TEST_CASE("reduction: max/min errors") {
  CHECK_THROWS_AS(ops::max(ops::zeros({2, 0}), 1), IndexError);
  CHECK_THROWS_AS(ops::argmin(ops::zeros({0}), 0), IndexError);
  CHECK_THROWS_AS(ops::max(ops::zeros({2, 3}), 2), IndexError);
  CHECK_THROWS_AS(ops::min(ops::zeros({2}).to(DType::f16), 0), ValueError);
  CHECK_THROWS_AS(ops::max(Tensor(), 0), ValueError);
  // An empty kept dim is fine: nothing to reduce, an empty result.
  CHECK(ops::max(ops::zeros({0, 3}), 1).first.sizes() == Shape{0});
}

// ---- amax / amin -----------------------------------------------------------------------------------

TEST_CASE("reduction: amax/amin match a reference over dims, NaN propagates") {
  const Tensor base = sample({3, 4, 5});
  for (const Tensor& x : {base, base.to(DType::f32), base.permute({2, 0, 1}), base.slice(1, 1, 4, 2)}) {
    for (const Shape& dims : kDimSets) {
      for (bool keepdim : {false, true}) {
        CAPTURE(x.shape_str());
        CAPTURE(shape_to_string(dims));
        const Shape s = out_shape(x.sizes(), mask_of(dims, 3), keepdim);
        check_close(ops::amax(x, dims, keepdim), reference(x, dims, ref_max), s, 0, 0);
        check_close(ops::amin(x, dims, keepdim), reference(x, dims, ref_min), s, 0, 0);
      }
    }
  }
  const Tensor n = ops::from_vector(std::vector<double>{1, kNaN, 3, -kInf, -kInf, -kInf}, {2, 3}, DType::f64);
  const auto mx = values(ops::amax(n, {1}));
  CHECK(std::isnan(mx[0]));
  CHECK(mx[1] == -kInf);
  CHECK(std::isnan(ops::amin(n.to(DType::f32)).item()));
}

TEST_CASE("reduction: amax/amin gradients split evenly among ties (gradcheck and explicit)") {
  for (const Shape& dims : std::vector<Shape>{{}, {1}, {0, 2}, {-1}}) {
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::amax(in[0], dims); }, {leaf({2, 3, 4})});
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::amin(in[0], dims, true); }, {leaf({2, 3, 4})});
  }
  Tensor x = ops::from_vector(std::vector<double>{1, 3, 3, 2, 0, 0, 0, -1}, {2, 4}, DType::f64).requires_grad_();
  ops::sum(ops::amax(x, {1})).backward();
  CHECK(values(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
  Tensor y = ops::from_vector(std::vector<double>{2, -1, -1, -1}, {4}, DType::f64).requires_grad_();
  ops::amin(y).backward();
  CHECK(values(y.grad()) == std::vector<double>{0, 1.0 / 3, 1.0 / 3, 1.0 / 3});
}

TEST_CASE("reduction: amax/amin errors") {
  CHECK_THROWS_AS(ops::amax(ops::zeros({3, 0}), {1}), IndexError);
  CHECK_THROWS_AS(ops::amin(ops::zeros({0})), IndexError);
  CHECK_THROWS_AS(ops::amax(ops::zeros({3}), {1}), IndexError);
  CHECK_THROWS_AS(ops::amax(ops::zeros({3}).to(DType::bf16)), ValueError);
  CHECK(ops::amax(ops::zeros({0, 3}), {1}).sizes() == Shape{0});
}

// ---- logsumexp -------------------------------------------------------------------------------------

TEST_CASE("reduction: logsumexp matches a max-shifted reference and does not overflow") {
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = sample({3, 4, 5}, 5, -3.0, 3.0).to(dt);
    for (const Shape& dims : kDimSets) {
      for (bool keepdim : {false, true}) {
        CAPTURE(shape_to_string(dims));
        const Shape s = out_shape(x.sizes(), mask_of(dims, 3), keepdim);
        check_close(ops::logsumexp(x, dims, keepdim), reference(x, dims, ref_logsumexp), s);
      }
    }
    const Tensor t = x.transpose(0, 1);
    check_close(ops::logsumexp(t, {2}), reference(t, {2}, ref_logsumexp), {4, 3});
  }
  const Tensor big = ops::from_vector(std::vector<double>{1000, 1001, -1000, -1001}, {2, 2}, DType::f32);
  const auto v = values(ops::logsumexp(big, {1}));
  CHECK(v[0] == doctest::Approx(1001 + std::log1p(std::exp(-1.0))));
  CHECK(v[1] == doctest::Approx(-1000 + std::log1p(std::exp(-1.0))));
  // A whole-tensor fold long enough to be split across threads.
  const Tensor longx = sample({200000}, 9, -5.0, 5.0);
  check_close(ops::logsumexp(longx, {}), reference(longx, {}, ref_logsumexp), {}, 1e-10, 0);
}

TEST_CASE("reduction: logsumexp of -inf rows is -inf with a zero gradient, +inf gives +inf") {
  Tensor x =
      ops::from_vector(std::vector<double>{-kInf, -kInf, -kInf, 0.5, -kInf, 1.5}, {2, 3}, DType::f64).requires_grad_();
  const Tensor y = ops::logsumexp(x, {1});
  const auto yv = values(y);
  CHECK(yv[0] == -kInf);
  CHECK(yv[1] == doctest::Approx(ref_logsumexp({0.5, 1.5})));
  ops::sum(y).backward();
  const auto g = values(x.grad());
  for (int i = 0; i < 3; ++i) CHECK(g[i] == 0.0);
  CHECK(g[4] == 0.0);
  CHECK(g[3] + g[5] == doctest::Approx(1.0));
  const Tensor inf = ops::from_vector(std::vector<double>{1, kInf, kInf}, {3}, DType::f64);
  CHECK(ops::logsumexp(inf, {0}).item() == kInf);
  CHECK(ops::logsumexp(ops::zeros({2, 0}), {1}).sizes() == Shape{2});
  CHECK(values(ops::logsumexp(ops::zeros({2, 0}), {1}))[0] == -kInf);
  CHECK(std::isnan(ops::logsumexp(ops::from_vector(std::vector<double>{1, kNaN}, {2}, DType::f64), {}).item()));
}

TEST_CASE("reduction: logsumexp gradient (gradcheck) and errors") {
  for (const Shape& dims : std::vector<Shape>{{}, {1}, {0, 2}, {-1}}) {
    for (bool keepdim : {false, true}) {
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::logsumexp(in[0], dims, keepdim); },
                      {leaf({2, 3, 4}, -2.0, 2.0)});
    }
  }
  CHECK_THROWS_AS(ops::logsumexp(ops::zeros({3}, DType::i64), {0}), ValueError);
}

// ---- norm ------------------------------------------------------------------------------------------

TEST_CASE("reduction: norm for p = 1, 2, 3, 0.5 and inf matches a reference") {
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor base = sample({3, 4, 5}).to(dt);
    for (const Tensor& x : {base, base.transpose(1, 2)}) {
      for (double p : {1.0, 2.0, 3.0, 0.5, kInf}) {
        for (const Shape& dims : kDimSets) {
          for (bool keepdim : {false, true}) {
            CAPTURE(p);
            CAPTURE(shape_to_string(dims));
            const Shape s = out_shape(x.sizes(), mask_of(dims, 3), keepdim);
            check_close(ops::norm(x, p, dims, keepdim),
                        reference(x, dims, [p](const std::vector<double>& g) { return ref_norm(g, p); }), s, 1e-5,
                        1e-6);
          }
        }
      }
    }
  }
  // float32 inputs accumulate in double: squares of 1e20 do not overflow.
  const Tensor big = ops::from_vector(std::vector<double>{3e20, -4e20}, {2}, DType::f32);
  CHECK(ops::norm(big).item() == doctest::Approx(5e20));
  CHECK(ops::norm(ops::zeros({0})).item() == 0.0);
}

TEST_CASE("reduction: norm gradients (gradcheck) and the 2-norm's zero gradient at 0") {
  // Magnitudes away from 0 with mixed signs: |x|^(p-1) is smooth there for every p.
  const Tensor signs =
      ops::from_vector(std::vector<double>{1, -1, 1, 1, -1, -1, 1, -1, -1, 1, 1, -1}, {3, 4}, DType::f64);
  const Tensor magnitudes = leaf({3, 4}, 0.3, 1.5);
  for (double p : {1.0, 2.0, 3.0, 0.5, 1.5, kInf}) {
    for (const Shape& dims : std::vector<Shape>{{}, {1}, {0}}) {
      CAPTURE(p);
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::norm(ops::mul(in[0], signs), p, dims, true); },
                      {magnitudes});
    }
  }
  for (double p : {2.0, 1.0, 3.0, 0.5, kInf}) {
    CAPTURE(p);
    Tensor z = ops::zeros({2, 3}, DType::f64).requires_grad_();
    ops::sum(ops::norm(z, p, {1})).backward();
    for (double g : values(z.grad())) CHECK(g == 0.0);
  }
  // A row of zeros next to a non-zero row: each row's gradient is its own.
  Tensor m = ops::from_vector(std::vector<double>{0, 0, 3, 4}, {2, 2}, DType::f64).requires_grad_();
  ops::sum(ops::norm(m, 2.0, {1})).backward();
  const auto mg = values(m.grad());
  CHECK(mg[0] == 0.0);
  CHECK(mg[1] == 0.0);
  CHECK(mg[2] == doctest::Approx(0.6));
  CHECK(mg[3] == doctest::Approx(0.8));
}

TEST_CASE("reduction: norm errors") {
  const Tensor x = sample({3});
  CHECK_THROWS_AS(ops::norm(x, 0.0), ValueError);
  CHECK_THROWS_AS(ops::norm(x, -2.0), ValueError);
  CHECK_THROWS_AS(ops::norm(x, kNaN), ValueError);
  CHECK_THROWS_AS(ops::norm(ops::zeros({3}, DType::i32)), ValueError);
  CHECK_THROWS_AS(ops::norm(ops::zeros({0}), kInf), IndexError);
  try {
    ops::norm(x, -1.0);
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("norm") != std::string::npos);
  }
}

TEST_CASE("sum over several dims, one of them empty, gives zeros") {
  // The reduced-index walk must not divide by the empty dim's size (UBSan: division by zero).
  const Tensor x = ops::zeros({3, 0, 4});
  CHECK(ops::to_vector(ops::sum(x, {1, 2})) == std::vector<double>{0.0, 0.0, 0.0});
  CHECK(ops::to_vector(ops::sum(x, {0, 1})) == std::vector<double>(4, 0.0));
  CHECK(ops::sum(x).item() == 0.0);
}
