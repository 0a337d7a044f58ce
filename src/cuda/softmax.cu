// CUDA softmax and log_softmax, forward and backward (src/cpu/softmax.hpp's contract: contiguous
// (outer, axis, inner)). One block per (outer, inner) row: its threads stride along the axis,
// fixed shared-memory trees give the row's max and sums (so results repeat bit for bit), and
// accumulation is in double for f32 as on the CPU's reference loops.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "src/cpu/softmax.hpp"
#include "src/cuda/cuda_check.hpp"
#include "src/cuda/loops.cuh"

namespace tse::cuda {
namespace {

constexpr int kRowThreads = 256;

template <typename T>
__global__ void softmax_kernel(T* out, const T* x, SoftmaxShape s) {
  using A = std::conditional_t<std::is_same_v<T, float>, double, T>;
  __shared__ A scratch[kRowThreads];
  const int64_t rows = s.outer * s.inner;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t o = row / s.inner, i = row % s.inner;
    const T* xr = x + o * s.axis * s.inner + i;
    T* yr = out + o * s.axis * s.inner + i;
    A m = -INFINITY;
    for (int64_t a = threadIdx.x; a < s.axis; a += blockDim.x) {
      const A v = static_cast<A>(xr[a * s.inner]);
      m = (v != v || m != m) ? (m != m ? m : v) : (v > m ? v : m);
    }
    m = block_max(m, scratch);
    A sum = 0;
    for (int64_t a = threadIdx.x; a < s.axis; a += blockDim.x) sum += exp(static_cast<A>(xr[a * s.inner]) - m);
    sum = block_sum(sum, scratch);
    const A log_sum = log(sum);
    for (int64_t a = threadIdx.x; a < s.axis; a += blockDim.x) {
      const A z = static_cast<A>(xr[a * s.inner]) - m;
      yr[a * s.inner] = static_cast<T>(s.log ? z - log_sum : exp(z) / sum);
    }
  }
}

template <typename T>
__global__ void softmax_backward_kernel(T* gx, const T* g, const T* y, SoftmaxShape s) {
  using A = std::conditional_t<std::is_same_v<T, float>, double, T>;
  __shared__ A scratch[kRowThreads];
  const int64_t rows = s.outer * s.inner;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = (row / s.inner) * s.axis * s.inner + row % s.inner;
    // softmax: sum(g * y); log_softmax: sum(g).
    A dot = 0;
    for (int64_t a = threadIdx.x; a < s.axis; a += blockDim.x) {
      const int64_t k = base + a * s.inner;
      dot += s.log ? static_cast<A>(g[k]) : static_cast<A>(g[k]) * static_cast<A>(y[k]);
    }
    dot = block_sum(dot, scratch);
    for (int64_t a = threadIdx.x; a < s.axis; a += blockDim.x) {
      const int64_t k = base + a * s.inner;
      const A gk = static_cast<A>(g[k]), yk = static_cast<A>(y[k]);
      gx[k] = static_cast<T>(s.log ? gk - exp(yk) * dot : yk * (gk - dot));
    }
  }
}

int row_blocks(const SoftmaxShape& s) {
  return static_cast<int>(std::min<int64_t>(s.outer * s.inner, int64_t{1} << 20));
}

}  // namespace

void softmax(const Tensor& out, const Tensor& x, const SoftmaxShape& s) {
  if (out.numel() == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  dispatch_floating_cuda(x.dtype(), "softmax", [&]<typename T>() {
    softmax_kernel<T>
        <<<row_blocks(s), kRowThreads>>>(static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), s);
  });
  TSE_CUDA_CHECK(cudaGetLastError());
}

void softmax_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& y, const SoftmaxShape& s) {
  if (grad_x.numel() == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(grad_x.device().index));
  dispatch_floating_cuda(y.dtype(), "softmax_backward", [&]<typename T>() {
    softmax_backward_kernel<T><<<row_blocks(s), kRowThreads>>>(static_cast<T*>(grad_x.data_ptr()),
                                                               static_cast<const T*>(grad_out.data_ptr()),
                                                               static_cast<const T*>(y.data_ptr()), s);
  });
  TSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tse::cuda
