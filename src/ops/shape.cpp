// Shape ops that copy (cat, stack) or return several views (split, chunk), the free-function
// forms of the views, and broadcasting.
#include "tse/ops/shape.hpp"

#include <algorithm>

#include "src/cpu/elementwise.hpp"
#include "src/dispatch.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/elementwise.hpp"

namespace tse::ops {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

Tensor view(const Tensor& x, const Shape& sizes) { return x.view(sizes); }
Tensor reshape(const Tensor& x, const Shape& sizes) { return x.reshape(sizes); }
Tensor permute(const Tensor& x, const Shape& dims) { return x.permute(dims); }
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) { return x.transpose(d0, d1); }
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) { return x.narrow(dim, start, length); }
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  return x.slice(dim, start, end, step);
}
Tensor select(const Tensor& x, int64_t dim, int64_t index) { return x.select(dim, index); }
Tensor expand(const Tensor& x, const Shape& sizes) { return x.expand(sizes); }
Tensor squeeze(const Tensor& x) { return x.squeeze(); }
Tensor squeeze(const Tensor& x, int64_t dim) { return x.squeeze(dim); }
Tensor unsqueeze(const Tensor& x, int64_t dim) { return x.unsqueeze(dim); }
Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) { return x.flatten(start_dim, end_dim); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (a == b) return a;
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TSE_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_to_string(a), " and ", shape_to_string(b),
              " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {
const tse::detail::KernelTable<tse::detail::CopyFn> k_copy{"copy", &cpu::copy, TSE_CUDA_KERNEL(cuda::copy)};
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  TSE_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  const Tensor& first = tensors[0];
  detail::check_defined(first, "cat", "tensors[0]");
  TSE_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated");
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape out_sizes = first.sizes();
  int64_t total = 0;
  DType dtype = first.dtype();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_defined(t, "cat", "tensors[i]");
    detail::check_same_device(first, t, "cat");
    TSE_CHECK(t.dim() == first.dim(), "cat: tensor ", i, " has ", t.dim(), " dims, tensor 0 has ", first.dim());
    for (int64_t d = 0; d < t.dim(); ++d)
      TSE_CHECK(d == dim || t.sizes()[d] == first.sizes()[d], "cat: sizes must match except in dim ", dim,
                "; tensor ", i, " has shape ", t.shape_str(), ", tensor 0 has ", first.shape_str());
    total += t.sizes()[dim];
    dtype = promote_types(dtype, t.dtype());
  }
  out_sizes[dim] = total;
  Tensor out = Tensor::empty(out_sizes, dtype, first.device());
  int64_t offset = 0;
  std::vector<int64_t> sizes_along;
  for (const Tensor& t : tensors) {
    const int64_t n = t.sizes()[dim];
    if (n > 0) {
      autograd::NoGradGuard ng;
      k_copy.get(t.device(), "cat")(out.narrow(dim, offset, n), t);
    }
    offset += n;
    sizes_along.push_back(n);
  }
  if (needs_grad(tensors)) {
    std::vector<DType> dtypes;
    for (const Tensor& t : tensors) dtypes.push_back(t.dtype());
    record("cat", tensors, {out}, [sizes_along, dtypes, dim](const Grads& g) -> Grads {
      Grads gi;
      int64_t off = 0;
      for (size_t i = 0; i < sizes_along.size(); ++i) {
        Tensor piece = g[0].narrow(dim, off, sizes_along[i]);
        gi.push_back(is_floating(dtypes[i]) ? piece.to(dtypes[i]) : Tensor());
        off += sizes_along[i];
      }
      return gi;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  TSE_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    detail::check_defined(tensors[i], "stack", "tensors[i]");
    TSE_CHECK(tensors[i].sizes() == tensors[0].sizes(), "stack: all tensors must have the same shape; tensor ", i,
              " has ", tensors[i].shape_str(), ", tensor 0 has ", tensors[0].shape_str());
    parts.push_back(tensors[i].unsqueeze(dim));
  }
  return cat(parts, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  detail::check_defined(x, "split", "input");
  TSE_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    TSE_CHECK(s >= 0, "split: negative section size ", s);
    total += s;
  }
  TSE_CHECK(total == x.sizes()[dim], "split: section sizes ", shape_to_string(sizes), " sum to ", total,
            " but dim ", dim, " has size ", x.sizes()[dim]);
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, off, s));
    off += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  detail::check_defined(x, "split", "input");
  TSE_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  TSE_CHECK(split_size > 0 || (split_size == 0 && x.sizes()[dim] == 0), "split: split_size must be positive, got ",
            split_size);
  std::vector<int64_t> sizes;
  const int64_t n = x.sizes()[dim];
  for (int64_t off = 0; off < n; off += split_size) sizes.push_back(std::min(split_size, n - off));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  TSE_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  detail::check_defined(x, "chunk", "input");
  TSE_CHECK(x.dim() > 0, "chunk: cannot chunk a 0-d tensor");
  const int64_t n = x.sizes()[wrap_dim(dim, x.dim(), "chunk")];
  const int64_t size = std::max<int64_t>((n + chunks - 1) / chunks, 1);
  return split(x, size, dim);
}

}  // namespace tse::ops
