#pragma once
// Internal kernel interface of the copying shape ops (pad, roll, flip, tril/triu). The op layer
// checks arguments and allocates the outputs; outputs are always contiguous.
#include <cstdint>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// Per-dim source positions: src_index[d] is empty (identity: out.size(d) == src.size(d)) or holds
/// out.size(d) positions in [0, src.size(d)). An empty list means identity in every dim.
using DimIndexMaps = std::vector<std::vector<int64_t>>;

/// out[i0, ..., in] = src[map0(i0), ..., mapn(in)]; out contiguous, src any strides, any dtype.
using IndexMapCopyFn = void(const Tensor& out, const Tensor& src, const DimIndexMaps& src_index);
/// The adjoint of IndexMapCopyFn along one dim: out[..., src_index[i], ...] += grad[..., i, ...].
/// out and grad contiguous with equal sizes except in dim; f32/f64.
using IndexMapAccumulateFn = void(const Tensor& out, const Tensor& grad, int64_t dim,
                                  const std::vector<int64_t>& src_index);
/// out = x with the entries above (lower) / below (!lower) diagonal k of the last two dims zeroed.
/// out contiguous, x any strides, any dtype.
using TriangleFn = void(const Tensor& out, const Tensor& x, int64_t k, bool lower);

}  // namespace detail

namespace cpu {
using namespace detail;
IndexMapCopyFn index_map_copy;
IndexMapAccumulateFn index_map_accumulate;
TriangleFn triangle;
}  // namespace cpu

}  // namespace tse
