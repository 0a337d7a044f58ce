#pragma once
/// \file module.hpp
/// nn::Module: the unit that owns parameters, buffers and child modules under PyTorch-style dotted
/// names, so `state_dict()` of a libtse model reads exactly like PyTorch's for the same
/// architecture (and official checkpoints map onto ours by name).
///
/// Ownership: a module's tensors are members of the subclass (`Tensor weight;`); the module
/// registers a pointer to each member. `to()` and `load_state_dict()` update the members
/// themselves, so a subclass always sees the current tensors. Modules therefore cannot be copied
/// or moved; they are created with std::make_shared and children are held by shared_ptr.
///
/// \code
///   struct Block : nn::Module {
///     std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(4, 8));
///     Tensor scale = ops::ones({8});
///     Block() { register_parameter("scale", &scale); }
///     Tensor forward(const Tensor& x) { return fc->forward(x) * scale; }
///   };
///   auto m = std::make_shared<Block>();
///   m->named_parameters();   // {"fc.weight", "fc.bias", "scale"}, in that order
/// \endcode
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::nn {

/// An ordered list of (dotted name, tensor): the order PyTorch uses for the same module tree
/// (each module's parameters, then its buffers, then its children, depth first).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// How a buffer takes part in state_dict() / load_state_dict().
enum class BufferKind {
  persistent,      ///< saved and required on a strict load (BatchNorm running stats)
  optional,        ///< saved, but a strict load accepts its absence (BatchNorm num_batches_tracked)
  non_persistent,  ///< never saved (derived working values, e.g. an STFT window)
  /// A value computed from the configuration that official checkpoints nevertheless store (a
  /// relative-position index, a shifted-window mask): never saved, but a state dict may carry
  /// it, and load_state_dict then checks it against ours instead of copying it.
  constant,
};

/// What a non-strict load_state_dict() did not find or did not use.
struct LoadResult {
  std::vector<std::string> missing_keys;     ///< ours, absent from the state dict
  std::vector<std::string> unexpected_keys;  ///< in the state dict, not ours
};

class TSE_API Module {
 public:
  Module() = default;
  Module(const Module&) = delete;  // registered pointers point into this object
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  /// The class name shown in errors and reprs ("Linear", "ConformerLayer", ...).
  virtual std::string type_name() const { return "Module"; }
  /// One line of settings for repr (e.g. "in_features=256, out_features=513").
  virtual std::string extra_repr() const { return ""; }
  /// A PyTorch-style tree of the module and its children.
  std::string repr() const;

  // ---- introspection --------------------------------------------------------------------
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  /// The dotted names of the constants: BufferKind::constant buffers and register_constant()
  /// values, which state_dict() leaves out and load_state_dict() verifies when present.
  std::vector<std::string> constant_names(bool recurse = true) const;
  /// Their values (computed on demand for register_constant()).
  NamedTensors named_constants(bool recurse = true) const;
  /// Largest |difference| a stored constant may have from ours, relative to its peak (>= 1):
  /// official files round the same formulas differently (float32 DFT rows, MODELS.md D4).
  static constexpr double kConstantTolerance = 1e-6;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  /// This module ("") and every descendant, depth first, with dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules();
  /// The child registered under `name` (one level; dotted paths are followed). Throws if absent.
  std::shared_ptr<Module> child(const std::string& name) const;
  /// Number of parameter values (trainable_only: those with requires_grad).
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- state ----------------------------------------------------------------------------
  /// Parameters and persistent/optional buffers, detached (they share storage with the module).
  NamedTensors state_dict() const;
  /// Copies every tensor of `state` into the matching parameter or buffer (converting the dtype,
  /// never the shape). Checks everything before changing anything: with strict, any missing,
  /// unexpected or mis-shaped key throws a ValueError that lists all of them; without strict,
  /// mis-shaped keys still throw, and missing/unexpected ones are returned.
  /// Keys naming a constant are checked against its computed value (shape, and values within
  /// kConstantTolerance of its peak): a mismatch is an error, absence is fine.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);
  LoadResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // ---- modes and placement --------------------------------------------------------------
  /// Training mode for this module and all children (Dropout, BatchNorm, ... read it).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Moves every parameter and buffer to `device` / casts floating ones to `dtype` (parameters
  /// stay leaves with their requires_grad; gradients are dropped). Returns *this.
  Module& to(Device device);
  Module& to(DType dtype);
  /// Clears the gradient of every parameter (undefined, as PyTorch's set_to_none).
  void zero_grad();
  /// Sets requires_grad on every parameter (freezing / unfreezing a sub-tree).
  void requires_grad_(bool requires_grad = true);

 protected:
  /// Registers a member tensor as a parameter (made a leaf that requires grad when
  /// `requires_grad`). An undefined tensor is not registered (an absent bias), as PyTorch's None.
  void register_parameter(const std::string& name, Tensor* slot, bool requires_grad = true);
  void register_buffer(const std::string& name, Tensor* slot, BufferKind kind = BufferKind::persistent);
  /// A constant that the module does not hold (a DFT matrix an official checkpoint stores as a
  /// conv weight): `compute` builds it only when a state dict carries it or named_constants() asks.
  /// The name may be dotted, mirroring an official key below modules we do not build.
  void register_constant(const std::string& name, std::function<Tensor()> compute);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }
  /// Called by train() after the children have switched: a module with per-mode state may
  /// override it (and may put a child back into another mode).
  virtual void on_train(bool /*on*/) {}

 private:
  struct Slot {
    std::string name;
    Tensor* tensor;
    BufferKind kind;  // parameters: persistent
  };
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void check_new_name(const std::string& name, const char* what) const;
  void visit(const std::string& prefix, const std::function<void(const std::string&, const Module&)>& f) const;
  std::vector<std::pair<std::string, Tensor*>> state_slots();
  void apply_to_tensors(const std::function<Tensor(const Tensor&)>& f);

  std::vector<Slot> parameters_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, std::function<Tensor()>>> computed_constants_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// A list of child modules named "0", "1", ... (PyTorch's nn.ModuleList / the indices of
/// nn.Sequential), so `encoders.3.self_attn.linear_q.weight` reads as in PyTorch.
class TSE_API ModuleList : public Module {
 public:
  std::string type_name() const override { return "ModuleList"; }
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return items_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace tse::nn
