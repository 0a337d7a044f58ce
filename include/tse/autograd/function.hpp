#pragma once
// Helpers ops use to record themselves on the tape:
//
//   Tensor out = ...;                                   // computed under any grad mode
//   if (autograd::needs_grad({a, b}))
//     autograd::record("mul", {a, b}, {out},
//       [sa = SavedTensor(a), sb = SavedTensor(b)](const Grads& g) -> Grads {
//         return {g[0] * sb.unpack("mul"), g[0] * sa.unpack("mul")};
//       });
//
// Backward closures run with grad mode off; they may use any op.
#include <initializer_list>
#include <vector>

#include "tse/autograd/grad_mode.hpp"
#include "tse/autograd/node.hpp"

namespace tse::autograd {

using Grads = Node::Grads;

/// True when grad mode is on and any defined input requires grad.
TSE_API bool needs_grad(std::initializer_list<const Tensor*> inputs);
TSE_API bool needs_grad(const std::vector<Tensor>& inputs);
inline bool needs_grad(std::initializer_list<Tensor> inputs) {
  return needs_grad(std::vector<Tensor>(inputs));
}

/// Records node for inputs -> outputs: wires edges from the inputs and makes the outputs
/// non-leaf tensors that require grad. Returns the node.
TSE_API std::shared_ptr<Node> record_node(std::shared_ptr<Node> node, const std::vector<Tensor>& inputs,
                                          const std::vector<Tensor>& outputs);
inline std::shared_ptr<Node> record(const char* name, const std::vector<Tensor>& inputs,
                                    const std::vector<Tensor>& outputs, LambdaNode::Fn fn) {
  return record_node(std::make_shared<LambdaNode>(name, std::move(fn)), inputs, outputs);
}

/// Reduces a broadcast gradient back to the shape of the input it flowed from (sum over the
/// broadcast dims). Used by every broadcasting op's backward.
TSE_API Tensor sum_to(const Tensor& grad, const Shape& sizes);

}  // namespace tse::autograd
