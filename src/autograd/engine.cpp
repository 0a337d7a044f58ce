// Backward replay. See Note [The tape] in tse/autograd/node.hpp.
//
// Accumulation contract: within one backward, gradients flowing into the same (node, output)
// slot are summed into a per-call buffer; leaves accumulate into .grad with += across calls
// (gradient accumulation over micro-batches works); grad() never touches .grad.
// Backward closures run with grad mode off. A node's saved tensors are released after it runs
// unless retain_graph.
#include "tse/autograd/engine.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "tse/autograd/function.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/autograd/node.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"

namespace tse::autograd {
namespace {

void add_into(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
  } else {
    slot = ops::add(slot, g);
  }
}

struct Capture {
  // Which gradients grad() returns: leaves by metadata, non-leaves by (node, output) slot.
  std::unordered_map<const AutogradMeta*, size_t> leaf_index;
  std::unordered_map<const Node*, std::vector<std::pair<uint32_t, size_t>>> slot_index;
  std::vector<Tensor> results;
};

void check_grad_output(const Tensor& out, const Tensor& g, const char* what) {
  TSE_CHECK(g.sizes() == out.sizes(), what, ": grad_output has shape ", g.shape_str(), " but the output has ",
            out.shape_str());
  TSE_CHECK(g.device() == out.device(), what, ": grad_output is on ", g.device(), " but the output is on ",
            out.device());
  TSE_CHECK(g.dtype() == out.dtype(), what, ": grad_output has dtype ", g.dtype(), " but the output has ",
            out.dtype());
}

void run_backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool retain_graph,
                  Capture* capture, const char* what) {
  TSE_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), what, ": got ", outputs.size(),
            " outputs but ", grad_outputs.size(), " grad_outputs");
  NoGradGuard no_grad;

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<Node*> roots;
  auto deliver_leaf = [&](const std::shared_ptr<AutogradMeta>& leaf, Tensor g) {
    if (capture) {
      auto it = capture->leaf_index.find(leaf.get());
      if (it != capture->leaf_index.end()) add_into(capture->results[it->second], g);
      return;
    }
    TSE_ASSERT(is_floating(g.dtype()));
    if (!leaf->grad.defined()) {
      // .grad must own its buffer (later += must not write into anyone else's tensor): take g
      // when nothing else can see it, copy it otherwise.
      const bool unshared = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous();
      leaf->grad = unshared ? g : ops::copy(g);
    } else {
      leaf->grad.add_(g);
    }
  };

  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    TSE_CHECK(out.defined(), what, ": output ", i, " is undefined");
    TSE_CHECK(out.requires_grad(), what, ": output ", i,
              " does not require grad (no input requires grad, or it was computed under no_grad)");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      TSE_CHECK(out.numel() == 1, what, ": grad can be implicitly created only for one-element outputs; output ",
                i, " has shape ", out.shape_str());
      g = ops::ones(out.sizes(), out.dtype(), out.device());
    }
    check_grad_output(out, g, what);
    const auto& meta = out.impl()->autograd;
    if (meta->grad_fn) {
      auto& buf = buffers[meta->grad_fn.get()];
      buf.resize(meta->grad_fn->outputs.size());
      add_into(buf[meta->output_nr], g);
      roots.push_back(meta->grad_fn.get());
    } else {
      deliver_leaf(meta, g);
    }
  }

  // Collect the reachable nodes, then replay them in reverse tape order.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    order.push_back(n);
    for (const Edge& e : n->next_edges)
      if (e.fn) stack.push_back(e.fn.get());
  }
  std::sort(order.begin(), order.end(), [](Node* a, Node* b) { return a->sequence_nr() > b->sequence_nr(); });

  for (Node* node : order) {
    auto it = buffers.find(node);
    if (it == buffers.end()) continue;  // no gradient reached it
    std::vector<Tensor> grads = std::move(it->second);
    buffers.erase(it);
    if (node->released()) {
      throw AutogradError(detail::str_cat(
          what, ": trying to backward through ", node->name(),
          " a second time, but its saved tensors were freed; pass retain_graph=true to the first backward"));
    }
    grads.resize(node->outputs.size());
    for (size_t k = 0; k < grads.size(); ++k) {
      if (!grads[k].defined()) {
        const OutputInfo& o = node->outputs[k];
        grads[k] = ops::zeros(o.sizes, o.dtype, o.device);
      }
    }
    if (capture) {
      auto cs = capture->slot_index.find(node);
      if (cs != capture->slot_index.end())
        for (auto [out_nr, idx] : cs->second) add_into(capture->results[idx], grads[out_nr]);
    }
    std::vector<Tensor> in_grads = node->backward(grads);
    TSE_ASSERT(in_grads.size() == node->next_edges.size(), node->name(), " returned ", in_grads.size(),
               " grads for ", node->next_edges.size(), " inputs");
    if (!retain_graph) node->release();
    for (size_t k = 0; k < in_grads.size(); ++k) {
      const Edge& e = node->next_edges[k];
      if (!e.valid() || !in_grads[k].defined()) continue;
      TSE_ASSERT(in_grads[k].sizes() == node->input_sizes[k], node->name(), " gradient ", k, " has shape ",
                 in_grads[k].shape_str(), ", expected ", shape_to_string(node->input_sizes[k]));
      if (e.fn) {
        auto& buf = buffers[e.fn.get()];
        buf.resize(e.fn->outputs.size());
        add_into(buf[e.output_nr], in_grads[k]);
      } else {
        deliver_leaf(e.leaf, std::move(in_grads[k]));
      }
    }
  }
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  run_backward(outputs, grad_outputs, retain_graph, nullptr, "backward");
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool allow_unused) {
  Capture cap;
  cap.results.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    TSE_CHECK(in.defined() && in.requires_grad(), "grad: input ", i, " does not require grad");
    const auto& meta = in.impl()->autograd;
    if (meta->grad_fn) {
      cap.slot_index[meta->grad_fn.get()].push_back({meta->output_nr, i});
    } else {
      cap.leaf_index[meta.get()] = i;
    }
  }
  // An input that is also an output receives its grad_output directly.
  run_backward(outputs, grad_outputs, retain_graph, &cap, "grad");
  for (size_t i = 0; i < inputs.size(); ++i) {
    TSE_CHECK(allow_unused || cap.results[i].defined(), "grad: input ", i,
              " was not used to compute the outputs (pass allow_unused=true to get an undefined gradient)");
  }
  return cap.results;
}

}  // namespace tse::autograd
