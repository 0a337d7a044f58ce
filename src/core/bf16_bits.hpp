#pragma once
// f32 -> bf16 rounding as bits, for kernels on either device (tse::BFloat16 is host-only):
//  - bf16_bits_rne: tse::BFloat16(float)'s rule, what .to(bfloat16) does on every device: round
//    to nearest even, NaN stays a quiet NaN (test_autocast checks the two agree);
//  - bf16_bits_daz: autocast's CPU operand rounding, the same except that denormals become signed
//    zeros (how the CPU GEMMs' flush-to-zero mode reads them anyway).
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TSE_HOST_DEVICE __host__ __device__
#else
#define TSE_HOST_DEVICE
#endif

namespace tse::detail {

TSE_HOST_DEVICE inline uint16_t bf16_bits_rne(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN: quiet
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

TSE_HOST_DEVICE inline uint16_t bf16_bits_daz(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);         // zero or denormal
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN: quiet
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

/// bf16 bits -> the f32 of the same value (exact).
TSE_HOST_DEVICE inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace tse::detail
