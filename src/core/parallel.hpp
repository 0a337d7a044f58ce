#pragma once
// Internal: parallel_for over OpenMP and the flush-to-zero guard. See tse/core/threading.hpp.
#include <omp.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>
#include <exception>

#include "tse/core/threading.hpp"

namespace tse::detail {

/// Sets FTZ|DAZ in MXCSR for the scope and restores the caller's mode afterwards.
class FtzGuard {
 public:
  FtzGuard() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~FtzGuard() { _mm_setcsr(saved_); }
  FtzGuard(const FtzGuard&) = delete;
  FtzGuard& operator=(const FtzGuard&) = delete;

 private:
  unsigned saved_;
};

inline void set_ftz_this_thread() { _mm_setcsr(_mm_getcsr() | 0x8040u); }

/// Below this many elements of simple work a kernel runs on the calling thread: an OpenMP
/// region costs a few microseconds.
inline constexpr int64_t kParallelGrain = 32768;

/// Calls f(begin, end) on disjoint chunks of [begin, end) covering it, each at least grain long.
/// Exceptions thrown by f are rethrown on the calling thread (the first one wins).
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  FtzGuard ftz;
  const int nt = get_num_threads();
  grain = std::max<int64_t>(grain, 1);
  if (nt <= 1 || n <= grain || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int64_t chunks = std::min<int64_t>(nt, (n + grain - 1) / grain);
  std::exception_ptr error;
#pragma omp parallel num_threads(static_cast<int>(chunks))
  {
    set_ftz_this_thread();  // persistent on pool threads; the caller's is restored by ftz
    const int64_t tid = omp_get_thread_num();
    const int64_t nthr = omp_get_num_threads();
    const int64_t per = (n + nthr - 1) / nthr;
    const int64_t b = begin + tid * per;
    const int64_t e = std::min(end, b + per);
    if (b < e) {
      try {
        f(b, e);
      } catch (...) {
#pragma omp critical(tse_parallel_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace tse::detail
