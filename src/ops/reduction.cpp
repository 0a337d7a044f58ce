// Reductions: argument checks, output shapes, dispatch, tape nodes.
#include "tse/ops/reduction.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "src/cpu/reduction.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "src/ops/reduction_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;

namespace detail {

ReduceDims reduce_dims(const Tensor& x, const Shape& dims, bool keepdim, const char* op) {
  ReduceDims r;
  const int64_t nd = x.dim();
  r.mask.assign(static_cast<size_t>(nd), dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    if (nd == 0) continue;
    TSE_CHECK(!r.mask[w] || dims.empty(), op, ": dim ", d, " appears more than once in ", shape_to_string(dims));
    r.mask[w] = true;
  }
  r.count = 1;
  for (int64_t d = 0; d < nd; ++d) {
    if (r.mask[d]) {
      r.count *= x.sizes()[d];
      if (keepdim) r.out_sizes.push_back(1);
    } else {
      r.out_sizes.push_back(x.sizes()[d]);
    }
    r.keep_sizes.push_back(r.mask[d] ? 1 : x.sizes()[d]);
  }
  return r;
}

Tensor expand_back(const Tensor& g, const ReduceDims& r, const Shape& in_sizes) {
  return g.reshape(r.keep_sizes).expand(in_sizes);
}

}  // namespace detail

namespace {
const tse::detail::KernelTable<tse::detail::SumFn> k_sum{"sum", &cpu::sum, TSE_CUDA_KERNEL(cuda::sum)};
const tse::detail::KernelTable<tse::detail::NormFn> k_norm{"norm", &cpu::norm, TSE_CUDA_KERNEL(cuda::norm)};
const tse::detail::KernelTable<tse::detail::ExtremeFn> k_extreme{"amax", &cpu::extreme, TSE_CUDA_KERNEL(cuda::extreme)};
const tse::detail::KernelTable<tse::detail::ArgExtremeFn> k_arg_extreme{"max", &cpu::arg_extreme, TSE_CUDA_KERNEL(cuda::arg_extreme)};
const tse::detail::KernelTable<tse::detail::LogSumExpFn> k_logsumexp{"logsumexp", &cpu::logsumexp, TSE_CUDA_KERNEL(cuda::logsumexp)};

/// The wrapped reduced dims of r, ascending.
Shape reduced_dim_list(const detail::ReduceDims& r) {
  Shape dims;
  for (size_t d = 0; d < r.mask.size(); ++d)
    if (r.mask[d]) dims.push_back(static_cast<int64_t>(d));
  return dims;
}

/// Max/min accept every dtype with an order: floating, integer and bool (not the 16-bit storage types).
void check_ordered(const Tensor& x, const char* op) {
  TSE_CHECK(x.dtype() != DType::f16 && x.dtype() != DType::bf16, op, ": ", x.dtype(),
            " is a storage type on cpu; convert to float32 first (shape ", x.shape_str(), ")");
}
}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  detail::check_defined(x, "sum", "input");
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, "sum");
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  TSE_CHECK(out_dtype != DType::f16 && out_dtype != DType::bf16, "sum: ", x.dtype(),
            " is a storage type on cpu; convert to float32 first");
  Tensor out = Tensor::empty(r.out_sizes, out_dtype, x.device());
  k_sum.get(x.device(), "sum")(out, x, r.mask);
  if (needs_grad({x})) {
    const Shape in_sizes = x.sizes();
    record("sum", {x}, {out},
           [r, in_sizes](const Grads& g) -> Grads { return {detail::expand_back(g[0], r, in_sizes)}; });
  }
  return out;
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  detail::check_defined(x, "mean", "input");
  detail::check_floating(x, "mean", "input");
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, "mean");
  // mean = sum / count; the division is recorded, so the gradient follows.
  return div(sum(x, dims, keepdim), static_cast<double>(r.count));
}

Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  detail::check_defined(x, "var", "input");
  detail::check_floating(x, "var", "input");
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, "var");
  TSE_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction, " (input shape ", x.shape_str(), ")");
  // Two passes (centre, then square) keep the precision of large offsets that sum(x^2) - n mean^2
  // would cancel away. Fewer than correction + 1 elements divide by 0 and give inf/NaN (PyTorch).
  const Tensor centred = sub(x, mean(x, dims, true));
  const double divisor = static_cast<double>(std::max<int64_t>(r.count - correction, 0));
  return div(sum(mul(centred, centred), dims, keepdim), divisor);
}

namespace {

std::pair<Tensor, Tensor> max_min_along(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* name) {
  detail::check_defined(x, name, "input");
  check_ordered(x, name);
  const int64_t d = wrap_dim(dim, x.dim(), name);
  const detail::ReduceDims r = detail::reduce_dims(x, {dim}, keepdim, name);
  TSE_CHECK_INDEX(r.count > 0, name, ": dim ", dim, " of the input ", x.shape_str(),
                  " is empty; the reduction has no identity");
  Tensor values = Tensor::empty(r.out_sizes, x.dtype(), x.device());
  Tensor indices = Tensor::empty(r.out_sizes, DType::i64, x.device());
  k_arg_extreme.get(x.device(), name)(values, indices, x, r.mask, is_max);
  if (needs_grad({x})) {
    const Shape in_sizes = x.sizes();
    record(name, {x}, {values}, [r, in_sizes, d, name, si = SavedTensor(indices)](const Grads& g) -> Grads {
      if (in_sizes.empty()) return {g[0]};
      // One-hot along dim: position == the selected index.
      Shape pos_sizes(in_sizes.size(), 1);
      pos_sizes[d] = in_sizes[d];
      const Tensor pos = arange(0.0, static_cast<double>(in_sizes[d]), 1.0, DType::i64, g[0].device()).view(pos_sizes);
      const Tensor selected = eq(pos, si.unpack(name).reshape(r.keep_sizes));
      const Tensor zero = zeros({}, g[0].dtype(), g[0].device());
      return {where(selected, g[0].reshape(r.keep_sizes), zero)};
    });
  }
  return {values, indices};
}

Tensor amax_amin(const Tensor& x, const Shape& dims, bool keepdim, bool is_max) {
  const char* name = is_max ? "amax" : "amin";
  detail::check_defined(x, name, "input");
  check_ordered(x, name);
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, name);
  TSE_CHECK_INDEX(r.count > 0, name, ": reducing dims ", shape_to_string(dims), " of the input ", x.shape_str(),
                  " covers no elements; the reduction has no identity");
  Tensor out = Tensor::empty(r.out_sizes, x.dtype(), x.device());
  k_extreme.get(x.device(), name)(out, x, r.mask, is_max);
  if (needs_grad({x})) {
    record(name, {x}, {out}, [r, name, sx = SavedTensor(x), so = SavedTensor(out)](const Grads& g) -> Grads {
      const Tensor xv = sx.unpack(name);
      const Tensor hit = eq(xv, so.unpack(name).reshape(r.keep_sizes));
      const Tensor ties = sum(to_dtype(hit, xv.dtype()), reduced_dim_list(r), true);
      const Tensor zero = zeros({}, g[0].dtype(), g[0].device());
      return {where(hit, div(g[0].reshape(r.keep_sizes), ties), zero)};
    });
  }
  return out;
}

}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return max_min_along(x, dim, keepdim, true, "max");
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return max_min_along(x, dim, keepdim, false, "min");
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  autograd::NoGradGuard ng;  // indices only: no tape node for the discarded values
  return max_min_along(x, dim, keepdim, true, "argmax").second;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  autograd::NoGradGuard ng;
  return max_min_along(x, dim, keepdim, false, "argmin").second;
}
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return amax_amin(x, dims, keepdim, true); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return amax_amin(x, dims, keepdim, false); }

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
  detail::check_defined(x, "logsumexp", "input");
  detail::check_floating(x, "logsumexp", "input");
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, "logsumexp");
  Tensor out = Tensor::empty(r.out_sizes, x.dtype(), x.device());
  k_logsumexp.get(x.device(), "logsumexp")(out, x, r.mask);
  if (needs_grad({x})) {
    record("logsumexp", {x}, {out}, [r, sx = SavedTensor(x), so = SavedTensor(out)](const Grads& g) -> Grads {
      // d/dx = softmax(x) = exp(x - out). A row of -inf has out = -inf: shifting it by 0 instead
      // gives exp(-inf) = 0 rather than exp(-inf + inf) = NaN.
      const Tensor o = so.unpack("logsumexp").reshape(r.keep_sizes);
      const Tensor shift = masked_fill(o, eq(o, -std::numeric_limits<double>::infinity()), 0.0);
      return {mul(g[0].reshape(r.keep_sizes), exp(sub(sx.unpack("logsumexp"), shift)))};
    });
  }
  return out;
}

Tensor norm(const Tensor& x, double p, const Shape& dims, bool keepdim) {
  detail::check_defined(x, "norm", "input");
  detail::check_floating(x, "norm", "input");
  TSE_CHECK(p > 0, "norm: p must be > 0, got ", p, " (input shape ", x.shape_str(), ")");
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, "norm");
  if (std::isinf(p)) {
    TSE_CHECK_INDEX(r.count > 0, "norm: the inf-norm over dims ", shape_to_string(dims), " of the input ",
                    x.shape_str(), " covers no elements; the reduction has no identity");
    // max |x|: amax's backward splits the gradient among tied maxima, abs's is 0 at 0.
    return amax(abs(x), dims, keepdim);
  }
  Tensor out = Tensor::empty(r.out_sizes, x.dtype(), x.device());
  k_norm.get(x.device(), "norm")(out, x, r.mask, p);
  if (needs_grad({x})) {
    record("norm", {x}, {out}, [r, p, sx = SavedTensor(x), so = SavedTensor(out)](const Grads& g) -> Grads {
      // d|x|_p/dx = x |x|^(p-2) / |x|_p^(p-1); taken as 0 where x == 0 (p < 2 would give 0 * inf)
      // and where the norm is 0 (the 2-norm's subgradient at 0, PyTorch's convention).
      const Tensor xv = sx.unpack("norm");
      const Tensor nv = so.unpack("norm").reshape(r.keep_sizes);
      const Tensor scaled_x = p == 2.0 ? xv : masked_fill(mul(xv, pow(abs(xv), p - 2.0)), eq(xv, 0.0), 0.0);
      const Tensor scale =
          masked_fill(div(g[0].reshape(r.keep_sizes), p == 2.0 ? nv : pow(nv, p - 1.0)), eq(nv, 0.0), 0.0);
      return {mul(scaled_x, scale)};
    });
  }
  return out;
}

}  // namespace tse::ops

namespace tse::autograd {

Tensor sum_to(const Tensor& grad, const Shape& sizes) {
  if (grad.sizes() == sizes) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(sizes.size());
  TSE_ASSERT(lead >= 0, "sum_to: gradient ", grad.shape_str(), " has fewer dims than ", shape_to_string(sizes));
  Shape dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead || (sizes[d - lead] == 1 && grad.sizes()[d] != 1)) dims.push_back(d);
  }
  Tensor s = dims.empty() ? grad : ops::sum(grad, dims, true);
  return s.reshape(sizes);
}

}  // namespace tse::autograd
