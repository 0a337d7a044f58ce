#pragma once
// The strided elementwise engine of the CUDA kernels: an OffsetCalc maps a linear index over
// out's shape to the element offset of every operand (inputs broadcast to out's shape: missing
// leading dims and size-1 dims get stride 0), after merging dims that are contiguous in every
// operand; a grid-stride loop applies the op. Dense operands of out's shape skip the index math.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "src/cuda/cuda_check.hpp"
#include "tse/core/tensor.hpp"

namespace tse::cuda {

constexpr int kMaxDims = 12;
constexpr int kThreads = 256;

inline int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{65535} * 32));
}

template <int N>
struct OffsetCalc {
  int ndim = 0;
  bool dense = true;  // every operand contiguous with out's shape: offset = linear index
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ void get(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = dense ? linear : 0;
    if (dense) return;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

/// The offsets of out (operand 0) and ins over out's shape; op names the op in errors.
template <int N>
OffsetCalc<N> make_offsets(const Tensor& out, const std::array<const Tensor*, N - 1>& ins, const char* op) {
  const int64_t nd = out.dim();
  OffsetCalc<N> c;
  // Per-dim sizes and strides, innermost last, broadcast dims at stride 0.
  int64_t sizes[64], strides[N][64];
  TSE_CHECK(nd <= 64, op, ": tensors of rank ", nd, " are not supported on CUDA");
  for (int64_t d = 0; d < nd; ++d) {
    sizes[d] = out.size(d);
    strides[0][d] = out.stride(d);
    for (int k = 1; k < N; ++k) {
      const Tensor& t = *ins[static_cast<size_t>(k - 1)];
      const int64_t td = d - (nd - t.dim());
      strides[k][d] = td < 0 || t.size(td) == 1 ? 0 : t.stride(td);
    }
  }
  // Merge dim d into d + 1 where every operand steps through both as through one.
  int m = 0;
  int64_t ms[64], mst[N][64];
  for (int64_t d = 0; d < nd; ++d) {
    if (sizes[d] == 1) continue;
    if (m > 0) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && mst[k][m - 1] == strides[k][d] * sizes[d];
      if (merge) {
        ms[m - 1] *= sizes[d];
        for (int k = 0; k < N; ++k) mst[k][m - 1] = strides[k][d];
        continue;
      }
    }
    ms[m] = sizes[d];
    for (int k = 0; k < N; ++k) mst[k][m] = strides[k][d];
    ++m;
  }
  TSE_CHECK(m <= kMaxDims, op, ": ", m, " non-mergeable dims exceed the CUDA engine's ", kMaxDims);
  c.ndim = m;
  for (int d = 0; d < m; ++d) {
    c.sizes[d] = ms[d];
    for (int k = 0; k < N; ++k) c.strides[k][d] = mst[k][d];
  }
  c.dense = m <= 1;
  for (int k = 0; k < N && c.dense; ++k) c.dense = m == 0 || mst[k][0] == 1;
  return c;
}

/// The block's max (NaN wins) / sum of v, the same on every thread; scratch holds blockDim.x
/// values (a power of two). A fixed tree: the result does not depend on timing.
template <typename A>
__device__ inline A block_max(A v, A* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) {
      const A a = scratch[threadIdx.x], b = scratch[threadIdx.x + s];
      scratch[threadIdx.x] = (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b);  // NaN wins
    }
    __syncthreads();
  }
  const A r = scratch[0];
  __syncthreads();
  return r;
}

template <typename A>
__device__ inline A block_sum(A v, A* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
    __syncthreads();
  }
  const A r = scratch[0];
  __syncthreads();
  return r;
}

/// Calls f.template operator()<T>() for dtype's C++ type among the CUDA element types
/// (bf16 as its uint16_t bits); f16 and others: NotImplementedError naming op.
template <typename F>
void dispatch_cuda(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::f32:
      f.template operator()<float>();
      return;
    case DType::f64:
      f.template operator()<double>();
      return;
    case DType::i32:
      f.template operator()<int32_t>();
      return;
    case DType::i64:
      f.template operator()<int64_t>();
      return;
    case DType::b8:
      f.template operator()<bool>();
      return;
    default:
      throw NotImplementedError(detail::str_cat(op, ": dtype ", dtype, " is not supported on CUDA yet"));
  }
}

/// The same for the floating dtypes (f32, f64) of kernels that compute in them.
template <typename F>
void dispatch_floating_cuda(DType dtype, const char* op, F&& f) {
  if (dtype == DType::f32) return f.template operator()<float>();
  if (dtype == DType::f64) return f.template operator()<double>();
  throw NotImplementedError(detail::str_cat(op, ": dtype ", dtype, " is not supported on CUDA"));
}

}  // namespace tse::cuda
