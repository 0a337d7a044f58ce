// CPU random kernels: Philox blocks mapped to values, blocks split across threads.
#include "src/cpu/random.hpp"

#include <cmath>
#include <numbers>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"

namespace tse::cpu {
namespace {

constexpr double kTwoPow24Inv = 1.0 / 16777216.0;
constexpr double kTwoPow32Inv = 1.0 / 4294967296.0;
constexpr double kTwoPow53Inv = 1.0 / 9007199254740992.0;

inline uint64_t join64(uint32_t hi, uint32_t lo) { return (static_cast<uint64_t>(hi) << 32) | lo; }

/// The f32 uniform in [0, 1) of one word: its top 24 bits (every value exact in a float).
inline double uniform24(uint32_t w) { return static_cast<double>(w >> 8) * kTwoPow24Inv; }
/// The f64 uniform in [0, 1) of two words: the top 53 of their 64 bits.
inline double uniform53(uint32_t hi, uint32_t lo) { return static_cast<double>(join64(hi, lo) >> 11) * kTwoPow53Inv; }

/// Calls emit(first_index, count, words) for each block of a draw of numel values, in parallel.
/// count < per_block only for the last block.
template <int64_t kPerBlock, typename Emit>
void for_each_block(int64_t numel, uint64_t seed, uint64_t offset, const Emit& emit) {
  const PhiloxKey key{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const int64_t blocks = static_cast<int64_t>(philox_blocks(numel, kPerBlock));
  // A block is ~20 multiply-xors: a few thousand of them amortise a parallel region.
  constexpr int64_t kGrain = 4096;
  detail::parallel_for(0, blocks, kGrain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const uint64_t c = offset + static_cast<uint64_t>(b);  // wraps modulo 2^64 like the counter
      const PhiloxCounter w = philox4x32_10({static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u}, key);
      const int64_t first = b * kPerBlock;
      emit(first, std::min(kPerBlock, numel - first), w);
    }
  });
}

/// Box-Muller: (u1 in (0, 1], u2 in [0, 1)) -> two independent N(0, 1).
inline void box_muller(double u1, double u2, double& z0, double& z1) {
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  z0 = r * std::cos(theta);
  z1 = r * std::sin(theta);
}

}  // namespace

void uniform(const Tensor& out, uint64_t seed, uint64_t offset) {
  TSE_ASSERT(out.is_contiguous());
  const int64_t n = out.numel();
  if (out.dtype() == DType::f32) {
    float* o = out.data<float>();
    for_each_block<uniform_per_block(DType::f32)>(n, seed, offset,
                                                  [&](int64_t i0, int64_t count, const PhiloxCounter& w) {
                                                    for (int64_t j = 0; j < count; ++j)
                                                      o[i0 + j] = static_cast<float>(uniform24(w[j]));
                                                  });
    return;
  }
  double* o = out.data<double>();
  for_each_block<uniform_per_block(DType::f64)>(n, seed, offset,
                                                [&](int64_t i0, int64_t count, const PhiloxCounter& w) {
                                                  for (int64_t j = 0; j < count; ++j)
                                                    o[i0 + j] = uniform53(w[2 * j], w[2 * j + 1]);
                                                });
}

void normal(const Tensor& out, uint64_t seed, uint64_t offset) {
  TSE_ASSERT(out.is_contiguous());
  const int64_t n = out.numel();
  if (out.dtype() == DType::f32) {
    // 32-bit uniforms (not 24): u1 >= 2^-32 lets |z| reach 6.7 instead of 5.8.
    float* o = out.data<float>();
    for_each_block<normal_per_block(DType::f32)>(
        n, seed, offset, [&](int64_t i0, int64_t count, const PhiloxCounter& w) {
          double z[4];
          box_muller((w[0] + 1.0) * kTwoPow32Inv, w[1] * kTwoPow32Inv, z[0], z[1]);
          box_muller((w[2] + 1.0) * kTwoPow32Inv, w[3] * kTwoPow32Inv, z[2], z[3]);
          for (int64_t j = 0; j < count; ++j) o[i0 + j] = static_cast<float>(z[j]);
        });
    return;
  }
  double* o = out.data<double>();
  for_each_block<normal_per_block(DType::f64)>(n, seed, offset, [&](int64_t i0, int64_t count, const PhiloxCounter& w) {
    double z[2];
    box_muller(uniform53(w[0], w[1]) + kTwoPow53Inv, uniform53(w[2], w[3]), z[0], z[1]);
    for (int64_t j = 0; j < count; ++j) o[i0 + j] = z[j];
  });
}

void randint(const Tensor& out, int64_t low, uint64_t range, uint64_t seed, uint64_t offset) {
  TSE_ASSERT(out.is_contiguous() && range >= 1);
  dispatch_numeric(out.dtype(), "randint", [&]<typename T>() {
    T* o = out.data<T>();
    for_each_block<kRandintPerBlock>(out.numel(), seed, offset, [&](int64_t i0, int64_t count, const PhiloxCounter& w) {
      for (int64_t j = 0; j < count; ++j) {
        // The high half of r * range maps 64 random bits onto [0, range) with bias <= range / 2^64.
        const uint64_t r = join64(w[2 * j], w[2 * j + 1]);
        const auto scaled = static_cast<uint64_t>((static_cast<unsigned __int128>(r) * range) >> 64);
        o[i0 + j] = static_cast<T>(static_cast<int64_t>(static_cast<uint64_t>(low) + scaled));
      }
    });
  });
}

void dropout_mask(const Tensor& mask, double p, uint64_t seed, uint64_t offset) {
  TSE_ASSERT(mask.is_contiguous() && p < 1.0);
  dispatch_floating(mask.dtype(), "dropout", [&]<typename T>() {
    T* m = mask.data<T>();
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    for_each_block<kDropoutPerBlock>(mask.numel(), seed, offset,
                                     [&](int64_t i0, int64_t count, const PhiloxCounter& w) {
                                       for (int64_t j = 0; j < count; ++j)
                                         m[i0 + j] = uniform24(w[j]) >= p ? scale : T(0);
                                     });
  });
}

}  // namespace tse::cpu
