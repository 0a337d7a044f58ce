#include "tse/autograd/node.hpp"

#include <atomic>

#include "tse/autograd/function.hpp"
#include "tse/autograd/grad_mode.hpp"

namespace tse::autograd {
namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
thread_local bool t_grad_enabled = true;
}  // namespace

bool GradMode::is_enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool enabled) { t_grad_enabled = enabled; }

Node::Node() : seq_(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

SavedTensor::SavedTensor(const Tensor& t) {
  if (t.defined()) {
    tensor_ = t.detach();
    version_ = t.version();
  }
}

Tensor SavedTensor::unpack(const char* op) const {
  if (tensor_.defined() && tensor_.version() != version_) {
    throw AutogradError(detail::str_cat(
        op, ": a tensor saved for backward was modified in place (version ", version_, " at save, ",
        tensor_.version(), " now); compute the gradient before modifying it or clone it first"));
  }
  return tensor_;
}

Node::Grads LambdaNode::backward(const Grads& grad_outputs) {
  TSE_ASSERT(fn_ != nullptr, "backward of a released node");
  return fn_(grad_outputs);
}

Node::Grads NotImplementedNode::backward(const Grads&) {
  throw NotImplementedError(detail::str_cat(name_, ": backward is not implemented"));
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> record_node(std::shared_ptr<Node> node, const std::vector<Tensor>& inputs,
                                  const std::vector<Tensor>& outputs) {
  node->next_edges.resize(inputs.size());
  node->input_sizes.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined()) continue;
    node->input_sizes[i] = in.sizes();
    if (!in.requires_grad()) continue;
    const auto& meta = in.impl()->autograd;
    Edge& e = node->next_edges[i];
    if (meta->grad_fn) {
      e.fn = meta->grad_fn;
      e.output_nr = meta->output_nr;
    } else {
      e.leaf = meta;
    }
  }
  node->outputs.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->outputs.push_back({out.sizes(), out.dtype(), out.device()});
    if (!is_floating(out.dtype())) continue;  // integer outputs (indices) carry no gradient
    auto meta = std::make_shared<AutogradMeta>();
    meta->requires_grad = true;
    meta->grad_fn = node;
    meta->output_nr = static_cast<uint32_t>(i);
    out.impl()->autograd = std::move(meta);
  }
  return node;
}

}  // namespace tse::autograd
