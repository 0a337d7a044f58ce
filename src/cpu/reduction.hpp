#pragma once
// Internal kernel interface of the reduction family. `reduce` flags the dims of x to fold;
// out is contiguous with x's kept dims (keepdim or not: same linear order).
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {
using SumFn = void(const Tensor& out, const Tensor& x, const std::vector<bool>& reduce);
}  // namespace detail

namespace cpu {
detail::SumFn sum;
}  // namespace cpu
}  // namespace tse
