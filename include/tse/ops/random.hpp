#pragma once
// Seeded random tensors and dropout. One counter-based generator (Philox4x32-10): element i of a
// draw depends only on (seed, offset, i), so results do not depend on the thread count.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {

/// Philox generator state: a seed and a counter offset advanced by each draw.
struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

/// The default generator (process-wide, thread-safe).
TSE_API void manual_seed(uint64_t seed);
TSE_API GeneratorState get_rng_state();
TSE_API void set_rng_state(const GeneratorState& state);

namespace ops {
TSE_API Tensor rand(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());   // U[0, 1)
TSE_API Tensor randn(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());  // N(0, 1)
/// Integers uniform in [low, high).
TSE_API Tensor randint(int64_t low, int64_t high, const Shape& sizes, DType dtype = DType::i64,
                       Device device = Device::cpu());
/// Zeroes elements with probability p and scales the rest by 1/(1-p) when training; identity
/// otherwise. p in [0, 1].
TSE_API Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);
}  // namespace ops

}  // namespace tse
