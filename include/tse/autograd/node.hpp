#pragma once
// The pieces of the tape: AutogradMeta (per tensor), Edge (where a gradient goes), SavedTensor
// (what backward needs, checked against in-place modification), and Node (one recorded op).
//
// Note [The tape]
// Every recorded op gets a Node carrying a sequence number from a monotonically increasing
// counter: the order of sequence numbers IS the tape (the order ops ran in). backward() collects
// the nodes reachable from the loss and replays them in reverse sequence order, which is a valid
// reverse topological order because an op's inputs were always produced before it ran.
// Nodes are owned by the tensors they produced and by the nodes downstream of them (edges), not by
// a global list, so a graph that is never backpropagated (inference without no_grad) is freed
// with its tensors instead of growing a tape forever.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::autograd {

class Node;

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                      // leaves: accumulated gradient
  std::shared_ptr<Node> grad_fn;    // non-leaves: the op that produced the tensor
  uint32_t output_nr = 0;           // which output of grad_fn
};

/// Where the gradient of one op input goes: into a producer node's output slot, or into a leaf.
struct Edge {
  std::shared_ptr<Node> fn;              // producer (non-leaf input)
  uint32_t output_nr = 0;
  std::shared_ptr<AutogradMeta> leaf;    // leaf input that requires grad
  bool valid() const { return fn != nullptr || leaf != nullptr; }
};

/// A tensor kept for backward. Saved without autograd metadata (no reference cycle through the
/// node that saves its own output); the storage version recorded at save time must still hold
/// when backward unpacks it, else the tensor was modified in place and the gradient would be wrong.
class TSE_API SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  /// The saved tensor; AutogradError naming op when it was modified in place since saving.
  Tensor unpack(const char* op) const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};

/// Shape, dtype and device of one node output: lets the engine zero-fill an unused output's grad.
struct OutputInfo {
  Shape sizes;
  DType dtype;
  Device device;
};

class TSE_API Node {
 public:
  using Grads = std::vector<Tensor>;
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// grad_outputs[i] is the gradient of output i (always defined: the engine zero-fills).
  /// Returns one gradient per input (undefined where the input needs none).
  virtual Grads backward(const Grads& grad_outputs) = 0;
  virtual const char* name() const = 0;
  /// Drops saved tensors after a backward without retain_graph.
  virtual void release() { released_ = true; }
  bool released() const { return released_; }

  uint64_t sequence_nr() const { return seq_; }
  std::vector<Edge> next_edges;          // one per input
  std::vector<Shape> input_sizes;        // one per input: backward must return these shapes
  std::vector<OutputInfo> outputs;

 protected:
  bool released_ = false;

 private:
  uint64_t seq_;
};

/// A node whose backward is a closure (captures SavedTensors and scalars). This is how every op
/// defines its backward; release() destroys the closure and with it the saved tensors.
class TSE_API LambdaNode final : public Node {
 public:
  using Fn = std::function<Grads(const Grads&)>;
  LambdaNode(const char* name, Fn fn) : name_(name), fn_(std::move(fn)) {}
  Grads backward(const Grads& grad_outputs) override;
  const char* name() const override { return name_; }
  void release() override {
    fn_ = nullptr;
    released_ = true;
  }

 private:
  const char* name_;
  Fn fn_;
};

/// A node for an op that has no backward yet: backward throws NotImplementedError naming it.
class TSE_API NotImplementedNode final : public Node {
 public:
  explicit NotImplementedNode(const char* name) : name_(name) {}
  Grads backward(const Grads&) override;
  const char* name() const override { return name_; }

 private:
  const char* name_;
};

}  // namespace tse::autograd
