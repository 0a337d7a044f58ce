// CPU reduction kernels on the engine of src/cpu/reduce.hpp.
#include "src/cpu/reduction.hpp"

#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/reduce.hpp"

namespace tse::cpu {
namespace {

// float sums accumulate in double: 4M-element sums stay accurate to ~1e-7 relative.
template <typename T> struct SumAcc { using type = T; };
template <> struct SumAcc<float> { using type = double; };
template <> struct SumAcc<int32_t> { using type = int64_t; };
template <> struct SumAcc<bool> { using type = int64_t; };

template <typename T, typename OutT>
void sum_kernel(const ReducePlan& p, const T* x, OutT* out) {
  using Acc = typename SumAcc<T>::type;
  // inner: one contiguous reduced dim
  if (p.nr == 1 && p.rstrides[0] == 1 && p.K > 1) {
    const int64_t R = p.R;
    const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / R);
    detail::parallel_for(0, p.K, grain, [&](int64_t kb, int64_t ke) {
      for (int64_t k = kb; k < ke; ++k) {
        const T* row = x + group_offset(k, p.nk, p.ksizes, p.kstrides);
        Acc acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t r = 0; r < R; ++r) acc += static_cast<Acc>(row[r]);
        out[k] = static_cast<OutT>(acc);
      }
    });
    return;
  }
  // column: one contiguous kept dim; accumulate blocks of outputs across the reduced rows
  if (p.nk == 1 && p.kstrides[0] == 1 && p.R > 1) {
    constexpr int64_t kCols = 256;
    const int64_t K = p.K;
    const int64_t blocks = (K + kCols - 1) / kCols;
    const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / (p.R * kCols));
    detail::parallel_for(0, blocks, grain, [&](int64_t bb, int64_t be) {
      Acc acc[kCols];
      for (int64_t b = bb; b < be; ++b) {
        const int64_t k0 = b * kCols, n = std::min(kCols, K - k0);
        for (int64_t j = 0; j < n; ++j) acc[j] = 0;
        for_each_reduced(p, k0, 0, p.R, [&](int64_t off) {
          const T* row = x + off;
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<Acc>(row[j]);
        });
        for (int64_t j = 0; j < n; ++j) out[k0 + j] = static_cast<OutT>(acc[j]);
      }
    });
    return;
  }
  reduce_fold<T, Acc, OutT>(
      p, x, out, Acc(0), [](Acc a, T v, int64_t) { return a + static_cast<Acc>(v); },
      [](Acc a, Acc b) { return a + b; }, [](Acc a) { return static_cast<OutT>(a); });
}

}  // namespace

void sum(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  const ReducePlan p = make_reduce_plan(x, reduce);
  detail::FtzGuard ftz;
  if (x.dtype() == DType::b8 || is_integral(x.dtype())) {
    TSE_ASSERT(out.dtype() == DType::i64);
    dispatch_all(x.dtype(), "sum", [&]<typename T>() {
      if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>) {
        sum_kernel<T, int64_t>(p, static_cast<const T*>(x.data_ptr()), static_cast<int64_t*>(out.data_ptr()));
      } else {
        TSE_ASSERT(false);
      }
    });
    return;
  }
  dispatch_floating(x.dtype(), "sum", [&]<typename T>() {
    sum_kernel<T, T>(p, static_cast<const T*>(x.data_ptr()), static_cast<T*>(out.data_ptr()));
  });
}

}  // namespace tse::cpu
