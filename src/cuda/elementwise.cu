// CUDA elementwise kernels. This first step covers what the core needs to prove the GPU path:
// contiguous fill, copies (same dtype, and the f32 <-> bf16 / f64 casts autocast and .to() use),
// and broadcasting-free float32/float64 add/sub/mul/div.
// Every other case throws NotImplementedError naming the op; the CUDA backend issue fills them in.
#include <cuda_runtime.h>

#include <cstdint>

#include "src/core/bf16_bits.hpp"
#include "src/cpu/elementwise.hpp"
#include "src/cuda/cuda_check.hpp"

namespace tse::cuda {
namespace {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 32)); }

template <typename T, typename F>
__global__ void binary_kernel(T* out, const T* a, const T* b, int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = f(a[i], b[i]);
}

template <typename T>
__global__ void fill_kernel(T* out, T v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = v;
}

template <typename To, typename From, typename F>
__global__ void convert_kernel(To* out, const From* in, int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = f(in[i]);
}

// The same bits as the CPU's conversions (src/core/bf16_bits.hpp). (Autocast's CPU casts also
// flush denormals, which its GEMMs read as zero; cuBLAS reads bf16 denormals as they are.)
struct ToBf16 { __device__ uint16_t operator()(float x) const { return detail::bf16_bits_rne(x); } };
struct FromBf16 { __device__ float operator()(uint16_t b) const { return detail::bf16_bits_to_float(b); } };
struct Widen { __device__ double operator()(float x) const { return x; } };
struct Narrow { __device__ float operator()(double x) const { return static_cast<float>(x); } };

template <typename T> struct Add { T alpha; __device__ T operator()(T x, T y) const { return x + alpha * y; } };
template <typename T> struct Sub { T alpha; __device__ T operator()(T x, T y) const { return x - alpha * y; } };
template <typename T> struct Mul { __device__ T operator()(T x, T y) const { return x * y; } };
template <typename T> struct Div { __device__ T operator()(T x, T y) const { return x / y; } };

bool plain(const Tensor& out, const Tensor& a, const Tensor& b) {
  return out.is_contiguous() && a.is_contiguous() && b.is_contiguous() && a.sizes() == out.sizes() &&
         b.sizes() == out.sizes();
}

template <typename T>
void launch_binary(Binary op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  T* o = static_cast<T*>(out.data_ptr());
  const T* x = static_cast<const T*>(a.data_ptr());
  const T* y = static_cast<const T*>(b.data_ptr());
  const int64_t n = out.numel();
  if (n == 0) return;
  const int g = blocks_for(n);
  switch (op) {
    case Binary::add: binary_kernel<<<g, kThreads>>>(o, x, y, n, Add<T>{static_cast<T>(alpha)}); break;
    case Binary::sub: binary_kernel<<<g, kThreads>>>(o, x, y, n, Sub<T>{static_cast<T>(alpha)}); break;
    case Binary::mul: binary_kernel<<<g, kThreads>>>(o, x, y, n, Mul<T>{}); break;
    case Binary::div: binary_kernel<<<g, kThreads>>>(o, x, y, n, Div<T>{}); break;
    default: throw NotImplementedError("cuda binary: this op has no CUDA kernel yet");
  }
  TSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void binary(Binary op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  if (!plain(out, a, b))
    throw NotImplementedError("cuda binary: broadcasting or strided operands are not supported on CUDA yet");
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  if (out.dtype() == DType::f32) return launch_binary<float>(op, out, a, b, alpha);
  if (out.dtype() == DType::f64) return launch_binary<double>(op, out, a, b, alpha);
  throw NotImplementedError(detail::str_cat("cuda binary: dtype ", out.dtype(), " not supported on CUDA yet"));
}

void unary(Unary, const Tensor&, const Tensor&, UnaryParams) {
  throw NotImplementedError("cuda unary ops: no CUDA kernels yet");
}

void copy(const Tensor& out, const Tensor& src) {
  if (!(out.is_contiguous() && src.is_contiguous() && out.sizes() == src.sizes()))
    throw NotImplementedError("cuda copy: only contiguous copies are supported on CUDA yet");
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const int64_t n = out.numel();
  if (n == 0) return;
  if (out.dtype() == src.dtype()) {
    TSE_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), src.data_ptr(), static_cast<size_t>(n) * out.itemsize(),
                                   cudaMemcpyDeviceToDevice));
    return;
  }
  const DType from = src.dtype(), to = out.dtype();
  const int g = blocks_for(n);
  if (from == DType::f32 && to == DType::bf16) {
    convert_kernel<<<g, kThreads>>>(static_cast<uint16_t*>(out.data_ptr()), static_cast<const float*>(src.data_ptr()),
                                    n, ToBf16{});
  } else if (from == DType::bf16 && to == DType::f32) {
    convert_kernel<<<g, kThreads>>>(static_cast<float*>(out.data_ptr()), static_cast<const uint16_t*>(src.data_ptr()),
                                    n, FromBf16{});
  } else if (from == DType::f32 && to == DType::f64) {
    convert_kernel<<<g, kThreads>>>(static_cast<double*>(out.data_ptr()), static_cast<const float*>(src.data_ptr()),
                                    n, Widen{});
  } else if (from == DType::f64 && to == DType::f32) {
    convert_kernel<<<g, kThreads>>>(static_cast<float*>(out.data_ptr()), static_cast<const double*>(src.data_ptr()),
                                    n, Narrow{});
  } else {
    throw NotImplementedError(detail::str_cat("cuda copy: ", from, " -> ", to, " is not supported on CUDA yet"));
  }
  TSE_CUDA_CHECK(cudaGetLastError());
}

void fill(const Tensor& out, double value) {
  if (!out.is_contiguous()) throw NotImplementedError("cuda fill: strided output not supported on CUDA yet");
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const int64_t n = out.numel();
  if (n == 0) return;
  switch (out.dtype()) {
    case DType::f32: fill_kernel<<<blocks_for(n), kThreads>>>(static_cast<float*>(out.data_ptr()), float(value), n); break;
    case DType::f64: fill_kernel<<<blocks_for(n), kThreads>>>(static_cast<double*>(out.data_ptr()), value, n); break;
    case DType::i64: fill_kernel<<<blocks_for(n), kThreads>>>(static_cast<int64_t*>(out.data_ptr()), int64_t(value), n); break;
    case DType::i32: fill_kernel<<<blocks_for(n), kThreads>>>(static_cast<int32_t*>(out.data_ptr()), int32_t(value), n); break;
    case DType::b8: fill_kernel<<<blocks_for(n), kThreads>>>(static_cast<bool*>(out.data_ptr()), value != 0.0, n); break;
    default: throw NotImplementedError(detail::str_cat("cuda fill: dtype ", out.dtype(), " not supported yet"));
  }
  TSE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tse::cuda
