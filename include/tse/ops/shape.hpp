#pragma once
// Shape and data-movement ops. Views share storage (see Tensor); the ops here copy. All are
// differentiable in their floating-point inputs and accept any dtype where meaningful.
#include <string>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::ops {

// View ops as free functions (same semantics as the Tensor methods).
TSE_API Tensor view(const Tensor& x, const Shape& sizes);
TSE_API Tensor reshape(const Tensor& x, const Shape& sizes);
TSE_API Tensor permute(const Tensor& x, const Shape& dims);
TSE_API Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
TSE_API Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
TSE_API Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
TSE_API Tensor select(const Tensor& x, int64_t dim, int64_t index);
TSE_API Tensor expand(const Tensor& x, const Shape& sizes);
TSE_API Tensor squeeze(const Tensor& x);
TSE_API Tensor squeeze(const Tensor& x, int64_t dim);
TSE_API Tensor unsqueeze(const Tensor& x, int64_t dim);
TSE_API Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
/// The broadcast shape of a and b (numpy rules); ValueError naming op otherwise.
TSE_API Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

/// Concatenates along dim; all tensors share dtype, device and the other sizes.
TSE_API Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Stacks along a new dim.
TSE_API Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Pieces of split_size (the last may be smaller), as views.
TSE_API std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
TSE_API std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// chunks pieces of ceil(size / chunks) (torch.chunk), as views.
TSE_API std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
/// torch.nn.functional.pad: pads = (left_last, right_last, left_second_last, ...);
/// mode "constant" (negative pads crop), "reflect" (pad < size), "replicate", "circular".
TSE_API Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode = "constant",
                   double value = 0.0);
/// Rolls by shifts along dims (empty dims: the flattened tensor).
TSE_API Tensor roll(const Tensor& x, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims = {});
TSE_API Tensor flip(const Tensor& x, const std::vector<int64_t>& dims);
/// Tiles x (torch.Tensor.repeat): repeats.size() >= x.dim(); leading new dims allowed.
TSE_API Tensor repeat(const Tensor& x, const std::vector<int64_t>& repeats);
/// Lower / upper triangle of the last two dims, diagonal offset k.
TSE_API Tensor tril(const Tensor& x, int64_t k = 0);
TSE_API Tensor triu(const Tensor& x, int64_t k = 0);

}  // namespace tse::ops
