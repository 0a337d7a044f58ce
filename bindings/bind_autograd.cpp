// Autograd layer: grad mode, autocast mode, tape nodes (Tensor.grad_fn), backward and grad. The
// Python package builds no_grad / enable_grad, tse.autocast and tse.autograd.grad / gradcheck on
// these.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

std::vector<Tensor> defined_or_empty(const std::vector<std::optional<Tensor>>& v) {
  std::vector<Tensor> out;
  out.reserve(v.size());
  for (const auto& t : v) out.push_back(t.value_or(Tensor()));
  return out;
}

}  // namespace

void bind_autograd(py::module_& m) {
  using autograd::Node;
  py::class_<Node, std::shared_ptr<Node>>(m, "Node", "One recorded op on the tape (Tensor.grad_fn).")
      .def("name", &Node::name)
      .def_property_readonly(
          "next_functions",
          [](const Node& n) {
            // (producer node, its output slot) per input; (None, 0) where the input is a leaf or
            // needs no gradient.
            py::list out;
            for (const auto& e : n.next_edges)
              out.append(py::make_tuple(e.fn ? py::cast(e.fn) : py::none(), e.output_nr));
            return py::tuple(out);
          })
      .def("__repr__", [](const Node& n) { return std::string("<tse.autograd.Node ") + n.name() + ">"; });

  m.def("is_grad_enabled", &autograd::GradMode::is_enabled, "Whether ops record gradients in this thread.");
  m.def("_set_grad_enabled", &autograd::GradMode::set_enabled, py::arg("mode"));

  m.def("_autocast_dtype", &autocast::dtype,
        "This thread's GEMM operand dtype: bfloat16 under autocast, else float32.");
  m.def("_set_autocast_dtype", &autocast::set_dtype, py::arg("dtype"));
  m.def("_autocast_native_bf16", &autocast::native_bf16, py::arg("device"));
  m.def("_autocast_cached_bytes", &autocast::cached_bytes);
  m.def("_autocast_clear_cache", &autocast::clear_cache);

  m.def("_autograd_backward",
        [](const std::vector<Tensor>& tensors, const std::vector<std::optional<Tensor>>& grad_tensors,
           bool retain_graph) {
          auto grads = defined_or_empty(grad_tensors);
          py::gil_scoped_release nogil;
          autograd::backward(tensors, grads, retain_graph);
        },
        py::arg("tensors"), py::arg("grad_tensors"), py::arg("retain_graph"));

  m.def("_autograd_grad",
        [](const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
           const std::vector<std::optional<Tensor>>& grad_outputs, bool retain_graph, bool allow_unused) {
          auto grads = defined_or_empty(grad_outputs);
          std::vector<Tensor> result;
          {
            py::gil_scoped_release nogil;
            result = autograd::grad(outputs, inputs, grads, retain_graph, allow_unused);
          }
          py::list out;
          for (const Tensor& g : result) out.append(g.defined() ? py::cast(g) : py::none());
          return py::tuple(out);
        },
        py::arg("outputs"), py::arg("inputs"), py::arg("grad_outputs"), py::arg("retain_graph"),
        py::arg("allow_unused"));
}

}  // namespace tse::python
