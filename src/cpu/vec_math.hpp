#pragma once
// Vectorised float transcendentals from glibc's libmvec (AVX2 variants, documented <= 4 ulp).
// The tail of an array goes through the same vector routine on a padded copy, so a value's
// result never depends on its position in the array (batch results equal single results).
// double uses the scalar libm routines: it is the reference path.
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
extern "C" {
__m256 _ZGVdN8v_expf(__m256);
__m256 _ZGVdN8v_logf(__m256);
__m256 _ZGVdN8v_log10f(__m256);
__m256 _ZGVdN8v_sinf(__m256);
__m256 _ZGVdN8v_cosf(__m256);
__m256 _ZGVdN8v_tanhf(__m256);
__m256 _ZGVdN8v_erff(__m256);
__m256 _ZGVdN8v_erfcf(__m256);
__m256 _ZGVdN8v_log1pf(__m256);
__m256 _ZGVdN8v_expm1f(__m256);
}
#define TSE_VEC_MATH 1
#endif

namespace tse::cpu::vm {

#if defined(TSE_VEC_MATH)
template <__m256 (*F)(__m256)>
inline void apply8(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    std::memcpy(buf, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_store_ps(buf, F(_mm256_load_ps(buf)));
    std::memcpy(y + i, buf, static_cast<size_t>(n - i) * sizeof(float));
  }
}
#define TSE_VM_FN(name, vecfn, scalarfn)                                                  \
  inline void name(const float* x, float* y, int64_t n) { apply8<vecfn>(x, y, n); }      \
  inline void name(const double* x, double* y, int64_t n) {                              \
    for (int64_t i = 0; i < n; ++i) y[i] = scalarfn(x[i]);                               \
  }
#else
#define TSE_VM_FN(name, vecfn, scalarfn)                                                  \
  inline void name(const float* x, float* y, int64_t n) {                                \
    for (int64_t i = 0; i < n; ++i) y[i] = scalarfn(x[i]);                               \
  }                                                                                      \
  inline void name(const double* x, double* y, int64_t n) {                              \
    for (int64_t i = 0; i < n; ++i) y[i] = scalarfn(x[i]);                               \
  }
#endif

TSE_VM_FN(exp, _ZGVdN8v_expf, std::exp)
TSE_VM_FN(log, _ZGVdN8v_logf, std::log)
TSE_VM_FN(log10, _ZGVdN8v_log10f, std::log10)
TSE_VM_FN(sin, _ZGVdN8v_sinf, std::sin)
TSE_VM_FN(cos, _ZGVdN8v_cosf, std::cos)
TSE_VM_FN(tanh, _ZGVdN8v_tanhf, std::tanh)
TSE_VM_FN(erf, _ZGVdN8v_erff, std::erf)
TSE_VM_FN(erfc, _ZGVdN8v_erfcf, std::erfc)
TSE_VM_FN(log1p, _ZGVdN8v_log1pf, std::log1p)
TSE_VM_FN(expm1, _ZGVdN8v_expm1f, std::expm1)
#undef TSE_VM_FN

/// y[i] = exp(x[i] * scale - shift) for i < n (x may be y), returning the sum of the y[i]: a
/// softmax row's exponentials and normaliser in one pass. The sum keeps 8 lane partials folded
/// in a fixed order, so it does not depend on where the row sits in memory.
#if defined(TSE_VEC_MATH)
inline float exp_affine_sum(const float* x, float* y, int64_t n, float scale, float shift) {
  const __m256 vs = _mm256_set1_ps(scale), vshift = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = _ZGVdN8v_expf(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vs, vshift));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {  // the tail through the same routine; padding lanes are exp(-inf) = 0
    alignas(32) float buf[8];
    for (int l = 0; l < 8; ++l) buf[l] = i + l < n ? x[i + l] * scale - shift : -INFINITY;
    const __m256 e = _ZGVdN8v_expf(_mm256_load_ps(buf));
    _mm256_store_ps(buf, e);
    std::memcpy(y + i, buf, static_cast<size_t>(n - i) * sizeof(float));
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float sum = lanes[0];
  for (int l = 1; l < 8; ++l) sum += lanes[l];
  return sum;
}
#else
inline float exp_affine_sum(const float* x, float* y, int64_t n, float scale, float shift) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (y[i] = std::exp(x[i] * scale - shift));
  return sum;
}
#endif
inline double exp_affine_sum(const double* x, double* y, int64_t n, double scale, double shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (y[i] = std::exp(x[i] * scale - shift));
  return sum;
}

}  // namespace tse::cpu::vm
