#pragma once
// Internal kernel interface of the random family, and the Philox4x32-10 block function
// (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; Random123).
//
// Layout contract (a GPU kernel must follow it to give the same numbers): a draw at generator
// state (seed, offset) fills a contiguous tensor in row-major order; block b of the draw is
// philox4x32_10(counter = (lo32(offset + b), hi32(offset + b), 0, 0), key = (lo32(seed), hi32(seed)))
// and yields the values [b * per_block, (b + 1) * per_block) of that draw, per_block as below.
// So element i depends only on (seed, offset, i), never on the thread count.
#include <array>
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {
/// out (contiguous, f32/f64) = U[0, 1): f32 from 24 random bits, f64 from 53.
using UniformFn = void(const Tensor& out, uint64_t seed, uint64_t offset);
/// out (contiguous, f32/f64) = N(0, 1) by Box-Muller, computed in double.
using NormalFn = void(const Tensor& out, uint64_t seed, uint64_t offset);
/// out (contiguous, i32/i64/f32/f64) = low + an integer uniform in [0, range), range >= 1.
using RandintFn = void(const Tensor& out, int64_t low, uint64_t range, uint64_t seed, uint64_t offset);
/// mask (contiguous, f32/f64) = 1/(1-p) where the element is kept, else 0. Element i is kept when
/// the f32 uniform that rand would draw for element i at the same state is >= p.
using DropoutMaskFn = void(const Tensor& mask, double p, uint64_t seed, uint64_t offset);
}  // namespace detail

namespace cpu {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // round multipliers
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Weyl key increments (golden ratio, sqrt(3) - 1)
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

/// Philox4x32 with 10 rounds: a bijection of the counter, keyed by key.
constexpr PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * ctr[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return ctr;
}

/// Values one block yields: a 32-bit word per f32 uniform, normal or dropout decision, 64 bits per
/// f64 uniform or normal and per integer.
constexpr int64_t uniform_per_block(DType t) { return t == DType::f64 ? 2 : 4; }
constexpr int64_t normal_per_block(DType t) { return t == DType::f64 ? 2 : 4; }
inline constexpr int64_t kRandintPerBlock = 2;
inline constexpr int64_t kDropoutPerBlock = 4;

/// Blocks (counter increments) a draw of numel values at per_block values per block consumes.
constexpr uint64_t philox_blocks(int64_t numel, int64_t per_block) {
  return static_cast<uint64_t>((numel + per_block - 1) / per_block);
}

detail::UniformFn uniform;
detail::NormalFn normal;
detail::RandintFn randint;
detail::DropoutMaskFn dropout_mask;

}  // namespace cpu
}  // namespace tse
