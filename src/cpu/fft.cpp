#include "src/cpu/fft.hpp"

#include <fftw3.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <numbers>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "src/core/lru_cache.hpp"
#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "tse/core/error.hpp"
#include "tse/core/storage.hpp"
#include "tse/core/threading.hpp"

namespace tse::cpu::fft {
namespace {

// Plans are made with FFTW_ESTIMATE: FFTW_MEASURE picks algorithms by timing, so two processes
// could round differently, and training resumed in a new process must reproduce the old one
// bit for bit. benchmarks/bench_audio.cpp prints what MEASURE would gain at the model sizes.
constexpr unsigned kPlannerFlags = FFTW_ESTIMATE;

// Frames transformed per plan execution: enough to amortise the call, few enough for a block's
// frames and spectra (about 200 KB at n = 1024) to stay in L2.
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
  static Plan c2c(int n, int howmany, Complex* in, Complex* out, int sign) {
    return fftwf_plan_many_dft(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n, sign, kPlannerFlags);
  }
  static void run_r2c(Plan p, float* in, Complex* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void run_c2r(Plan p, Complex* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void run_c2c(Plan p, Complex* in, Complex* out) { fftwf_execute_dft(p, in, out); }
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
  static Plan c2c(int n, int howmany, Complex* in, Complex* out, int sign) {
    return fftw_plan_many_dft(1, &n, howmany, in, nullptr, 1, n, out, nullptr, 1, n, sign, kPlannerFlags);
  }
  static void run_r2c(Plan p, double* in, Complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void run_c2r(Plan p, Complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void run_c2c(Plan p, Complex* in, Complex* out) { fftw_execute_dft(p, in, out); }
  static void destroy(Plan p) { fftw_destroy_plan(p); }
};

/// r2c / c2r: n real points; c2c_*: n complex points (FFTW_FORWARD / FFTW_BACKWARD).
enum class Direction : int { r2c, c2r, c2c_forward, c2c_backward };

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
    // Planning arrays from our allocator have the alignment every later execution sees. A c2c
    // transform reads and writes n complex points per row; the real ones, n real and n/2+1 complex.
    const bool c2c = dir == Direction::c2c_forward || dir == Direction::c2c_backward;
    const int64_t complex_count = howmany * (c2c ? n : n / 2 + 1);
    Storage real(static_cast<size_t>(howmany * n * (c2c ? 2 : 1)) * sizeof(T), Device::cpu());
    Storage cplx(static_cast<size_t>(complex_count) * 2 * sizeof(T), Device::cpu());
    T* rp = static_cast<T*>(real.data());
    auto* cp = static_cast<typename F::Complex*>(cplx.data());
    const int ni = static_cast<int>(n), hi = static_cast<int>(howmany);
    typename F::Plan p;
    {
      std::lock_guard<std::mutex> lock(planner_mutex());
      switch (dir) {
        case Direction::r2c: p = F::r2c(ni, hi, rp, cp); break;
        case Direction::c2r: p = F::c2r(ni, hi, cp, rp); break;
        case Direction::c2c_forward:
          p = F::c2c(ni, hi, reinterpret_cast<typename F::Complex*>(rp), cp, FFTW_FORWARD);
          break;
        case Direction::c2c_backward:
          p = F::c2c(ni, hi, cp, reinterpret_cast<typename F::Complex*>(rp), FFTW_BACKWARD);
          break;
      }
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

// ---- Framed transforms ----------------------------------------------------------------------
//
// A real FFT of even length n = 2M runs as one complex FFT of M points plus an O(n) pass: the
// frame read as M complex numbers z[m] = x[2m] + i x[2m+1] has the spectrum Z, and for k in [0, M]
//   X[k] = E[k] - i W^k O[k],   E[k] = (Z[k] + conj Z[M-k]) / 2,   O[k] = (Z[k] - conj Z[M-k]) / 2
// with W = exp(-2 pi i / n) (E, O: the spectra of the even and odd samples). The inverse builds
//   Z[k] = (X[k] + conj X[M-k]) + i W^-k (X[k] - conj X[M-k])
// and its backward complex FFT yields the frame's samples as (re, im) pairs. FFTW's complex codelets
// at these sizes are about three times faster than its r2c/c2r ones (measured at n = 1024:
// benchmarks/README.md), so this is the path for every even n; odd n uses FFTW's r2c/c2r.
//
// Both directions pair k with M - k in the same step: with A = in[k], B = conj(in[M - k]),
//   out[k] = E + P,   out[M - k] = conj(E - P),   E = e (A + B),   P = w[k] (A - B)
// where forward: e = 1/2, w[k] = -i W^k / 2; inverse: e = 1, w[k] = i W^-k.

/// The twiddles w[k] of one direction for k in [0, M/2 + 4) (the vector loop may run up to 3
/// pairs past M/2, recomputing mirrored pairs), interleaved (re, im).
template <typename T>
std::vector<T> pair_twiddles(int64_t n, bool inverse) {
  const int64_t M = n / 2, count = M / 2 + 4;
  std::vector<T> w(static_cast<size_t>(2 * count));
  for (int64_t k = 0; k < count; ++k) {
    const double a = 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
    const double c = std::cos(a), s = std::sin(a);
    // forward: -i (c - i s) / 2 = (-s, -c) / 2;  inverse: i (c + i s) = (-s, c).
    w[static_cast<size_t>(2 * k)] = static_cast<T>(inverse ? -s : -s / 2);
    w[static_cast<size_t>(2 * k + 1)] = static_cast<T>(inverse ? c : -c / 2);
  }
  return w;
}

/// The paired step above for k in [1, M/2] (see the comment), out of place; in and out hold M
/// complex values (out[0], and out[M] for the forward direction, are the caller's).
template <typename T>
void combine_pairs(const T* __restrict in, T* __restrict out, const T* __restrict w, int64_t M, T e) {
  int64_t k = 1;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float>) {
    // Four pairs per step: complex k0..k0+3 forwards, M-k0..M-k0-3 read as one reversed vector.
    const __m256 conj_mask = _mm256_setr_ps(0.f, -0.f, 0.f, -0.f, 0.f, -0.f, 0.f, -0.f);
    const __m256 ev = _mm256_set1_ps(e);
    const auto reverse = [](__m256 v) {
      return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0x1B));
    };
    if (M >= 8) {
      for (; k <= M / 2; k += 4) {
        const __m256 a = _mm256_loadu_ps(in + 2 * k);
        const __m256 b = _mm256_xor_ps(reverse(_mm256_loadu_ps(in + 2 * (M - k - 3))), conj_mask);
        const __m256 ee = _mm256_mul_ps(ev, _mm256_add_ps(a, b));
        const __m256 o = _mm256_sub_ps(a, b);
        const __m256 wk = _mm256_loadu_ps(w + 2 * k);
        const __m256 p = _mm256_fmaddsub_ps(_mm256_moveldup_ps(wk), o,
                                            _mm256_mul_ps(_mm256_movehdup_ps(wk), _mm256_permute_ps(o, 0xB1)));
        _mm256_storeu_ps(out + 2 * k, _mm256_add_ps(ee, p));
        _mm256_storeu_ps(out + 2 * (M - k - 3), reverse(_mm256_xor_ps(_mm256_sub_ps(ee, p), conj_mask)));
      }
      return;
    }
  }
#endif
  for (; k <= M / 2; ++k) {
    const T ar = in[2 * k], ai = in[2 * k + 1], br = in[2 * (M - k)], bi = -in[2 * (M - k) + 1];
    const T er = e * (ar + br), ei = e * (ai + bi), or_ = ar - br, oi = ai - bi;
    const T wr = w[2 * k], wi = w[2 * k + 1];
    const T pr = wr * or_ - wi * oi, pi = wr * oi + wi * or_;
    out[2 * (M - k)] = er - pr;
    out[2 * (M - k) + 1] = pi - ei;
    out[2 * k] = er + pr;
    out[2 * k + 1] = ei + pi;
  }
}

/// dst[c * dst_ld + r] = src[r * src_ld + c] * row_scale[r] (row_scale null: 1) for r < rows,
/// c < cols, where every element is a (re, im) pair of T and the strides count pairs: between a
/// block's spectra (frame-major, what FFTW reads and writes) and the bin-major layout of STFT
/// tensors. With AVX2, float pairs move as 64-bit lanes in 4 x 4 register transposes.
template <typename T>
void transpose_pairs(const T* __restrict src, int64_t src_ld, T* __restrict dst, int64_t dst_ld, int64_t rows,
                     int64_t cols, const T* row_scale) {
  int64_t rows4 = 0, cols4 = 0;  // the extent covered by 4 x 4 blocks
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    rows4 = rows / 4 * 4;
    cols4 = cols / 4 * 4;
    const auto* s = reinterpret_cast<const double*>(src);
    auto* d = reinterpret_cast<double*>(dst);
    for (int64_t r0 = 0; r0 < rows4; r0 += 4) {
      const __m256 sc = row_scale ? _mm256_setr_ps(row_scale[r0], row_scale[r0], row_scale[r0 + 1], row_scale[r0 + 1],
                                                   row_scale[r0 + 2], row_scale[r0 + 2], row_scale[r0 + 3],
                                                   row_scale[r0 + 3])
                                  : _mm256_set1_ps(1.f);
      const auto store = [&](int64_t c, __m256d v) {
        _mm256_storeu_pd(d + c * dst_ld + r0, _mm256_castps_pd(_mm256_mul_ps(_mm256_castpd_ps(v), sc)));
      };
      for (int64_t c0 = 0; c0 < cols4; c0 += 4) {
        const __m256d a = _mm256_loadu_pd(s + (r0 + 0) * src_ld + c0), b = _mm256_loadu_pd(s + (r0 + 1) * src_ld + c0);
        const __m256d e = _mm256_loadu_pd(s + (r0 + 2) * src_ld + c0), f = _mm256_loadu_pd(s + (r0 + 3) * src_ld + c0);
        const __m256d ab_lo = _mm256_unpacklo_pd(a, b), ab_hi = _mm256_unpackhi_pd(a, b);  // a0 b0 a2 b2 | a1 b1 a3 b3
        const __m256d ef_lo = _mm256_unpacklo_pd(e, f), ef_hi = _mm256_unpackhi_pd(e, f);
        store(c0 + 0, _mm256_permute2f128_pd(ab_lo, ef_lo, 0x20));
        store(c0 + 1, _mm256_permute2f128_pd(ab_hi, ef_hi, 0x20));
        store(c0 + 2, _mm256_permute2f128_pd(ab_lo, ef_lo, 0x31));
        store(c0 + 3, _mm256_permute2f128_pd(ab_hi, ef_hi, 0x31));
      }
    }
  }
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const T sc = row_scale ? row_scale[r] : T(1);
    for (int64_t c = r < rows4 ? cols4 : 0; c < cols; ++c) {
      dst[2 * (c * dst_ld + r)] = src[2 * (r * src_ld + c)] * sc;
      dst[2 * (c * dst_ld + r) + 1] = src[2 * (r * src_ld + c) + 1] * sc;
    }
  }
}

/// Unnormalised real FFTs of blocks of up to kFramesPerBlock frames of n samples, and their
/// inverses (see the comment above), with per-thread scratch. One per parallel task.
template <typename T>
class FrameFft {
 public:
  FrameFft(int64_t n, const std::vector<T>& twiddles)
      : n_(n),
        twiddles_(twiddles),
        frames_(static_cast<size_t>(kFramesPerBlock * n) * sizeof(T), Device::cpu()),
        packed_(static_cast<size_t>(kFramesPerBlock * (n % 2 == 0 ? n : 0)) * sizeof(T), Device::cpu()),
        bins_(static_cast<size_t>(kFramesPerBlock * (n / 2 + 1)) * 2 * sizeof(T), Device::cpu()) {}

  /// count frames of n samples, contiguous.
  T* frames() { return static_cast<T*>(frames_.data()); }
  /// count half spectra of n/2 + 1 (re, im) bins, contiguous.
  T* bins() { return static_cast<T*>(bins_.data()); }

  /// bins = rfft(frames).
  void forward(int64_t count) {
    using F = Fftw<T>;
    const int64_t nbins = n_ / 2 + 1;
    if (n_ % 2 != 0) {
      F::run_r2c(plan(Direction::r2c, n_, count), frames(), complex(bins()));
      return;
    }
    const int64_t M = n_ / 2;
    T* z = static_cast<T*>(packed_.data());
    F::run_c2c(plan(Direction::c2c_forward, M, count), complex(frames()), complex(z));
    for (int64_t j = 0; j < count; ++j) {
      const T* zj = z + j * n_;
      T* xj = bins() + j * nbins * 2;
      combine_pairs(zj, xj, twiddles_.data(), M, T(0.5));
      xj[0] = zj[0] + zj[1];
      xj[1] = T(0);
      xj[2 * M] = zj[0] - zj[1];
      xj[2 * M + 1] = T(0);
    }
  }

  /// frames = irfft_unnormalised(bins); the imaginary parts of the DC and Nyquist bins are
  /// ignored. bins is destroyed.
  void inverse(int64_t count) {
    using F = Fftw<T>;
    const int64_t nbins = n_ / 2 + 1;
    if (n_ % 2 != 0) {
      for (int64_t j = 0; j < count; ++j) bins()[j * nbins * 2 + 1] = T(0);  // DC
      F::run_c2r(plan(Direction::c2r, n_, count), complex(bins()), frames());
      return;
    }
    const int64_t M = n_ / 2;
    T* z = static_cast<T*>(packed_.data());
    for (int64_t j = 0; j < count; ++j) {
      const T* xj = bins() + j * nbins * 2;
      T* zj = z + j * n_;
      combine_pairs(xj, zj, twiddles_.data(), M, T(1));
      zj[0] = xj[0] + xj[2 * M];
      zj[1] = xj[0] - xj[2 * M];
    }
    F::run_c2c(plan(Direction::c2c_backward, M, count), complex(z), complex(frames()));
  }

 private:
  using Complex = typename Fftw<T>::Complex;
  static Complex* complex(T* p) { return reinterpret_cast<Complex*>(p); }

  /// The plan for a block of count frames: a full block's is kept, a tail's looked up each time.
  typename Fftw<T>::Plan plan(Direction dir, int64_t n, int64_t count) {
    PlanHandle& h = count == kFramesPerBlock ? full_ : tail_;
    if (!h || count != kFramesPerBlock) h = plan_cache().get<T>(dir, n, count);
    return static_cast<typename Fftw<T>::Plan>(h.get());
  }

  int64_t n_;
  const std::vector<T>& twiddles_;
  Storage frames_, packed_, bins_;
  PlanHandle full_, tail_;
};

/// dst[r * dst_ld + c] = src[r * src_ld + c] * scale[r] for (re, im) pairs: a tile's rows into
/// an STFT tensor. (Streaming stores were tried here: they save 6% of a batch-8 STFT and cost
/// 8-19% of the round trip, whose iSTFT then reads the spectrum from memory, not the caches.)
template <typename T>
void copy_rows_scaled(const T* src, int64_t src_ld, T* dst, int64_t dst_ld, int64_t rows, int64_t cols,
                      const T* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict s = src + 2 * r * src_ld;
    T* __restrict d = dst + 2 * r * dst_ld;
    const T sc = scale[r];
    for (int64_t i = 0; i < 2 * cols; ++i) d[i] = s[i] * sc;
  }
}

/// Frames per STFT tile: the unit of parallel work and of the writes into the tensor. A tile row
/// (its frames of one bin) is kFramesPerTile * 8 bytes contiguous in the (F, T, 2) output, and
/// writing whole kilobytes per bin took 2.5x less time than 16 frames' 128 bytes per bin once the
/// output outgrew the caches (batch 8 of 10 s: 33 MB). Short inputs on several threads take
/// smaller tiles (multiples of kFramesPerBlock, so the blocks, and with them every result, stay
/// the same).
constexpr int64_t kFramesPerTile = 128;

int64_t tile_frames(int64_t B, int64_t frames) {
  int64_t tile = kFramesPerTile;
  const int64_t nt = tse::get_num_threads();
  while (tile > kFramesPerBlock && B * ((frames + tile - 1) / tile) < 2 * nt) tile /= 2;
  return tile;
}

/// A tile: nbins rows of up to `frames` (re, im) pairs, row stride `frames`.
template <typename T>
struct Tile {
  Tile(int64_t nbins, int64_t frames)
      : ld(frames), storage(static_cast<size_t>(nbins * frames) * 2 * sizeof(T), Device::cpu()) {}
  T* data() { return static_cast<T*>(storage.data()); }
  int64_t ld;
  Storage storage;
};

template <typename T>
void frames_rfft_impl(const Tensor& out, const Tensor& x, const Tensor& window, int64_t hop,
                      const double* bin_scale) {
  const int64_t B = out.size(0), nbins = out.size(1), T_ = out.size(2), n = window.numel();
  const int64_t Lx = x.size(1);
  const T* xp = x.data<T>();
  const T* w = window.data<T>();
  T* op = out.data<T>();
  std::vector<T> scale(static_cast<size_t>(nbins), T(1));
  if (bin_scale) std::copy(bin_scale, bin_scale + nbins, scale.begin());
  const std::vector<T> twiddles = pair_twiddles<T>(n, /*inverse=*/false);
  const int64_t tile = tile_frames(B, T_), tiles = (T_ + tile - 1) / tile;
  tse::detail::parallel_for(0, B * tiles, 1, [&](int64_t i0, int64_t i1) {
    FrameFft<T> fft(n, twiddles);
    Tile<T> staged(nbins, tile);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / tiles, tile0 = (i % tiles) * tile, tile_count = std::min(tile, T_ - tile0);
      for (int64_t t0 = tile0; t0 < tile0 + tile_count; t0 += kFramesPerBlock) {
        const int64_t count = std::min(kFramesPerBlock, tile0 + tile_count - t0);
        T* fr = fft.frames();
        for (int64_t j = 0; j < count; ++j) {
          const T* src = xp + b * Lx + (t0 + j) * hop;
          T* __restrict dst = fr + j * n;
          for (int64_t m = 0; m < n; ++m) dst[m] = src[m] * w[m];
        }
        fft.forward(count);
        transpose_pairs(fft.bins(), nbins, staged.data() + (t0 - tile0) * 2, staged.ld, count, nbins, static_cast<const T*>(nullptr));
      }
      copy_rows_scaled(staged.data(), staged.ld, op + (b * nbins * T_ + tile0) * 2, T_, nbins, tile_count,
                       scale.data());
    }
  });
}

template <typename T>
void overlap_add_irfft_impl(const Tensor& out, const Tensor& spec, const Tensor& window, int64_t hop,
                            const double* bin_scale, const Tensor& envelope, int64_t offset) {
  const int64_t B = spec.size(0), nbins = spec.size(1), T_ = spec.size(2), n = window.numel();
  const int64_t Lout = out.size(1);
  const T* sp = spec.data<T>();
  const T* w = window.data<T>();
  const T* env = envelope.defined() ? envelope.data<T>() : nullptr;
  T* op = out.data<T>();
  if (T_ == 0) {
    std::fill(op, op + out.numel(), T(0));
    return;
  }
  std::vector<T> scale(static_cast<size_t>(nbins), T(1));
  if (bin_scale) std::copy(bin_scale, bin_scale + nbins, scale.begin());
  const std::vector<T> twiddles = pair_twiddles<T>(n, /*inverse=*/true);

  // Tasks of `span` frames overlap only their neighbours when a task spans at least n - hop
  // samples (span * hop >= n - hop), so all even tasks, then all odd tasks, can add in parallel
  // without races. Each task owns a zone of samples that is final once it has added its frames:
  // an even task, the part of its frames' coverage that no odd neighbour reaches; an odd task,
  // its whole coverage. The zones tile the signal, so every sample is zeroed just before its
  // first frame lands and multiplied by the envelope once, while it is in cache. Positions are
  // in the untrimmed signal (s); out holds s in [offset, offset + Lout), zero past the frames.
  // (Unlike the STFT's writes, reading the spectrum 16 frames per bin at a time runs at memory
  // speed: no tiles here.)
  const int64_t group = std::max<int64_t>(1, (n - hop + kFramesPerBlock * hop - 1) / (kFramesPerBlock * hop));
  const int64_t span = group * kFramesPerBlock;
  const int64_t tasks = (T_ + span - 1) / span;
  const int64_t end = offset + Lout;                      // one past the last output sample
  const int64_t full = n + hop * (T_ - 1);                // one past the last frame's sample
  const auto frames_end = [&](int64_t q) { return std::min(T_, (q + 1) * span); };
  const auto coverage_end = [&](int64_t q) { return (frames_end(q) - 1) * hop + n; };
  const auto zone = [&](int64_t q) -> std::pair<int64_t, int64_t> {
    const bool last = q + 1 == tasks;
    if (q % 2 == 1) return {q * span * hop, last ? std::max(end, full) : coverage_end(q)};
    return {q == 0 ? 0 : coverage_end(q - 1), last ? std::max(end, full) : (q + 1) * span * hop};
  };
  // Zero the output positions in [lo, hi) of item b.
  const auto zero = [&](int64_t b, int64_t lo, int64_t hi) {
    lo = std::max(lo, offset);
    hi = std::min(hi, end);
    if (hi > lo) std::fill(op + b * Lout + (lo - offset), op + b * Lout + (hi - offset), T(0));
  };
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / (span * n));
  for (int parity = 0; parity < 2; ++parity) {
    const int64_t per_item = (tasks - parity + 1) / 2;
    if (per_item <= 0) continue;
    tse::detail::parallel_for(0, B * per_item, grain, [&](int64_t i0, int64_t i1) {
      FrameFft<T> fft(n, twiddles);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / per_item, q = (i % per_item) * 2 + parity;
        const auto [zone_lo, zone_hi] = zone(q);
        if (parity == 0) {
          zero(b, q * span * hop, std::max(coverage_end(q), zone_hi));
        } else {  // what the even neighbours did not cover
          zero(b, coverage_end(q - 1), q + 1 == tasks ? zone_hi : (q + 1) * span * hop);
        }
        for (int64_t t0 = q * span; t0 < frames_end(q); t0 += kFramesPerBlock) {
          const int64_t count = std::min(kFramesPerBlock, frames_end(q) - t0);
          // The block's half spectra, scaled, bins of a frame contiguous.
          transpose_pairs(sp + (b * nbins * T_ + t0) * 2, T_, fft.bins(), nbins, nbins, count, scale.data());
          fft.inverse(count);
          const T* fr = fft.frames();
          for (int64_t j = 0; j < count; ++j) {
            const int64_t s0 = (t0 + j) * hop;  // the frame's first sample
            const int64_t m0 = std::max<int64_t>(0, offset - s0), m1 = std::min(n, end - s0);
            if (m1 <= m0) continue;
            T* __restrict dst = op + b * Lout + (s0 + m0 - offset);
            const T* __restrict src = fr + j * n + m0;
            const T* __restrict wm = w + m0;
            for (int64_t m = 0; m < m1 - m0; ++m) dst[m] += src[m] * wm[m];
          }
        }
        if (env) {
          const int64_t lo = std::max(zone_lo, offset), hi = std::min({zone_hi, end, full});
          T* __restrict dst = op + b * Lout + (lo - offset);
          const T* __restrict e = env + lo;
          for (int64_t s = 0; s < hi - lo; ++s) dst[s] *= e[s];
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
                       const double* bin_scale, const Tensor& envelope, int64_t offset) {
  if (out.numel() == 0) return;
  dispatch_floating(out.dtype(), "istft", [&]<typename T>() {
    overlap_add_irfft_impl<T>(out, spec, window, hop, bin_scale, envelope, offset);
  });
}

}  // namespace tse::cpu::fft
