#pragma once
// Internal: the shape bookkeeping shared by reductions.
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::ops::detail {

struct ReduceDims {
  std::vector<bool> mask;  // per input dim: reduced?
  Shape out_sizes;         // result shape (keepdim or not)
  Shape keep_sizes;        // result shape with keepdim (for broadcasting back)
  int64_t count = 1;       // number of elements folded into each output
};

/// dims empty = all dims. Wraps negative dims, rejects repeats.
ReduceDims reduce_dims(const Tensor& x, const Shape& dims, bool keepdim, const char* op);
/// Broadcasts a reduced gradient back to the input shape (a view).
Tensor expand_back(const Tensor& g, const ReduceDims& r, const Shape& in_sizes);

}  // namespace tse::ops::detail
