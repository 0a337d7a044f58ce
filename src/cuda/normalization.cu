// CUDA layer_norm, forward and backward (src/cpu/normalization.hpp's contract: x (R, D)
// contiguous, weight / bias (D) or undefined, mean / var (R) saved as the population mean and
// variance). One block per row with fixed reduction trees (results repeat bit for bit); f32 rows
// accumulate in double like the CPU's loops. dweight and dbias are column sums, one thread per
// column walking the rows (coalesced across the block).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "src/cpu/normalization.hpp"
#include "src/cuda/cuda_check.hpp"
#include "src/cuda/loops.cuh"

namespace tse::cuda {
namespace {

constexpr int kRowThreads = 256;

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <typename T>
__global__ void layer_norm_forward_kernel(T* y, T* mean_out, T* var_out, const T* x, const T* w, const T* b,
                                          int64_t rows, int64_t D, double eps) {
  using A = Acc<T>;
  __shared__ A scratch[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * D;
    A s = 0;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) s += static_cast<A>(xr[c]);
    const A mean = block_sum(s, scratch) / static_cast<A>(D);
    A q = 0;  // two passes: the variance of the centred values does not cancel
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
      const A d = static_cast<A>(xr[c]) - mean;
      q += d * d;
    }
    const A var = block_sum(q, scratch) / static_cast<A>(D);
    const T m = static_cast<T>(mean), rstd = static_cast<T>(A(1) / sqrt(var + static_cast<A>(eps)));
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
      y[r * D + c] = (xr[c] - m) * (rstd * (w ? w[c] : T(1))) + (b ? b[c] : T(0));
    if (threadIdx.x == 0 && mean_out) {
      mean_out[r] = m;
      var_out[r] = static_cast<T>(var);
    }
  }
}

/// dx = rstd (dy w - mean(dy w) - xhat mean(dy w xhat)) per row.
template <typename T>
__global__ void layer_norm_dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* var, const T* w,
                                     int64_t rows, int64_t D, double eps) {
  using A = Acc<T>;
  __shared__ A scratch[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const A m = static_cast<A>(mean[r]), rstd = A(1) / sqrt(static_cast<A>(var[r]) + static_cast<A>(eps));
    A s1 = 0, s2 = 0;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
      const A g = static_cast<A>(dy[r * D + c]) * (w ? static_cast<A>(w[c]) : A(1));
      s1 += g;
      s2 += g * (static_cast<A>(x[r * D + c]) - m) * rstd;
    }
    s1 = block_sum(s1, scratch) / static_cast<A>(D);
    s2 = block_sum(s2, scratch) / static_cast<A>(D);
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
      const A g = static_cast<A>(dy[r * D + c]) * (w ? static_cast<A>(w[c]) : A(1));
      const A xhat = (static_cast<A>(x[r * D + c]) - m) * rstd;
      dx[r * D + c] = static_cast<T>(rstd * (g - s1 - xhat * s2));
    }
  }
}

/// dweight[c] = sum_r dy xhat, dbias[c] = sum_r dy (either may be null).
template <typename T>
__global__ void layer_norm_param_grads_kernel(T* dw, T* db, const T* dy, const T* x, const T* mean, const T* var,
                                              int64_t rows, int64_t D, double eps) {
  using A = Acc<T>;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < D; c += int64_t(blockDim.x) * gridDim.x) {
    A sw = 0, sb = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const A g = static_cast<A>(dy[r * D + c]);
      const A rstd = A(1) / sqrt(static_cast<A>(var[r]) + static_cast<A>(eps));
      sw += g * (static_cast<A>(x[r * D + c]) - static_cast<A>(mean[r])) * rstd;
      sb += g;
    }
    if (dw) dw[c] = static_cast<T>(sw);
    if (db) db[c] = static_cast<T>(sb);
  }
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

int row_blocks(int64_t rows) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(rows, int64_t{1} << 20)));
}

}  // namespace

void layer_norm_forward(const NormForward& a) {
  const int64_t rows = a.x.size(0), D = a.x.size(1);
  if (a.x.numel() == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(a.x.device().index));
  dispatch_floating_cuda(a.x.dtype(), "layer_norm", [&]<typename T>() {
    layer_norm_forward_kernel<T><<<row_blocks(rows), kRowThreads>>>(
        ptr_or_null<T>(a.y), ptr_or_null<T>(a.mean), ptr_or_null<T>(a.var), ptr_or_null<T>(a.x),
        ptr_or_null<T>(a.weight), ptr_or_null<T>(a.bias), rows, D, a.eps);
  });
  TSE_CUDA_CHECK(cudaGetLastError());
}

void layer_norm_backward(const NormBackward& a) {
  const int64_t rows = a.x.size(0), D = a.x.size(1);
  if (a.x.numel() == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(a.x.device().index));
  dispatch_floating_cuda(a.x.dtype(), "layer_norm", [&]<typename T>() {
    layer_norm_dx_kernel<T><<<row_blocks(rows), kRowThreads>>>(
        ptr_or_null<T>(a.dx), ptr_or_null<T>(a.dy), ptr_or_null<T>(a.x), ptr_or_null<T>(a.mean), ptr_or_null<T>(a.var),
        ptr_or_null<T>(a.weight), rows, D, a.eps);
    if (a.dweight.defined() || a.dbias.defined())
      layer_norm_param_grads_kernel<T><<<blocks_for(D), kThreads>>>(
          ptr_or_null<T>(a.dweight), ptr_or_null<T>(a.dbias), ptr_or_null<T>(a.dy), ptr_or_null<T>(a.x),
          ptr_or_null<T>(a.mean), ptr_or_null<T>(a.var), rows, D, a.eps);
  });
  TSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tse::cuda
