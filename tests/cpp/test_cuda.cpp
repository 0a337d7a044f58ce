// The CUDA path: device copies and the first kernels. Skipped (counted as skipped by CTest)
// when no GPU is visible; without TSE_WITH_CUDA it checks the clear error instead.
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
