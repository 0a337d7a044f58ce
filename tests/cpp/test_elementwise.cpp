// Elementwise ops and activations: naive f64 references, f64 gradchecks, strided and broadcast
// inputs, dtype promotion, documented errors.
#include <cmath>
#include <functional>
#include <limits>

#include "tests/cpp/gradcheck.hpp"

using namespace tse;
using tse::test::leaf;
using tse::test::values;

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;     // input range for the reference and the gradcheck
  double f32_rtol;   // f32 kernel vs f64 reference
};

double gelu_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return ops::neg(x); }, [](double x) { return -x; }, -3, 3, 0},
      {"exp", [](const Tensor& x) { return ops::exp(x); }, [](double x) { return std::exp(x); }, -3, 3, 1e-6},
      {"log", [](const Tensor& x) { return ops::log(x); }, [](double x) { return std::log(x); }, 0.1, 4, 1e-6},
      {"log10", [](const Tensor& x) { return ops::log10(x); }, [](double x) { return std::log10(x); }, 0.1, 4, 1e-6},
      {"sqrt", [](const Tensor& x) { return ops::sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.1, 4, 1e-6},
      {"rsqrt", [](const Tensor& x) { return ops::rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.1, 4, 1e-6},
      {"abs", [](const Tensor& x) { return ops::abs(x); }, [](double x) { return std::abs(x); }, -3, 3, 0},
      {"sin", [](const Tensor& x) { return ops::sin(x); }, [](double x) { return std::sin(x); }, -3, 3, 1e-6},
      {"cos", [](const Tensor& x) { return ops::cos(x); }, [](double x) { return std::cos(x); }, -3, 3, 1e-6},
      {"relu", [](const Tensor& x) { return ops::relu(x); }, [](double x) { return x > 0 ? x : 0; }, -3, 3, 0},
      {"leaky_relu", [](const Tensor& x) { return ops::leaky_relu(x, 0.2); },
       [](double x) { return x > 0 ? x : 0.2 * x; }, -3, 3, 1e-7},
      {"gelu", [](const Tensor& x) { return ops::gelu(x); }, gelu_ref, -4, 4, 2e-6},
      {"gelu_tanh", [](const Tensor& x) { return ops::gelu(x, "tanh"); },
       [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }, -4, 4,
       2e-6},
      {"silu", [](const Tensor& x) { return ops::silu(x); }, [](double x) { return x * sigmoid_ref(x); }, -4, 4, 2e-6},
      {"sigmoid", [](const Tensor& x) { return ops::sigmoid(x); }, sigmoid_ref, -4, 4, 1e-6},
      {"tanh", [](const Tensor& x) { return ops::tanh(x); }, [](double x) { return std::tanh(x); }, -3, 3, 1e-6},
      {"softplus", [](const Tensor& x) { return ops::softplus(x, 2.0, 5.0); },
       [](double x) { return 2 * x > 5 ? x : std::log1p(std::exp(2 * x)) / 2; }, -4, 4, 1e-6},
      {"pow2.5", [](const Tensor& x) { return ops::pow(x, 2.5); }, [](double x) { return std::pow(x, 2.5); }, 0.1, 3,
       1e-6},
      {"pow2", [](const Tensor& x) { return ops::pow(x, 2.0); }, [](double x) { return x * x; }, -3, 3, 1e-7},
      {"clamp", [](const Tensor& x) { return ops::clamp(x, -0.5, 0.7); },
       [](double x) { return std::min(std::max(x, -0.5), 0.7); }, -2, 2, 0},
  };
}

void check_against(const Tensor& got, const std::vector<double>& want, double rtol, double atol, const char* name) {
  const auto g = values(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO(name, " element ", i, ": got ", g[i], " want ", want[i]);
    CHECK(std::abs(g[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

}  // namespace

TEST_CASE("unary ops match a naive float64 reference in f64 and f32, contiguous and strided") {
  for (const auto& c : unary_cases()) {
    // 7 x 5 then transposed: a non-contiguous view with 35 elements (exercises vector tails too)
    Tensor base = leaf({7, 5}, c.lo, c.hi, 11).detach();
    Tensor strided = base.t();
    std::vector<double> want;
    {
      const auto v = values(strided);
      for (double x : v) want.push_back(c.ref(x));
    }
    check_against(c.op(strided), want, 1e-12, 1e-14, c.name);
    check_against(c.op(strided.contiguous()), want, 1e-12, 1e-14, c.name);
    check_against(c.op(strided.to(DType::f32)), want, c.f32_rtol + 1e-7, 1e-7, c.name);
    // A long contiguous f32 run goes through the vector kernels' main loops.
    Tensor big = leaf({1000}, c.lo, c.hi, 5).detach();
    std::vector<double> want_big;
    for (double x : values(big)) want_big.push_back(c.ref(x));
    check_against(c.op(big.to(DType::f32)), want_big, c.f32_rtol + 1e-7, 1e-7, c.name);
  }
}

TEST_CASE("unary ops pass the f64 gradcheck") {
  for (const auto& c : unary_cases()) {
    INFO("op ", c.name);
    // keep away from kinks (relu, abs, clamp at -0.5/0.7, softplus threshold) by the input draw
    Tensor x = leaf({3, 4}, c.lo, c.hi, 3);
    auto f = [&](const std::vector<Tensor>& in) { return c.op(in[0].t()); };  // strided input to the op
    CHECK_GRADCHECK(f, {x});
  }
}

TEST_CASE("gelu keeps relative accuracy in the negative tail") {
  Tensor x = ops::from_vector(std::vector<double>{-5.0, -6.0, -8.0}, {3}, DType::f32);
  const auto y = values(ops::gelu(x));
  for (size_t i = 0; i < 3; ++i) {
    const double xv = values(x)[i];
    const double ref = 0.5 * xv * std::erfc(-xv / std::sqrt(2.0));
    CHECK(std::abs(y[i] - ref) <= 1e-5 * std::abs(ref));
  }
}

TEST_CASE("activation edge values: relu/sigmoid/tanh/softplus at extremes, NaN propagation") {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = ops::from_vector(std::vector<double>{-1000, 1000, -inf, inf}, {4}, DType::f32);
  const auto s = values(ops::sigmoid(x));
  CHECK(s[0] == 0.0);
  CHECK(s[1] == 1.0);
  CHECK(s[2] == 0.0);
  CHECK(s[3] == 1.0);
  const auto t = values(ops::tanh(x));
  CHECK(t[0] == -1.0);
  CHECK(t[3] == 1.0);
  const auto sp = values(ops::softplus(x));
  CHECK(sp[0] == 0.0);
  CHECK(sp[1] == 1000.0);
  Tensor n = ops::from_vector(std::vector<double>{std::nan(""), 1.0}, {2}, DType::f32);
  CHECK(std::isnan(values(ops::relu(n))[0]));
  CHECK(std::isnan(values(ops::clamp(n, 0, 0.5))[0]));
  CHECK(std::isnan(values(ops::maximum(n, ops::zeros({2})))[0]));
}

TEST_CASE("binary ops broadcast and match the reference, gradients reduce to the input shapes") {
  struct BinaryCase {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
    std::function<double(double, double)> ref;
    double lo, hi;
  };
  const std::vector<BinaryCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return ops::add(a, b); }, [](double a, double b) { return a + b; }, -2, 2},
      {"add_alpha", [](const Tensor& a, const Tensor& b) { return ops::add(a, b, 0.5); },
       [](double a, double b) { return a + 0.5 * b; }, -2, 2},
      {"sub", [](const Tensor& a, const Tensor& b) { return ops::sub(a, b, 2.0); },
       [](double a, double b) { return a - 2 * b; }, -2, 2},
      {"mul", [](const Tensor& a, const Tensor& b) { return ops::mul(a, b); }, [](double a, double b) { return a * b; }, -2, 2},
      {"div", [](const Tensor& a, const Tensor& b) { return ops::div(a, b); }, [](double a, double b) { return a / b; }, 0.5, 2},
      {"pow", [](const Tensor& a, const Tensor& b) { return ops::pow(a, b); },
       [](double a, double b) { return std::pow(a, b); }, 0.5, 2},
      {"atan2", [](const Tensor& a, const Tensor& b) { return ops::atan2(a, b); },
       [](double a, double b) { return std::atan2(a, b); }, -2, 2},
      {"maximum", [](const Tensor& a, const Tensor& b) { return ops::maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }, -2, 2},
      {"minimum", [](const Tensor& a, const Tensor& b) { return ops::minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }, -2, 2},
  };
  for (const auto& c : cases) {
    INFO("op ", c.name);
    Tensor a = leaf({2, 1, 4}, c.lo, c.hi, 21);
    Tensor b = leaf({3, 1}, c.lo, c.hi, 22);
    Tensor out = c.op(a, b);
    REQUIRE(out.sizes() == Shape{2, 3, 4});
    const auto av = values(a), bv = values(b);
    std::vector<double> want;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) want.push_back(c.ref(av[i * 4 + k], bv[j]));
    check_against(out, want, 1e-12, 1e-14, c.name);
    check_against(c.op(a.to(DType::f32), b.to(DType::f32)), want, 2e-6, 1e-7, c.name);
    auto f = [&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); };
    CHECK_GRADCHECK(f, {a, b});
    // non-contiguous operands: a transposed view against a broadcast row
    Tensor m = leaf({4, 3}, c.lo, c.hi, 23);
    Tensor r = leaf({4}, c.lo, c.hi, 24);
    auto g = [&](const std::vector<Tensor>& in) { return c.op(in[0].t(), in[1]); };
    CHECK_GRADCHECK(g, {m, r});
  }
}

TEST_CASE("scalar overloads, reflected operators and dtype promotion") {
  Tensor x = ops::from_vector(std::vector<double>{1, 2, 4}, {3}, DType::f32);
  check_against(x + 1.0, {2, 3, 5}, 0, 0, "add");
  check_against(10.0 - x, {9, 8, 6}, 0, 0, "rsub");
  check_against(2.0 * x, {2, 4, 8}, 0, 0, "mul");
  check_against(8.0 / x, {8, 4, 2}, 0, 0, "rdiv");
  check_against(-x, {-1, -2, -4}, 0, 0, "neg");
  CHECK((x + 1.0).dtype() == DType::f32);
  Tensor d = ops::from_vector(std::vector<double>{1, 1, 1}, {3}, DType::f64);
  CHECK((x + d).dtype() == DType::f64);
  Tensor i = ops::from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  CHECK((i + i).dtype() == DType::i64);
  check_against(i * 3.0, {3, 6, 9}, 0, 0, "int mul");
  CHECK((i + 0.5).dtype() == DType::f32);
  CHECK((i / 2.0).dtype() == DType::f32);
  CHECK((i + x).dtype() == DType::f32);
  CHECK_THROWS_AS(ops::div(i, i), ValueError);
}

TEST_CASE("comparisons, logical ops, where and masked_fill") {
  Tensor a = ops::from_vector(std::vector<double>{1, 2, 3, 4}, {4}, DType::f32);
  Tensor b = ops::from_vector(std::vector<double>{4, 2, 1, 4}, {4}, DType::f32);
  CHECK(ops::lt(a, b).dtype() == DType::b8);
  check_against(ops::lt(a, b), {1, 0, 0, 0}, 0, 0, "lt");
  check_against(ops::le(a, b), {1, 1, 0, 1}, 0, 0, "le");
  check_against(ops::gt(a, b), {0, 0, 1, 0}, 0, 0, "gt");
  check_against(ops::ge(a, b), {0, 1, 1, 1}, 0, 0, "ge");
  check_against(ops::eq(a, b), {0, 1, 0, 1}, 0, 0, "eq");
  check_against(ops::ne(a, 2.0), {1, 0, 1, 1}, 0, 0, "ne");
  check_against(ops::logical_not(ops::eq(a, b)), {1, 0, 1, 0}, 0, 0, "not");
  check_against(ops::logical_and(ops::ge(a, 2.0), ops::le(a, 3.0)), {0, 1, 1, 0}, 0, 0, "and");
  check_against(ops::logical_or(ops::lt(a, 2.0), ops::gt(a, 3.0)), {1, 0, 0, 1}, 0, 0, "or");
  Tensor nanv = ops::from_vector(std::vector<double>{1, std::nan(""), INFINITY}, {3}, DType::f32);
  check_against(ops::isnan(nanv), {0, 1, 0}, 0, 0, "isnan");
  check_against(ops::isfinite(nanv), {1, 0, 0}, 0, 0, "isfinite");
  check_against(ops::where(ops::lt(a, b), a, b), {1, 2, 1, 4}, 0, 0, "where");
  check_against(ops::masked_fill(a, ops::gt(a, 2.0), -1.0), {1, 2, -1, -1}, 0, 0, "masked_fill");
  Tensor x = leaf({2, 3});
  Tensor y = leaf({3}, -1, 1, 9);
  Tensor cond = ops::gt(leaf({2, 3}, -1, 1, 10).detach(), 0.0);
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::where(cond, in[0], in[1]); }, {x, y});
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return ops::masked_fill(in[0], cond, 3.0); }, {x});
  CHECK_THROWS_AS(ops::where(a, a, b), ValueError);  // condition must be bool
  CHECK_THROWS_AS(ops::masked_fill(ops::zeros({3}), ops::gt(ops::zeros({2, 3}), 0.0), 1.0), ValueError);
}

TEST_CASE("maximum and minimum split the gradient at ties") {
  Tensor a = ops::from_vector(std::vector<double>{1, 2}, {2}, DType::f64).requires_grad_();
  Tensor b = ops::from_vector(std::vector<double>{1, 3}, {2}, DType::f64).requires_grad_();
  ops::sum(ops::maximum(a, b)).backward();
  check_against(a.grad(), {0.5, 0}, 0, 0, "grad a");
  check_against(b.grad(), {0.5, 1}, 0, 0, "grad b");
}

TEST_CASE("glu halves along a dim and gates with a sigmoid") {
  Tensor x = leaf({2, 6});
  const auto xv = values(x);
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) want.push_back(xv[i * 6 + j] * sigmoid_ref(xv[i * 6 + j + 3]));
  check_against(ops::glu(x, 1), want, 1e-12, 1e-14, "glu");
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return ops::glu(in[0], -1); }, {x});
  CHECK_THROWS_AS(ops::glu(ops::zeros({2, 5}), 1), ValueError);
}

TEST_CASE("elementwise errors name the op and the shapes") {
  try {
    ops::add(ops::zeros({2, 3}), ops::zeros({4}));
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    const std::string m = e.what();
    CHECK(m.find("add") != std::string::npos);
    CHECK(m.find("[2, 3]") != std::string::npos);
    CHECK(m.find("[4]") != std::string::npos);
  }
  CHECK_THROWS_AS(ops::exp(ops::zeros({2}, DType::i64)), ValueError);
  CHECK_THROWS_AS(ops::gelu(ops::zeros({2}), "fast"), ValueError);
  CHECK_THROWS_AS(ops::clamp(ops::zeros({2}), 1.0, 0.0), ValueError);
  CHECK_THROWS_AS(ops::softplus(ops::zeros({2}), 0.0), ValueError);
  CHECK_THROWS_AS(ops::add(ops::zeros({2}, DType::f16), ops::zeros({2}, DType::f16)), ValueError);
  CHECK_THROWS_AS(ops::exp(Tensor()), ValueError);
}

TEST_CASE("in-place ops broadcast, convert and bump the version") {
  Tensor x = ops::zeros({2, 3});
  const uint64_t v0 = x.version();
  x.add_(ops::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::f64));
  CHECK(x.version() > v0);
  check_against(x, {1, 2, 3, 1, 2, 3}, 0, 0, "add_");
  x.mul_(2.0);
  check_against(x, {2, 4, 6, 2, 4, 6}, 0, 0, "mul_");
  x.t().slice(0, 1, 2).copy_(ops::full({1, 2}, 9.0));  // write through a strided view
  check_against(x, {2, 9, 6, 2, 9, 6}, 0, 0, "copy_ through view");
  x.fill_(1.5);
  check_against(x, {1.5, 1.5, 1.5, 1.5, 1.5, 1.5}, 0, 0, "fill_");
  CHECK_THROWS_AS(x.add_(ops::zeros({4})), ValueError);
  CHECK_THROWS_AS(x.copy_(ops::zeros({3, 2})), ValueError);
}

TEST_CASE("large elementwise ops give the same result on 1 and 2 threads") {
  Tensor x = ops::linspace(-5, 5, 100003);
  set_num_threads(1);
  const auto a = values(ops::gelu(ops::mul(x, ops::sin(x))));
  set_num_threads(2);
  const auto b = values(ops::gelu(ops::mul(x, ops::sin(x))));
  CHECK(a == b);
}
