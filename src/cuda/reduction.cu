// CUDA reductions (src/cpu/reduction.hpp's contract): sum, p-norms, max / min, arg max / min and
// logsumexp over any set of dims of a strided tensor, with the CPU's semantics and accumulators
// (f32 sums in double, NaN propagating through max / min, first index on ties, the one-pass
// running-max logsumexp). One block folds one output: its threads stride over the reduced
// elements, then a fixed shared-memory tree merges them, so results repeat bit for bit.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "src/cpu/reduction.hpp"
#include "src/cuda/cuda_check.hpp"
#include "src/cuda/loops.cuh"

namespace tse::cuda {
namespace {

constexpr int kReduceThreads = 256;

/// x's offsets split into the kept dims (one output each, in out's linear order) and the reduced
/// dims (folded), each innermost last.
struct ReduceIndex {
  int nk = 0, nr = 0;
  int64_t ksizes[kMaxDims], kstrides[kMaxDims];
  int64_t rsizes[kMaxDims], rstrides[kMaxDims];
  int64_t outputs = 1, reduced = 1;

  __device__ static int64_t offset(int64_t i, int n, const int64_t* sizes, const int64_t* strides) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; --d) {
      off += (i % sizes[d]) * strides[d];
      i /= sizes[d];
    }
    return off;
  }
  __device__ int64_t base(int64_t k) const { return offset(k, nk, ksizes, kstrides); }
  __device__ int64_t at(int64_t r) const { return offset(r, nr, rsizes, rstrides); }
};

ReduceIndex make_index(const Tensor& x, const std::vector<bool>& reduce, const char* op) {
  ReduceIndex ix;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const bool red = reduce[static_cast<size_t>(d)];
    int& n = red ? ix.nr : ix.nk;
    TSE_CHECK(n < kMaxDims, op, ": more than ", kMaxDims, " kept or reduced dims on CUDA");
    (red ? ix.rsizes : ix.ksizes)[n] = x.size(d);
    (red ? ix.rstrides : ix.kstrides)[n] = x.stride(d);
    ++n;
    (red ? ix.reduced : ix.outputs) *= x.size(d);
  }
  return ix;
}

template <typename T>
__device__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  return false;
}

// ---- the folds: init, step (one element at reduced index r), merge (earlier, later), finish ----

template <typename T, typename Acc>
struct SumFold {
  using A = Acc;
  __device__ A init() const { return A(0); }
  __device__ A step(A a, T v, int64_t) const { return a + static_cast<A>(v); }
  __device__ A merge(A a, A b) const { return a + b; }
};

template <typename T>
struct NormFold {
  using A = std::conditional_t<std::is_same_v<T, float>, double, T>;
  A p;
  __device__ A init() const { return A(0); }
  __device__ A step(A a, T v, int64_t) const {
    const A m = fabs(static_cast<A>(v));
    return a + (p == A(1) ? m : (p == A(2) ? m * m : pow(m, p)));
  }
  __device__ A merge(A a, A b) const { return a + b; }
};

template <typename T, bool kMax>
__device__ bool beats(T v, T cur) {  // strictly larger (smaller), or the first NaN
  if (is_nan(v)) return !is_nan(cur);
  return kMax ? v > cur : v < cur;
}

template <typename T, bool kMax>
__device__ T extreme_identity() {
  if constexpr (std::numeric_limits<T>::has_infinity) {
    return kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  } else {
    return kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
}

template <typename T, bool kMax>
struct ExtremeFold {
  using A = T;
  __device__ A init() const { return extreme_identity<T, kMax>(); }
  __device__ A step(A a, T v, int64_t) const { return beats<T, kMax>(v, a) ? v : a; }
  __device__ A merge(A a, A b) const { return beats<T, kMax>(b, a) ? b : a; }
};

template <typename T>
struct ValueIndex {
  T value;
  int64_t index;  // -1: nothing folded yet
};

template <typename T, bool kMax>
struct ArgFold {
  using A = ValueIndex<T>;
  __device__ A init() const { return {extreme_identity<T, kMax>(), -1}; }
  __device__ A step(A a, T v, int64_t r) const { return (a.index < 0 || beats<T, kMax>(v, a.value)) ? A{v, r} : a; }
  // a holds earlier indices than b, so a keeps ties.
  __device__ A merge(A a, A b) const {
    if (b.index < 0) return a;
    if (a.index < 0) return b;
    if (beats<T, kMax>(b.value, a.value)) return b;
    if (!beats<T, kMax>(a.value, b.value) && b.index < a.index) return b;  // equal: the first index
    return a;
  }
};

struct LseAcc {
  double max;
  double sum;
};

template <typename T>
struct LseFold {
  using A = LseAcc;
  __device__ A init() const { return {-INFINITY, 0.0}; }
  __device__ A step(A a, T x, int64_t) const {
    const double v = static_cast<double>(x);
    if (v > a.max) return {v, a.sum * exp(a.max - v) + 1.0};
    if (v == a.max) return {a.max, a.sum + 1.0};
    return {a.max, a.sum + exp(v - a.max)};
  }
  __device__ A merge(A a, A b) const {
    if (b.sum == 0.0) return a;
    if (a.sum == 0.0) return b;
    if (a.max < b.max) {
      const A t = a;
      a = b;
      b = t;
    }
    if (a.max == b.max) return {a.max, a.sum + b.sum};
    return {a.max, a.sum + b.sum * exp(b.max - a.max)};
  }
};

/// One block per output (grid-stride over outputs); finish(k, acc) writes output k.
template <typename T, typename Fold, typename Finish>
__global__ void reduce_kernel(ReduceIndex ix, const T* x, Fold fold, Finish finish) {
  using A = typename Fold::A;
  __shared__ A part[kReduceThreads];
  for (int64_t k = blockIdx.x; k < ix.outputs; k += gridDim.x) {
    const T* row = x + ix.base(k);
    // Thread t folds r = t, t + 256, ... in order: the merge below keeps index order per level.
    A a = fold.init();
    for (int64_t r = threadIdx.x; r < ix.reduced; r += blockDim.x) a = fold.step(a, row[ix.at(r)], r);
    part[threadIdx.x] = a;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) part[threadIdx.x] = fold.merge(part[threadIdx.x], part[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) finish(k, part[0]);
    __syncthreads();
  }
}

template <typename Out, typename A>
struct Store {
  Out* out;
  __device__ void operator()(int64_t k, A a) const { out[k] = static_cast<Out>(a); }
};

template <typename T>
struct StoreNorm {
  T* out;
  double p;
  __device__ void operator()(int64_t k, typename NormFold<T>::A a) const {
    using A = typename NormFold<T>::A;
    out[k] = static_cast<T>(p == 1.0 ? a : (p == 2.0 ? sqrt(a) : pow(a, A(1) / static_cast<A>(p))));
  }
};

template <typename T>
struct StoreLse {
  T* out;
  __device__ void operator()(int64_t k, LseAcc a) const { out[k] = static_cast<T>(a.max + log(a.sum)); }
};

template <typename T>
struct StoreArg {
  T* values;
  int64_t* indices;
  __device__ void operator()(int64_t k, ValueIndex<T> a) const {
    values[k] = a.value;
    indices[k] = a.index;
  }
};

template <typename T, typename Fold, typename Finish>
void launch(const ReduceIndex& ix, const Tensor& x, Fold fold, Finish finish) {
  if (ix.outputs == 0) return;
  const int blocks = static_cast<int>(std::min<int64_t>(ix.outputs, int64_t{1} << 20));
  reduce_kernel<T><<<blocks, kReduceThreads>>>(ix, static_cast<const T*>(x.data_ptr()), fold, finish);
  TSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void sum(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const ReduceIndex ix = make_index(x, reduce, "sum");
  if (x.dtype() == DType::b8 || x.dtype() == DType::i32 || x.dtype() == DType::i64) {
    dispatch_cuda(x.dtype(), "sum", [&]<typename T>() {
      launch<T>(ix, x, SumFold<T, int64_t>{}, Store<int64_t, int64_t>{static_cast<int64_t*>(out.data_ptr())});
    });
    return;
  }
  dispatch_floating_cuda(x.dtype(), "sum", [&]<typename T>() {
    using A = std::conditional_t<std::is_same_v<T, float>, double, T>;
    launch<T>(ix, x, SumFold<T, A>{}, Store<T, A>{static_cast<T*>(out.data_ptr())});
  });
}

void norm(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce, double p) {
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const ReduceIndex ix = make_index(x, reduce, "norm");
  dispatch_floating_cuda(x.dtype(), "norm", [&]<typename T>() {
    using A = typename NormFold<T>::A;
    launch<T>(ix, x, NormFold<T>{static_cast<A>(p)}, StoreNorm<T>{static_cast<T*>(out.data_ptr()), p});
  });
}

void extreme(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce, bool is_max) {
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const ReduceIndex ix = make_index(x, reduce, is_max ? "amax" : "amin");
  dispatch_cuda(x.dtype(), is_max ? "amax" : "amin", [&]<typename T>() {
    T* o = static_cast<T*>(out.data_ptr());
    if (is_max) {
      launch<T>(ix, x, ExtremeFold<T, true>{}, Store<T, T>{o});
    } else {
      launch<T>(ix, x, ExtremeFold<T, false>{}, Store<T, T>{o});
    }
  });
}

void arg_extreme(const Tensor& values, const Tensor& indices, const Tensor& x, const std::vector<bool>& reduce,
                 bool is_max) {
  TSE_CUDA_CHECK(cudaSetDevice(values.device().index));
  const ReduceIndex ix = make_index(x, reduce, is_max ? "max" : "min");
  TSE_ASSERT(ix.nr <= 1, "arg_extreme: more than one reduced dim");
  dispatch_cuda(x.dtype(), is_max ? "max" : "min", [&]<typename T>() {
    const StoreArg<T> store{static_cast<T*>(values.data_ptr()), static_cast<int64_t*>(indices.data_ptr())};
    if (is_max) {
      launch<T>(ix, x, ArgFold<T, true>{}, store);
    } else {
      launch<T>(ix, x, ArgFold<T, false>{}, store);
    }
  });
}

void logsumexp(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const ReduceIndex ix = make_index(x, reduce, "logsumexp");
  dispatch_floating_cuda(x.dtype(), "logsumexp", [&]<typename T>() {
    launch<T>(ix, x, LseFold<T>{}, StoreLse<T>{static_cast<T*>(out.data_ptr())});
  });
}

}  // namespace tse::cuda
