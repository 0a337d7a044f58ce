#pragma once
// Vectorisable folds over one contiguous row (max, sum, dot), shared by the softmax-like kernels
// (softmax.cpp, attention.cpp). Without -ffast-math the compiler keeps a plain fold scalar (it may
// not reassociate), while fixed-width partials vectorise into one register; the partials are
// combined in a fixed order, so a row's result never depends on how rows are split over threads.
#include <algorithm>
#include <cstdint>
#include <limits>

namespace tse::cpu::rows {

/// Elements of T in one AVX2 register.
template <typename T>
constexpr int64_t kLanes = 32 / sizeof(T);

/// op folded over load(0) ... load(n - 1) in kLanes independent partial results, then across them.
template <typename T, typename Load, typename Op>
T lane_fold(int64_t n, T init, const Load& load, const Op& op) {
  constexpr int64_t L = kLanes<T>;
  T acc[L];
  std::fill(acc, acc + L, init);
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int64_t l = 0; l < L; ++l) acc[l] = op(acc[l], load(i + l));
  for (; i < n; ++i) acc[0] = op(acc[0], load(i));
  T r = acc[0];
  for (int64_t l = 1; l < L; ++l) r = op(r, acc[l]);
  return r;
}

template <typename T>
T max_op(T a, T b) {
  return b > a ? b : a;  // NaN never wins; it makes the sum of exponentials NaN instead
}

template <typename T>
T row_max(const T* x, int64_t n) {
  return lane_fold<T>(
      n, -std::numeric_limits<T>::infinity(), [x](int64_t i) { return x[i]; }, max_op<T>);
}

template <typename T>
T row_min(const T* x, int64_t n) {
  return lane_fold<T>(
      n, std::numeric_limits<T>::infinity(), [x](int64_t i) { return x[i]; }, [](T a, T b) { return b < a ? b : a; });
}

template <typename T>
T row_sum(const T* x, int64_t n) {
  return lane_fold<T>(
      n, T(0), [x](int64_t i) { return x[i]; }, [](T a, T b) { return a + b; });
}

template <typename T>
T row_dot(const T* x, const T* y, int64_t n) {
  return lane_fold<T>(
      n, T(0), [x, y](int64_t i) { return x[i] * y[i]; }, [](T a, T b) { return a + b; });
}

}  // namespace tse::cpu::rows
