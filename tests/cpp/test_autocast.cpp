// bf16 autocast of the GEMM family: the thread-local mode, the numerics (every product equals the
// float64 product of the bf16-rounded operands to f32 summation error, on the native oneDNN bf16
// path and on the emulated one), backward GEMMs recorded under the guard, the operand layouts
// (transposed, broadcast, strided views sharing one storage), the weight cache (reuse, refresh
// after in-place writes and optimizer steps, freed with the weight) and concurrent use.
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "src/core/bf16_bits.hpp"
#include "src/cpu/elementwise.hpp"
#include "src/cpu/matmul.hpp"
#include "tests/cpp/onednn_check.hpp"
#include "tests/cpp/reference.hpp"

using namespace tse;
using tse::test::contains;
using tse::test::rel_l2;
using tse::test::thrown_message;

namespace {

/// t rounded to bf16 (round to nearest even) and widened back: the values autocast GEMMs read.
Tensor rounded(const Tensor& t) { return t.detach().to(DType::bf16).to(DType::f32); }

Tensor uniform(const Shape& sizes, uint64_t seed) {
  manual_seed(seed);
  return ops::sub(ops::mul(ops::rand(sizes), 2.0), 1.0);
}

/// The paths autocast can take on this machine: native bf16 GEMMs where the CPU has them, and the
/// emulated path everywhere. Restores the native path when it goes out of scope.
struct GemmPaths {
  std::vector<bool> emulate;
  GemmPaths() {
    cpu::force_bf16_gemm_emulation(false);
    if (cpu::bf16_gemm_native()) emulate.push_back(false);
    emulate.push_back(true);
  }
  ~GemmPaths() { cpu::force_bf16_gemm_emulation(false); }
};

// f32 summation of exact bf16 products: relative L2 error well under 1e-6 at these K; the
// bf16 rounding itself moves the result by ~1e-3, so the two checks cannot both pass by accident.
constexpr double kSumTol = 2e-6;
constexpr double kRoundingVisible = 2e-4;

/// Checks got (f32, computed under autocast) against f(rounded operands) in f64, and that it
/// differs visibly from f on the unrounded operands in f32.
void check_product(const Tensor& got, const std::function<Tensor(const std::vector<Tensor>&)>& f,
                   const std::vector<Tensor>& operands) {
  std::vector<Tensor> r64, plain;
  for (const Tensor& t : operands) {
    r64.push_back(rounded(t).to(DType::f64));
    plain.push_back(t.detach());
  }
  CHECK(got.dtype() == DType::f32);
  const Tensor want = f(r64);
  REQUIRE(got.sizes() == want.sizes());
  CHECK(rel_l2(got, want) <= kSumTol);
  AutocastGuard off(false);
  CHECK(rel_l2(got, f(plain)) >= kRoundingVisible);
}

}  // namespace

TEST_CASE("autocast: the guard sets this thread's mode, nests and restores it, other threads are unaffected") {
  CHECK(autocast::dtype() == DType::f32);
  CHECK_FALSE(autocast::is_enabled());
  {
    AutocastGuard on;
    CHECK(autocast::dtype() == DType::bf16);
    DType other = DType::bf16;
    std::thread([&] { other = autocast::dtype(); }).join();
    CHECK(other == DType::f32);
    {
      AutocastGuard off(false);
      CHECK_FALSE(autocast::is_enabled());
    }
    CHECK(autocast::is_enabled());
  }
  CHECK(autocast::dtype() == DType::f32);
  CHECK(contains(thrown_message<ValueError>([] { autocast::set_dtype(DType::f16); }), "autocast: dtype must be"));
  CHECK(contains(thrown_message<ValueError>([] { AutocastGuard g(true, DType::f64); }), "got float64"));
  CHECK(autocast::dtype() == DType::f32);
  CHECK_FALSE(autocast::native_bf16(Device::cuda(0)));
}

TEST_CASE("autocast: operands round to nearest even, NaN stays NaN, denormals become signed zeros") {
  // The spec, written out: what round_to_bf16 must give on this machine's path (AVX512_BF16 or plain).
  const auto expect = [](float f) -> uint16_t {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint32_t exponent = (u >> 23) & 0xffu, mantissa = u & 0x7fffffu;
    if (exponent == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
    if (exponent == 0xffu && mantissa != 0) return static_cast<uint16_t>((u >> 16) | 0x40u);
    const uint32_t low = u & 0xffffu, keep = u >> 16;
    const bool up = low > 0x8000u || (low == 0x8000u && (keep & 1u));
    return static_cast<uint16_t>(keep + (up ? 1u : 0u));
  };
  std::vector<uint32_t> bits = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00800000u, 0x3f808000u,
                                0x3f818000u, 0x3f80ffffu, 0x7f7fffffu, 0x7f800000u, 0xff800000u, 0x7f800001u,
                                0xffc12345u, 0x3f800000u, 0xbf7fffffu, 0x477fe000u};
  uint64_t z = 88172645463325252ull;  // xorshift: every bit pattern class at random
  for (int i = 0; i < 5000; ++i) {
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    bits.push_back(static_cast<uint32_t>(z));
  }
  std::vector<float> values(bits.size());
  std::memcpy(values.data(), bits.data(), bits.size() * 4);
  const Tensor x = Tensor::empty({static_cast<int64_t>(values.size())}, DType::f32);
  std::memcpy(x.data_ptr(), values.data(), values.size() * 4);  // exact bits (NaN payloads too)
  const Tensor y = Tensor::empty(x.sizes(), DType::bf16);
  cpu::round_to_bf16(y, x);
  const auto* got = static_cast<const uint16_t*>(y.data_ptr());
  size_t wrong = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (got[i] != expect(values[i])) {
      if (wrong++ < 5) MESSAGE("input ", bits[i], " gave ", got[i], ", expected ", expect(values[i]));
    }
  }
  CHECK(wrong == 0);
  // The device kernels' spellings (src/core/bf16_bits.hpp): DAZ is round_to_bf16's rule, RNE is
  // tse::BFloat16's (.to(bfloat16) on every device).
  size_t daz_wrong = 0, rne_wrong = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    daz_wrong += detail::bf16_bits_daz(values[i]) != expect(values[i]);
    rne_wrong += detail::bf16_bits_rne(values[i]) != BFloat16(values[i]).bits;
    CHECK(std::isnan(detail::bf16_bits_to_float(BFloat16(values[i]).bits)) == std::isnan(values[i]));
  }
  CHECK(daz_wrong == 0);
  CHECK(rne_wrong == 0);
}

TEST_CASE("autocast: matmul, bmm and linear are the f64 products of bf16-rounded operands, native and emulated") {
  GemmPaths paths;
  for (bool emulate : paths.emulate) {
    CAPTURE(emulate);
    cpu::force_bf16_gemm_emulation(emulate);
    const auto mm = [](const std::vector<Tensor>& v) { return ops::matmul(v[0], v[1]); };
    const Tensor a = uniform({33, 70}, 1), b = uniform({70, 21}, 2);
    {
      AutocastGuard bf16;
      check_product(ops::matmul(a, b), mm, {a, b});
    }
    // Transposed operands (column-major views) and a broadcast batch.
    const Tensor at = uniform({70, 33}, 3), bt = uniform({21, 70}, 4);
    const Tensor a4 = uniform({3, 1, 17, 40}, 5), b3 = uniform({5, 40, 9}, 6);
    const Tensor x1 = uniform({40}, 7);
    {
      AutocastGuard bf16;
      check_product(ops::matmul(at.t(), bt.t()),
                    [](const std::vector<Tensor>& v) { return ops::matmul(v[0].t(), v[1].t()); }, {at, bt});
      check_product(ops::matmul(a4, b3), mm, {a4, b3});
      check_product(ops::matmul(x1, b3), mm, {x1, b3});
    }
    // q, k and v as strided views of one fused projection (the whole storage is cast once).
    const Tensor qkv = uniform({2, 48, 3, 4, 16}, 8);  // (B, T, 3, H, hd)
    const Tensor p = ops::permute(qkv, {2, 0, 3, 1, 4});
    const Tensor q = ops::select(p, 0, 0), k = ops::select(p, 0, 1), v = ops::select(p, 0, 2);
    {
      AutocastGuard bf16;
      const Tensor s = ops::matmul(q, ops::transpose(k, -2, -1));
      check_product(s, [](const std::vector<Tensor>& t) { return ops::matmul(t[0], ops::transpose(t[1], -2, -1)); },
                    {q, k});
      check_product(ops::matmul(ops::softmax(s, -1), v), mm, {ops::softmax(s, -1), v});
      const Tensor ba = uniform({4, 9, 30}, 9), bb = uniform({4, 30, 11}, 10);
      check_product(ops::bmm(ba, bb), [](const std::vector<Tensor>& t) { return ops::bmm(t[0], t[1]); }, {ba, bb});
    }
    // linear with a bias (added in f32, not rounded) over a 3-D input.
    const Tensor x = uniform({2, 13, 64}, 11), w = uniform({24, 64}, 12), bias = uniform({24}, 13);
    {
      AutocastGuard bf16;
      const Tensor y = ops::linear(x, w, bias);
      const Tensor want = ops::linear(rounded(x).to(DType::f64), rounded(w).to(DType::f64), bias.to(DType::f64));
      CHECK(rel_l2(y, want) <= kSumTol);
      check_product(ops::linear(x, w), [](const std::vector<Tensor>& t) { return ops::linear(t[0], t[1]); }, {x, w});
    }
  }
}

TEST_CASE("autocast: ops recorded under the guard run bf16 backward GEMMs, whatever the mode at backward()") {
  GemmPaths paths;
  for (bool emulate : paths.emulate) {
    CAPTURE(emulate);
    cpu::force_bf16_gemm_emulation(emulate);
    Tensor x = uniform({2, 19, 48}, 21).requires_grad_(), w = uniform({36, 48}, 22).requires_grad_();
    Tensor bias = uniform({36}, 23).requires_grad_();
    const Tensor g = uniform({2, 19, 36}, 24);
    Tensor y;
    {
      AutocastGuard bf16;
      y = ops::linear(x, w, bias);
    }
    const std::vector<Tensor> d = autograd::grad({y}, {x, w, bias}, {g});
    const Tensor g64 = rounded(g).to(DType::f64).reshape({38, 36});
    const Tensor x64 = rounded(x).to(DType::f64).reshape({38, 48}), w64 = rounded(w).to(DType::f64);
    CHECK(rel_l2(d[0].reshape({38, 48}), ops::matmul(g64, w64)) <= kSumTol);
    CHECK(rel_l2(d[1], ops::matmul(g64.t(), x64)) <= kSumTol);
    CHECK(rel_l2(d[2], ops::sum(g.to(DType::f64).reshape({38, 36}), {0})) <= 1e-6);  // not rounded

    // matmul with a broadcast b: da = g b^T, db = sum over the batch of a^T g.
    Tensor a = uniform({3, 10, 20}, 25).requires_grad_(), b = uniform({20, 7}, 26).requires_grad_();
    const Tensor gm = uniform({3, 10, 7}, 27);
    Tensor z;
    {
      AutocastGuard bf16;
      z = ops::matmul(a, b);
    }
    const std::vector<Tensor> dm = autograd::grad({z}, {a, b}, {gm});
    const Tensor gm64 = rounded(gm).to(DType::f64), a64 = rounded(a).to(DType::f64), b64 = rounded(b).to(DType::f64);
    CHECK(rel_l2(dm[0], ops::matmul(gm64, b64.t())) <= kSumTol);
    CHECK(rel_l2(dm[1], ops::matmul(a64.reshape({30, 20}).t(), gm64.reshape({30, 7}))) <= kSumTol);
    // Recorded outside the guard, the backward stays f32 even when run inside one.
    const Tensor z32 = ops::matmul(a, b);
    std::vector<Tensor> d32;
    {
      AutocastGuard bf16;
      d32 = autograd::grad({z32}, {a, b}, {gm});
    }
    CHECK(rel_l2(d32[0], ops::matmul(gm.to(DType::f64), b.detach().to(DType::f64).t())) <= 1e-6);
  }
}

TEST_CASE(
    "autocast: linear caches its weight's bf16 copy, refreshes it after in-place writes, frees it with the weight") {
  autocast::clear_cache();
  REQUIRE(autocast::cached_bytes() == 0);
  const Tensor x = uniform({5, 32}, 31);
  Tensor w = uniform({16, 32}, 32).requires_grad_();
  const auto expect = [&](const Tensor& weight) {
    return ops::linear(rounded(x).to(DType::f64), rounded(weight).to(DType::f64));
  };
  {
    AutocastGuard bf16;
    NoGradGuard ng;
    CHECK(rel_l2(ops::linear(x, w), expect(w)) <= kSumTol);
    CHECK(autocast::cached_bytes() == 16 * 32 * 2);
    CHECK(rel_l2(ops::linear(x, w), expect(w)) <= kSumTol);
    CHECK(autocast::cached_bytes() == 16 * 32 * 2);  // reused, not converted again
    // An in-place write bumps the version: the next product reads the new values.
    w.detach().copy_(uniform({16, 32}, 33));
    CHECK(rel_l2(ops::linear(x, w), expect(w)) <= kSumTol);
    CHECK(autocast::cached_bytes() == 16 * 32 * 2);
  }
  // An optimizer step changes the weight in place too.
  {
    AutocastGuard bf16;
    ops::sum(ops::linear(x, w)).backward();
  }
  {
    optim::SGD sgd({w}, optim::SGDOptions{.lr = 0.5});
    sgd.step();
    AutocastGuard bf16;
    NoGradGuard ng;
    CHECK(rel_l2(ops::linear(x, w), expect(w)) <= kSumTol);
  }
  w = Tensor();  // the last reference: the copy goes with it
  CHECK(autocast::cached_bytes() == 0);

  Tensor w2 = uniform({8, 32}, 34);
  {
    AutocastGuard bf16;
    ops::linear(x, w2);
  }
  CHECK(autocast::cached_bytes() == 8 * 32 * 2);
  autocast::clear_cache();
  CHECK(autocast::cached_bytes() == 0);
  {
    AutocastGuard bf16;
    CHECK(rel_l2(ops::linear(x, w2), expect(w2)) <= kSumTol);  // rebuilt after clear_cache
  }
  autocast::clear_cache();
}

TEST_CASE("autocast: float64 is never autocast, K = 0 gives the bias, empty outputs work") {
  const Tensor a = uniform({6, 9}, 41).to(DType::f64), b = uniform({9, 4}, 42).to(DType::f64);
  const Tensor plain = ops::matmul(a, b);
  Tensor cast;
  {
    AutocastGuard bf16;
    cast = ops::matmul(a, b);
  }
  CHECK(cast.dtype() == DType::f64);
  CHECK(rel_l2(cast, plain) == 0.0);

  GemmPaths paths;
  for (bool emulate : paths.emulate) {
    cpu::force_bf16_gemm_emulation(emulate);
    AutocastGuard bf16;
    const Tensor bias = uniform({5}, 43);
    const Tensor y = ops::linear(ops::zeros({3, 0}), ops::zeros({5, 0}), bias);
    CHECK(rel_l2(y, ops::expand(ops::unsqueeze(bias, 0), {3, 5})) == 0.0);
    CHECK(ops::matmul(ops::zeros({0, 4}), ops::zeros({4, 3})).numel() == 0);
  }
}

TEST_CASE("autocast: threads sharing one cached weight get correct products") {
  autocast::clear_cache();
  const Tensor w = uniform({40, 64}, 51);
  std::vector<Tensor> xs, got(4);
  for (int i = 0; i < 4; ++i) xs.push_back(uniform({17, 64}, 52 + static_cast<uint64_t>(i)));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      AutocastGuard bf16;
      for (int rep = 0; rep < 20; ++rep) got[static_cast<size_t>(i)] = ops::linear(xs[static_cast<size_t>(i)], w);
    });
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 4; ++i)
    CHECK(rel_l2(got[static_cast<size_t>(i)], ops::linear(rounded(xs[static_cast<size_t>(i)]).to(DType::f64),
                                                          rounded(w).to(DType::f64))) <= kSumTol);
  CHECK(autocast::cached_bytes() == 40 * 64 * 2);
  autocast::clear_cache();
}
