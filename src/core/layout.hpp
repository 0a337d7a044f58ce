#pragma once
// Allocation in another tensor's memory order, for copies that must keep a layout a kernel reads
// without a copy of its own (a transposed GEMM operand converted to another dtype stays
// transposed, so the conversion is one linear pass instead of a transposing gather).
#include <algorithm>
#include <numeric>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::detail {

/// True when t's elements fill a dense block of numel() elements in some dim order (a contiguous
/// tensor or a permutation of one: no gaps, no overlaps, no broadcast); size-1 dims do not count.
inline bool is_dense_permutation(const Tensor& t) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1) dims.push_back(d);
  std::stable_sort(dims.begin(), dims.end(), [&](int64_t x, int64_t y) { return t.stride(x) > t.stride(y); });
  int64_t expected = 1;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) {
    if (t.stride(*it) != expected) return false;
    expected *= t.size(*it);
  }
  return true;
}

/// An uninitialised tensor of t's sizes on t's device in t's memory order: t's strides when t is
/// a dense permutation, else contiguous strides.
inline Tensor empty_in_memory_order(const Tensor& t, DType dtype) {
  if (!is_dense_permutation(t) || t.is_contiguous()) return Tensor::empty(t.sizes(), dtype, t.device());
  Shape strides = t.strides();
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) == 1) strides[static_cast<size_t>(d)] = 1;  // never stepped
  auto storage = std::make_shared<Storage>(static_cast<size_t>(t.numel()) * itemsize(dtype), t.device());
  return Tensor::from_storage(std::move(storage), t.sizes(), strides, 0, dtype);
}

}  // namespace tse::detail
