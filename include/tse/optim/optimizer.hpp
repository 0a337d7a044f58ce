#pragma once
/// \file optimizer.hpp
/// Optimisers over parameter tensors: AdamW and SGD with PyTorch's update rules, parameter groups
/// (per-group lr and hyper-parameters), and checkpoint state that resumes bit-identically.
///
/// \code
///   auto model = std::make_shared<models::ConformerTSE>();
///   optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
///   for (...) {
///     opt.zero_grad();
///     loss(model).backward();
///     opt.step();                 // params whose grad is undefined are skipped
///   }
///   auto tensors = opt.state_tensors();  // "state.{i}.exp_avg", ... (i over all groups, in order)
///   std::string json = opt.state_json();
///   optim::AdamW resumed(model->parameters());
///   resumed.load_state(tensors, json);   // continues exactly as `opt` would
/// \endcode
///
/// Updates run under NoGradGuard, in place, on CPU float32 / float64 contiguous parameters with
/// gradients of the same dtype and shape (a non-contiguous gradient is copied first), all
/// parameters of a step in one fused kernel call. Each element's update depends on that element
/// only, so results are the same at every thread count.
/// Parameters on CUDA raise NotImplementedError for now.
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tse/core/tensor.hpp"
#include "tse/nn/module.hpp"

namespace tse::optim {

/// A set of parameters sharing hyper-parameters. AdamW reads lr, weight_decay, beta1, beta2, eps,
/// amsgrad; SGD reads lr, weight_decay, momentum, dampening, nesterov. Build one with
/// AdamW::make_group / SGD::make_group to start from an optimiser's options.
struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
  /// The lr schedules scale (LRScheduler: lr = initial_lr x factor). NaN: set to lr when the group
  /// is added to an optimiser.
  double initial_lr = std::numeric_limits<double>::quiet_NaN();
  // AdamW
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;
  // SGD
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
};

/// Per-parameter state: the number of updates it received and the buffers its optimiser keeps
/// (undefined until its first update; only those the optimiser uses are ever defined).
struct ParamState {
  int64_t step = 0;
  Tensor exp_avg;          ///< AdamW: first moment
  Tensor exp_avg_sq;       ///< AdamW: second moment
  Tensor max_exp_avg_sq;   ///< AdamW with amsgrad: running max of the second moment
  Tensor momentum_buffer;  ///< SGD with momentum != 0
};

class TSE_API Optimizer {
 public:
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  virtual ~Optimizer() = default;

  /// "AdamW", "SGD": checked by load_state.
  virtual std::string type_name() const = 0;

  /// One update of every parameter that has a gradient (undefined grads are skipped: no update,
  /// no step count, no state). Runs under NoGradGuard. ValueError naming the parameter (group,
  /// index, shape) for a non-contiguous or non-floating parameter or a gradient of another
  /// shape or dtype; NotImplementedError for a device without a kernel.
  void step();
  /// Clears every parameter's gradient: undefined (set_to_none, PyTorch's default) or zeroed.
  void zero_grad(bool set_to_none = true);

  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  size_t num_groups() const { return groups_.size(); }
  /// The state of parameter `index` of group `group`.
  const ParamState& state(size_t group, size_t index) const;
  /// The current lr of a group (IndexError for a group that does not exist).
  double lr(size_t group = 0) const;
  /// Sets the lr of every group / of one group (ValueError for a negative or non-finite lr).
  void set_lr(double lr);
  void set_lr(size_t group, double lr);
  /// Appends a group with every option as given (validated; initial_lr defaults to lr). A
  /// parameter already in the optimiser is a ValueError, as in PyTorch.
  void add_param_group(ParamGroup group);
  /// Appends a group of `params` with the optimiser's default options.
  void add_param_group(std::vector<Tensor> params);

  // ---- checkpoint state ----------------------------------------------------------------------
  /// The defined state buffers as "state.{i}.{name}", i = the parameter's index over all groups in
  /// order, names as PyTorch's (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer). The
  /// tensors are the live buffers (shared storage): copy them to keep a snapshot.
  nn::NamedTensors state_tensors() const;
  /// {"type", "format", "groups": [{hyper-parameters incl. lr and initial_lr, "num_params"}],
  /// "steps": [per-parameter update counts over all groups]} as JSON text.
  std::string state_json() const;
  /// Restores state_tensors() / state_json() of an optimiser of the same type over parameters of
  /// the same shapes, grouped the same way. Everything is checked before anything changes:
  /// optimiser type, group count, parameter count per group, each tensor's presence, shape and
  /// dtype (against its parameter); a mismatch throws ValueError naming what differs. Group
  /// hyper-parameters (lr included) come from the JSON; tensors are copied.
  void load_state(const nn::NamedTensors& tensors, const std::string& json);
  void load_state(const std::map<std::string, Tensor>& tensors, const std::string& json);

 protected:
  explicit Optimizer(ParamGroup defaults) : defaults_(std::move(defaults)) {}
  /// ValueError naming the option for a hyper-parameter out of range (`who`: the caller).
  virtual void check_group(const ParamGroup& g, const char* who) const = 0;
  /// The state buffer names this optimiser keeps for a parameter of group g after one update.
  virtual std::vector<std::string> state_names(const ParamGroup& g) const = 0;
  /// A parameter to update in this step: checked (grad of its shape, dtype and device, both
  /// contiguous); state->step already counts the update.
  struct Work {
    const ParamGroup* group;
    ParamState* state;
    Tensor param;
    Tensor grad;
  };
  /// Updates every parameter of the step in one fused kernel call (one parallel region).
  virtual void update(const std::vector<Work>& work) = 0;
  void add_groups(std::vector<ParamGroup> groups);

  ParamGroup defaults_;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;
  std::vector<Work> work_;  // reused by step(): no allocation per step
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

/// AdamW (Loshchilov & Hutter), PyTorch's torch.optim.AdamW update for each element, with
/// t = the parameter's step count after this update:
///   p *= 1 - lr * weight_decay
///   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
///   amsgrad: vmax = max(vmax, v), and v_hat below is vmax
///   p += -(lr / (1 - beta1^t)) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)
/// Options: lr >= 0, beta1 and beta2 in [0, 1), eps >= 0, weight_decay >= 0 (ValueError
/// otherwise, naming the option).
class TSE_API AdamW : public Optimizer {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  /// Groups as given (each complete); `defaults` is used by add_param_group(params).
  explicit AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults = {});
  static ParamGroup make_group(std::vector<Tensor> params, const AdamWOptions& options = {});
  std::string type_name() const override { return "AdamW"; }

 protected:
  void check_group(const ParamGroup& g, const char* who) const override;
  std::vector<std::string> state_names(const ParamGroup& g) const override;
  void update(const std::vector<Work>& work) override;
};

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

/// SGD with momentum, PyTorch's torch.optim.SGD for each element:
///   g += weight_decay * p
///   momentum != 0: buf = g on the first update, else buf = momentum * buf + (1 - dampening) * g;
///                  g = nesterov ? g + momentum * buf : buf
///   p += -lr * g
/// Options: lr >= 0, momentum >= 0, weight_decay >= 0, dampening finite; nesterov needs
/// momentum > 0 and dampening == 0 (ValueError otherwise, naming the option).
class TSE_API SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, const SGDOptions& options);
  explicit SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults);
  static ParamGroup make_group(std::vector<Tensor> params, const SGDOptions& options);
  std::string type_name() const override { return "SGD"; }

 protected:
  void check_group(const ParamGroup& g, const char* who) const override;
  std::vector<std::string> state_names(const ParamGroup& g) const override;
  void update(const std::vector<Work>& work) override;
};

}  // namespace tse::optim
