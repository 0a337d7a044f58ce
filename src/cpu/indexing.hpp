#pragma once
// Internal kernel interface of the index-based ops (gather, index_select, scatter_add). The op
// layer has checked shapes, dtypes and devices; the kernels check the index values, because only
// they read them, and throw IndexError naming op for a value outside [0, size of dim).
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// out[..., j, ...] = x[..., index[..., j, ...], ...] along dim. out has index's sizes; x and index
/// any strides (index.size(d) <= x.size(d) for d != dim); index i64 or i32; any dtype.
using GatherFn = void(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index, const char* op);
/// out[..., index[..., j, ...], ...] += src[..., j, ...] along dim, for every position of index;
/// index.size(d) <= src.size(d) and, for d != dim, <= out.size(d). f32, f64, i32, i64.
using ScatterAddFn = void(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const char* op);

}  // namespace detail

namespace cpu {
using namespace detail;
GatherFn gather;
ScatterAddFn scatter_add;
}  // namespace cpu

}  // namespace tse
