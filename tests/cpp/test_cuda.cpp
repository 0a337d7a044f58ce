// The CUDA path: device copies and the first kernels. Skipped (counted as skipped by CTest)
// when no GPU is visible; without TSE_WITH_CUDA it checks the clear error instead.
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

#include "src/core/cuda_backend.hpp"
#include "tests/cpp/gradcheck.hpp"

using namespace tse;
using tse::test::values;

// Without a GPU a test prints TSE_SKIP and returns; CTest reports it as skipped
// (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt).
#define TSE_REQUIRE_GPU()                        \
  do {                                           \
    if (!cuda_is_available()) {                  \
      MESSAGE("TSE_SKIP: no CUDA GPU visible");  \
      return;                                    \
    }                                            \
  } while (0)

TEST_CASE("cuda: built-in state is reported without a GPU") {
  CHECK(cuda_device_count() >= 0);
  if (!cuda_built()) CHECK_THROWS_AS(ops::zeros({2}).to(Device::cuda(0)), ValueError);
}

TEST_CASE("cuda: host <-> device round trip, fill and add") {
  TSE_REQUIRE_GPU();
  Tensor a = ops::linspace(-1, 1, 1000);
  Tensor b = ops::full({1000}, 0.25);
  Tensor ga = a.to(Device::cuda(0));
  Tensor gb = b.to(Device::cuda(0));
  CHECK(ga.device() == Device::cuda(0));
  const auto sum = values(ops::add(ga, gb, 2.0).to(Device::cpu()));
  const auto want = values(ops::add(a, b, 2.0));
  CHECK(sum == want);
  CHECK(values(ops::zeros({5}, DType::f32, Device::cuda(0))) == std::vector<double>(5, 0.0));
  CHECK_THROWS_AS(ops::add(ga, b), ValueError);  // mixing devices names both
}

TEST_CASE("cuda: gradients flow through device copies") {
  TSE_REQUIRE_GPU();
  Tensor x = ops::linspace(0, 1, 8, DType::f64).requires_grad_();
  Tensor y = ops::mul(x.to(Device::cuda(0)), x.to(Device::cuda(0))).to(Device::cpu());
  ops::sum(y).backward();
  const auto g = values(x.grad());
  const auto xv = values(x);
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(2 * xv[i]));
}

TEST_CASE("cuda: device blocks are cached and reused, and empty_cache returns them") {
  TSE_REQUIRE_GPU();
  void* first;
  {
    Tensor a = ops::zeros({1 << 20}, DType::f32, Device::cuda(0));
    first = a.data_ptr();
  }
  CHECK(memory::cuda_cached_bytes(0) >= (size_t{4} << 20));
  Tensor b = ops::zeros({1 << 20}, DType::f32, Device::cuda(0));
  CHECK(b.data_ptr() == first);  // no cudaMalloc in steady state
  b = Tensor();
  memory::empty_cache();
  CHECK(memory::cuda_cached_bytes(0) == 0);
  CHECK_THROWS_AS(memory::cuda_cached_bytes(cuda_device_count()), ValueError);
}

namespace {

/// ||got - want|| / ||want|| with got brought to the CPU in f64.
double rel_err(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = values(got.to(Device::cpu())), w = values(want);
  REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num += (g[i] - w[i]) * (g[i] - w[i]);
    den += w[i] * w[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

Tensor gpu(const Tensor& t) { return t.to(Device::cuda(0)); }

}  // namespace

TEST_CASE("cuda matmul: cuBLAS GEMMs equal the CPU's at the layouts and batches the op layer passes") {
  TSE_REQUIRE_GPU();
  // f64 CPU references; f32 on the GPU within 1e-6 (no TF32), f64 within 1e-13.
  const Tensor a = ops::randn({3, 4, 37, 64}, DType::f64), b = ops::randn({3, 4, 64, 29}, DType::f64);
  const Tensor want = ops::matmul(a, b);
  CHECK(rel_err(ops::matmul(gpu(a), gpu(b)), want) <= 1e-13);
  CHECK(rel_err(ops::matmul(gpu(a.to(DType::f32)), gpu(b.to(DType::f32))), want) <= 1e-6);
  // Broadcast batch (b without a batch of its own, and b broadcast over one dim only).
  const Tensor w = ops::randn({64, 29}, DType::f64), wb = ops::randn({3, 1, 64, 29}, DType::f64);
  CHECK(rel_err(ops::matmul(gpu(a), gpu(w)), ops::matmul(a, w)) <= 1e-13);
  CHECK(rel_err(ops::matmul(gpu(a), gpu(wb)), ops::matmul(a, wb)) <= 1e-13);
  // Transposed operands read in place, and a batch whose strides no single stride describes.
  const Tensor at = a.transpose(2, 3).contiguous().transpose(2, 3), bt = b.transpose(0, 1).contiguous().transpose(0, 1);
  CHECK(rel_err(ops::matmul(gpu(at), gpu(b)), want) <= 1e-13);
  CHECK(rel_err(ops::matmul(gpu(a), gpu(bt).transpose(0, 1).contiguous().transpose(0, 1)), want) <= 1e-13);
  // linear with bias, bmm, K = 0.
  const Tensor x = ops::randn({2, 50, 64}, DType::f64), lw = ops::randn({40, 64}, DType::f64), lb = ops::randn({40}, DType::f64);
  CHECK(rel_err(ops::linear(gpu(x), gpu(lw), gpu(lb)), ops::linear(x, lw, lb)) <= 1e-13);
  CHECK(rel_err(ops::bmm(gpu(a.select(0, 0)), gpu(b.select(0, 0))), ops::bmm(a.select(0, 0), b.select(0, 0))) <= 1e-13);
  const Tensor e = ops::matmul(gpu(ops::randn({5, 0})), gpu(ops::randn({0, 7})));
  CHECK(values(e.to(Device::cpu())) == std::vector<double>(35, 0.0));
}

TEST_CASE("cuda matmul: bf16 autocast and the TF32 option stay within their stated bounds") {
  TSE_REQUIRE_GPU();
  const Tensor a = ops::randn({256, 512}, DType::f64), b = ops::randn({512, 384}, DType::f64);
  const Tensor want = ops::matmul(a, b);
  const Tensor a32 = gpu(a.to(DType::f32)), b32 = gpu(b.to(DType::f32));
  {
    AutocastGuard bf16;
    const Tensor got = ops::matmul(a32, b32);
    CHECK(got.dtype() == DType::f32);
    const double err = rel_err(got, want);
    CHECK(err <= 1e-2);  // bf16 operands, f32 accumulation
    CHECK(err >= 1e-4);  // and really bf16
    // The same rounding as the CPU's autocast: equal up to the order of f32 accumulation.
    CHECK(rel_err(got, ops::matmul(a.to(DType::f32), b.to(DType::f32)).to(DType::f64)) <= 1e-2);
  }
  CHECK(!cuda_allow_tf32());
  set_cuda_allow_tf32(true);
  const double tf32 = rel_err(ops::matmul(a32, b32), want);
  set_cuda_allow_tf32(false);
  CHECK(tf32 <= 3e-3);
  CHECK(rel_err(ops::matmul(a32, b32), want) <= 1e-6);
}

TEST_CASE("cuda matmul: the backward of a 2-D product runs on the GPU and matches the CPU") {
  TSE_REQUIRE_GPU();
  const Tensor a = ops::randn({33, 20}, DType::f64), b = ops::randn({20, 17}, DType::f64);
  Tensor ga = gpu(a).requires_grad_(), gb = gpu(b).requires_grad_();
  const Tensor g = ops::randn({33, 17}, DType::f64);
  const auto grads = autograd::grad({ops::matmul(ga, gb)}, {ga, gb}, {gpu(g)});
  CHECK(rel_err(grads[0], ops::matmul(g, b.transpose(0, 1))) <= 1e-13);
  CHECK(rel_err(grads[1], ops::matmul(a.transpose(0, 1), g)) <= 1e-13);
  const size_t before = cuda::device_to_host_copies();
  (void)ops::matmul(gpu(a), gpu(b));
  CHECK(cuda::device_to_host_copies() == before);  // no host round trip inside the op
}

TEST_CASE("cuda elementwise: every unary op and its backward equal the CPU's, on strided inputs") {
  TSE_REQUIRE_GPU();
  using UnaryOp = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, UnaryOp>> unary_ops = {
      {"neg", [](const Tensor& x) { return ops::neg(x); }},
      {"exp", [](const Tensor& x) { return ops::exp(x); }},
      {"log", [](const Tensor& x) { return ops::log(ops::abs(x) + 0.1); }},
      {"log10", [](const Tensor& x) { return ops::log10(ops::abs(x) + 0.1); }},
      {"sqrt", [](const Tensor& x) { return ops::sqrt(ops::abs(x) + 0.1); }},
      {"rsqrt", [](const Tensor& x) { return ops::rsqrt(ops::abs(x) + 0.1); }},
      {"sin", [](const Tensor& x) { return ops::sin(x); }},
      {"cos", [](const Tensor& x) { return ops::cos(x); }},
      {"relu", [](const Tensor& x) { return ops::relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return ops::leaky_relu(x, 0.2); }},
      {"gelu", [](const Tensor& x) { return ops::gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return ops::gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return ops::silu(x); }},
      {"sigmoid", [](const Tensor& x) { return ops::sigmoid(x); }},
      {"tanh", [](const Tensor& x) { return ops::tanh(x); }},
      {"softplus", [](const Tensor& x) { return ops::softplus(x, 2.0, 3.0); }},
      {"pow", [](const Tensor& x) { return ops::pow(ops::abs(x) + 0.1, 1.7); }},
      {"clamp", [](const Tensor& x) { return ops::clamp(x, -0.5, 0.7); }},
  };
  const Tensor base = ops::randn({40, 30}, DType::f64) * 2.0;
  const Tensor g = ops::randn({30, 40}, DType::f64);
  for (const auto& [name, f] : unary_ops) {
    INFO(name);
    // A transposed view: the kernels index strided inputs.
    const Tensor x = base.transpose(0, 1);
    Tensor xc = x.detach().requires_grad_(), xg = gpu(base).transpose(0, 1).detach().requires_grad_();
    const Tensor yc = f(xc), yg = f(xg);
    CHECK(rel_err(yg, yc) <= 1e-13);
    const Tensor gc = autograd::grad({yc}, {xc}, {g})[0], gg = autograd::grad({yg}, {xg}, {gpu(g)})[0];
    CHECK(rel_err(gg, gc) <= 1e-12);
    const Tensor y32 = f(gpu(x.to(DType::f32)));
    CHECK(rel_err(y32, yc) <= 1e-6);
  }
}

TEST_CASE("cuda elementwise: broadcasting binary ops, comparisons, where, casts and strided fills") {
  TSE_REQUIRE_GPU();
  const Tensor a = ops::randn({4, 1, 6}, DType::f64), b = ops::randn({5, 1}, DType::f64);
  for (auto f : {+[](const Tensor& x, const Tensor& y) { return ops::add(x, y, 0.5); },
                 +[](const Tensor& x, const Tensor& y) { return ops::sub(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::mul(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::div(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::atan2(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::maximum(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::minimum(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::pow(ops::abs(x) + 0.5, y); }}) {
    CHECK(rel_err(f(gpu(a), gpu(b)), f(a, b)) <= 1e-13);
  }
  for (auto f : {+[](const Tensor& x, const Tensor& y) { return ops::lt(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::ge(x, y); },
                 +[](const Tensor& x, const Tensor& y) { return ops::eq(x, x); },
                 +[](const Tensor& x, const Tensor& y) { return ops::logical_and(ops::gt(x, y), ops::gt(y, 0.0)); }}) {
    const Tensor c = f(a, b), gc = f(gpu(a), gpu(b));
    CHECK(gc.dtype() == DType::b8);
    CHECK(values(gc.to(Device::cpu())) == values(c));
  }
  const Tensor cond = ops::gt(a, 0.0);
  CHECK(rel_err(ops::where(gpu(cond), gpu(a), gpu(b)), ops::where(cond, a, b)) <= 0);
  // NaN through maximum and clamp, isnan / isfinite.
  const Tensor nan = ops::full({3}, std::nan(""), DType::f32);
  CHECK(values(ops::isnan(ops::maximum(gpu(nan), gpu(ops::zeros({3})))).to(Device::cpu())) ==
        std::vector<double>(3, 1.0));
  CHECK(values(ops::isfinite(ops::clamp(gpu(nan), 0, 1)).to(Device::cpu())) == std::vector<double>(3, 0.0));
  // Casts between every pair of the CUDA dtypes, from a transposed view.
  const Tensor src = (ops::randn({7, 9}, DType::f64) * 100.0).transpose(0, 1);
  for (DType from : {DType::f32, DType::f64, DType::i32, DType::i64, DType::bf16})
    for (DType to : {DType::f32, DType::f64, DType::i32, DType::i64, DType::bf16, DType::b8}) {
      INFO(from, " -> ", to);
      const Tensor s = src.to(from);
      CHECK(values(gpu(s).to(to).to(Device::cpu())) == values(s.to(to)));
    }
  // A strided fill: every other column of a matrix.
  Tensor m = gpu(ops::zeros({4, 6}));
  m.narrow(1, 0, 3).fill_(2.5);
  const std::vector<double> mv = values(m.to(Device::cpu()));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 6; ++j) CHECK(mv[static_cast<size_t>(i * 6 + j)] == (j < 3 ? 2.5 : 0.0));
}

TEST_CASE("cuda reductions: sum, mean, norms, max / min, their arg forms and logsumexp equal the CPU's") {
  TSE_REQUIRE_GPU();
  const Tensor x = ops::randn({6, 70, 33}, DType::f64).transpose(1, 2);  // strided
  const Tensor xg = gpu(x);
  for (const Shape& dims : {Shape{}, Shape{0}, Shape{1}, Shape{2}, Shape{0, 2}, Shape{-1}}) {
    INFO("dims size ", dims.size());
    CHECK(rel_err(ops::sum(xg, dims), ops::sum(x, dims)) <= 1e-13);
    CHECK(rel_err(ops::mean(xg, dims, true), ops::mean(x, dims, true)) <= 1e-13);
    CHECK(rel_err(ops::norm(xg, 2.0, dims), ops::norm(x, 2.0, dims)) <= 1e-13);
    CHECK(rel_err(ops::norm(xg, 1.0, dims), ops::norm(x, 1.0, dims)) <= 1e-13);
    CHECK(rel_err(ops::norm(xg, 3.0, dims), ops::norm(x, 3.0, dims)) <= 1e-13);
    CHECK(rel_err(ops::amax(xg, dims), ops::amax(x, dims)) <= 0);
    CHECK(rel_err(ops::amin(xg, dims), ops::amin(x, dims)) <= 0);
    if (!dims.empty()) CHECK(rel_err(ops::logsumexp(xg, dims), ops::logsumexp(x, dims)) <= 1e-13);
  }
  // f32 sums accumulate in double, as on the CPU.
  const Tensor big = ops::rand({1 << 20}) + 1000.0;
  CHECK(rel_err(ops::sum(gpu(big)), ops::sum(big.to(DType::f64))) <= 1e-7);
  // arg forms: first index on ties, NaN wins; integer and bool sums count in int64.
  const Tensor ties = ops::from_vector(std::vector<double>{1.0, 3.0, 3.0, 2.0, std::nan(""), 5.0, std::nan(""), 0.0}, Shape{2, 4});
  CHECK(values(ops::argmax(gpu(ties), 1).to(Device::cpu())) == values(ops::argmax(ties, 1)));
  CHECK(values(ops::argmax(gpu(x), 1).to(Device::cpu())) == values(ops::argmax(x, 1)));
  const Tensor flags = ops::gt(x, 0.0);
  CHECK(values(ops::sum(gpu(flags), {1}).to(Device::cpu())) == values(ops::sum(flags, {1})));
  // The backward of a broadcast add reduces on the device too.
  Tensor a = gpu(ops::randn({4, 5}, DType::f64)).requires_grad_(), b = gpu(ops::randn({5}, DType::f64)).requires_grad_();
  const auto g = autograd::grad({ops::add(a, b)}, {b}, {gpu(ops::ones({4, 5}, DType::f64))});
  CHECK(values(g[0].to(Device::cpu())) == std::vector<double>(5, 4.0));
}

TEST_CASE("cuda softmax: softmax and log_softmax along any dim, forward and backward, equal the CPU's") {
  TSE_REQUIRE_GPU();
  const Tensor x = ops::randn({3, 300, 7}, DType::f64) * 4.0;
  for (int64_t dim : {0, 1, 2}) {
    INFO("dim ", dim);
    for (bool log : {false, true}) {
      const auto f = [&](const Tensor& t) { return log ? ops::log_softmax(t, dim) : ops::softmax(t, dim); };
      Tensor xc = x.detach().requires_grad_(), xg = gpu(x).detach().requires_grad_();
      const Tensor yc = f(xc), yg = f(xg);
      CHECK(rel_err(yg, yc) <= 1e-13);
      const Tensor g = ops::randn(x.sizes(), DType::f64);
      CHECK(rel_err(autograd::grad({yg}, {xg}, {gpu(g)})[0], autograd::grad({yc}, {xc}, {g})[0]) <= 1e-12);
      CHECK(rel_err(f(gpu(x.to(DType::f32))), yc) <= 1e-6);
    }
  }
}

TEST_CASE("cuda layer_norm: forward, dx, dweight and dbias equal the CPU's") {
  TSE_REQUIRE_GPU();
  const Tensor x = ops::randn({2, 50, 96}, DType::f64) * 3.0 + 1.5;
  const Tensor w = ops::randn({96}, DType::f64), b = ops::randn({96}, DType::f64);
  const Tensor g = ops::randn(x.sizes(), DType::f64);
  Tensor xc = x.detach().requires_grad_(), wc = w.detach().requires_grad_(), bc = b.detach().requires_grad_();
  Tensor xg = gpu(x).requires_grad_(), wg = gpu(w).requires_grad_(), bg = gpu(b).requires_grad_();
  const Tensor yc = ops::layer_norm(xc, {96}, wc, bc, 1e-5), yg = ops::layer_norm(xg, {96}, wg, bg, 1e-5);
  CHECK(rel_err(yg, yc) <= 1e-13);
  const auto gc = autograd::grad({yc}, {xc, wc, bc}, {g});
  const auto gg = autograd::grad({yg}, {xg, wg, bg}, {gpu(g)});
  for (size_t i = 0; i < 3; ++i) CHECK(rel_err(gg[i], gc[i]) <= 1e-12);
  CHECK(rel_err(ops::layer_norm(gpu(x.to(DType::f32)), {96}), ops::layer_norm(x, {96})) <= 1e-6);
}
