// matmul, bmm, linear: naive f64 references (plain loops), f64 gradchecks over the 1-D,
// broadcast, transposed and strided cases, the f32 oneDNN kernels checked forward and backward
// against the f64 path at model shapes, errors, 0-size dims, the primitive cache and concurrent use.
#include <xmmintrin.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "src/cpu/onednn_context.hpp"
#include "tests/cpp/gradcheck.hpp"
#include "tests/cpp/onednn_check.hpp"

using namespace tse;
using tse::test::leaf;
using tse::test::values;
using tse::test::compare_f32_f64;
using tse::test::f32_leaf;
using tse::test::onednn_tol;
using tse::test::rel_l2;
using tse::test::to_f64_leaf;

namespace {

/// Naive torch.matmul on the logical (row-major) values of a and b; sets *out_sizes.
std::vector<double> ref_matmul(const Tensor& a, const Tensor& b, Shape* out_sizes) {
  const std::vector<double> av = values(a), bv = values(b);
  Shape sa = a.sizes(), sb = b.sizes();
  if (sa.size() == 1) sa.insert(sa.begin(), 1);
  if (sb.size() == 1) sb.push_back(1);
  const size_t r = std::max(sa.size(), sb.size());
  while (sa.size() < r) sa.insert(sa.begin(), 1);
  while (sb.size() < r) sb.insert(sb.begin(), 1);
  const int64_t M = sa[r - 2], K = sa[r - 1], N = sb[r - 1];
  Shape batch(r - 2);
  int64_t nbatch = 1;
  for (size_t d = 0; d + 2 < r; ++d) {
    batch[d] = std::max(sa[d], sb[d]);
    nbatch *= batch[d];
  }
  std::vector<double> out(static_cast<size_t>(nbatch * M * N), 0.0);
  for (int64_t bt = 0; bt < nbatch; ++bt) {
    // batch index -> the matrix index inside a and inside b (broadcast dims repeat index 0)
    int64_t rem = bt, ia = 0, ib = 0, ma = 1, mb = 1;
    for (int64_t d = static_cast<int64_t>(r) - 3; d >= 0; --d) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      ia += (sa[d] == 1 ? 0 : idx) * ma;
      ib += (sb[d] == 1 ? 0 : idx) * mb;
      ma *= sa[d];
      mb *= sb[d];
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += av[(ia * M + i) * K + k] * bv[(ib * K + k) * N + j];
        out[(bt * M + i) * N + j] = acc;
      }
  }
  Shape os = batch;
  if (a.dim() > 1) os.push_back(M);
  if (b.dim() > 1) os.push_back(N);
  *out_sizes = os;
  return out;
}

/// Naive linear: out[r, o] = sum_i x[r, i] w[o, i] + bias[o].
std::vector<double> ref_linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const std::vector<double> xv = values(x), wv = values(w);
  const std::vector<double> bv = bias.defined() ? values(bias) : std::vector<double>();
  const int64_t in = w.size(1), out = w.size(0), rows = in > 0 ? x.numel() / in : 0;
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bv.empty() ? 0.0 : bv[o];
      for (int64_t i = 0; i < in; ++i) acc += xv[r * in + i] * wv[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

void check_close(const Tensor& got, const std::vector<double>& want, double rtol, double atol) {
  const auto g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element ", i, ": got ", g[i], " want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("matmul matches a naive f64 reference for 1-D, 2-D, batched and broadcast shapes") {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{4}, {4}},
      {{3, 4}, {4}},
      {{4}, {4, 5}},
      {{3, 4}, {4, 5}},
      {{4}, {2, 4, 5}},
      {{2, 3, 4}, {4}},
      {{2, 3, 4}, {2, 4, 5}},
      {{2, 3, 4}, {4, 5}},
      {{3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {3, 4, 2}},
      {{1, 3, 4}, {2, 4, 5}},
      {{2, 2, 1, 4}, {2, 1, 4, 3}},
  };
  for (const auto& c : cases) {
    INFO("a ", shape_to_string(c.a), " b ", shape_to_string(c.b));
    const Tensor a = leaf(c.a, -1, 1, 3).detach(), b = leaf(c.b, -1, 1, 4).detach();
    Shape want_sizes;
    const std::vector<double> want = ref_matmul(a, b, &want_sizes);
    const Tensor y = ops::matmul(a, b);
    CHECK(y.sizes() == want_sizes);
    check_close(y, want, 1e-12, 1e-13);
    const Tensor y32 = ops::matmul(a.to(DType::f32), b.to(DType::f32));
    CHECK(y32.dtype() == DType::f32);
    CHECK(y32.sizes() == want_sizes);
    check_close(y32, want, 1e-5, 1e-5);
  }
}

TEST_CASE("matmul reads transposed, permuted, sliced and expanded operands correctly") {
  const Tensor base_a = leaf({5, 3}, -1, 1, 5).detach(), base_b = leaf({6, 5}, -1, 1, 6).detach();
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("dtype ", dt);
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    const Tensor at = base_a.to(dt).t(), bt = base_b.to(dt).t();  // (3, 5) and (5, 6), column-major
    Shape s;
    check_close(ops::matmul(at, bt), ref_matmul(at, bt, &s), tol, tol);
    // a batch-strided operand: (2, 3, 4) seen as a permute of (3, 2, 4)
    const Tensor p = leaf({3, 2, 4}, -1, 1, 7).detach().to(dt).permute({1, 0, 2});
    const Tensor q = leaf({2, 4, 3}, -1, 1, 8).detach().to(dt);
    check_close(ops::matmul(p, q), ref_matmul(p, q, &s), tol, tol);
    // batched transposes of both operands
    const Tensor pt = leaf({2, 4, 3}, -1, 1, 9).detach().to(dt).transpose(1, 2);
    const Tensor qt = leaf({2, 5, 4}, -1, 1, 10).detach().to(dt).transpose(1, 2);
    check_close(ops::matmul(pt, qt), ref_matmul(pt, qt, &s), tol, tol);
    // a step-2 slice of the last dim (not a plain matrix: copied)
    const Tensor sl = leaf({3, 8}, -1, 1, 11).detach().to(dt).slice(1, 0, 8, 2);
    const Tensor w = leaf({4, 2}, -1, 1, 12).detach().to(dt);
    check_close(ops::matmul(sl, w), ref_matmul(sl, w, &s), tol, tol);
    // an expanded batch (stride 0) and an expanded matrix row (stride 0 inside the matrix)
    const Tensor e = leaf({1, 3, 4}, -1, 1, 13).detach().to(dt).expand({3, 3, 4});
    const Tensor f = leaf({3, 4, 2}, -1, 1, 14).detach().to(dt);
    check_close(ops::matmul(e, f), ref_matmul(e, f, &s), tol, tol);
    const Tensor er = leaf({1, 4}, -1, 1, 15).detach().to(dt).expand({3, 4});
    check_close(ops::matmul(er, f), ref_matmul(er, f, &s), tol, tol);
    // a batched (B, M, K) that does not fold into rows, times a shared 2-D matrix
    const Tensor nf = leaf({4, 2, 3}, -1, 1, 16).detach().to(dt).transpose(0, 1);
    const Tensor m2 = leaf({3, 5}, -1, 1, 17).detach().to(dt);
    check_close(ops::matmul(nf, m2), ref_matmul(nf, m2, &s), tol, tol);
  }
}

TEST_CASE("matmul passes the f64 gradcheck for every shape rule and layout") {
  struct Case {
    const char* name;
    Shape a, b;
    std::function<Tensor(const Tensor&)> va, vb;  // views applied inside the checked function
  };
  auto id = [](const Tensor& t) { return t; };
  auto tr = [](const Tensor& t) { return t.transpose(-1, -2); };
  auto perm = [](const Tensor& t) { return t.permute({1, 0, 2}); };
  auto step2 = [](const Tensor& t) { return t.slice(1, 0, 8, 2); };
  auto bcast = [](const Tensor& t) { return t.expand({3, 3, 4}); };
  const std::vector<Case> cases = {
      {"dot", {4}, {4}, id, id},
      {"matrix-vector", {3, 4}, {4}, id, id},
      {"vector-matrix", {4}, {4, 5}, id, id},
      {"2-D", {3, 4}, {4, 5}, id, id},
      {"vector x batched", {4}, {2, 4, 3}, id, id},
      {"batched x vector", {2, 3, 4}, {4}, id, id},
      {"bmm-like", {2, 3, 4}, {2, 4, 5}, id, id},
      {"batched x 2-D (folded)", {2, 3, 4}, {4, 5}, id, id},
      {"2-D x batched", {3, 4}, {2, 4, 5}, id, id},
      {"4-D broadcast both", {2, 1, 3, 4}, {3, 4, 2}, id, id},
      {"size-1 batch broadcast", {1, 3, 4}, {2, 4, 5}, id, id},
      {"transposed a", {4, 3}, {4, 5}, tr, id},
      {"transposed b", {3, 4}, {5, 4}, id, tr},
      {"transposed both, batched", {2, 4, 3}, {2, 5, 4}, tr, tr},
      {"transposed batched x 2-D", {2, 4, 3}, {4, 5}, tr, id},
      {"permuted batch", {3, 2, 4}, {2, 4, 3}, perm, id},
      {"strided slice", {3, 8}, {4, 2}, step2, id},
      {"expanded batch", {1, 3, 4}, {3, 4, 2}, bcast, id},
  };
  for (const auto& c : cases) {
    INFO("case ", c.name);
    const Tensor a = leaf(c.a, -1, 1, 21), b = leaf(c.b, -1, 1, 22);
    auto f = [&](const std::vector<Tensor>& in) { return ops::matmul(c.va(in[0]), c.vb(in[1])); };
    CHECK_GRADCHECK(f, {a, b});
    // one input at a time: the other's gradient must not be needed
    const Tensor a_const = a.detach();
    auto fb = [&](const std::vector<Tensor>& in) { return ops::matmul(c.va(a_const), c.vb(in[0])); };
    CHECK_GRADCHECK(fb, {b});
  }
}

TEST_CASE("bmm matches the reference and passes the f64 gradcheck") {
  const Tensor a = leaf({3, 2, 4}, -1, 1, 31), b = leaf({3, 4, 5}, -1, 1, 32);
  Shape s;
  const std::vector<double> want = ref_matmul(a.detach(), b.detach(), &s);
  const Tensor y = ops::bmm(a, b);
  CHECK(y.sizes() == Shape{3, 2, 5});
  check_close(y, want, 1e-12, 1e-13);
  check_close(ops::bmm(a.detach().to(DType::f32), b.detach().to(DType::f32)), want, 1e-5, 1e-5);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::bmm(in[0], in[1]); }, {a, b});
  const Tensor at = leaf({3, 4, 2}, -1, 1, 33);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::bmm(in[0].transpose(1, 2), in[1]); }, {at, b});
}

TEST_CASE("linear matches the reference and passes the f64 gradcheck in x, weight and bias") {
  const Tensor w = leaf({5, 4}, -1, 1, 41), bias = leaf({5}, -1, 1, 42);
  for (const Shape& xs : {Shape{4}, Shape{3, 4}, Shape{2, 3, 4}, Shape{2, 1, 3, 4}}) {
    INFO("x ", shape_to_string(xs));
    const Tensor x = leaf(xs, -1, 1, 43);
    Shape want_sizes = xs;
    want_sizes.back() = 5;
    const Tensor y = ops::linear(x, w, bias);
    CHECK(y.sizes() == want_sizes);
    check_close(y, ref_linear(x.detach(), w.detach(), bias.detach()), 1e-12, 1e-13);
    check_close(ops::linear(x.detach(), w.detach()), ref_linear(x.detach(), w.detach(), Tensor()), 1e-12, 1e-13);
    check_close(ops::linear(x.detach().to(DType::f32), w.detach().to(DType::f32), bias.detach().to(DType::f32)),
                ref_linear(x.detach(), w.detach(), bias.detach()), 1e-5, 1e-5);
    CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); }, {x, w, bias});
    CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1]); }, {x, w});
  }
  // transposed 2-D input, a non-foldable 3-D input, and weight/bias only
  const Tensor xt = leaf({4, 3}, -1, 1, 44);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::linear(in[0].t(), in[1], in[2]); }, {xt, w, bias});
  const Tensor x3 = leaf({3, 2, 4}, -1, 1, 45);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::linear(in[0].transpose(0, 1), in[1], in[2]); },
                  {x3, w, bias});
  const Tensor xc = leaf({2, 3, 4}, -1, 1, 46).detach();
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::linear(xc, in[0], in[1]); }, {w, bias});
  // a transposed weight view (W stored as (in, out))
  const Tensor wt = leaf({4, 5}, -1, 1, 47);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1].t(), in[2]); },
                  {leaf({3, 4}, -1, 1, 48), wt, bias});
}

// The f64 gradchecks never run the f32 oneDNN kernels; these run them forward and backward on
// the same inputs (f32 values, exact in f64) and bound the relative L2 error by 1e-6 * log2(K),
// K being each product's contraction length.
TEST_CASE("matmul f32 (oneDNN) matches the f64 path forward and backward at model shapes") {
  auto mm = [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); };
  // (626, 256) @ (256, 256): y contracts K = 256; da = g b^T contracts N = 256; db = a^T g contracts M = 626.
  compare_f32_f64(mm, {f32_leaf({626, 256}, 1), f32_leaf({256, 256}, 2)}, {256, 256, 626}, "626x256x256");
  // batched (64, 64, 32) @ (64, 32, 64): y K = 32; da N = 64; db M = 64.
  compare_f32_f64(mm, {f32_leaf({64, 64, 32}, 3), f32_leaf({64, 32, 64}, 4)}, {32, 64, 64}, "64x(64x32)x(32x64)");
  // batched x shared 2-D (folded): (8, 100, 64) @ (64, 48): y K = 64; da N = 48; db sums 8 * 100 rows.
  compare_f32_f64(mm, {f32_leaf({8, 100, 64}, 5), f32_leaf({64, 48}, 6)}, {64, 48, 800}, "8x100x64 @ 64x48");
  // broadcast a: (48, 64) @ (8, 64, 100): y K = 64; da sums 8 batches of N = 100; db M = 48.
  compare_f32_f64(mm, {f32_leaf({48, 64}, 7), f32_leaf({8, 64, 100}, 8)}, {64, 800, 48}, "48x64 @ 8x64x100");
  // transposed operands (strides passed to oneDNN): (256, 300)^T @ (200, 256)^T.
  auto mmt = [](const std::vector<Tensor>& in) { return ops::matmul(in[0].t(), in[1].t()); };
  compare_f32_f64(mmt, {f32_leaf({256, 300}, 9), f32_leaf({200, 256}, 10)}, {256, 200, 300}, "transposed");
}

TEST_CASE("bmm f32 (oneDNN) matches the f64 path forward and backward") {
  auto f = [](const std::vector<Tensor>& in) { return ops::bmm(in[0], in[1]); };
  // (64, 64, 32) @ (64, 32, 64): y K = 32; da N = 64; db M = 64.
  compare_f32_f64(f, {f32_leaf({64, 64, 32}, 11), f32_leaf({64, 32, 64}, 12)}, {32, 64, 64}, "bmm 64x(64x32)x(32x64)");
  // attention-like (B*heads, T, d) @ (B*heads, d, T): y K = 32; da N = 144; db M = 144.
  compare_f32_f64(f, {f32_leaf({16, 144, 32}, 13), f32_leaf({16, 32, 144}, 14)}, {32, 144, 144}, "bmm 16x144x32x144");
}

TEST_CASE("linear f32 (oneDNN, fused bias) matches the f64 path forward and backward") {
  auto f = [](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); };
  // x (2, 313, 256), W (640, 256), b (640): y K = 256; dx N = 640; dW sums 626 rows; db sums 626 rows.
  compare_f32_f64(f, {f32_leaf({2, 313, 256}, 15), f32_leaf({640, 256}, 16), f32_leaf({640}, 17)}, {256, 640, 626, 626},
                  "linear 626x256 -> 640");
  // x (1001, 640), W (640, 640): y K = 640; dx N = 640; dW sums 1001 rows; db sums 1001 rows.
  compare_f32_f64(f, {f32_leaf({1001, 640}, 18), f32_leaf({640, 640}, 19), f32_leaf({640}, 20)}, {640, 640, 1001, 1001},
                  "linear 1001x640 -> 640");
}

TEST_CASE("matmul, bmm and linear reject bad arguments with messages naming the shapes") {
  const Tensor a = ops::zeros({2, 3}), b = ops::zeros({4, 5});
  std::string msg = error_of([&] { ops::matmul(a, b); });
  CHECK(contains(msg, "matmul"));
  CHECK(contains(msg, "[2, 3]"));
  CHECK(contains(msg, "[4, 5]"));
  CHECK_THROWS_AS(ops::matmul(a, b), ValueError);
  msg = error_of([&] { ops::matmul(ops::zeros({2, 2, 3}), ops::zeros({3, 3, 4})); });
  CHECK(contains(msg, "[2, 2, 3]"));
  CHECK(contains(msg, "[3, 3, 4]"));
  CHECK(contains(msg, "broadcast"));
  CHECK_THROWS_AS(ops::matmul(ops::zeros({}), ops::zeros({3})), ValueError);
  CHECK_THROWS_AS(ops::matmul(ops::zeros({3}), ops::zeros({4})), ValueError);
  msg = error_of([&] { ops::matmul(ops::zeros({2, 3}), ops::zeros({3, 4}, DType::f64)); });
  CHECK(contains(msg, "dtype"));
  CHECK(contains(msg, "float32"));
  CHECK(contains(msg, "float64"));
  CHECK_THROWS_AS(ops::matmul(ops::zeros({2, 3}, DType::i64), ops::zeros({3, 4}, DType::i64)), ValueError);
  CHECK_THROWS_AS(ops::matmul(Tensor(), b), ValueError);

  CHECK_THROWS_AS(ops::bmm(ops::zeros({2, 3}), ops::zeros({3, 4})), ValueError);
  msg = error_of([&] { ops::bmm(ops::zeros({2, 2, 3}), ops::zeros({3, 3, 4})); });
  CHECK(contains(msg, "[2, 2, 3]"));
  CHECK(contains(msg, "[3, 3, 4]"));
  msg = error_of([&] { ops::bmm(ops::zeros({2, 2, 3}), ops::zeros({2, 4, 4})); });
  CHECK(contains(msg, "[2, 2, 3]"));
  CHECK(contains(msg, "[2, 4, 4]"));

  msg = error_of([&] { ops::linear(ops::zeros({7, 3}), ops::zeros({5, 4})); });
  CHECK(contains(msg, "linear"));
  CHECK(contains(msg, "[7, 3]"));
  CHECK(contains(msg, "[5, 4]"));
  CHECK_THROWS_AS(ops::linear(ops::zeros({7, 4}), ops::zeros({5, 4, 1})), ValueError);
  CHECK_THROWS_AS(ops::linear(ops::zeros({}), ops::zeros({5, 4})), ValueError);
  msg = error_of([&] { ops::linear(ops::zeros({7, 4}), ops::zeros({5, 4}), ops::zeros({4})); });
  CHECK(contains(msg, "bias"));
  CHECK(contains(msg, "[4]"));
  CHECK_THROWS_AS(ops::linear(ops::zeros({7, 4}), ops::zeros({5, 4}, DType::f64)), ValueError);
  CHECK_THROWS_AS(ops::linear(ops::zeros({7, 4}), ops::zeros({5, 4}), ops::zeros({5}, DType::f64)), ValueError);
}

TEST_CASE("matmul, bmm and linear handle 0-size dims (K = 0 gives zeros or the bias)") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO("dtype ", dt);
    CHECK(ops::matmul(ops::zeros({0, 3}, dt), ops::zeros({3, 4}, dt)).sizes() == Shape{0, 4});
    CHECK(ops::matmul(ops::zeros({2, 3}, dt), ops::zeros({3, 0}, dt)).sizes() == Shape{2, 0});
    CHECK(ops::bmm(ops::zeros({0, 2, 3}, dt), ops::zeros({0, 3, 4}, dt)).sizes() == Shape{0, 2, 4});
    CHECK(ops::matmul(ops::zeros({0, 2, 3}, dt), ops::zeros({3, 4}, dt)).sizes() == Shape{0, 2, 4});
    Tensor a = ops::zeros({3, 0}, dt).requires_grad_(), b = ops::zeros({0, 4}, dt).requires_grad_();
    const Tensor y = ops::matmul(a, b);
    CHECK(y.sizes() == Shape{3, 4});
    for (double v : values(y)) CHECK(v == 0.0);
    const auto g = autograd::grad({y}, {a, b}, {ops::ones({3, 4}, dt)});
    CHECK(g[0].sizes() == Shape{3, 0});
    CHECK(g[1].sizes() == Shape{0, 4});
    Tensor x = ops::zeros({2, 0}, dt).requires_grad_(), w = ops::zeros({3, 0}, dt).requires_grad_();
    Tensor bias = ops::from_vector(std::vector<double>{1, 2, 3}, {3}, dt).requires_grad_();
    const Tensor yl = ops::linear(x, w, bias);
    check_close(yl, {1, 2, 3, 1, 2, 3}, 0, 0);
    const auto gl = autograd::grad({yl}, {x, w, bias}, {ops::ones({2, 3}, dt)});
    CHECK(gl[0].sizes() == Shape{2, 0});
    CHECK(gl[1].sizes() == Shape{3, 0});
    check_close(gl[2], {2, 2, 2}, 0, 0);
    Tensor x0 = ops::zeros({0, 4}, dt).requires_grad_(), w0 = ops::ones({3, 4}, dt).requires_grad_();
    const Tensor y0 = ops::linear(x0, w0, bias);
    CHECK(y0.sizes() == Shape{0, 3});
    const auto g0 = autograd::grad({y0}, {x0, w0, bias}, {ops::ones({0, 3}, dt)});
    check_close(g0[1], std::vector<double>(12, 0.0), 0, 0);
    check_close(g0[2], {0, 0, 0}, 0, 0);
  }
}

TEST_CASE("matmul: a second identical f32 call is a primitive cache hit, the cache is bounded") {
  using cpu::onednn::primitive_cache_stats;
  // A shape no other test uses, so the first call is a miss.
  const Tensor a = f32_leaf({37, 29}, 51).detach(), b = f32_leaf({29, 41}, 52).detach();
  const auto s0 = primitive_cache_stats();
  const Tensor y1 = ops::matmul(a, b);
  const auto s1 = primitive_cache_stats();
  CHECK(s1.misses == s0.misses + 1);
  CHECK(s1.hits == s0.hits);
  const Tensor y2 = ops::matmul(a, b);
  const auto s2 = primitive_cache_stats();
  CHECK(s2.hits == s1.hits + 1);
  CHECK(s2.misses == s1.misses);
  CHECK(values(y1) == values(y2));
  // Same shapes, other strides (a column-major a, passed to oneDNN as is): a different problem.
  ops::matmul(a.t().contiguous().t(), b);
  CHECK(primitive_cache_stats().misses == s2.misses + 1);

  const size_t capacity = s0.capacity;
  cpu::onednn::set_primitive_cache_capacity(2);
  for (int64_t n = 1; n <= 4; ++n) ops::matmul(a, f32_leaf({29, 100 + n}, 53).detach());
  CHECK(primitive_cache_stats().size == 2);
  const auto s3 = primitive_cache_stats();
  ops::matmul(a, f32_leaf({29, 104}, 53).detach());  // most recent: still cached
  CHECK(primitive_cache_stats().hits == s3.hits + 1);
  ops::matmul(a, f32_leaf({29, 101}, 53).detach());  // evicted
  CHECK(primitive_cache_stats().misses == s3.misses + 1);
  cpu::onednn::set_primitive_cache_capacity(capacity);
}

TEST_CASE("matmul and linear run concurrently from several threads on different tensors") {
  constexpr int kThreads = 4;
  std::vector<Tensor> as, ws, want;
  for (int t = 0; t < kThreads; ++t) {
    as.push_back(f32_leaf({64, 96}, 60 + t).detach());
    ws.push_back(f32_leaf({80, 96}, 70 + t).detach());
    want.push_back(ops::linear(as.back(), ws.back()));
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int it = 0; it < 20; ++it) {
        if (values(ops::linear(as[t], ws[t])) != values(want[t])) ++mismatches;
        if (values(ops::matmul(as[t], ws[t].t())) != values(want[t])) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches.load() == 0);
}

TEST_CASE("matmul: the thread count is part of the problem, the caller's floating-point mode is kept") {
  using cpu::onednn::primitive_cache_stats;
  const int threads = get_num_threads();
  const Tensor a = f32_leaf({45, 31}, 81).detach(), b = f32_leaf({31, 27}, 82).detach();
  set_num_threads(1);
  const Tensor y1 = ops::matmul(a, b);
  const auto s1 = primitive_cache_stats();
  set_num_threads(2);
  const Tensor y2 = ops::matmul(a, b);
  CHECK(primitive_cache_stats().misses == s1.misses + 1);  // a primitive per thread count
  set_num_threads(threads);
  CHECK(rel_l2(y2, y1) <= onednn_tol(31));
  // oneDNN runs with flush-to-zero, but the calling thread's own MXCSR is restored.
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr & ~0x8040u);
  ops::matmul(a, b);
  CHECK((_mm_getcsr() & 0x8040u) == 0u);
  _mm_setcsr(csr);
}
