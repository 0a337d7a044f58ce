#pragma once
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::autograd {

/// Backpropagates grad_outputs (undefined = ones for a one-element output) from outputs:
/// leaves accumulate into .grad (+=). Saved tensors are freed unless retain_graph.
TSE_API void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
                      bool retain_graph = false);

/// Gradients of outputs with respect to inputs, without touching any .grad. An input the outputs
/// do not depend on gets an undefined tensor when allow_unused, else an error.
TSE_API std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                                 const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                                 bool allow_unused = false);

}  // namespace tse::autograd
