// CPU reduction kernels on the engine of src/cpu/reduce.hpp.
#include "src/cpu/reduction.hpp"

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/reduce.hpp"

namespace tse::cpu {
namespace {

// float sums accumulate in double: 4M-element sums stay accurate to ~1e-7 relative.
template <typename T>
struct SumAcc {
  using type = T;
};
template <>
struct SumAcc<float> {
  using type = double;
};
template <>
struct SumAcc<int32_t> {
  using type = int64_t;
};
template <>
struct SumAcc<bool> {
  using type = int64_t;
};

/// out[k] = finish(sum over the reduced elements of map(x)): the fold behind sum and the p-norms.
template <typename T, typename OutT, typename Map, typename Finish>
void map_sum_kernel(const ReducePlan& p, const T* x, OutT* out, const Map& map, const Finish& finish) {
  using Acc = typename SumAcc<T>::type;
  const int nt = get_num_threads();
  // inner: one contiguous reduced dim (rows, or the whole tensor when K == 1)
  if (p.nr == 1 && p.rstrides[0] == 1) {
    const int64_t R = p.R;
    auto row_sum = [&](const T* row, int64_t r0, int64_t r1) {
      Acc acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t r = r0; r < r1; ++r) acc += map(row[r]);
      return acc;
    };
    if (p.K < nt && R >= 2 * detail::kParallelGrain) {
      // Few long rows: split each row across the threads, then add the partial sums in order.
      const int64_t chunks = nt, per = (R + chunks - 1) / chunks;
      std::vector<Acc> partial(static_cast<size_t>(p.K * chunks), Acc(0));
      detail::parallel_for(0, p.K * chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const int64_t k = i / chunks, c = i % chunks;
          const T* row = x + group_offset(k, p.nk, p.ksizes, p.kstrides);
          partial[i] = row_sum(row, std::min(R, c * per), std::min(R, (c + 1) * per));
        }
      });
      for (int64_t k = 0; k < p.K; ++k) {
        Acc acc = 0;
        for (int64_t c = 0; c < chunks; ++c) acc += partial[k * chunks + c];
        out[k] = finish(acc);
      }
      return;
    }
    const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / std::max<int64_t>(R, 1));
    detail::parallel_for(0, p.K, grain, [&](int64_t kb, int64_t ke) {
      for (int64_t k = kb; k < ke; ++k) out[k] = finish(row_sum(x + group_offset(k, p.nk, p.ksizes, p.kstrides), 0, R));
    });
    return;
  }
  // column: one contiguous kept dim; blocks of outputs accumulate row by row, vectorised across
  // the outputs. Rows are split into chunks too when there are fewer blocks than threads.
  if (p.nk == 1 && p.kstrides[0] == 1 && p.R > 1) {
    constexpr int64_t kCols = 1024;
    const int64_t K = p.K;
    const int64_t blocks = (K + kCols - 1) / kCols;
    const int64_t row_chunks =
        blocks >= nt || p.R * K < 2 * detail::kParallelGrain ? 1 : std::min<int64_t>(p.R, (nt + blocks - 1) / blocks);
    const int64_t per = (p.R + row_chunks - 1) / row_chunks;
    std::vector<Acc> partial(static_cast<size_t>(row_chunks > 1 ? row_chunks * K : 0));
    const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / (per * kCols));
    detail::parallel_for(0, blocks * row_chunks, grain, [&](int64_t bb, int64_t be) {
      Acc acc[kCols];
      for (int64_t i = bb; i < be; ++i) {
        const int64_t b = i / row_chunks, c = i % row_chunks;
        const int64_t k0 = b * kCols, n = std::min(kCols, K - k0);
        for (int64_t j = 0; j < n; ++j) acc[j] = 0;
        for_each_reduced(p, k0, std::min(p.R, c * per), std::min(p.R, (c + 1) * per), [&](int64_t off) {
          const T* row = x + off;
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) acc[j] += map(row[j]);
        });
        if (row_chunks == 1) {
          for (int64_t j = 0; j < n; ++j) out[k0 + j] = finish(acc[j]);
        } else {
          for (int64_t j = 0; j < n; ++j) partial[c * K + k0 + j] = acc[j];
        }
      }
    });
    if (row_chunks > 1) {
      for (int64_t k = 0; k < K; ++k) {
        Acc a = 0;
        for (int64_t c = 0; c < row_chunks; ++c) a += partial[c * K + k];
        out[k] = finish(a);
      }
    }
    return;
  }
  reduce_fold<T, Acc, OutT>(
      p, x, out, Acc(0), [&](Acc a, T v, int64_t) { return a + map(v); }, [](Acc a, Acc b) { return a + b; }, finish);
}

template <typename T, typename OutT>
void sum_kernel(const ReducePlan& p, const T* x, OutT* out) {
  using Acc = typename SumAcc<T>::type;
  map_sum_kernel<T, OutT>(
      p, x, out, [](T v) { return static_cast<Acc>(v); }, [](Acc a) { return static_cast<OutT>(a); });
}

template <typename T>
void norm_kernel(const ReducePlan& p, const T* x, T* out, double ord) {
  using Acc = typename SumAcc<T>::type;
  if (ord == 1.0) {
    map_sum_kernel<T, T>(
        p, x, out, [](T v) { return std::abs(static_cast<Acc>(v)); }, [](Acc a) { return static_cast<T>(a); });
  } else if (ord == 2.0) {
    map_sum_kernel<T, T>(
        p, x, out,
        [](T v) {
          const Acc a = static_cast<Acc>(v);
          return a * a;
        },
        [](Acc a) { return static_cast<T>(std::sqrt(a)); });
  } else {
    const Acc inv = Acc(1) / static_cast<Acc>(ord);
    map_sum_kernel<T, T>(
        p, x, out, [ord](T v) { return static_cast<Acc>(std::pow(std::abs(static_cast<Acc>(v)), ord)); },
        [inv](Acc a) { return static_cast<T>(std::pow(a, inv)); });
  }
}

/// True when v should replace the current extreme cur: strictly larger (smaller), or the first NaN.
template <typename T, bool kMax>
inline bool beats(T v, T cur) {
  if constexpr (std::is_floating_point_v<T>) {
    if (v != v) return cur == cur;
  }
  if constexpr (kMax) {
    return v > cur;
  } else {
    return v < cur;
  }
}

/// The identity of max (min): -inf (+inf) for floats, the type's extreme value otherwise.
template <typename T, bool kMax>
constexpr T extreme_identity() {
  if constexpr (std::numeric_limits<T>::has_infinity) {
    return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  } else {
    return kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
}

template <typename T, bool kMax>
void extreme_kernel(const ReducePlan& p, const T* x, T* out) {
  const auto pick = [](T a, T b) { return beats<T, kMax>(b, a) ? b : a; };
  if constexpr (std::is_floating_point_v<T>) {
    // Contiguous rows: a vectorised max (min) plus a NaN flag, NaN winning as in the fold.
    if (p.nr == 1 && p.rstrides[0] == 1 && p.K > 1) {
      const int64_t R = p.R;
      const int64_t grain = std::max<int64_t>(1, detail::kParallelGrain / std::max<int64_t>(R, 1));
      detail::parallel_for(0, p.K, grain, [&](int64_t kb, int64_t ke) {
        for (int64_t k = kb; k < ke; ++k) {
          const T* row = x + group_offset(k, p.nk, p.ksizes, p.kstrides);
          T m = extreme_identity<T, kMax>();
          int nan = 0;
          if constexpr (kMax) {
#pragma omp simd reduction(max : m) reduction(| : nan)
            for (int64_t r = 0; r < R; ++r) {
              m = row[r] > m ? row[r] : m;
              nan |= row[r] != row[r];
            }
          } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
            for (int64_t r = 0; r < R; ++r) {
              m = row[r] < m ? row[r] : m;
              nan |= row[r] != row[r];
            }
          }
          out[k] = nan ? std::numeric_limits<T>::quiet_NaN() : m;
        }
      });
      return;
    }
  }
  reduce_fold<T, T, T>(
      p, x, out, extreme_identity<T, kMax>(), [&](T a, T v, int64_t) { return pick(a, v); }, pick,
      [](T a) { return a; });
}

template <typename T>
struct ValueIndex {
  T value;
  int64_t index;  // -1: nothing folded yet
};

template <typename T, bool kMax>
void arg_extreme_kernel(const ReducePlan& p, const T* x, T* values, int64_t* indices) {
  using VI = ValueIndex<T>;
  const auto step = [](VI a, T v, int64_t r) { return (a.index < 0 || beats<T, kMax>(v, a.value)) ? VI{v, r} : a; };
  // a holds the earlier part of the range, so it keeps ties.
  const auto merge = [](VI a, VI b) {
    if (b.index < 0) return a;
    return (a.index < 0 || beats<T, kMax>(b.value, a.value)) ? b : a;
  };
  reduce_fold_to(p, x, VI{extreme_identity<T, kMax>(), -1}, step, merge, [&](int64_t k, const VI& a) {
    values[k] = a.value;
    indices[k] = a.index;
  });
}

/// Running (max, sum of exp(x - max)): one pass, rescaling the sum when the max grows.
struct LseAcc {
  double max;
  double sum;
};

inline LseAcc lse_step(LseAcc a, double v) {
  if (v > a.max) return {v, a.sum * std::exp(a.max - v) + 1.0};
  if (v == a.max) return {a.max, a.sum + 1.0};  // also equal infinities, whose difference is NaN
  return {a.max, a.sum + std::exp(v - a.max)};  // a NaN v makes the sum NaN
}

inline LseAcc lse_merge(LseAcc a, LseAcc b) {
  if (b.sum == 0.0) return a;
  if (a.sum == 0.0) return b;
  if (a.max < b.max) std::swap(a, b);
  if (a.max == b.max) return {a.max, a.sum + b.sum};
  return {a.max, a.sum + b.sum * std::exp(b.max - a.max)};
}

template <typename T>
void logsumexp_kernel(const ReducePlan& p, const T* x, T* out) {
  const LseAcc init{-std::numeric_limits<double>::infinity(), 0.0};
  // An empty fold gives -inf + log(0) = -inf; a row of -inf gives -inf + log(n) = -inf.
  reduce_fold<T, LseAcc, T>(
      p, x, out, init, [](LseAcc a, T v, int64_t) { return lse_step(a, static_cast<double>(v)); }, lse_merge,
      [](LseAcc a) { return static_cast<T>(a.max + std::log(a.sum)); });
}

template <typename T>
constexpr bool is_compute_type = !std::is_same_v<T, Half> && !std::is_same_v<T, BFloat16>;

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

void norm(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce, double ord) {
  const ReducePlan p = make_reduce_plan(x, reduce);
  detail::FtzGuard ftz;
  dispatch_floating(x.dtype(), "norm", [&]<typename T>() {
    norm_kernel<T>(p, static_cast<const T*>(x.data_ptr()), static_cast<T*>(out.data_ptr()), ord);
  });
}

void extreme(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce, bool is_max) {
  const ReducePlan p = make_reduce_plan(x, reduce);
  dispatch_all(x.dtype(), is_max ? "amax" : "amin", [&]<typename T>() {
    if constexpr (is_compute_type<T>) {
      const T* xp = static_cast<const T*>(x.data_ptr());
      T* op = static_cast<T*>(out.data_ptr());
      if (is_max) {
        extreme_kernel<T, true>(p, xp, op);
      } else {
        extreme_kernel<T, false>(p, xp, op);
      }
    } else {
      TSE_ASSERT(false, "extreme: ", x.dtype(), " reached the kernel");
    }
  });
}

void arg_extreme(const Tensor& values, const Tensor& indices, const Tensor& x, const std::vector<bool>& reduce,
                 bool is_max) {
  const ReducePlan p = make_reduce_plan(x, reduce);
  TSE_ASSERT(p.nr <= 1, "arg_extreme: more than one reduced dim");
  dispatch_all(x.dtype(), is_max ? "max" : "min", [&]<typename T>() {
    if constexpr (is_compute_type<T>) {
      const T* xp = static_cast<const T*>(x.data_ptr());
      T* vp = static_cast<T*>(values.data_ptr());
      int64_t* ip = static_cast<int64_t*>(indices.data_ptr());
      if (is_max) {
        arg_extreme_kernel<T, true>(p, xp, vp, ip);
      } else {
        arg_extreme_kernel<T, false>(p, xp, vp, ip);
      }
    } else {
      TSE_ASSERT(false, "arg_extreme: ", x.dtype(), " reached the kernel");
    }
  });
}

void logsumexp(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  const ReducePlan p = make_reduce_plan(x, reduce);
  detail::FtzGuard ftz;
  dispatch_floating(x.dtype(), "logsumexp", [&]<typename T>() {
    logsumexp_kernel<T>(p, static_cast<const T*>(x.data_ptr()), static_cast<T*>(out.data_ptr()));
  });
}

}  // namespace tse::cpu
