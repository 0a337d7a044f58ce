// Reductions: argument checks, output shapes, dispatch, tape nodes.
#include "tse/ops/reduction.hpp"

#include <algorithm>

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
const tse::detail::KernelTable<tse::detail::SumFn> k_sum{"sum", &cpu::sum, nullptr};
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
    record("sum", {x}, {out}, [r, in_sizes](const Grads& g) -> Grads {
      return {detail::expand_back(g[0], r, in_sizes)};
    });
  }
  return out;
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  detail::check_defined(x, "mean", "input");
  detail::check_floating(x, "mean", "input");
  const detail::ReduceDims r = detail::reduce_dims(x, dims, keepdim, "mean");
  // mean = sum / count; the division is recorded, so the gradient follows.
  return div(sum(x, dims, keepdim), static_cast<double>(std::max<int64_t>(r.count, 1)));
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
