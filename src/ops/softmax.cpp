// softmax, log_softmax: argument checks, the (outer, axis, inner) view, dispatch and the tape
// node. Kernels: src/cpu/softmax.cpp.
//
// A non-contiguous input is copied first. Handing its strides to oneDNN instead selects the
// reference kernel, 45-100x slower than the JIT on contiguous rows, while copy + JIT costs at most
// 2.3x the JIT alone (measured on (256, 64, 64) and (8, 1001, 1001) with a transposed last dim).
#include "tse/ops/softmax.hpp"

#include "src/cpu/softmax.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using tse::detail::KernelTable;
using tse::detail::SoftmaxShape;

namespace {

const KernelTable<tse::detail::SoftmaxFn> k_softmax{"softmax", &cpu::softmax, TSE_CUDA_KERNEL(cuda::softmax)};
const KernelTable<tse::detail::SoftmaxBackwardFn> k_softmax_backward{"softmax_backward", &cpu::softmax_backward,
                                                                     TSE_CUDA_KERNEL(cuda::softmax_backward)};

/// x's sizes as (outer, axis, inner) around dim d (a 0-D x is a one-element row).
SoftmaxShape shape_around(const Shape& sizes, int64_t d, bool log) {
  SoftmaxShape s;
  s.log = log;
  const int64_t r = static_cast<int64_t>(sizes.size());
  for (int64_t i = 0; i < r; ++i) {
    if (i < d) s.outer *= sizes[i];
    if (i == d) s.axis = sizes[i];
    if (i > d) s.inner *= sizes[i];
  }
  return s;
}

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  detail::check_defined(x, op, "input");
  detail::check_floating(x, op, "input");
  const int64_t r = x.dim(), lo = r == 0 ? -1 : -r, hi = r == 0 ? 0 : r - 1;
  TSE_CHECK_INDEX(dim >= lo && dim <= hi, op, ": dim ", dim, " out of range for input of shape ", x.shape_str(),
                  " (expected in [", lo, ", ", hi, "])");
  const SoftmaxShape s = shape_around(x.sizes(), wrap_dim(dim, r, op), log);
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  k_softmax.get(x.device(), op)(out, x.detach().contiguous(), s);

  if (needs_grad({x})) {
    record(op, {x}, {out}, [s, op, sy = SavedTensor(out)](const Grads& g) -> Grads {
      const Tensor y = sy.unpack(op);
      Tensor gx = Tensor::empty(y.sizes(), y.dtype(), y.device());
      k_softmax_backward.get(y.device(), op)(gx, g[0].contiguous(), y, s);
      return {gx};
    });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }

Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace tse::ops
