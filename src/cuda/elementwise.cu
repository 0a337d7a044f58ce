// CUDA elementwise kernels (src/cpu/elementwise.hpp's contract), on the strided engine of
// src/cuda/loops.cuh: any strides and broadcasting, every op the CPU has, with the CPU's
// semantics (NaN through relu / clamp / maximum, softplus's threshold, the backward formulas).
// The op is a kernel argument: one branch per element, the same for every thread.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "src/core/bf16_bits.hpp"
#include "src/cpu/elementwise.hpp"
#include "src/cuda/cuda_check.hpp"
#include "src/cuda/loops.cuh"

namespace tse::cuda {
namespace {

/// bf16 elements as their bits (conversions through src/core/bf16_bits.hpp).
struct Bf16 {
  uint16_t bits;
};

template <typename To, typename From>
__device__ To convert(From v) {
  if constexpr (std::is_same_v<From, Bf16>) {
    return convert<To>(detail::bf16_bits_to_float(v.bits));
  } else if constexpr (std::is_same_v<To, Bf16>) {
    return Bf16{detail::bf16_bits_rne(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else {
    return static_cast<To>(v);
  }
}

template <typename T>
__device__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  return false;
}

// ---- unary ------------------------------------------------------------------------------------

template <typename T>
__device__ T unary_op(Unary op, T x, T a, T b) {
  switch (op) {
    case Unary::neg:
      return -x;
    case Unary::exp:
      return exp(x);
    case Unary::log:
      return log(x);
    case Unary::log10:
      return log10(x);
    case Unary::sqrt:
      return sqrt(x);
    case Unary::rsqrt:
      return T(1) / sqrt(x);
    case Unary::abs:
      return fabs(x);
    case Unary::sin:
      return sin(x);
    case Unary::cos:
      return cos(x);
    case Unary::relu:
      return x > T(0) ? x : (x == x ? T(0) : x);
    case Unary::leaky_relu:
      return x > T(0) ? x : x * a;
    case Unary::gelu:
      return T(0.5) * x * erfc(-x * T(M_SQRT1_2));
    case Unary::gelu_tanh: {
      const T k = T(0.7978845608028654);  // sqrt(2 / pi)
      return T(0.5) * x * (T(1) + tanh(k * (x + T(0.044715) * x * x * x)));
    }
    case Unary::silu:
      return x / (T(1) + exp(-x));
    case Unary::sigmoid:
      return T(1) / (T(1) + exp(-x));
    case Unary::tanh:
      return tanh(x);
    case Unary::softplus:
      return x * a > b ? x : log1p(exp(fmin(x * a, b))) / a;  // a = beta, b = threshold
    case Unary::pow_scalar:
      if (a == T(2)) return x * x;
      if (a == T(1)) return x;
      if (a == T(0.5)) return sqrt(x);
      if (a == T(-1)) return T(1) / x;
      if (a == T(3)) return x * x * x;
      return pow(x, a);
    case Unary::clamp:
      return x != x ? x : fmin(fmax(x, a), b);
    default:
      return x;  // logical ops take their own kernel
  }
}

/// grad_in = g * op'(s); s is x, or the output for exp, sigmoid and tanh.
template <typename T>
__device__ T unary_backward_op(Unary op, T g, T s, T a, T b) {
  switch (op) {
    case Unary::neg:
      return -g;
    case Unary::exp:
      return g * s;
    case Unary::log:
      return g / s;
    case Unary::log10:
      return g * T(0.43429448190325176) / s;  // 1 / ln 10
    case Unary::sqrt:
      return g / (T(2) * sqrt(s));
    case Unary::rsqrt:
      return g * T(-0.5) / (s * sqrt(s));
    case Unary::abs:
      return s > T(0) ? g : (s < T(0) ? -g : T(0));
    case Unary::sin:
      return g * cos(s);
    case Unary::cos:
      return -g * sin(s);
    case Unary::relu:
      return s > T(0) ? g : T(0);
    case Unary::leaky_relu:
      return s > T(0) ? g : g * a;
    case Unary::gelu: {
      const T cdf = T(0.5) * erfc(-s * T(M_SQRT1_2)), pdf = exp(T(-0.5) * s * s) * T(0.3989422804014327);
      return g * (cdf + s * pdf);
    }
    case Unary::gelu_tanh: {
      const T k = T(0.7978845608028654);
      const T th = tanh(k * (s + T(0.044715) * s * s * s));
      const T dinner = k * (T(1) + T(3) * T(0.044715) * s * s);
      return g * (T(0.5) * (T(1) + th) + T(0.5) * s * (T(1) - th * th) * dinner);
    }
    case Unary::sigmoid:
      return g * s * (T(1) - s);
    case Unary::silu: {
      const T sg = T(1) / (T(1) + exp(-s));
      return g * sg * (T(1) + s * (T(1) - sg));
    }
    case Unary::tanh:
      return g * (T(1) - s * s);
    case Unary::softplus:
      return s * a > b ? g : g / (T(1) + exp(-fmin(s * a, b)));
    case Unary::pow_scalar:
      if (a == T(2)) return g * T(2) * s;
      if (a == T(0)) return T(0);
      return g * a * pow(s, a - T(1));
    case Unary::clamp:
      return (s >= a && s <= b) ? g : T(0);
    default:
      return T(0);
  }
}

template <typename T>
__global__ void unary_kernel(OffsetCalc<2> oc, T* out, const T* x, int64_t n, Unary op, T a, T b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[2];
    oc.get(i, off);
    out[off[0]] = unary_op(op, x[off[1]], a, b);
  }
}

template <typename T>
__global__ void logical_kernel(OffsetCalc<2> oc, bool* out, const T* x, int64_t n, Unary op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[2];
    oc.get(i, off);
    const T v = x[off[1]];
    bool r;
    if (op == Unary::logical_not) {
      r = !(v != T(0));
    } else if constexpr (std::is_floating_point_v<T>) {
      r = op == Unary::isnan ? v != v : isfinite(v);
    } else {
      r = op != Unary::isnan;
    }
    out[off[0]] = r;
  }
}

template <typename T>
__global__ void integral_unary_kernel(OffsetCalc<2> oc, T* out, const T* x, int64_t n, Unary op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[2];
    oc.get(i, off);
    const T v = x[off[1]];
    out[off[0]] = op == Unary::neg ? T(-v) : (v < 0 ? T(-v) : v);
  }
}

template <typename T>
__global__ void unary_backward_kernel(OffsetCalc<3> oc, T* gi, const T* g, const T* s, int64_t n, Unary op, T a, T b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[3];
    oc.get(i, off);
    gi[off[0]] = unary_backward_op(op, g[off[1]], s[off[2]], a, b);
  }
}

// ---- binary -----------------------------------------------------------------------------------

template <typename T>
__device__ T binary_op(Binary op, T x, T y, T alpha) {
  switch (op) {
    case Binary::add:
      return T(x + alpha * y);
    case Binary::sub:
      return T(x - alpha * y);
    case Binary::mul:
      return T(x * y);
    case Binary::div:
      return x / y;
    case Binary::pow:
      if constexpr (std::is_floating_point_v<T>) return pow(x, y);
      return x;
    case Binary::atan2:
      if constexpr (std::is_floating_point_v<T>) return atan2(x, y);
      return x;
    // NaN propagates (PyTorch's maximum / minimum).
    case Binary::maximum:
      return is_nan(x) ? x : (is_nan(y) ? y : (x > y ? x : y));
    case Binary::minimum:
      return is_nan(x) ? x : (is_nan(y) ? y : (x < y ? x : y));
    default:
      return x;
  }
}

template <typename T>
__device__ bool compare_op(Binary op, T x, T y) {
  switch (op) {
    case Binary::eq:
      return x == y;
    case Binary::ne:
      return x != y;
    case Binary::lt:
      return x < y;
    case Binary::le:
      return x <= y;
    case Binary::gt:
      return x > y;
    case Binary::ge:
      return x >= y;
    case Binary::logical_and:
      return x != T(0) && y != T(0);
    case Binary::logical_or:
      return x != T(0) || y != T(0);
    default:
      return false;
  }
}

template <typename T>
__global__ void binary_kernel(OffsetCalc<3> oc, T* out, const T* a, const T* b, int64_t n, Binary op, T alpha) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[3];
    oc.get(i, off);
    out[off[0]] = binary_op(op, a[off[1]], b[off[2]], alpha);
  }
}

template <typename T>
__global__ void compare_kernel(OffsetCalc<3> oc, bool* out, const T* a, const T* b, int64_t n, Binary op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[3];
    oc.get(i, off);
    out[off[0]] = compare_op(op, a[off[1]], b[off[2]]);
  }
}

// ---- where, copy, fill ------------------------------------------------------------------------

template <typename T>
__global__ void where_kernel(OffsetCalc<4> oc, T* out, const bool* cond, const T* a, const T* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[4];
    oc.get(i, off);
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
}

template <typename To, typename From>
__global__ void copy_kernel(OffsetCalc<2> oc, To* out, const From* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[2];
    oc.get(i, off);
    out[off[0]] = convert<To>(src[off[1]]);
  }
}

template <typename T>
__global__ void fill_kernel(OffsetCalc<1> oc, T* out, T v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[1];
    oc.get(i, off);
    out[off[0]] = v;
  }
}

/// dispatch_cuda plus bf16 (as Bf16), for copies.
template <typename F>
void dispatch_copy(DType dtype, F&& f) {
  if (dtype == DType::bf16) {
    f.template operator()<Bf16>();
    return;
  }
  dispatch_cuda(dtype, "copy", f);
}

template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

template <typename T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.data_ptr());
}

void check_launch() { TSE_CUDA_CHECK(cudaGetLastError()); }

}  // namespace

void unary(Unary op, const Tensor& out, const Tensor& x, UnaryParams p) {
  const int64_t n = out.numel();
  if (n == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const OffsetCalc<2> oc = make_offsets<2>(out, {&x}, "unary");
  if (op == Unary::logical_not || op == Unary::isnan || op == Unary::isfinite) {
    dispatch_cuda(x.dtype(), "logical", [&]<typename T>() {
      logical_kernel<T><<<blocks_for(n), kThreads>>>(oc, ptr<bool>(out), cptr<T>(x), n, op);
    });
  } else if (x.dtype() == DType::i32 || x.dtype() == DType::i64) {
    TSE_CHECK(op == Unary::neg || op == Unary::abs, "unary: integer tensors support neg and abs only");
    dispatch_cuda(x.dtype(), "neg/abs", [&]<typename T>() {
      if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>)
        integral_unary_kernel<T><<<blocks_for(n), kThreads>>>(oc, ptr<T>(out), cptr<T>(x), n, op);
    });
  } else {
    dispatch_cuda(x.dtype(), "unary", [&]<typename T>() {
      if constexpr (std::is_floating_point_v<T>) {
        unary_kernel<T>
            <<<blocks_for(n), kThreads>>>(oc, ptr<T>(out), cptr<T>(x), n, op, static_cast<T>(p.a), static_cast<T>(p.b));
      } else {
        throw ValueError("unary: needs a floating dtype");
      }
    });
  }
  check_launch();
}

void unary_backward(Unary op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved, UnaryParams p) {
  const int64_t n = grad_in.numel();
  if (n == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(grad_in.device().index));
  const OffsetCalc<3> oc = make_offsets<3>(grad_in, {&grad, &saved}, "unary_backward");
  dispatch_cuda(grad.dtype(), "unary_backward", [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>) {
      unary_backward_kernel<T><<<blocks_for(n), kThreads>>>(oc, ptr<T>(grad_in), cptr<T>(grad), cptr<T>(saved), n, op,
                                                            static_cast<T>(p.a), static_cast<T>(p.b));
    } else {
      throw ValueError("unary_backward: needs a floating dtype");
    }
  });
  check_launch();
}

void binary(Binary op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  const int64_t n = out.numel();
  if (n == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const OffsetCalc<3> oc = make_offsets<3>(out, {&a, &b}, "binary");
  if (op >= Binary::eq) {
    dispatch_cuda(a.dtype(), "compare", [&]<typename T>() {
      compare_kernel<T><<<blocks_for(n), kThreads>>>(oc, ptr<bool>(out), cptr<T>(a), cptr<T>(b), n, op);
    });
  } else {
    dispatch_cuda(out.dtype(), "binary", [&]<typename T>() {
      if constexpr (std::is_same_v<T, bool>) {
        throw ValueError("binary: arithmetic on bool tensors; convert them first");
      } else {
        if constexpr (std::is_integral_v<T>) {
          TSE_CHECK(op != Binary::div, "div: integer division is not supported; convert to a floating dtype first");
          TSE_CHECK(op != Binary::pow, "pow: tensor exponents need a floating dtype");
          TSE_CHECK(op != Binary::atan2, "atan2: needs a floating dtype");
        }
        binary_kernel<T>
            <<<blocks_for(n), kThreads>>>(oc, ptr<T>(out), cptr<T>(a), cptr<T>(b), n, op, static_cast<T>(alpha));
      }
    });
  }
  check_launch();
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const OffsetCalc<4> oc = make_offsets<4>(out, {&cond, &a, &b}, "where");
  dispatch_cuda(out.dtype(), "where", [&]<typename T>() {
    where_kernel<T><<<blocks_for(n), kThreads>>>(oc, ptr<T>(out), cptr<bool>(cond), cptr<T>(a), cptr<T>(b), n);
  });
  check_launch();
}

void copy(const Tensor& out, const Tensor& src) {
  const int64_t n = out.numel();
  if (n == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  if (out.dtype() == src.dtype() && out.is_contiguous() && src.is_contiguous() && out.sizes() == src.sizes()) {
    TSE_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), src.data_ptr(), static_cast<size_t>(n) * out.itemsize(),
                                   cudaMemcpyDeviceToDevice));
    return;
  }
  const OffsetCalc<2> oc = make_offsets<2>(out, {&src}, "copy");
  dispatch_copy(out.dtype(), [&]<typename To>() {
    dispatch_copy(src.dtype(), [&]<typename From>() {
      copy_kernel<To, From><<<blocks_for(n), kThreads>>>(oc, ptr<To>(out), cptr<From>(src), n);
    });
  });
  check_launch();
}

void fill(const Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  TSE_CUDA_CHECK(cudaSetDevice(out.device().index));
  const OffsetCalc<1> oc = make_offsets<1>(out, {}, "fill");
  if (out.dtype() == DType::bf16) {
    fill_kernel<Bf16>
        <<<blocks_for(n), kThreads>>>(oc, ptr<Bf16>(out), Bf16{detail::bf16_bits_rne(static_cast<float>(value))}, n);
  } else {
    dispatch_cuda(out.dtype(), "fill", [&]<typename T>() {
      const T v = std::is_same_v<T, bool> ? static_cast<T>(value != 0.0) : static_cast<T>(value);
      fill_kernel<T><<<blocks_for(n), kThreads>>>(oc, ptr<T>(out), v, n);
    });
  }
  check_launch();
}

}  // namespace tse::cuda
