// tse.optim: optimisers, learning-rate schedules and gradient clipping, with torch.optim's
// constructor keywords. `params` is an iterable of Tensors or of dicts (torch-style parameter
// groups: "params" plus per-group overrides). `param_groups` gives live ParamGroup views whose
// "lr" writes through (g["lr"] = x or g.lr = x). step() and clipping release the GIL.
#include <algorithm>
#include <cmath>

#include "bindings/common.hpp"

namespace tse::python {
namespace {

using OptPtr = std::shared_ptr<optim::Optimizer>;

// A live view of one parameter group of an optimiser (keeps the optimiser alive).
struct GroupView {
  OptPtr opt;
  size_t index;
  const optim::ParamGroup& group() const { return opt->param_groups().at(index); }
};

std::vector<std::string> group_keys(const optim::Optimizer& o) {
  if (o.type_name() == "AdamW") return {"params", "lr", "initial_lr", "betas", "eps", "weight_decay", "amsgrad"};
  return {"params", "lr", "initial_lr", "momentum", "dampening", "weight_decay", "nesterov"};
}

py::object group_item(const GroupView& v, const std::string& key) {
  const optim::ParamGroup& g = v.group();
  if (key == "params") return py::cast(g.params);
  if (key == "lr") return py::float_(g.lr);
  if (key == "initial_lr") return py::float_(g.initial_lr);
  if (key == "weight_decay") return py::float_(g.weight_decay);
  const bool adam = v.opt->type_name() == "AdamW";
  if (adam && key == "betas") return py::make_tuple(g.beta1, g.beta2);
  if (adam && key == "eps") return py::float_(g.eps);
  if (adam && key == "amsgrad") return py::bool_(g.amsgrad);
  if (!adam && key == "momentum") return py::float_(g.momentum);
  if (!adam && key == "dampening") return py::float_(g.dampening);
  if (!adam && key == "nesterov") return py::bool_(g.nesterov);
  throw py::key_error(key);
}

std::vector<Tensor> tensor_list(py::handle obj, const std::string& who) {
  if (py::isinstance<Tensor>(obj)) return {obj.cast<Tensor>()};
  if (!py::isinstance<py::iterable>(obj) || py::isinstance<py::str>(obj))
    throw py::type_error(who + ": params must be a Tensor or an iterable of Tensors, got " +
                         py::str(py::type::handle_of(obj)).cast<std::string>());
  std::vector<Tensor> out;
  for (py::handle item : obj) {
    if (!py::isinstance<Tensor>(item))
      throw py::type_error(who + ": params must hold tse.Tensors, got " +
                           py::str(py::type::handle_of(item)).cast<std::string>());
    out.push_back(item.cast<Tensor>());
  }
  return out;
}

// params -> groups: an iterable of Tensors is one group of `defaults`; an iterable of dicts is one
// group per dict, each key overriding `defaults` through `apply(group, key, value)`.
template <typename Apply>
std::vector<optim::ParamGroup> parse_groups(py::handle params, const optim::ParamGroup& defaults, const char* who,
                                            const Apply& apply) {
  if (py::isinstance<Tensor>(params) || !py::isinstance<py::iterable>(params) || py::isinstance<py::str>(params) ||
      py::isinstance<py::dict>(params))
    throw py::type_error(std::string(who) + ": params must be an iterable of Tensors or of dicts (parameter groups)");
  py::list items;
  for (py::handle h : params) items.append(h);
  if (items.empty()) throw py::value_error(std::string(who) + ": got an empty parameter list");
  std::vector<optim::ParamGroup> groups;
  if (!py::isinstance<py::dict>(items[0])) {
    optim::ParamGroup g = defaults;
    g.params = tensor_list(items, who);
    groups.push_back(std::move(g));
    return groups;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (!py::isinstance<py::dict>(items[i]))
      throw py::type_error(std::string(who) + ": params mixes dicts and other items (item " + std::to_string(i) + ")");
    py::dict d = py::cast<py::dict>(items[i]);
    if (!d.contains("params"))
      throw py::value_error(std::string(who) + ": parameter group " + std::to_string(i) + " has no 'params'");
    optim::ParamGroup g = defaults;
    for (auto kv : d) {
      const std::string key = py::str(kv.first);
      py::handle v = kv.second;
      if (key == "params") {
        g.params = tensor_list(v, std::string(who) + " (group " + std::to_string(i) + ")");
      } else if (key == "lr") {
        g.lr = py::cast<double>(v);
      } else if (key == "initial_lr") {
        g.initial_lr = py::cast<double>(v);
      } else if (key == "weight_decay") {
        g.weight_decay = py::cast<double>(v);
      } else if (!apply(g, key, v)) {
        throw py::value_error(std::string(who) + ": parameter group " + std::to_string(i) + " has an unknown option '" +
                              key + "'");
      }
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

std::pair<double, double> betas_arg(py::handle h) {
  auto t = h.cast<std::vector<double>>();
  if (t.size() != 2) throw py::value_error("AdamW: 'betas' must be a pair (beta1, beta2)");
  return {t[0], t[1]};
}

py::dict tensors_dict(const nn::NamedTensors& v) {
  py::dict d;
  for (const auto& [k, t] : v) d[py::str(k)] = t;
  return d;
}

nn::NamedTensors tensors_from(py::handle mapping, const char* who) {
  if (!py::hasattr(mapping, "items")) throw py::type_error(std::string(who) + ": tensors must be a mapping of str to Tensor");
  nn::NamedTensors out;
  for (auto item : mapping.attr("items")()) {
    auto kv = item.cast<py::tuple>();
    if (!py::isinstance<Tensor>(kv[1]))
      throw py::type_error(std::string(who) + ": the value of '" + kv[0].cast<std::string>() + "' must be a tse.Tensor");
    out.emplace_back(kv[0].cast<std::string>(), kv[1].cast<Tensor>());
  }
  return out;
}

void load_state(optim::Optimizer& self, py::handle tensors, const std::string& json) {
  auto named = tensors_from(tensors, "load_state");
  py::gil_scoped_release nogil;
  self.load_state(named, json);
}

double norm_type_arg(py::handle h) {
  if (py::isinstance<py::str>(h)) {
    const std::string s = h.cast<std::string>();
    if (s == "inf") return INFINITY;
    throw py::value_error("clip_grad_norm_: 'norm_type' must be a number or 'inf', got '" + s + "'");
  }
  return h.cast<double>();
}

std::vector<Tensor> clip_params(py::handle h, const char* who) { return tensor_list(h, who); }

}  // namespace

void bind_optim(py::module_& m) {
  py::module_ sub = m.def_submodule("optim", "Optimisers, learning-rate schedules, gradient clipping");

  py::class_<GroupView>(sub, "ParamGroup",
                        "A live view of one parameter group: g['lr'] / g.lr read and write the optimiser's lr; "
                        "the other keys are read-only.")
      .def("__getitem__", [](const GroupView& v, const std::string& k) { return group_item(v, k); })
      .def("__setitem__",
           [](GroupView& v, const std::string& k, double value) {
             if (k != "lr")
               throw py::key_error("ParamGroup: only 'lr' can be set (got '" + k +
                                   "'); build a new optimiser to change other options");
             v.opt->set_lr(v.index, value);
           })
      .def("__contains__",
           [](const GroupView& v, const std::string& k) {
             const auto keys = group_keys(*v.opt);
             return std::find(keys.begin(), keys.end(), k) != keys.end();
           })
      .def("keys", [](const GroupView& v) { return group_keys(*v.opt); })
      .def("__len__", [](const GroupView& v) { return group_keys(*v.opt).size(); })
      .def(
          "__iter__", [](const GroupView& v) { return py::iter(py::cast(group_keys(*v.opt))); })
      .def_property(
          "lr", [](const GroupView& v) { return v.group().lr; },
          [](GroupView& v, double lr) { v.opt->set_lr(v.index, lr); })
      .def_property_readonly("params", [](const GroupView& v) { return v.group().params; })
      .def("__repr__", [](const GroupView& v) {
        std::string s = "ParamGroup(";
        for (const std::string& k : group_keys(*v.opt)) {
          if (k == "params") {
            s += "params=[" + std::to_string(v.group().params.size()) + " tensors]";
          } else {
            s += ", " + k + "=" + py::repr(group_item(v, k)).cast<std::string>();
          }
        }
        return s + ")";
      });

  py::class_<optim::Optimizer, OptPtr>(sub, "Optimizer", "Base class of AdamW and SGD")
      .def(
          "step",
          [](optim::Optimizer& self) {
            py::gil_scoped_release nogil;
            self.step();
          },
          "One update of every parameter that has a gradient (no closure)")
      .def(
          "zero_grad",
          [](optim::Optimizer& self, bool set_to_none) {
            py::gil_scoped_release nogil;
            self.zero_grad(set_to_none);
          },
          py::arg("set_to_none") = true)
      .def_property_readonly("param_groups",
                             [](OptPtr self) {
                               py::list out;
                               for (size_t i = 0; i < self->num_groups(); ++i) out.append(GroupView{self, i});
                               return out;
                             })
      .def("get_lr", &optim::Optimizer::lr, py::arg("group") = 0, "The lr of a group")
      .def(
          "set_lr",
          [](optim::Optimizer& self, double lr, std::optional<size_t> group) {
            if (group) {
              self.set_lr(*group, lr);
            } else {
              self.set_lr(lr);
            }
          },
          py::arg("lr"), py::arg("group") = py::none(), "Sets the lr of one group, or of every group")
      .def_property_readonly("type_name", &optim::Optimizer::type_name)
      .def("state_tensors", [](const optim::Optimizer& self) { return tensors_dict(self.state_tensors()); },
           "{'state.{i}.{buffer}': Tensor} (the live buffers)")
      .def("state_json", &optim::Optimizer::state_json)
      .def("load_state", &load_state, py::arg("tensors"), py::arg("json"))
      .def(
          "state_dict",
          [](const optim::Optimizer& self) {
            py::dict d;
            nn::NamedTensors copies;
            for (const auto& [k, t] : self.state_tensors()) copies.emplace_back(k, t.clone());
            d["tensors"] = tensors_dict(copies);
            d["json"] = self.state_json();
            return d;
          },
          "{'tensors': {name: Tensor} (copies), 'json': str}; save the tensors with tse.io.save_safetensors")
      .def(
          "load_state_dict",
          [](optim::Optimizer& self, py::dict state) {
            if (!state.contains("tensors") || !state.contains("json"))
              throw py::value_error("load_state_dict: expected a dict with 'tensors' and 'json' (from state_dict())");
            load_state(self, state["tensors"], state["json"].cast<std::string>());
          },
          py::arg("state_dict"));

  py::class_<optim::AdamW, optim::Optimizer, std::shared_ptr<optim::AdamW>>(sub, "AdamW")
      .def(py::init([](py::handle params, double lr, py::handle betas, double eps, double weight_decay, bool amsgrad) {
             auto [b1, b2] = betas_arg(betas);
             const optim::AdamWOptions o{.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps,
                                         .weight_decay = weight_decay, .amsgrad = amsgrad};
             auto groups = parse_groups(params, optim::AdamW::make_group({}, o), "AdamW",
                                        [](optim::ParamGroup& g, const std::string& k, py::handle v) {
                                          if (k == "betas") {
                                            std::tie(g.beta1, g.beta2) = betas_arg(v);
                                          } else if (k == "eps") {
                                            g.eps = py::cast<double>(v);
                                          } else if (k == "amsgrad") {
                                            g.amsgrad = py::cast<bool>(v);
                                          } else {
                                            return false;
                                          }
                                          return true;
                                        });
             return std::make_shared<optim::AdamW>(std::move(groups), o);
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("betas") = py::make_tuple(0.9, 0.999),
           py::arg("eps") = 1e-8, py::arg("weight_decay") = 1e-2, py::arg("amsgrad") = false);

  py::class_<optim::SGD, optim::Optimizer, std::shared_ptr<optim::SGD>>(sub, "SGD")
      .def(py::init([](py::handle params, double lr, double momentum, double dampening, double weight_decay,
                       bool nesterov) {
             const optim::SGDOptions o{.lr = lr, .momentum = momentum, .dampening = dampening,
                                       .weight_decay = weight_decay, .nesterov = nesterov};
             auto groups = parse_groups(params, optim::SGD::make_group({}, o), "SGD",
                                        [](optim::ParamGroup& g, const std::string& k, py::handle v) {
                                          if (k == "momentum") {
                                            g.momentum = py::cast<double>(v);
                                          } else if (k == "dampening") {
                                            g.dampening = py::cast<double>(v);
                                          } else if (k == "nesterov") {
                                            g.nesterov = py::cast<bool>(v);
                                          } else {
                                            return false;
                                          }
                                          return true;
                                        });
             return std::make_shared<optim::SGD>(std::move(groups), o);
           }),
           py::arg("params"), py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
           py::arg("weight_decay") = 0.0, py::arg("nesterov") = false);

  // Schedulers keep their optimiser alive (keep_alive) since they hold a reference to it.
  py::class_<optim::LRScheduler, std::shared_ptr<optim::LRScheduler>>(sub, "LRScheduler",
                                                                       "Base class of the lr schedules")
      .def("step", [](optim::LRScheduler& self) { self.step(); }, "Call once after each optimiser step")
      .def("get_last_lr", &optim::LRScheduler::last_lr, "Every group's lr as last set")
      .def_property_readonly("last_lr", &optim::LRScheduler::last_lr)
      .def_property_readonly("steps", &optim::LRScheduler::steps)
      .def_property_readonly("type_name", &optim::LRScheduler::type_name)
      .def("lr_at", &optim::LRScheduler::lr_at, py::arg("initial_lr"), py::arg("step"))
      .def("state_json", &optim::LRScheduler::state_json)
      .def("load_state_json", &optim::LRScheduler::load_state_json, py::arg("json"))
      .def("state_dict", [](const optim::LRScheduler& self) {
        py::dict d;
        d["json"] = self.state_json();
        return d;
      })
      .def(
          "load_state_dict",
          [](optim::LRScheduler& self, py::dict state) {
            if (!state.contains("json")) throw py::value_error("load_state_dict: expected a dict with 'json'");
            self.load_state_json(state["json"].cast<std::string>());
          },
          py::arg("state_dict"));

  py::class_<optim::WarmupHoldDecay, optim::LRScheduler, std::shared_ptr<optim::WarmupHoldDecay>>(sub,
                                                                                                   "WarmupHoldDecay")
      .def(py::init([](OptPtr opt, int64_t warmup, int64_t hold, double factor, int64_t every) {
             return std::make_shared<optim::WarmupHoldDecay>(*opt, warmup, hold, factor, every);
           }),
           py::arg("optimizer"), py::arg("warmup_steps") = 4000, py::arg("hold_steps") = 0,
           py::arg("decay_factor") = 0.9, py::arg("decay_every") = 10000, py::keep_alive<1, 2>());

  py::class_<optim::CosineSchedule, optim::LRScheduler, std::shared_ptr<optim::CosineSchedule>>(sub, "CosineSchedule")
      .def(py::init([](OptPtr opt, int64_t total, int64_t warmup, double min_lr) {
             return std::make_shared<optim::CosineSchedule>(*opt, total, warmup, min_lr);
           }),
           py::arg("optimizer"), py::arg("total_steps"), py::arg("warmup_steps") = 0, py::arg("min_lr") = 0.0,
           py::keep_alive<1, 2>());

  py::class_<optim::ReduceLROnPlateau, optim::LRScheduler, std::shared_ptr<optim::ReduceLROnPlateau>>(
      sub, "ReduceLROnPlateau")
      .def(py::init([](OptPtr opt, const std::string& mode, double factor, int64_t patience, double threshold,
                       const std::string& threshold_mode, int64_t cooldown, double min_lr, double eps) {
             return std::make_shared<optim::ReduceLROnPlateau>(
                 *opt, optim::PlateauOptions{.mode = mode, .factor = factor, .patience = patience,
                                             .threshold = threshold, .threshold_mode = threshold_mode,
                                             .cooldown = cooldown, .min_lr = min_lr, .eps = eps});
           }),
           py::arg("optimizer"), py::arg("mode") = "min", py::arg("factor") = 0.3, py::arg("patience") = 5,
           py::arg("threshold") = 1e-4, py::arg("threshold_mode") = "rel", py::arg("cooldown") = 0,
           py::arg("min_lr") = 5e-6, py::arg("eps") = 1e-8, py::keep_alive<1, 2>())
      .def(
          "step",
          [](optim::ReduceLROnPlateau& self, py::handle metric) {
            const double v = py::isinstance<Tensor>(metric) ? metric.cast<Tensor>().item() : metric.cast<double>();
            self.step(v);
          },
          py::arg("metrics"), "One step with the monitored metric (a number or a one-element Tensor)")
      .def_property_readonly("best", &optim::ReduceLROnPlateau::best)
      .def_property_readonly("num_bad_steps", &optim::ReduceLROnPlateau::num_bad_steps)
      .def_property_readonly("cooldown_counter", &optim::ReduceLROnPlateau::cooldown_counter);

  sub.def(
      "clip_grad_norm_",
      [](py::handle params, double max_norm, py::handle norm_type, bool error_if_nonfinite) {
        auto ps = clip_params(params, "clip_grad_norm_");
        const double p = norm_type_arg(norm_type);
        py::gil_scoped_release nogil;
        return optim::clip_grad_norm_(ps, max_norm, p, error_if_nonfinite);
      },
      py::arg("parameters"), py::arg("max_norm"), py::arg("norm_type") = 2.0, py::arg("error_if_nonfinite") = false,
      "Scales the gradients so their total norm is at most max_norm; returns the total norm (a float)");
  sub.def(
      "clip_grad_value_",
      [](py::handle params, double clip_value) {
        auto ps = clip_params(params, "clip_grad_value_");
        py::gil_scoped_release nogil;
        optim::clip_grad_value_(ps, clip_value);
      },
      py::arg("parameters"), py::arg("clip_value"), "Clamps every gradient element to [-clip_value, clip_value]");
}

}  // namespace tse::python
