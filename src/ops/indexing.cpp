// Index-based ops: argument checks, output allocation, kernel dispatch and the tape nodes.
// Kernels: src/cpu/indexing.cpp.
#include "tse/ops/indexing.hpp"

#include "src/cpu/elementwise.hpp"
#include "src/cpu/indexing.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/factory.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using autograd::SavedTensor;
using tse::detail::KernelTable;

namespace {

const KernelTable<tse::detail::GatherFn> k_gather{"gather", &cpu::gather, nullptr};
const KernelTable<tse::detail::ScatterAddFn> k_scatter_add{"scatter_add", &cpu::scatter_add, nullptr};
const KernelTable<tse::detail::CopyFn> k_copy{"copy", &cpu::copy, TSE_CUDA_KERNEL(cuda::copy)};

void check_index(const Tensor& x, const Tensor& index, const char* op) {
  detail::check_defined(index, op, "index");
  detail::check_same_device(x, index, op);
  TSE_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, op,
            ": argument 'index' must be int64 or int32, got ", index.dtype(), " (shape ", index.shape_str(), ")");
}

Tensor gather_raw(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  Tensor out = Tensor::empty(index.sizes(), x.dtype(), x.device());
  if (out.numel() > 0) k_gather.get(x.device(), op)(out, x, dim, index, op);
  return out;
}

/// Zeros of sizes with grad added at index along dim: the backward of gather and index_select.
Tensor scatter_into_zeros(const Shape& sizes, int64_t dim, const Tensor& index, const Tensor& grad, const char* op) {
  Tensor out = zeros(sizes, grad.dtype(), grad.device());
  if (index.numel() > 0) k_scatter_add.get(grad.device(), op)(out, dim, index, grad, op);
  return out;
}

/// gather after the op's own checks; op names the errors and the tape node.
Tensor gather_checked(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  Tensor out = gather_raw(x, dim, index, op);
  if (needs_grad({x})) {
    record(op, {x}, {out}, [op, dim, x_sizes = x.sizes(), saved_index = SavedTensor(index)](const Grads& g) -> Grads {
      return {scatter_into_zeros(x_sizes, dim, saved_index.unpack(op), g[0], op)};
    });
  }
  return out;
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "gather", "input");
  check_index(x, index, "gather");
  dim = wrap_dim(dim, x.dim(), "gather");
  TSE_CHECK(index.dim() == x.dim(), "gather: index must have as many dims as the input; index has shape ",
            index.shape_str(), ", input ", x.shape_str());
  for (int64_t d = 0; d < x.dim(); ++d)
    TSE_CHECK(d == dim || index.sizes()[d] <= x.sizes()[d], "gather: index of shape ", index.shape_str(),
              " is larger than the input of shape ", x.shape_str(), " in dim ", d, " (only dim ", dim,
              " may be larger)");
  return gather_checked(x, dim, index, "gather");
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "index_select", "input");
  check_index(x, index, "index_select");
  TSE_CHECK(index.dim() <= 1, "index_select: index must be 0-d or 1-d, got shape ", index.shape_str());
  dim = wrap_dim(dim, x.dim(), "index_select");
  if (x.dim() == 0) {
    TSE_CHECK(index.numel() == 1, "index_select: a 0-d input takes one index, got shape ", index.shape_str());
    return gather_checked(x, 0, index.reshape({}), "index_select");
  }
  // Every line along dim reads the same indices: index laid along dim, broadcast over the others.
  Shape out_sizes = x.sizes();
  out_sizes[dim] = index.numel();
  Shape line_strides(static_cast<size_t>(x.dim()), 0);
  line_strides[dim] = index.dim() == 0 ? 0 : index.strides()[0];
  const Tensor line_index =
      Tensor::from_storage(index.storage(), out_sizes, line_strides, index.storage_offset(), index.dtype());
  return gather_checked(x, dim, line_index, "index_select");
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  detail::check_defined(x, op, "input");
  detail::check_defined(src, op, "src");
  check_index(x, index, op);
  detail::check_same_device(x, src, op);
  TSE_CHECK(src.dtype() == x.dtype(), "scatter_add: src has dtype ", src.dtype(), ", the input has ", x.dtype());
  TSE_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64 || x.dtype() == DType::i32 || x.dtype() == DType::i64,
            "scatter_add: unsupported dtype ", x.dtype(), " (expected float32, float64, int32 or int64)");
  dim = wrap_dim(dim, x.dim(), op);
  TSE_CHECK(index.dim() == x.dim() && src.dim() == x.dim(),
            "scatter_add: input, index and src must have the same number of dims; got shapes ", x.shape_str(), ", ",
            index.shape_str(), " and ", src.shape_str());
  for (int64_t d = 0; d < x.dim(); ++d) {
    TSE_CHECK(index.sizes()[d] <= src.sizes()[d], "scatter_add: index of shape ", index.shape_str(),
              " is larger than src of shape ", src.shape_str(), " in dim ", d);
    TSE_CHECK(d == dim || index.sizes()[d] <= x.sizes()[d], "scatter_add: index of shape ", index.shape_str(),
              " is larger than the input of shape ", x.shape_str(), " in dim ", d, " (only dim ", dim,
              " may be larger)");
  }
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  if (out.numel() > 0) k_copy.get(x.device(), op)(out, x);
  if (index.numel() > 0) k_scatter_add.get(x.device(), op)(out, dim, index, src, op);
  if (needs_grad({x, src})) {
    const bool wants_x = x.requires_grad(), wants_src = src.requires_grad();
    const Shape src_sizes = src.sizes();
    record(op, {x, src}, {out},
           [op, dim, wants_x, wants_src, src_sizes, saved_index = SavedTensor(wants_src ? index : Tensor())](
               const Grads& g) -> Grads {
             Tensor gx = wants_x ? g[0] : Tensor();
             Tensor gsrc;
             if (wants_src) {
               const Tensor idx = saved_index.unpack(op);
               gsrc = gather_raw(g[0], dim, idx, op);
               if (gsrc.sizes() != src_sizes) {  // src entries outside index's extent are never added: zero
                 Tensor full = zeros(src_sizes, gsrc.dtype(), gsrc.device());
                 Tensor region = full;
                 for (int64_t d = 0; d < full.dim(); ++d) region = region.narrow(d, 0, idx.sizes()[d]);
                 region.copy_(gsrc);
                 gsrc = full;
               }
             }
             return {gx, gsrc};
           });
  }
  return out;
}

}  // namespace tse::ops
