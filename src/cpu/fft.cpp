#include "src/cpu/fft.hpp"

#include <fftw3.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "src/core/lru_cache.hpp"
#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "tse/core/error.hpp"
#include "tse/core/storage.hpp"

namespace tse::cpu::fft {
namespace {

// Plans are made with FFTW_ESTIMATE: FFTW_MEASURE picks algorithms by timing, so two processes
// could round differently, and training resumed in a new process must reproduce the old one
// bit for bit. benchmarks/bench_audio.cpp prints what MEASURE would gain at the model sizes.
constexpr unsigned kPlannerFlags = FFTW_ESTIMATE;

// Frames transformed per plan execution: enough to amortise the call and to fill whole cache
// lines when scattering bins into the (F, T) layout, few enough to stay in L2.
constexpr int64_t kFramesPerBlock = 16;

// One planner lock for both precisions: FFTW's planner state is shared between them.
std::mutex& planner_mutex() {
  static std::mutex mu;
  return mu;
}

/// fftwf_* or fftw_* by element type.
template <typename T>
struct Fftw;

template <>
struct Fftw<float> {
  using Plan = fftwf_plan;
  using Complex = fftwf_complex;
  static Plan r2c(int n, int howmany, float* in, Complex* out) {
    return fftwf_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1, kPlannerFlags);
  }
  static Plan c2r(int n, int howmany, Complex* in, float* out) {
    return fftwf_plan_many_dft_c2r(1, &n, howmany, in, nullptr, 1, n / 2 + 1, out, nullptr, 1, n, kPlannerFlags);
  }
  static void run_r2c(Plan p, float* in, Complex* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void run_c2r(Plan p, Complex* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void destroy(Plan p) { fftwf_destroy_plan(p); }
};

template <>
struct Fftw<double> {
  using Plan = fftw_plan;
  using Complex = fftw_complex;
  static Plan r2c(int n, int howmany, double* in, Complex* out) {
    return fftw_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n / 2 + 1, kPlannerFlags);
  }
  static Plan c2r(int n, int howmany, Complex* in, double* out) {
    return fftw_plan_many_dft_c2r(1, &n, howmany, in, nullptr, 1, n / 2 + 1, out, nullptr, 1, n, kPlannerFlags);
  }
  static void run_r2c(Plan p, double* in, Complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void run_c2r(Plan p, Complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(Plan p) { fftw_destroy_plan(p); }
};

enum class Direction : int { r2c, c2r };

struct PlanKey {
  Direction direction;
  DType dtype;
  int64_t n;
  int64_t howmany;
  bool operator==(const PlanKey&) const = default;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    size_t h = std::hash<int64_t>{}(k.n);
    h ^= std::hash<int64_t>{}(k.howmany) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= static_cast<size_t>(k.direction) * 31 + static_cast<size_t>(k.dtype);
    return h;
  }
};

/// A plan handle shared by the cache and the executions in flight, so that evicting a plan
/// while another thread runs it is safe; destruction takes the planner lock.
using PlanHandle = std::shared_ptr<void>;

class PlanCache {
 public:
  explicit PlanCache(size_t capacity) : cache_(capacity) {}

  template <typename T>
  PlanHandle get(Direction dir, int64_t n, int64_t howmany) {
    const PlanKey key{dir, std::is_same_v<T, float> ? DType::f32 : DType::f64, n, howmany};
    if (std::optional<PlanHandle> hit = cache_.find(key)) return *hit;
    return cache_.insert(key, make<T>(dir, n, howmany));
  }

  void set_capacity(size_t capacity) { cache_.set_capacity(capacity); }
  PlanCacheStats stats() const { return cache_.stats(); }

 private:
  template <typename T>
  static PlanHandle make(Direction dir, int64_t n, int64_t howmany) {
    using F = Fftw<T>;
    TSE_CHECK(n <= (int64_t{1} << 30) && howmany <= (int64_t{1} << 30), "fft: transform of ", n, " x ", howmany,
              " points is too large");
    // Planning arrays from our allocator have the alignment every later execution sees.
    const int64_t complex_count = howmany * (n / 2 + 1);
    Storage real(static_cast<size_t>(howmany * n) * sizeof(T), Device::cpu());
    Storage cplx(static_cast<size_t>(complex_count) * 2 * sizeof(T), Device::cpu());
    T* rp = static_cast<T*>(real.data());
    auto* cp = static_cast<typename F::Complex*>(cplx.data());
    typename F::Plan p;
    {
      std::lock_guard<std::mutex> lock(planner_mutex());
      p = dir == Direction::r2c ? F::r2c(static_cast<int>(n), static_cast<int>(howmany), rp, cp)
                                : F::c2r(static_cast<int>(n), static_cast<int>(howmany), cp, rp);
    }
    if (!p) throw BackendError(tse::detail::str_cat("fft: FFTW could not plan a transform of ", n, " points"));
    return PlanHandle(static_cast<void*>(p), [](void* q) {
      std::lock_guard<std::mutex> lock(planner_mutex());
      F::destroy(static_cast<typename F::Plan>(q));
    });
  }

  tse::detail::LruCache<PlanKey, PlanHandle, PlanKeyHash> cache_;
};

PlanCache& plan_cache() {
  // Never destroyed: plans may still be referenced by threads running at exit.
  static PlanCache* cache = new PlanCache(64);
  return *cache;
}

/// Per-thread scratch for one block of frames: the real frames and their half spectra.
template <typename T>
struct BlockScratch {
  explicit BlockScratch(int64_t n)
      : real(static_cast<size_t>(kFramesPerBlock * n) * sizeof(T), Device::cpu()),
        cplx(static_cast<size_t>(kFramesPerBlock * (n / 2 + 1)) * 2 * sizeof(T), Device::cpu()) {}
  T* frames() { return static_cast<T*>(real.data()); }
  T* bins() { return static_cast<T*>(cplx.data()); }
  Storage real, cplx;
};

template <typename T>
void frames_rfft_impl(const Tensor& out, const Tensor& x, const Tensor& window, int64_t hop,
                      const double* bin_scale) {
  using F = Fftw<T>;
  const int64_t B = out.size(0), nbins = out.size(1), T_ = out.size(2), n = window.numel();
  const int64_t Lx = x.size(1);
  const T* xp = x.data<T>();
  const T* w = window.data<T>();
  T* op = out.data<T>();
  const int64_t blocks = (T_ + kFramesPerBlock - 1) / kFramesPerBlock;
  std::vector<T> scale;
  if (bin_scale) scale.assign(bin_scale, bin_scale + nbins);
  // Work per block: about 5 n log2 n flops per frame.
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / (kFramesPerBlock * n));
  tse::detail::parallel_for(0, B * blocks, grain, [&](int64_t i0, int64_t i1) {
    BlockScratch<T> s(n);
    PlanHandle full, tail;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / blocks, t0 = (i % blocks) * kFramesPerBlock;
      const int64_t count = std::min(kFramesPerBlock, T_ - t0);
      PlanHandle& plan = count == kFramesPerBlock ? full : tail;
      if (!plan) plan = plan_cache().get<T>(Direction::r2c, n, count);
      T* fr = s.frames();
      for (int64_t j = 0; j < count; ++j) {
        const T* src = xp + b * Lx + (t0 + j) * hop;
        T* __restrict dst = fr + j * n;
        for (int64_t m = 0; m < n; ++m) dst[m] = src[m] * w[m];
      }
      F::run_r2c(static_cast<typename F::Plan>(plan.get()), fr, reinterpret_cast<typename F::Complex*>(s.bins()));
      // Scatter into (F, T, 2): for each bin, the block's frames are adjacent in out.
      const T* bins = s.bins();
      for (int64_t k = 0; k < nbins; ++k) {
        T* __restrict dst = op + ((b * nbins + k) * T_ + t0) * 2;
        const T sk = bin_scale ? scale[static_cast<size_t>(k)] : T(1);
        for (int64_t j = 0; j < count; ++j) {
          dst[2 * j] = bins[(j * nbins + k) * 2] * sk;
          dst[2 * j + 1] = bins[(j * nbins + k) * 2 + 1] * sk;
        }
      }
    }
  });
}

template <typename T>
void overlap_add_irfft_impl(const Tensor& out, const Tensor& spec, const Tensor& window, int64_t hop,
                            const double* bin_scale) {
  using F = Fftw<T>;
  const int64_t B = spec.size(0), nbins = spec.size(1), T_ = spec.size(2), n = window.numel();
  const int64_t Lout = out.size(1);
  const T* sp = spec.data<T>();
  const T* w = window.data<T>();
  T* op = out.data<T>();
  std::fill(op, op + out.numel(), T(0));
  if (T_ == 0) return;
  std::vector<T> scale(static_cast<size_t>(nbins), T(1));
  if (bin_scale) std::copy(bin_scale, bin_scale + nbins, scale.begin());

  // Blocks of frames overlap only their neighbours when a block spans at least n - hop samples
  // (kFramesPerBlock * hop >= n - hop), so all even blocks, then all odd blocks, can be added
  // in parallel without races. Smaller hops use proportionally longer blocks, in groups.
  const int64_t group = std::max<int64_t>(1, (n - hop + kFramesPerBlock * hop - 1) / (kFramesPerBlock * hop));
  const int64_t span = group * kFramesPerBlock;  // frames per parallel task
  const int64_t tasks_per_item = (T_ + span - 1) / span;
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / (span * n));
  for (int parity = 0; parity < 2; ++parity) {
    const int64_t per_item = (tasks_per_item - parity + 1) / 2;
    if (per_item <= 0) continue;
    tse::detail::parallel_for(0, B * per_item, grain, [&](int64_t i0, int64_t i1) {
      BlockScratch<T> s(n);
      PlanHandle full, tail;
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / per_item, task = (i % per_item) * 2 + parity;
        const int64_t task_end = std::min(T_, (task + 1) * span);
        for (int64_t t0 = task * span; t0 < task_end; t0 += kFramesPerBlock) {
          const int64_t count = std::min(kFramesPerBlock, task_end - t0);
          // Tails of different tasks may differ in length: look theirs up each time.
          if (count == kFramesPerBlock && !full) full = plan_cache().get<T>(Direction::c2r, n, count);
          if (count != kFramesPerBlock) tail = plan_cache().get<T>(Direction::c2r, n, count);
          const PlanHandle& plan = count == kFramesPerBlock ? full : tail;
          // Gather the block's half spectra (bins of a frame contiguous), scaled.
          T* bins = s.bins();
          for (int64_t k = 0; k < nbins; ++k) {
            const T* src = sp + ((b * nbins + k) * T_ + t0) * 2;
            const T sk = scale[static_cast<size_t>(k)];
            for (int64_t j = 0; j < count; ++j) {
              bins[(j * nbins + k) * 2] = src[2 * j] * sk;
              bins[(j * nbins + k) * 2 + 1] = src[2 * j + 1] * sk;
            }
          }
          for (int64_t j = 0; j < count; ++j) {
            bins[(j * nbins) * 2 + 1] = T(0);  // DC
            if (n % 2 == 0) bins[(j * nbins + nbins - 1) * 2 + 1] = T(0);  // Nyquist
          }
          F::run_c2r(static_cast<typename F::Plan>(plan.get()), reinterpret_cast<typename F::Complex*>(bins),
                     s.frames());
          const T* fr = s.frames();
          for (int64_t j = 0; j < count; ++j) {
            T* __restrict dst = op + b * Lout + (t0 + j) * hop;
            const T* __restrict src = fr + j * n;
            for (int64_t m = 0; m < n; ++m) dst[m] += src[m] * w[m];
          }
        }
      }
    });
  }
}

}  // namespace

void rfft_rows(DType dtype, int64_t n, int64_t howmany, const void* in, void* out) {
  dispatch_floating(dtype, "rfft", [&]<typename T>() {
    using F = Fftw<T>;
    const PlanHandle p = plan_cache().get<T>(Direction::r2c, n, howmany);
    // FFTW's r2c does not write its input (without FFTW_DESTROY_INPUT); its API is not const.
    F::run_r2c(static_cast<typename F::Plan>(p.get()), static_cast<T*>(const_cast<void*>(in)),
               static_cast<typename F::Complex*>(out));
  });
}

void irfft_rows(DType dtype, int64_t n, int64_t howmany, void* in, void* out) {
  dispatch_floating(dtype, "irfft", [&]<typename T>() {
    using F = Fftw<T>;
    const PlanHandle p = plan_cache().get<T>(Direction::c2r, n, howmany);
    F::run_c2r(static_cast<typename F::Plan>(p.get()), static_cast<typename F::Complex*>(in), static_cast<T*>(out));
  });
}

PlanCacheStats plan_cache_stats() { return plan_cache().stats(); }

void set_plan_cache_capacity(size_t capacity) { plan_cache().set_capacity(capacity); }

void frames_rfft(const Tensor& out, const Tensor& x, const Tensor& window, int64_t hop, const double* bin_scale) {
  if (out.numel() == 0) return;
  dispatch_floating(out.dtype(), "stft", [&]<typename T>() { frames_rfft_impl<T>(out, x, window, hop, bin_scale); });
}

void overlap_add_irfft(const Tensor& out, const Tensor& spec, const Tensor& window, int64_t hop,
                       const double* bin_scale) {
  if (out.numel() == 0) return;
  dispatch_floating(out.dtype(), "istft",
                    [&]<typename T>() { overlap_add_irfft_impl<T>(out, spec, window, hop, bin_scale); });
}

}  // namespace tse::cpu::fft
