#include "tse/nn/module.hpp"

#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"

namespace tse::nn {
namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// "a", "b", ... (quote: false for entries that are already formatted).
std::string list_keys(const std::vector<std::string>& keys, bool quote = true, size_t limit = 20) {
  std::ostringstream os;
  for (size_t i = 0; i < keys.size() && i < limit; ++i) {
    os << (i ? ", " : "");
    if (quote) os << '"' << keys[i] << '"'; else os << keys[i];
  }
  if (keys.size() > limit) os << ", ... (" << keys.size() - limit << " more)";
  return os.str();
}

// Why a stored constant is not ours (nullopt when it is, within Module::kConstantTolerance).
std::optional<std::string> constant_mismatch(const Tensor& stored, const Tensor& ours) {
  if (stored.sizes() != ours.sizes()) return "checkpoint " + stored.shape_str() + " vs computed " + ours.shape_str();
  const Tensor a = stored.to(Device::cpu()).to(DType::f64).contiguous(), b = ours.to(Device::cpu()).to(DType::f64).contiguous();
  const double* pa = static_cast<const double*>(a.data_ptr());
  const double* pb = static_cast<const double*>(b.data_ptr());
  double peak = 1.0, worst = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    peak = std::max(peak, std::abs(pb[i]));
    const double d = std::abs(pa[i] - pb[i]);
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  if (worst <= Module::kConstantTolerance * peak) return std::nullopt;
  std::ostringstream os;
  os << "max |difference| " << worst << " (peak " << peak << ")";
  return os.str();
}

}  // namespace

void Module::check_new_name(const std::string& name, const char* what) const {
  TSE_CHECK(!name.empty() && name.find('.') == std::string::npos,
            type_name(), ": ", what, " name \"", name, "\" must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    for (const auto& e : list)
      if constexpr (std::is_same_v<std::decay_t<decltype(e)>, Slot>) {
        if (e.name == name) return true;
      } else if (e.first == name) {
        return true;
      }
    return false;
  };
  TSE_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_) && !taken(computed_constants_),
            type_name(), ": ", what, " name \"", name, "\" is already registered");
}

void Module::register_parameter(const std::string& name, Tensor* slot, bool requires_grad) {
  TSE_ASSERT(slot != nullptr, "register_parameter: null slot");
  if (!slot->defined()) return;
  check_new_name(name, "parameter");
  TSE_CHECK(is_floating(slot->dtype()), type_name(), ": parameter \"", name, "\" must be floating point, got ",
            slot->dtype());
  // A parameter is a leaf of its own: detach in case the initialiser recorded ops.
  *slot = slot->detach();
  slot->requires_grad_(requires_grad);
  parameters_.push_back({name, slot, BufferKind::persistent});
}

void Module::register_buffer(const std::string& name, Tensor* slot, BufferKind kind) {
  TSE_ASSERT(slot != nullptr, "register_buffer: null slot");
  if (!slot->defined()) return;
  check_new_name(name, "buffer");
  *slot = slot->detach();
  buffers_.push_back({name, slot, kind});
}

void Module::register_constant(const std::string& name, std::function<Tensor()> compute) {
  TSE_ASSERT(compute != nullptr, "register_constant: null function");
  // A dotted name is allowed: it mirrors an official key whose module path we do not build
  // ("spectrogram_extractor.stft.conv_real.weight").
  const std::string head = name.substr(0, name.find('.'));
  if (head != name) {
    TSE_CHECK(!head.empty() && name.back() != '.', type_name(), ": constant name \"", name, "\" is malformed");
    for (const auto& [n, f] : computed_constants_)
      TSE_CHECK(n != name, type_name(), ": constant name \"", name, "\" is already registered");
  } else {
    check_new_name(name, "constant");
  }
  computed_constants_.emplace_back(name, std::move(compute));
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  TSE_CHECK(child != nullptr, type_name(), ": child module \"", name, "\" is null");
  check_new_name(name, "child module");
  child->train(training_);
  children_.emplace_back(name, std::move(child));
}

void Module::visit(const std::string& prefix,
                   const std::function<void(const std::string&, const Module&)>& f) const {
  f(prefix, *this);
  for (const auto& [name, c] : children_) c->visit(join(prefix, name), f);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  auto add = [&](const std::string& prefix, const Module& m) {
    for (const auto& s : m.parameters_) out.emplace_back(join(prefix, s.name), *s.tensor);
  };
  if (recurse) visit("", add); else add("", *this);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  auto add = [&](const std::string& prefix, const Module& m) {
    for (const auto& s : m.buffers_) out.emplace_back(join(prefix, s.name), *s.tensor);
  };
  if (recurse) visit("", add); else add("", *this);
  return out;
}

std::vector<std::string> Module::constant_names(bool recurse) const {
  std::vector<std::string> out;
  auto add = [&](const std::string& prefix, const Module& m) {
    for (const auto& s : m.buffers_)
      if (s.kind == BufferKind::constant) out.push_back(join(prefix, s.name));
    for (const auto& [name, f] : m.computed_constants_) out.push_back(join(prefix, name));
  };
  if (recurse) visit("", add); else add("", *this);
  return out;
}

NamedTensors Module::named_constants(bool recurse) const {
  NamedTensors out;
  auto add = [&](const std::string& prefix, const Module& m) {
    for (const auto& s : m.buffers_)
      if (s.kind == BufferKind::constant) out.emplace_back(join(prefix, s.name), s.tensor->detach());
    for (const auto& [name, f] : m.computed_constants_) out.emplace_back(join(prefix, name), f());
  };
  if (recurse) visit("", add); else add("", *this);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  visit("", [&](const std::string& prefix, const Module& m) { out.emplace_back(prefix, const_cast<Module*>(&m)); });
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  const size_t dot = name.find('.');
  const std::string head = name.substr(0, dot);
  for (const auto& [n, c] : children_)
    if (n == head) return dot == std::string::npos ? c : c->child(name.substr(dot + 1));
  throw IndexError(type_name() + ": no child module \"" + name + "\"");
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) n += t.numel();
  return n;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  visit("", [&](const std::string& prefix, const Module& m) {
    for (const auto& s : m.parameters_) out.emplace_back(join(prefix, s.name), s.tensor->detach());
    for (const auto& s : m.buffers_)
      if (s.kind == BufferKind::persistent || s.kind == BufferKind::optional)
        out.emplace_back(join(prefix, s.name), s.tensor->detach());
  });
  return out;
}

LoadResult Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  return load_state_dict(NamedTensors(state.begin(), state.end()), strict);
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  struct Target {
    Tensor* slot;
    bool optional;
  };
  std::map<std::string, Target> targets;
  std::map<std::string, std::function<Tensor()>> constants;
  std::vector<std::string> order;
  visit("", [&](const std::string& prefix, const Module& m) {
    for (const auto& s : m.parameters_) {
      targets[join(prefix, s.name)] = {s.tensor, false};
      order.push_back(join(prefix, s.name));
    }
    for (const auto& s : m.buffers_)
      if (s.kind == BufferKind::persistent || s.kind == BufferKind::optional) {
        targets[join(prefix, s.name)] = {s.tensor, s.kind == BufferKind::optional};
        order.push_back(join(prefix, s.name));
      } else if (s.kind == BufferKind::constant) {
        const Tensor* slot = s.tensor;
        constants[join(prefix, s.name)] = [slot] { return *slot; };
      }
    for (const auto& [name, f] : m.computed_constants_) constants[join(prefix, name)] = f;
  });

  LoadResult result;
  std::map<std::string, std::string> problems;  // key -> what is wrong with it
  std::vector<std::string> problems_of_constants;
  std::set<std::string> seen;
  for (const auto& [name, t] : state) {
    TSE_CHECK(seen.insert(name).second, type_name(), ".load_state_dict: key \"", name, "\" appears twice");
    TSE_CHECK(t.defined(), type_name(), ".load_state_dict: tensor for \"", name, "\" is undefined");
    if (auto c = constants.find(name); c != constants.end()) {
      if (auto problem = constant_mismatch(t, c->second())) problems_of_constants.push_back("\"" + name + "\": " + *problem);
      continue;
    }
    auto it = targets.find(name);
    if (it == targets.end()) {
      result.unexpected_keys.push_back(name);
      continue;
    }
    const Tensor& dst = *it->second.slot;
    if (t.sizes() != dst.sizes())
      problems[name] = "checkpoint " + t.shape_str() + " vs model " + dst.shape_str();
    else if (is_floating(dst.dtype()) != is_floating(t.dtype()))
      problems[name] = std::string("checkpoint dtype ") + dtype_name(t.dtype()) + " vs model " + dtype_name(dst.dtype());
  }
  std::vector<std::string> mismatched;  // in the model's order, as the missing keys
  for (const auto& name : order) {
    if (auto p = problems.find(name); p != problems.end()) mismatched.push_back("\"" + name + "\": " + p->second);
    if (!seen.count(name) && !targets[name].optional) result.missing_keys.push_back(name);
  }

  const bool fail = !mismatched.empty() || !problems_of_constants.empty() || (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty()));
  if (fail) {
    std::ostringstream os;
    os << type_name() << ".load_state_dict: error(s) loading the state dict:";
    if (!mismatched.empty()) os << "\n  size mismatch for " << list_keys(mismatched, false);
    if (!problems_of_constants.empty())
      os << "\n  constants that differ from the computed ones: " << list_keys(problems_of_constants, false);
    if (strict && !result.missing_keys.empty()) os << "\n  missing keys: " << list_keys(result.missing_keys);
    if (strict && !result.unexpected_keys.empty()) os << "\n  unexpected keys: " << list_keys(result.unexpected_keys);
    throw ValueError(os.str());
  }

  // Everything checked: copy in place, so handles held elsewhere (an optimizer) stay valid.
  autograd::NoGradGuard no_grad;
  for (const auto& [name, t] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) continue;
    Tensor& dst = *it->second.slot;
    dst.copy_(t.device() == dst.device() ? t : t.to(dst.device()));
  }
  return result;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, c] : children_) c->train(on);
  on_train(on);  // last, so a module may override what its children chose (a frozen encoder)
}

void Module::apply_to_tensors(const std::function<Tensor(const Tensor&)>& f) {
  for (auto& [prefix, m] : named_modules()) {
    for (auto& s : m->parameters_) {
      const bool rg = s.tensor->requires_grad();
      Tensor moved = f(s.tensor->detach());
      if (moved.storage() == s.tensor->storage()) continue;  // already there: keep the gradient
      *s.tensor = moved.detach();
      s.tensor->requires_grad_(rg);
    }
    for (auto& s : m->buffers_) {
      Tensor moved = f(s.tensor->detach());
      if (moved.storage() != s.tensor->storage()) *s.tensor = moved.detach();
    }
  }
}

Module& Module::to(Device device) {
  autograd::NoGradGuard no_grad;
  apply_to_tensors([&](const Tensor& t) { return t.device() == device ? t : t.to(device); });
  return *this;
}

Module& Module::to(DType dtype) {
  TSE_CHECK(is_floating(dtype), type_name(), ".to: dtype must be floating point, got ", dtype);
  autograd::NoGradGuard no_grad;
  apply_to_tensors([&](const Tensor& t) { return !is_floating(t.dtype()) || t.dtype() == dtype ? t : t.to(dtype); });
  return *this;
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) {
    Tensor p = t;
    if (p.grad().defined()) p.set_grad(Tensor());
  }
}

void Module::requires_grad_(bool requires_grad) {
  for (auto& [prefix, m] : named_modules())
    for (auto& s : m->parameters_) s.tensor->requires_grad_(requires_grad);
}

std::string Module::repr() const {
  std::ostringstream os;
  std::function<void(const Module&, int)> rec = [&](const Module& m, int indent) {
    os << m.type_name() << "(" << m.extra_repr();
    if (!m.children_.empty()) {
      os << "\n";
      for (const auto& [name, c] : m.children_) {
        os << std::string(indent + 2, ' ') << "(" << name << "): ";
        rec(*c, indent + 2);
        os << "\n";
      }
      os << std::string(indent, ' ');
    }
    os << ")";
  };
  rec(*this, 0);
  return os.str();
}

}  // namespace tse::nn
