// CPU elementwise kernels: unary math and activations (forward and backward), binary arithmetic
// and comparisons, where, copy/convert, fill.
//
// Unary ops are written as block functions over contiguous arrays so the float versions can use
// libmvec's vector transcendentals (src/cpu/vec_math.hpp); strided operands are gathered into a
// small stack buffer first.
#include "src/cpu/elementwise.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "src/core/bf16_bits.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/loops.hpp"
#include "src/cpu/vec_math.hpp"

namespace tse::cpu {
namespace {

constexpr int64_t kBlock = 256;

// ---- forward blocks: y[0:n] = op(x[0:n]) ---------------------------------------------------------

template <typename T>
void unary_block(Unary op, const T* x, T* y, int64_t n, UnaryParams p) {
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  switch (op) {
    case Unary::neg: for (int64_t i = 0; i < n; ++i) y[i] = -x[i]; return;
    case Unary::exp: vm::exp(x, y, n); return;
    case Unary::log: vm::log(x, y, n); return;
    case Unary::log10: vm::log10(x, y, n); return;
    case Unary::sqrt: for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]); return;
    case Unary::rsqrt: for (int64_t i = 0; i < n; ++i) y[i] = T(1) / std::sqrt(x[i]); return;
    case Unary::abs: for (int64_t i = 0; i < n; ++i) y[i] = std::abs(x[i]); return;
    case Unary::sin: vm::sin(x, y, n); return;
    case Unary::cos: vm::cos(x, y, n); return;
    case Unary::relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : (x[i] == x[i] ? T(0) : x[i]);
      return;
    case Unary::leaky_relu: for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : x[i] * a; return;
    case Unary::gelu: {
      // 0.5 x erfc(-x / sqrt 2): erfc keeps relative accuracy in the negative tail, where 1 + erf cancels.
#if defined(TSE_VEC_MATH)
      if constexpr (std::is_same_v<T, float>) {
        // One fused pass per 8 lanes (the three-pass form below left the loads exposed).
        const __m256 c = _mm256_set1_ps(static_cast<float>(-M_SQRT1_2)), half = _mm256_set1_ps(0.5f);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
          const __m256 v = _mm256_loadu_ps(x + i);
          const __m256 e = _ZGVdN8v_erfcf(_mm256_mul_ps(v, c));
          _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), e));
        }
        if (i == n) return;
        x += i;
        y += i;
        n -= i;
      }
#endif
      T t[kBlock];
      for (int64_t i = 0; i < n; ++i) t[i] = -x[i] * T(M_SQRT1_2);
      vm::erfc(t, t, n);
      for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * t[i];
      return;
    }
    case Unary::gelu_tanh: {
      T t[kBlock];
      const T k = T(0.7978845608028654);  // sqrt(2 / pi)
      for (int64_t i = 0; i < n; ++i) t[i] = k * (x[i] + T(0.044715) * x[i] * x[i] * x[i]);
      vm::tanh(t, t, n);
      for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + t[i]);
      return;
    }
    case Unary::sigmoid:
    case Unary::silu: {
      T t[kBlock];
      for (int64_t i = 0; i < n; ++i) t[i] = -x[i];
      vm::exp(t, t, n);
      if (op == Unary::sigmoid) {
        for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + t[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (T(1) + t[i]);
      }
      return;
    }
    case Unary::tanh: vm::tanh(x, y, n); return;
    case Unary::softplus: {
      // a = beta, b = threshold: x where beta x > threshold, else log1p(exp(beta x)) / beta.
      T t[kBlock];
      for (int64_t i = 0; i < n; ++i) t[i] = std::min(x[i] * a, b);
      vm::exp(t, t, n);
      vm::log1p(t, t, n);
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a > b ? x[i] : t[i] / a;
      return;
    }
    case Unary::pow_scalar:
      if (p.a == 2.0) {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      } else if (p.a == 1.0) {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i];
      } else if (p.a == 0.5) {
        for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      } else if (p.a == -1.0) {
        for (int64_t i = 0; i < n; ++i) y[i] = T(1) / x[i];
      } else if (p.a == 3.0) {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i] * x[i];
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = std::pow(x[i], a);
      }
      return;
    case Unary::clamp:
      // NaN stays NaN (PyTorch); a = min, b = max.
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] != x[i] ? x[i] : std::min(std::max(x[i], a), b);
      return;
    default: break;
  }
  TSE_ASSERT(false, "unary_block: op not handled");
}

// ---- backward blocks: gi[0:n] = g[0:n] * op'(s[0:n]) ---------------------------------------------

template <typename T>
void unary_backward_block(Unary op, const T* g, const T* s, T* gi, int64_t n, UnaryParams p) {
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  switch (op) {
    case Unary::neg: for (int64_t i = 0; i < n; ++i) gi[i] = -g[i]; return;
    case Unary::exp: for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * s[i]; return;  // s = y
    case Unary::log: for (int64_t i = 0; i < n; ++i) gi[i] = g[i] / s[i]; return;
    case Unary::log10: {
      const T inv_ln10 = static_cast<T>(1.0 / std::numbers::ln10);
      for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * inv_ln10 / s[i];
      return;
    }
    case Unary::sqrt: for (int64_t i = 0; i < n; ++i) gi[i] = g[i] / (T(2) * std::sqrt(s[i])); return;
    case Unary::rsqrt:
      for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * T(-0.5) / (s[i] * std::sqrt(s[i]));
      return;
    case Unary::abs:
      for (int64_t i = 0; i < n; ++i) gi[i] = s[i] > T(0) ? g[i] : (s[i] < T(0) ? -g[i] : T(0));
      return;
    case Unary::sin: {
      T t[kBlock];
      vm::cos(s, t, n);
      for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * t[i];
      return;
    }
    case Unary::cos: {
      T t[kBlock];
      vm::sin(s, t, n);
      for (int64_t i = 0; i < n; ++i) gi[i] = -g[i] * t[i];
      return;
    }
    case Unary::relu: for (int64_t i = 0; i < n; ++i) gi[i] = s[i] > T(0) ? g[i] : T(0); return;
    case Unary::leaky_relu: for (int64_t i = 0; i < n; ++i) gi[i] = s[i] > T(0) ? g[i] : g[i] * a; return;
    case Unary::gelu: {
      // d/dx = Phi(x) + x phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2), phi = exp(-x^2 / 2) / sqrt(2 pi)
      T cdf[kBlock], pdf[kBlock];
      for (int64_t i = 0; i < n; ++i) {
        cdf[i] = -s[i] * T(M_SQRT1_2);
        pdf[i] = T(-0.5) * s[i] * s[i];
      }
      vm::erfc(cdf, cdf, n);
      vm::exp(pdf, pdf, n);
      const T inv_sqrt_2pi = T(0.3989422804014327);
      for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * (T(0.5) * cdf[i] + s[i] * pdf[i] * inv_sqrt_2pi);
      return;
    }
    case Unary::gelu_tanh: {
      T t[kBlock];
      const T k = T(0.7978845608028654);
      for (int64_t i = 0; i < n; ++i) t[i] = k * (s[i] + T(0.044715) * s[i] * s[i] * s[i]);
      vm::tanh(t, t, n);
      for (int64_t i = 0; i < n; ++i) {
        const T x = s[i], th = t[i];
        const T dinner = k * (T(1) + T(3) * T(0.044715) * x * x);
        gi[i] = g[i] * (T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * dinner);
      }
      return;
    }
    case Unary::sigmoid: for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * s[i] * (T(1) - s[i]); return;  // s = y
    case Unary::silu: {
      T t[kBlock];
      for (int64_t i = 0; i < n; ++i) t[i] = -s[i];
      vm::exp(t, t, n);
      for (int64_t i = 0; i < n; ++i) {
        const T sg = T(1) / (T(1) + t[i]);
        gi[i] = g[i] * sg * (T(1) + s[i] * (T(1) - sg));
      }
      return;
    }
    case Unary::tanh: for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * (T(1) - s[i] * s[i]); return;  // s = y
    case Unary::softplus: {
      // sigmoid(beta x) where beta x <= threshold, else 1.
      T t[kBlock];
      for (int64_t i = 0; i < n; ++i) t[i] = -std::min(s[i] * a, b);
      vm::exp(t, t, n);
      for (int64_t i = 0; i < n; ++i) gi[i] = s[i] * a > b ? g[i] : g[i] / (T(1) + t[i]);
      return;
    }
    case Unary::pow_scalar:
      if (p.a == 2.0) {
        for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * T(2) * s[i];
      } else if (p.a == 0.0) {
        for (int64_t i = 0; i < n; ++i) gi[i] = T(0);
      } else {
        for (int64_t i = 0; i < n; ++i) gi[i] = g[i] * a * std::pow(s[i], a - T(1));
      }
      return;
    case Unary::clamp:
      for (int64_t i = 0; i < n; ++i) gi[i] = (s[i] >= a && s[i] <= b) ? g[i] : T(0);
      return;
    default: break;
  }
  TSE_ASSERT(false, "unary_backward_block: op not handled");
}

// Runs block(in pointers..., out pointer, n) over runs, gathering strided operands into buffers.
template <typename T, int NIn, typename Block>
void run_blocks(const Tensor& out, const std::array<const Tensor*, NIn>& ins, const Block& block) {
  constexpr int N = NIn + 1;
  std::array<const Tensor*, N> ops;
  ops[0] = &out;
  for (int k = 0; k < NIn; ++k) ops[k + 1] = ins[k];
  const StridedPlan<N> plan = make_plan<N>(ops);
  // Transcendental work per element is high: a smaller grain pays for threads sooner.
  for_each_run<N>(plan, 8192, [&](const std::array<char*, N>& ptrs, const int64_t* s, int64_t n) {
    // Contiguous operands are read in place; broadcast (stride 0) ones are splatted into a
    // buffer once per run; only truly strided ones are gathered per block.
    T bufs[NIn][kBlock];
    T obuf[kBlock];
    const bool out_contiguous = s[0] == static_cast<int64_t>(sizeof(T));
    for (int k = 0; k < NIn; ++k)
      if (s[k + 1] == 0) std::fill(bufs[k], bufs[k] + std::min(kBlock, n), *reinterpret_cast<const T*>(ptrs[k + 1]));
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
      const int64_t m = std::min(kBlock, n - i0);
      std::array<const T*, NIn> in;
      for (int k = 0; k < NIn; ++k) {
        const int64_t st = s[k + 1];
        if (st == static_cast<int64_t>(sizeof(T))) {
          in[k] = reinterpret_cast<const T*>(ptrs[k + 1]) + i0;
        } else if (st == 0) {
          in[k] = bufs[k];
        } else {
          const char* src = ptrs[k + 1] + i0 * st;
          for (int64_t i = 0; i < m; ++i) bufs[k][i] = *reinterpret_cast<const T*>(src + i * st);
          in[k] = bufs[k];
        }
      }
      if (out_contiguous) {
        block(in, reinterpret_cast<T*>(ptrs[0]) + i0, m);
        continue;
      }
      block(in, obuf, m);
      char* dst = ptrs[0] + i0 * s[0];
      for (int64_t i = 0; i < m; ++i) *reinterpret_cast<T*>(dst + i * s[0]) = obuf[i];
    }
  });
}

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  return false;
}

}  // namespace

void unary(Unary op, const Tensor& out, const Tensor& x, UnaryParams p) {
  if (op == Unary::logical_not || op == Unary::isnan || op == Unary::isfinite) {
    dispatch_all(x.dtype(), "logical", [&]<typename T>() {
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
        throw ValueError("logical/isnan/isfinite: 16-bit floats are storage-only on cpu; convert to float32 first");
      } else {
        elementwise<bool, T>(
            out,
            [op](T v) -> bool {
              if (op == Unary::logical_not) return !static_cast<bool>(v);
              if constexpr (std::is_floating_point_v<T>) {
                return op == Unary::isnan ? std::isnan(v) : std::isfinite(v);
              } else {
                return op != Unary::isnan;
              }
            },
            {&x});
      }
    });
    return;
  }
  if ((op == Unary::neg || op == Unary::abs) && is_integral(x.dtype())) {
    dispatch_numeric(x.dtype(), "neg/abs", [&]<typename T>() {
      elementwise<T, T>(out, [op](T v) -> T { return op == Unary::neg ? T(-v) : (v < 0 ? T(-v) : v); }, {&x});
    });
    return;
  }
  dispatch_floating(x.dtype(), "unary", [&]<typename T>() {
    run_blocks<T, 1>(out, {&x}, [&](const std::array<const T*, 1>& in, T* y, int64_t n) {
      unary_block<T>(op, in[0], y, n, p);
    });
  });
}

void unary_backward(Unary op, const Tensor& grad_in, const Tensor& grad, const Tensor& saved, UnaryParams p) {
  dispatch_floating(grad.dtype(), "unary_backward", [&]<typename T>() {
    run_blocks<T, 2>(grad_in, {&grad, &saved}, [&](const std::array<const T*, 2>& in, T* gi, int64_t n) {
      unary_backward_block<T>(op, in[0], in[1], gi, n, p);
    });
  });
}

void binary(Binary op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  const bool compare = op >= Binary::eq;
  if (compare) {
    dispatch_all(a.dtype(), "compare", [&]<typename T>() {
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
        throw ValueError("comparison: 16-bit floats are storage-only on cpu; convert to float32 first");
      } else {
        auto run = [&](auto f) { elementwise<bool, T, T>(out, f, {&a, &b}); };
        switch (op) {
          case Binary::eq: run([](T x, T y) { return x == y; }); break;
          case Binary::ne: run([](T x, T y) { return x != y; }); break;
          case Binary::lt: run([](T x, T y) { return x < y; }); break;
          case Binary::le: run([](T x, T y) { return x <= y; }); break;
          case Binary::gt: run([](T x, T y) { return x > y; }); break;
          case Binary::ge: run([](T x, T y) { return x >= y; }); break;
          case Binary::logical_and: run([](T x, T y) { return x != T(0) && y != T(0); }); break;
          case Binary::logical_or: run([](T x, T y) { return x != T(0) || y != T(0); }); break;
          default: TSE_ASSERT(false);
        }
      }
    });
    return;
  }
  dispatch_numeric(out.dtype(), "binary", [&]<typename T>() {
    auto run = [&](auto f) { elementwise<T, T, T>(out, f, {&a, &b}); };
    const T al = static_cast<T>(alpha);
    switch (op) {
      case Binary::add:
        if (alpha == 1.0) run([](T x, T y) { return T(x + y); });
        else run([al](T x, T y) { return T(x + al * y); });
        break;
      case Binary::sub:
        if (alpha == 1.0) run([](T x, T y) { return T(x - y); });
        else run([al](T x, T y) { return T(x - al * y); });
        break;
      case Binary::mul: run([](T x, T y) { return T(x * y); }); break;
      case Binary::div:
        if constexpr (std::is_integral_v<T>) {
          throw ValueError("div: integer division is not supported; convert to a floating dtype first");
        } else {
          run([](T x, T y) { return x / y; });
        }
        break;
      case Binary::pow:
        if constexpr (std::is_integral_v<T>) {
          throw ValueError("pow: tensor exponents need a floating dtype");
        } else {
          run([](T x, T y) { return std::pow(x, y); });
        }
        break;
      case Binary::atan2:
        if constexpr (std::is_integral_v<T>) {
          throw ValueError("atan2: needs a floating dtype");
        } else {
          run([](T x, T y) { return std::atan2(x, y); });
        }
        break;
      // NaN propagates (PyTorch's maximum/minimum).
      case Binary::maximum: run([](T x, T y) { return is_nan(x) ? x : (is_nan(y) ? y : (x > y ? x : y)); }); break;
      case Binary::minimum: run([](T x, T y) { return is_nan(x) ? x : (is_nan(y) ? y : (x < y ? x : y)); }); break;
      default: TSE_ASSERT(false);
    }
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_all(out.dtype(), "where", [&]<typename T>() {
    const StridedPlan<4> plan = make_plan<4>({&out, &cond, &a, &b});
    for_each_run<4>(plan, detail::kParallelGrain, [&](const std::array<char*, 4>& p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        const bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) = c ? *reinterpret_cast<const T*>(p[2] + i * s[2])
                                                   : *reinterpret_cast<const T*>(p[3] + i * s[3]);
      }
    });
  });
}

namespace {

// A copy whose source walks memory along another dim than the destination (a transpose made
// contiguous): element-by-element it touches a new cache line per element, so it goes tile by
// tile instead. Dim 0 of the plan is contiguous in out, dim 1 contiguous in src.
template <typename To, typename From>
void copy_tiled(const StridedPlan<2>& p) {
  constexpr int64_t kTile = 16;
  const int64_t n0 = p.sizes[0], n1 = p.sizes[1];
  const int64_t so1 = p.strides[1][0] / static_cast<int64_t>(sizeof(To));
  const int64_t ss0 = p.strides[0][1] / static_cast<int64_t>(sizeof(From));
  int64_t outer = 1;
  for (int d = 2; d < p.ndim; ++d) outer *= p.sizes[d];
  const int64_t t0 = (n0 + kTile - 1) / kTile, t1 = (n1 + kTile - 1) / kTile;
  detail::parallel_for(0, outer * t1, std::max<int64_t>(1, detail::kParallelGrain / (kTile * n0)), [&](int64_t b, int64_t e) {
    for (int64_t job = b; job < e; ++job) {
      int64_t o = job / t1;
      const int64_t j0 = (job % t1) * kTile, j1 = std::min(n1, j0 + kTile);
      char* obase = p.base[0];
      const char* sbase = p.base[1];
      for (int d = 2; d < p.ndim; ++d) {
        const int64_t i = o % p.sizes[d];
        o /= p.sizes[d];
        obase += i * p.strides[d][0];
        sbase += i * p.strides[d][1];
      }
      To* dst = reinterpret_cast<To*>(obase);
      const From* src = reinterpret_cast<const From*>(sbase);
      for (int64_t ti = 0; ti < t0; ++ti) {
        const int64_t i0 = ti * kTile, i1 = std::min(n0, i0 + kTile);
        for (int64_t j = j0; j < j1; ++j)
          for (int64_t i = i0; i < i1; ++i) dst[j * so1 + i] = convert<To>(src[i * ss0 + j]);
      }
    }
  });
}

}  // namespace

void copy(const Tensor& out, const Tensor& src) {
  dispatch_all(out.dtype(), "copy", [&]<typename To>() {
    dispatch_all(src.dtype(), "copy", [&]<typename From>() {
      const StridedPlan<2> plan = make_plan<2>({&out, &src});
      const bool transposed = plan.ndim >= 2 && plan.strides[0][0] == static_cast<int64_t>(sizeof(To)) &&
                              plan.strides[1][1] == static_cast<int64_t>(sizeof(From)) &&
                              plan.strides[0][1] % static_cast<int64_t>(sizeof(From)) == 0 &&
                              plan.strides[1][0] % static_cast<int64_t>(sizeof(To)) == 0 &&
                              plan.strides[0][1] > static_cast<int64_t>(sizeof(From)) && plan.sizes[0] >= 8 &&
                              plan.sizes[1] >= 8;
      if (transposed) {
        copy_tiled<To, From>(plan);
      } else {
        elementwise<To, From>(out, [](From v) { return convert<To>(v); }, {&src});
      }
    });
  });
}

void fill(const Tensor& out, double value) {
  dispatch_all(out.dtype(), "fill", [&]<typename T>() {
    const T v = convert<T>(value);
    const StridedPlan<1> plan = make_plan<1>({&out});
    for_each_run<1>(plan, detail::kParallelGrain, [&](const std::array<char*, 1>& p, const int64_t* s, int64_t n) {
      if (s[0] == static_cast<int64_t>(sizeof(T))) {
        T* o = reinterpret_cast<T*>(p[0]);
        for (int64_t i = 0; i < n; ++i) o[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
      }
    });
  });
}

// ---- autocast's f32 -> bf16 rounding ------------------------------------------------------------

namespace {

void round_bf16_plain(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = detail::bf16_bits_daz(x[i]);
}

// vcvtne2ps2bf16 rounds to nearest even, quiets NaNs and treats denormal inputs as zero: the
// same bits as round_bf16_plain (test_autocast checks both on every class of value).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void round_bf16_avx512(const float* x, uint16_t* y,
                                                                                        int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(y + i, reinterpret_cast<__m512i>(r));
  }
  round_bf16_plain(x + i, y + i, n - i);
}

}  // namespace

void round_to_bf16(const float* x, BFloat16* y, int64_t n) {
  static const bool avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  (avx512_bf16 ? round_bf16_avx512 : round_bf16_plain)(x, reinterpret_cast<uint16_t*>(y), n);
}

void round_to_bf16(const Tensor& out, const Tensor& src) {
  const auto* x = static_cast<const float*>(src.data_ptr());
  auto* y = static_cast<BFloat16*>(out.data_ptr());
  detail::parallel_for(0, src.numel(), detail::kParallelGrain,
                       [&](int64_t b, int64_t e) { round_to_bf16(x + b, y + b, e - b); });
}

}  // namespace tse::cpu
