// Optimizer: parameter groups, the step loop (checks, lazy state, dispatch to the fused kernels of
// src/cpu/optim.cpp), and checkpoint state as named tensors + JSON. AdamW and SGD supply the
// option checks, their state names and the per-tensor update.
#include "tse/optim/optimizer.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "src/cpu/optim.hpp"
#include "src/dispatch.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/ops/factory.hpp"

namespace tse::optim {

namespace {

using tse::detail::KernelTable;

const KernelTable<tse::detail::AdamWFn> k_adamw{"AdamW.step", &cpu::adamw, nullptr};
const KernelTable<tse::detail::SGDFn> k_sgd{"SGD.step", &cpu::sgd, nullptr};

constexpr int kStateFormat = 1;
// Buffer names in the order state_tensors() lists them.
const char* const kBufferNames[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"};

Tensor& buffer(ParamState& st, const std::string& name) {
  if (name == "exp_avg") return st.exp_avg;
  if (name == "exp_avg_sq") return st.exp_avg_sq;
  if (name == "max_exp_avg_sq") return st.max_exp_avg_sq;
  TSE_ASSERT(name == "momentum_buffer", "unknown optimiser state buffer ", name);
  return st.momentum_buffer;
}

const Tensor& buffer(const ParamState& st, const std::string& name) {
  return buffer(const_cast<ParamState&>(st), name);
}

// The hyper-parameters each optimiser keeps per group (besides lr, initial_lr, weight_decay).
struct Keys {
  std::vector<const char*> numbers;
  std::vector<const char*> flags;
};

Keys group_keys(const std::string& type) {
  if (type == "AdamW") return {{"beta1", "beta2", "eps"}, {"amsgrad"}};
  return {{"momentum", "dampening"}, {"nesterov"}};
}

double& number(ParamGroup& g, const std::string& k) {
  if (k == "lr") return g.lr;
  if (k == "initial_lr") return g.initial_lr;
  if (k == "weight_decay") return g.weight_decay;
  if (k == "beta1") return g.beta1;
  if (k == "beta2") return g.beta2;
  if (k == "eps") return g.eps;
  if (k == "momentum") return g.momentum;
  TSE_ASSERT(k == "dampening", "unknown group option ", k);
  return g.dampening;
}

bool& flag(ParamGroup& g, const std::string& k) {
  if (k == "amsgrad") return g.amsgrad;
  TSE_ASSERT(k == "nesterov", "unknown group option ", k);
  return g.nesterov;
}

void check_lr(double lr, const char* who) {
  TSE_CHECK(std::isfinite(lr) && lr >= 0.0, who, ": 'lr' must be a finite number >= 0, got ", lr);
}

// "float32 [3, 4] on cpu"
std::string describe(const Tensor& t) {
  return tse::detail::str_cat(t.dtype(), " ", t.shape_str(), " on ", t.device());
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

}  // namespace

// ---- Optimizer ----------------------------------------------------------------------------------

void Optimizer::add_groups(std::vector<ParamGroup> groups) {
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(std::vector<Tensor> params) {
  ParamGroup g = defaults_;
  g.params = std::move(params);
  g.initial_lr = std::numeric_limits<double>::quiet_NaN();
  add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  const std::string who = type_name() + ".add_param_group";
  check_lr(group.lr, who.c_str());
  if (std::isnan(group.initial_lr)) group.initial_lr = group.lr;
  TSE_CHECK(std::isfinite(group.initial_lr) && group.initial_lr >= 0.0, who,
            ": 'initial_lr' must be a finite number >= 0, got ", group.initial_lr);
  check_group(group, who.c_str());
  std::set<const TensorImpl*> seen;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) seen.insert(p.impl());
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    TSE_CHECK(p.defined(), who, ": parameter ", i, " of group ", groups_.size(), " is an undefined tensor");
    TSE_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, who, ": parameter ", i, " of group ",
              groups_.size(), " must be float32 or float64, got ", p.dtype(), " (shape ", p.shape_str(), ")");
    TSE_CHECK(seen.insert(p.impl()).second, who, ": parameter ", i, " of group ", groups_.size(),
              " (shape ", p.shape_str(), ") appears in more than one place (each parameter belongs to one group)");
  }
  state_.emplace_back(group.params.size());
  groups_.push_back(std::move(group));
}

void Optimizer::step() {
  NoGradGuard no_grad;
  const std::string who = type_name() + ".step";
  work_.clear();
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& group = groups_[gi];
    for (size_t pi = 0; pi < group.params.size(); ++pi) {
      const Tensor& p = group.params[pi];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      TSE_CHECK(p.is_contiguous(), who, ": parameter ", pi, " of group ", gi, " (shape ", p.shape_str(),
                ") is not contiguous");
      TSE_CHECK(g.dtype() == p.dtype() && g.sizes() == p.sizes() && g.device() == p.device(), who,
                ": the gradient of parameter ", pi, " of group ", gi, " is ", describe(g), ", expected the parameter's ",
                describe(p));
      TSE_CHECK(work_.empty() || p.device() == work_.front().param.device(), who, ": parameter ", pi, " of group ",
                gi, " is on ", p.device(), ", others on ", work_.front().param.device(),
                " (one optimiser steps parameters of one device)");
      if (!g.is_contiguous()) g = g.contiguous();  // an explicit copy; our autograd's grads are contiguous
      work_.push_back(Work{&group, &state_[gi][pi], p, g});
    }
  }
  for (Work& w : work_) ++w.state->step;
  try {
    if (!work_.empty()) update(work_);
  } catch (...) {
    for (Work& w : work_) --w.state->step;
    work_.clear();
    throw;
  }
  for (Work& w : work_) w.param.storage()->bump_version();  // an in-place change, as PyTorch's p.add_
  work_.clear();  // keeps the capacity, drops the references to the gradients
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) {
      if (set_to_none) {
        p.set_grad(Tensor());
      } else if (Tensor gr = p.grad(); gr.defined()) {
        gr.zero_();
      }
    }
}

const ParamState& Optimizer::state(size_t group, size_t index) const {
  TSE_CHECK_INDEX(group < state_.size() && index < state_[group].size(), type_name(), ".state: no parameter ",
                  index, " in group ", group);
  return state_[group][index];
}

double Optimizer::lr(size_t group) const {
  TSE_CHECK_INDEX(group < groups_.size(), type_name(), ".lr: group ", group, " out of range (", groups_.size(),
                  " groups)");
  return groups_[group].lr;
}

void Optimizer::set_lr(double lr) {
  check_lr(lr, (type_name() + ".set_lr").c_str());
  for (ParamGroup& g : groups_) g.lr = lr;
}

void Optimizer::set_lr(size_t group, double lr) {
  TSE_CHECK_INDEX(group < groups_.size(), type_name(), ".set_lr: group ", group, " out of range (", groups_.size(),
                  " groups)");
  check_lr(lr, (type_name() + ".set_lr").c_str());
  groups_[group].lr = lr;
}

nn::NamedTensors Optimizer::state_tensors() const {
  nn::NamedTensors out;
  size_t i = 0;
  for (const auto& group_state : state_)
    for (const ParamState& st : group_state) {
      for (const char* name : kBufferNames) {
        const Tensor& t = buffer(st, name);
        if (t.defined()) out.emplace_back("state." + std::to_string(i) + "." + name, t);
      }
      ++i;
    }
  return out;
}

std::string Optimizer::state_json() const {
  nlohmann::ordered_json j;
  j["type"] = type_name();
  j["format"] = kStateFormat;
  const Keys keys = group_keys(type_name());
  auto groups = nlohmann::ordered_json::array();
  for (const ParamGroup& g0 : groups_) {
    ParamGroup g = g0;
    nlohmann::ordered_json jg;
    jg["num_params"] = g.params.size();
    for (const char* k : {"lr", "initial_lr", "weight_decay"}) jg[k] = number(g, k);
    for (const char* k : keys.numbers) jg[k] = number(g, k);
    for (const char* k : keys.flags) jg[k] = flag(g, k);
    groups.push_back(std::move(jg));
  }
  j["groups"] = std::move(groups);
  auto steps = nlohmann::ordered_json::array();
  for (const auto& group_state : state_)
    for (const ParamState& st : group_state) steps.push_back(st.step);
  j["steps"] = std::move(steps);
  return j.dump();  // doubles are written with enough digits to read back exactly
}

void Optimizer::load_state(const std::map<std::string, Tensor>& tensors, const std::string& json) {
  load_state(nn::NamedTensors(tensors.begin(), tensors.end()), json);
}

void Optimizer::load_state(const nn::NamedTensors& tensors, const std::string& json) {
  const std::string who = type_name() + ".load_state";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(who + ": the state JSON does not parse: " + e.what());
  }
  TSE_CHECK(j.is_object(), who, ": the state JSON must be an object");
  auto field = [&](const nlohmann::json& o, const char* key, const std::string& where) -> const nlohmann::json& {
    TSE_CHECK(o.is_object() && o.contains(key), who, ": the state JSON has no '", key, "'", where);
    return o.at(key);
  };
  const auto& type = field(j, "type", "");
  TSE_CHECK(type.is_string() && type.get<std::string>() == type_name(), who, ": the state is of optimiser ",
            type.dump(), ", this optimiser is ", type_name());
  TSE_CHECK(field(j, "format", "") == kStateFormat, who, ": unsupported state format ", j.at("format").dump(),
            " (expected ", kStateFormat, ")");
  const auto& jgroups = field(j, "groups", "");
  TSE_CHECK(jgroups.is_array() && jgroups.size() == groups_.size(), who, ": the state has ",
            jgroups.is_array() ? std::to_string(jgroups.size()) : std::string("no list of"),
            " parameter groups, this optimiser has ", groups_.size());

  // Groups: every option present and valid; params stay ours.
  const Keys keys = group_keys(type_name());
  std::vector<ParamGroup> new_groups = groups_;
  size_t total = 0;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const auto& jg = jgroups[gi];
    const std::string where = " in group " + std::to_string(gi);
    const auto& n = field(jg, "num_params", where);
    TSE_CHECK(n.is_number_unsigned() && n.get<size_t>() == groups_[gi].params.size(), who, ": group ", gi,
              " of the state has ", n.dump(), " parameters, this optimiser's has ", groups_[gi].params.size());
    total += groups_[gi].params.size();
    ParamGroup& g = new_groups[gi];
    std::vector<const char*> numbers = {"lr", "initial_lr", "weight_decay"};
    numbers.insert(numbers.end(), keys.numbers.begin(), keys.numbers.end());
    for (const char* k : numbers) {
      const auto& v = field(jg, k, where);
      TSE_CHECK(v.is_number(), who, ": '", k, "'", where, " must be a number, got ", v.dump());
      number(g, k) = v.get<double>();
    }
    for (const char* k : keys.flags) {
      const auto& v = field(jg, k, where);
      TSE_CHECK(v.is_boolean(), who, ": '", k, "'", where, " must be true or false, got ", v.dump());
      flag(g, k) = v.get<bool>();
    }
    const std::string gwho = who + " (group " + std::to_string(gi) + ")";
    check_lr(g.lr, gwho.c_str());
    TSE_CHECK(std::isfinite(g.initial_lr) && g.initial_lr >= 0.0, gwho, ": 'initial_lr' must be a finite number >= 0, got ",
              g.initial_lr);
    check_group(g, gwho.c_str());
  }
  const auto& jsteps = field(j, "steps", "");
  TSE_CHECK(jsteps.is_array() && jsteps.size() == total, who, ": the state has ",
            jsteps.is_array() ? std::to_string(jsteps.size()) : std::string("no list of"),
            " step counts, this optimiser has ", total, " parameters");
  std::vector<int64_t> steps(total);
  for (size_t i = 0; i < total; ++i) {
    TSE_CHECK(jsteps[i].is_number_integer() && jsteps[i].get<int64_t>() >= 0, who, ": the step count of parameter ",
              i, " must be an integer >= 0, got ", jsteps[i].dump());
    steps[i] = jsteps[i].get<int64_t>();
  }

  // Tensors: exactly the buffers each parameter has after `steps` updates, shaped and typed as it.
  std::map<std::string, Tensor> given;
  std::vector<std::string> duplicate, unexpected, missing, mismatched;
  for (const auto& [name, t] : tensors)
    if (!given.emplace(name, t).second) duplicate.push_back(name);
  std::set<std::string> expected;
  std::vector<std::pair<const Tensor*, std::string>> params;  // (param, "group g param k")
  {
    size_t i = 0;
    for (size_t gi = 0; gi < new_groups.size(); ++gi)
      for (size_t pi = 0; pi < new_groups[gi].params.size(); ++pi, ++i) {
        if (steps[i] == 0) continue;
        const Tensor& p = new_groups[gi].params[pi];
        for (const std::string& b : state_names(new_groups[gi])) {
          const std::string name = "state." + std::to_string(i) + "." + b;
          expected.insert(name);
          auto it = given.find(name);
          if (it == given.end()) {
            missing.push_back(name);
          } else if (!it->second.defined() || it->second.dtype() != p.dtype() || it->second.sizes() != p.sizes()) {
            mismatched.push_back(name + " (" + (it->second.defined() ? describe(it->second) : std::string("undefined")) +
                                 ", its parameter is " + describe(p) + ")");
          }
        }
      }
  }
  for (const auto& [name, t] : given)
    if (!expected.count(name)) unexpected.push_back(name);
  if (!duplicate.empty() || !unexpected.empty() || !missing.empty() || !mismatched.empty()) {
    std::ostringstream msg;
    msg << who << ": the state tensors do not match this optimiser's parameters";
    if (!missing.empty()) msg << "; missing: " << join(missing);
    if (!unexpected.empty()) msg << "; unexpected: " << join(unexpected);
    if (!mismatched.empty()) msg << "; wrong shape or dtype: " << join(mismatched);
    if (!duplicate.empty()) msg << "; given twice: " << join(duplicate);
    throw ValueError(msg.str());
  }

  // Everything checked: apply.
  NoGradGuard no_grad;
  std::vector<std::vector<ParamState>> new_state(new_groups.size());
  size_t i = 0;
  for (size_t gi = 0; gi < new_groups.size(); ++gi) {
    new_state[gi].resize(new_groups[gi].params.size());
    for (size_t pi = 0; pi < new_groups[gi].params.size(); ++pi, ++i) {
      ParamState& st = new_state[gi][pi];
      st.step = steps[i];
      if (steps[i] == 0) continue;
      const Tensor& p = new_groups[gi].params[pi];
      for (const std::string& b : state_names(new_groups[gi])) {
        Tensor t = Tensor::empty(p.sizes(), p.dtype(), p.device());
        t.copy_(given.at("state." + std::to_string(i) + "." + b).detach());
        buffer(st, b) = t;
      }
    }
  }
  groups_ = std::move(new_groups);
  state_ = std::move(new_state);
}

// ---- AdamW --------------------------------------------------------------------------------------

ParamGroup AdamW::make_group(std::vector<Tensor> params, const AdamWOptions& o) {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = o.lr;
  g.beta1 = o.beta1;
  g.beta2 = o.beta2;
  g.eps = o.eps;
  g.weight_decay = o.weight_decay;
  g.amsgrad = o.amsgrad;
  return g;
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options) : Optimizer(make_group({}, options)) {
  add_param_group(std::move(params));
}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults) : Optimizer(make_group({}, defaults)) {
  check_lr(defaults.lr, "AdamW");
  check_group(defaults_, "AdamW");
  add_groups(std::move(groups));
}

void AdamW::check_group(const ParamGroup& g, const char* who) const {
  TSE_CHECK(std::isfinite(g.beta1) && g.beta1 >= 0.0 && g.beta1 < 1.0, who, ": 'beta1' must be in [0, 1), got ",
            g.beta1);
  TSE_CHECK(std::isfinite(g.beta2) && g.beta2 >= 0.0 && g.beta2 < 1.0, who, ": 'beta2' must be in [0, 1), got ",
            g.beta2);
  TSE_CHECK(std::isfinite(g.eps) && g.eps >= 0.0, who, ": 'eps' must be a finite number >= 0, got ", g.eps);
  TSE_CHECK(std::isfinite(g.weight_decay) && g.weight_decay >= 0.0, who,
            ": 'weight_decay' must be a finite number >= 0, got ", g.weight_decay);
}

std::vector<std::string> AdamW::state_names(const ParamGroup& g) const {
  if (g.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void AdamW::update(const std::vector<Work>& work) {
  auto* kernel = k_adamw.get(work.front().param.device());
  thread_local std::vector<tse::detail::AdamWItem> items;  // reused: no allocation per step
  items.clear();
  int64_t begin = 0;
  for (const Work& w : work) {
    const ParamGroup& g = *w.group;
    ParamState& st = *w.state;
    const Tensor& p = w.param;
    if (!st.exp_avg.defined()) st.exp_avg = ops::zeros(p.sizes(), p.dtype(), p.device());
    if (!st.exp_avg_sq.defined()) st.exp_avg_sq = ops::zeros(p.sizes(), p.dtype(), p.device());
    if (g.amsgrad && !st.max_exp_avg_sq.defined()) st.max_exp_avg_sq = ops::zeros(p.sizes(), p.dtype(), p.device());
    tse::detail::AdamWItem it;
    it.s.lr = g.lr;
    it.s.beta1 = g.beta1;
    it.s.beta2 = g.beta2;
    it.s.eps = g.eps;
    it.s.weight_decay = g.weight_decay;
    it.s.step = st.step;
    it.s.amsgrad = g.amsgrad;
    it.dtype = p.dtype();
    it.p = p.data_ptr();
    it.grad = w.grad.data_ptr();
    it.exp_avg = st.exp_avg.data_ptr();
    it.exp_avg_sq = st.exp_avg_sq.data_ptr();
    it.max_exp_avg_sq = g.amsgrad ? st.max_exp_avg_sq.data_ptr() : nullptr;
    it.numel = p.numel();
    it.begin = begin;
    begin += it.numel;
    items.push_back(it);
  }
  kernel(items.data(), items.size());
}

// ---- SGD ----------------------------------------------------------------------------------------

ParamGroup SGD::make_group(std::vector<Tensor> params, const SGDOptions& o) {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = o.lr;
  g.momentum = o.momentum;
  g.dampening = o.dampening;
  g.weight_decay = o.weight_decay;
  g.nesterov = o.nesterov;
  return g;
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options) : Optimizer(make_group({}, options)) {
  add_param_group(std::move(params));
}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults) : Optimizer(make_group({}, defaults)) {
  check_lr(defaults.lr, "SGD");
  check_group(defaults_, "SGD");
  add_groups(std::move(groups));
}

void SGD::check_group(const ParamGroup& g, const char* who) const {
  TSE_CHECK(std::isfinite(g.momentum) && g.momentum >= 0.0, who, ": 'momentum' must be a finite number >= 0, got ",
            g.momentum);
  TSE_CHECK(std::isfinite(g.dampening), who, ": 'dampening' must be finite, got ", g.dampening);
  TSE_CHECK(std::isfinite(g.weight_decay) && g.weight_decay >= 0.0, who,
            ": 'weight_decay' must be a finite number >= 0, got ", g.weight_decay);
  TSE_CHECK(!g.nesterov || (g.momentum > 0.0 && g.dampening == 0.0), who,
            ": 'nesterov' needs momentum > 0 and dampening == 0, got momentum ", g.momentum, ", dampening ",
            g.dampening);
}

std::vector<std::string> SGD::state_names(const ParamGroup& g) const {
  if (g.momentum != 0.0) return {"momentum_buffer"};
  return {};
}

void SGD::update(const std::vector<Work>& work) {
  auto* kernel = k_sgd.get(work.front().param.device());
  thread_local std::vector<tse::detail::SGDItem> items;  // reused: no allocation per step
  items.clear();
  int64_t begin = 0;
  for (const Work& w : work) {
    const ParamGroup& g = *w.group;
    ParamState& st = *w.state;
    const Tensor& p = w.param;
    tse::detail::SGDItem it;
    it.s.lr = g.lr;
    it.s.momentum = g.momentum;
    it.s.dampening = g.dampening;
    it.s.weight_decay = g.weight_decay;
    it.s.nesterov = g.nesterov;
    if (g.momentum != 0.0) {
      it.s.first = !st.momentum_buffer.defined();
      if (it.s.first) st.momentum_buffer = Tensor::empty(p.sizes(), p.dtype(), p.device());  // written with g
      it.buf = st.momentum_buffer.data_ptr();
    }
    it.dtype = p.dtype();
    it.p = p.data_ptr();
    it.grad = w.grad.data_ptr();
    it.numel = p.numel();
    it.begin = begin;
    begin += it.numel;
    items.push_back(it);
  }
  kernel(items.data(), items.size());
}

}  // namespace tse::optim
