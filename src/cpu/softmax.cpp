// CPU kernels of softmax and log_softmax, forward and backward.
//
// float32 softmax rows (a unit-stride axis, inner == 1) run forward on oneDNN's softmax_v2 JIT
// primitive. Its exp clamps its argument, which turns NaN into a finite value: a row holding NaN
// or +inf comes out as NaN at that entry and 0 elsewhere, where PyTorch gives NaN throughout.
// Every such row, and only such a row, has a NaN in its output, so one vectorised pass over the
// output restores PyTorch's rule.
//
// Everything else runs on the loops below: float64 (absent from this oneDNN), a strided axis
// (inner > 1; oneDNN 2.6 only has its reference kernel there, ~100x slower than its JIT), every
// backward (oneDNN 2.6 has no JIT softmax backward for AVX2), and log_softmax, whose JIT log is
// off by ~1e-6 absolute (a one-element row gives 1.4e-6, not 0) where the loops take one exact
// log per row. The loops follow PyTorch's order of operations (shift by the max, exponentiate,
// sum, scale), so the non-finite rules hold by construction: exp(-inf) is exactly 0, and NaN,
// +inf or an all -inf row makes the sum NaN.
#include "src/cpu/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "src/core/parallel.hpp"
#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/onednn_context.hpp"
#include "src/cpu/row_folds.hpp"
#include "src/cpu/vec_math.hpp"

namespace tse::cpu {
namespace {

using dnnl::memory;

const char* op_name(const SoftmaxShape& s) { return s.log ? "log_softmax" : "softmax"; }

// ---- slices ----------------------------------------------------------------------------------------

using rows::max_op;
using rows::row_dot;
using rows::row_max;
using rows::row_sum;

/// Columns of one (axis, inner) block that a strided-axis kernel handles together: the loops
/// run along the unit-stride inner dim, one vector per kLanes columns.
constexpr int64_t kColumns = 64;

/// Calls row(offset) for each softmax row when the axis has unit stride (inner == 1), else
/// columns(offset, width) for each group of <= kColumns adjacent columns of an (axis, inner)
/// block; offset is the element index of the slice's first element, the axis stride is inner.
template <typename Row, typename Columns>
void for_each_slice(const SoftmaxShape& s, const Row& row, const Columns& columns) {
  using tse::detail::kParallelGrain;
  using tse::detail::parallel_for;
  if (s.inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(s.axis, 1));
    parallel_for(0, s.outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) row(r * s.axis);
    });
    return;
  }
  const int64_t groups = (s.inner + kColumns - 1) / kColumns;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(s.axis * kColumns, 1));
  parallel_for(0, s.outer * groups, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / groups, c0 = (t % groups) * kColumns;
      columns(o * s.axis * s.inner + c0, std::min(kColumns, s.inner - c0));
    }
  });
}

// ---- loops: forward --------------------------------------------------------------------------------

template <typename T>
void forward_row(const T* x, T* y, int64_t n, bool log) {
  const T m = row_max(x, n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] - m;
  vm::exp(y, y, n);
  const T sum = row_sum(y, n);
  if (log) {
    const T log_sum = std::log(sum);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - log_sum;
  } else {
    const T inv = T(1) / sum;
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

/// The same steps as forward_row, for `width` columns at once (axis stride `stride`).
template <typename T>
void forward_columns(const T* x, T* y, int64_t axis, int64_t stride, int64_t width, bool log) {
  T m[kColumns], sum[kColumns];
  std::fill(m, m + width, -std::numeric_limits<T>::infinity());
  std::fill(sum, sum + width, T(0));
  for (int64_t a = 0; a < axis; ++a) {
    const T* xr = x + a * stride;
    for (int64_t c = 0; c < width; ++c) m[c] = max_op(m[c], xr[c]);
  }
  for (int64_t a = 0; a < axis; ++a) {
    const T* xr = x + a * stride;
    T* yr = y + a * stride;
    for (int64_t c = 0; c < width; ++c) yr[c] = xr[c] - m[c];
    vm::exp(yr, yr, width);
    for (int64_t c = 0; c < width; ++c) sum[c] += yr[c];
  }
  if (log) {
    for (int64_t c = 0; c < width; ++c) sum[c] = std::log(sum[c]);
    for (int64_t a = 0; a < axis; ++a) {
      const T* xr = x + a * stride;
      T* yr = y + a * stride;
      for (int64_t c = 0; c < width; ++c) yr[c] = (xr[c] - m[c]) - sum[c];
    }
  } else {
    for (int64_t c = 0; c < width; ++c) sum[c] = T(1) / sum[c];
    for (int64_t a = 0; a < axis; ++a) {
      T* yr = y + a * stride;
      for (int64_t c = 0; c < width; ++c) yr[c] *= sum[c];
    }
  }
}

template <typename T>
void forward_loops(const Tensor& out, const Tensor& x, const SoftmaxShape& s) {
  const T* xp = static_cast<const T*>(x.data_ptr());
  T* yp = static_cast<T*>(out.data_ptr());
  for_each_slice(
      s, [&](int64_t off) { forward_row(xp + off, yp + off, s.axis, s.log); },
      [&](int64_t off, int64_t width) { forward_columns(xp + off, yp + off, s.axis, s.inner, width, s.log); });
}

// ---- loops: backward -------------------------------------------------------------------------------

template <typename T>
void backward_row(const T* g, const T* y, T* gx, int64_t n, bool log) {
  if (log) {
    const T gsum = row_sum(g, n);
    vm::exp(y, gx, n);
    for (int64_t i = 0; i < n; ++i) gx[i] = g[i] - gx[i] * gsum;
  } else {
    const T dot = row_dot(g, y, n);
    for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (g[i] - dot);
  }
}

template <typename T>
void backward_columns(const T* g, const T* y, T* gx, int64_t axis, int64_t stride, int64_t width, bool log) {
  T acc[kColumns];
  std::fill(acc, acc + width, T(0));
  for (int64_t a = 0; a < axis; ++a) {
    const T *gr = g + a * stride, *yr = y + a * stride;
    if (log) {
      for (int64_t c = 0; c < width; ++c) acc[c] += gr[c];
    } else {
      for (int64_t c = 0; c < width; ++c) acc[c] += gr[c] * yr[c];
    }
  }
  for (int64_t a = 0; a < axis; ++a) {
    const T *gr = g + a * stride, *yr = y + a * stride;
    T* o = gx + a * stride;
    if (log) {
      vm::exp(yr, o, width);
      for (int64_t c = 0; c < width; ++c) o[c] = gr[c] - o[c] * acc[c];
    } else {
      for (int64_t c = 0; c < width; ++c) o[c] = yr[c] * (gr[c] - acc[c]);
    }
  }
}

template <typename T>
void backward_loops(const Tensor& grad_x, const Tensor& grad_out, const Tensor& y, const SoftmaxShape& s) {
  const T* gp = static_cast<const T*>(grad_out.data_ptr());
  const T* yp = static_cast<const T*>(y.data_ptr());
  T* op = static_cast<T*>(grad_x.data_ptr());
  for_each_slice(
      s, [&](int64_t off) { backward_row(gp + off, yp + off, op + off, s.axis, s.log); },
      [&](int64_t off, int64_t width) {
        backward_columns(gp + off, yp + off, op + off, s.axis, s.inner, width, s.log);
      });
}

// ---- float32 forward: oneDNN -----------------------------------------------------------------------

/// PyTorch's rule for the rows oneDNN gets wrong (see the file comment): NaN throughout.
void restore_nan_rows(float* y, int64_t rows, int64_t n) {
  const int64_t grain = std::max<int64_t>(1, tse::detail::kParallelGrain / std::max<int64_t>(n, 1));
  tse::detail::parallel_for(0, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* row = y + r * n;
      if (std::isnan(row_sum(row, n))) std::fill(row, row + n, std::numeric_limits<float>::quiet_NaN());
    }
  });
}

void forward_onednn(const Tensor& out, const Tensor& x, const SoftmaxShape& s) {
  using onednn::context;
  const char* op = "softmax";
  const memory::desc md({s.outer, s.axis}, memory::data_type::f32, memory::dims{s.axis, 1});
  onednn::PrimitiveKey key(onednn::PrimitiveKind::softmax_fwd);
  key.add(md);
  onednn::Context& ctx = context();
  const onednn::CachedPrimitive p = ctx.cache().get_or_create(
      key,
      [&]() -> dnnl::primitive_desc {
        const dnnl::softmax_v2_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_accurate,
                                               md, md, 1);
        return dnnl::softmax_v2_forward::primitive_desc(d, onednn::default_attr(), ctx.engine());
      },
      op);
  std::unordered_map<int, memory> args;
  try {
    args.emplace(DNNL_ARG_SRC, memory(md, ctx.engine(), x.data_ptr()));
    args.emplace(DNNL_ARG_DST, memory(md, ctx.engine(), out.data_ptr()));
  } catch (const dnnl::error& e) {
    throw BackendError(tse::detail::str_cat(op, ": oneDNN failed to wrap an operand: ", e.what()));
  }
  ctx.execute(p, std::move(args), op);
  restore_nan_rows(static_cast<float*>(out.data_ptr()), s.outer, s.axis);
}

}  // namespace

void softmax(const Tensor& out, const Tensor& x, const SoftmaxShape& s) {
  if (out.numel() == 0) return;
  if (out.dtype() == DType::f32 && s.inner == 1 && !s.log) {
    forward_onednn(out, x, s);
    return;
  }
  dispatch_floating(out.dtype(), op_name(s), [&]<typename T>() { forward_loops<T>(out, x, s); });
}

void softmax_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& y, const SoftmaxShape& s) {
  if (grad_x.numel() == 0) return;
  dispatch_floating(grad_x.dtype(), op_name(s), [&]<typename T>() { backward_loops<T>(grad_x, grad_out, y, s); });
}

}  // namespace tse::cpu
