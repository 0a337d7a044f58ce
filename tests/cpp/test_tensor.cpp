// Tensor core: metadata, dtypes and 16-bit conversion, factories, allocator, devices, errors.
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "tests/cpp/gradcheck.hpp"

using namespace tse;
using tse::test::values;

TEST_CASE("tensor: empty/zeros/ones/full/arange/linspace/eye and metadata") {
  Tensor z = ops::zeros({2, 3});
  CHECK(z.dim() == 2);
  CHECK(z.numel() == 6);
  CHECK(z.sizes() == Shape{2, 3});
  CHECK(z.strides() == Shape{3, 1});
  CHECK(z.dtype() == DType::f32);
  CHECK(z.device() == Device::cpu());
  CHECK(z.is_contiguous());
  CHECK(reinterpret_cast<uintptr_t>(z.data_ptr()) % 64 == 0);
  for (double v : values(z)) CHECK(v == 0.0);
  for (double v : values(ops::ones({4}, DType::i32))) CHECK(v == 1.0);
  for (double v : values(ops::full({3}, -2.5, DType::f64))) CHECK(v == -2.5);
  CHECK(values(ops::arange(0, 5)) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(values(ops::arange(1, 0, -0.25, DType::f64)) == std::vector<double>{1, 0.75, 0.5, 0.25});
  CHECK(ops::arange(3, 3).numel() == 0);
  const auto l = values(ops::linspace(0, 1, 5, DType::f64));
  CHECK(l == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(values(ops::linspace(-1, 2, 7)).back() == 2.0);
  CHECK(values(ops::eye(2)) == std::vector<double>{1, 0, 0, 1});
  Tensor s = ops::scalar_tensor(3.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.5);
  CHECK_THROWS_AS(ops::zeros({2, -1}), ValueError);
  CHECK_THROWS_AS(ops::arange(0, 1, 0), ValueError);
  CHECK_THROWS_AS(ops::zeros({2}).item(), ValueError);
  CHECK_THROWS_AS(ops::from_vector(std::vector<double>{1, 2, 3}, {2, 2}), ValueError);
}

TEST_CASE("tensor: bf16 and f16 conversion round to nearest even and keep specials") {
  const float inf = std::numeric_limits<float>::infinity();
  // values exactly representable in both
  for (float v : {0.0f, -0.0f, 1.0f, -2.0f, 0.5f, 65504.0f, 6.103515625e-05f /* min normal half */}) {
    CHECK(static_cast<float>(Half(v)) == v);
  }
  CHECK(static_cast<float>(Half(5.960464477539063e-08f)) == 5.960464477539063e-08f);  // min subnormal half
  CHECK(static_cast<float>(Half(1e-9f)) == 0.0f);                                  // underflow
  CHECK(static_cast<float>(Half(70000.0f)) == inf);                                // overflow
  CHECK(static_cast<float>(Half(65519.0f)) == 65504.0f);                           // rounds down below 65520
  CHECK(std::isnan(static_cast<float>(Half(std::nanf("")))));
  CHECK(static_cast<float>(Half(-inf)) == -inf);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10 in half: ties to even -> 1
  CHECK(static_cast<float>(Half(1.0f + 1.0f / 2048)) == 1.0f);
  CHECK(static_cast<float>(Half(1.0f + 3.0f / 2048)) == 1.0f + 2.0f / 1024);
  // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even -> 1
  CHECK(static_cast<float>(BFloat16(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(static_cast<float>(BFloat16(1.0f + 3.0f / 256)) == 1.0f + 2.0f / 128);
  CHECK(static_cast<float>(BFloat16(3.0e38f)) == doctest::Approx(3.0e38f).epsilon(0.01));
  CHECK(std::isnan(static_cast<float>(BFloat16(std::nanf("")))));
  CHECK(static_cast<float>(BFloat16(inf)) == inf);

  Tensor x = ops::from_vector(std::vector<double>{0.1, -3.75, 1000.5, 1e-3}, {4}, DType::f32);
  for (DType t : {DType::f16, DType::bf16}) {
    Tensor h = x.to(t);
    CHECK(h.dtype() == t);
    CHECK(h.itemsize() == 2);
    const auto back = values(h.to(DType::f32));
    const auto orig = values(x);
    const double tol = t == DType::f16 ? 1.0 / 2048 : 1.0 / 256;
    for (size_t i = 0; i < 4; ++i) CHECK(std::abs(back[i] - orig[i]) <= tol * std::abs(orig[i]));
  }
  // conversions between all dtypes through the copy kernel
  Tensor i = x.to(DType::i64);
  CHECK(values(i) == std::vector<double>{0, -3, 1000, 0});
  CHECK(values(x.to(DType::b8)) == std::vector<double>{1, 1, 1, 1});
  CHECK(values(ops::zeros({2}).to(DType::b8)) == std::vector<double>{0, 0});
}

TEST_CASE("tensor: views share storage, contiguous() copies only when needed") {
  Tensor x = ops::arange(0, 12).reshape({3, 4});
  Tensor t = x.t();
  CHECK(t.storage() == x.storage());
  CHECK_FALSE(t.is_contiguous());
  Tensor c = t.contiguous();
  CHECK(c.storage() != x.storage());
  CHECK(c.is_contiguous());
  CHECK(x.contiguous().is_same(x));
  CHECK(values(c) == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  Tensor v = x.view({2, 6});
  CHECK(v.storage() == x.storage());
  CHECK_THROWS_AS(t.view({12}), ValueError);  // needs a copy: reshape does it
  Tensor r = t.reshape({12});
  CHECK(r.storage() != x.storage());
  CHECK(values(r) == values(c));
  Tensor d = x.detach();
  CHECK(d.storage() == x.storage());
  Tensor cl = x.clone();
  CHECK(cl.storage() != x.storage());
}

TEST_CASE("tensor: str, shape_str, dtype names, Device parse") {
  Tensor x = ops::from_vector(std::vector<double>{1, 2}, {2}, DType::f32);
  CHECK(x.str().find("shape=[2]") != std::string::npos);
  CHECK(x.str().find("float32") != std::string::npos);
  CHECK(Tensor().str() == "Tensor(undefined)");
  CHECK(std::string(dtype_name(DType::bf16)) == "bfloat16");
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK_THROWS_AS(Device::parse("tpu"), ValueError);
  CHECK_THROWS_AS(Device::parse("cuda:x"), ValueError);
  CHECK(promote_types(DType::i32, DType::f32) == DType::f32);
  CHECK(promote_types(DType::f16, DType::bf16) == DType::f32);
  CHECK(promote_types(DType::b8, DType::i64) == DType::i64);
}

TEST_CASE("tensor: undefined tensors and bad dims give clear errors") {
  Tensor u;
  CHECK_FALSE(u.defined());
  CHECK_THROWS_AS(u.numel(), ValueError);
  Tensor x = ops::zeros({2, 3});
  CHECK_THROWS_AS(x.size(2), IndexError);
  CHECK_THROWS_AS(x.transpose(0, 3), IndexError);
  CHECK_THROWS_AS(x.permute({0, 0}), ValueError);
  CHECK_THROWS_AS(x.expand({3, 3}), ValueError);
  CHECK_THROWS_AS(x.narrow(1, 2, 2), IndexError);
  CHECK_THROWS_AS(x.select(0, 2), IndexError);
  CHECK_THROWS_AS(x.data<double>(), ValueError);
  CHECK_THROWS_AS(x.to(Device::cuda(0)), ValueError);  // no GPU here (or a clear error without CUDA)
}

TEST_CASE("allocator: freed blocks are reused and stay 64-byte aligned") {
  if (!memory::cpu_cache_enabled()) return;  // disabled on purpose under AddressSanitizer
  void* first;
  {
    Tensor a = ops::empty({1000});
    first = a.data_ptr();
  }
  Tensor b = ops::empty({1000});
  CHECK(b.data_ptr() == first);
  CHECK(memory::cpu_cached_bytes() >= 0);
  memory::empty_cache();
  CHECK(memory::cpu_cached_bytes() == 0);
}

TEST_CASE("threading: set_num_threads validates and kernels are safe from several threads") {
  CHECK_THROWS_AS(set_num_threads(0), ValueError);
  const int prev = get_num_threads();
  set_num_threads(2);
  CHECK(get_num_threads() == 2);
  std::vector<double> r1, r2;
  std::thread t1([&] { r1 = values(ops::sum(ops::exp(ops::linspace(0, 1, 50000)))); });
  std::thread t2([&] { r2 = values(ops::sum(ops::exp(ops::linspace(0, 1, 50000)))); });
  t1.join();
  t2.join();
  CHECK(r1 == r2);
  set_num_threads(prev);
}

TEST_CASE("flush-to-zero is on inside kernels and the caller's mode is restored") {
  const float tiny = 1e-39f;  // a float32 denormal
  Tensor x = ops::full({4}, tiny);
  const auto y = values(ops::mul(x, 1.0));
  CHECK(y[0] == 0.0);  // DAZ/FTZ flushed it
  volatile float a = tiny;
  volatile float b = a * 1.0f;
  CHECK(b != 0.0f);  // the calling thread still computes denormals
}

TEST_CASE("tensor: transposed copies (tiled path) match the index reference, with batch dims and dtype changes") {
  // (batch, rows, cols) viewed with the last two dims swapped, sizes off the 32-wide tile grid
  for (const Shape& sizes : {Shape{37, 45}, Shape{3, 70, 33}, Shape{2, 9, 64}}) {
    const int64_t n = shape_numel(sizes);
    Tensor base = ops::arange(0, static_cast<double>(n), 1.0, DType::f64).reshape(sizes);
    Tensor t = base.transpose(-1, -2);
    const auto want = [&] {
      std::vector<double> v;
      const Shape ts = t.sizes();
      const int64_t batch = ts.size() == 3 ? ts[0] : 1, r = ts[ts.size() - 2], c = ts.back();
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < c; ++j) v.push_back(static_cast<double>(b * r * c + j * r + i));
      return v;
    }();
    CHECK(values(t.contiguous()) == want);
    CHECK(values(t.to(DType::f32)) == want);
    CHECK(values(t.to(DType::i64)) == want);
    // a transposed destination written from a contiguous source goes the other way round
    Tensor dst = ops::zeros(t.sizes(), DType::f32).transpose(-1, -2);
    dst.copy_(ops::ones(dst.sizes(), DType::f64));
    for (double v : values(dst)) CHECK(v == 1.0);
  }
}
