// torch.nn.functional's layer ops with its names and keywords, in tse._C._nn (re-exported by
// tse.nn.functional): convolutions, normalisations, softmax, average pooling. softmax and
// log_softmax are also tse.<name> and Tensor methods, as in torch.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

/// torch's int-or-pair arguments (stride=2, stride=(2, 1)) as a Size2.
ops::Size2 size2(py::handle h, const char* op, const char* arg) {
  const std::vector<int64_t> v = ints_from_arg(h, op, arg);
  if (v.size() == 1) return {v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  throw py::value_error(std::string(op) + ": '" + arg + "' must be an int or a pair of ints, got " +
                        std::to_string(v.size()) + " values");
}

/// torch's int-or-1-tuple arguments of the 1-D ops.
int64_t size1(py::handle h, const char* op, const char* arg) {
  const std::vector<int64_t> v = ints_from_arg(h, op, arg);
  if (v.size() != 1)
    throw py::value_error(std::string(op) + ": '" + arg + "' must be an int or a 1-tuple, got " +
                          std::to_string(v.size()) + " values");
  return v[0];
}

Tensor opt(const std::optional<Tensor>& t) { return t.value_or(Tensor()); }

Tensor conv1d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, py::handle stride, py::handle padding,
              py::handle dilation, int64_t groups) {
  const int64_t s = size1(stride, "conv1d", "stride"), d = size1(dilation, "conv1d", "dilation");
  if (py::isinstance<py::str>(padding)) {
    const std::string mode = padding.cast<std::string>();
    py::gil_scoped_release nogil;
    return ops::conv1d(x, w, opt(b), s, ops::PaddingMode(mode), d, groups);
  }
  const int64_t p = size1(padding, "conv1d", "padding");
  py::gil_scoped_release nogil;
  return ops::conv1d(x, w, opt(b), s, p, d, groups);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, py::handle stride, py::handle padding,
              py::handle dilation, int64_t groups) {
  const ops::Size2 s = size2(stride, "conv2d", "stride"), d = size2(dilation, "conv2d", "dilation");
  if (py::isinstance<py::str>(padding)) {
    const std::string mode = padding.cast<std::string>();
    py::gil_scoped_release nogil;
    return ops::conv2d(x, w, opt(b), s, ops::PaddingMode(mode), d, groups);
  }
  const ops::Size2 p = size2(padding, "conv2d", "padding");
  py::gil_scoped_release nogil;
  return ops::conv2d(x, w, opt(b), s, p, d, groups);
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, py::handle stride,
                        py::handle padding, py::handle output_padding, int64_t groups, py::handle dilation) {
  const char* op = "conv_transpose1d";
  const int64_t s = size1(stride, op, "stride"), p = size1(padding, op, "padding");
  const int64_t op_ = size1(output_padding, op, "output_padding"), d = size1(dilation, op, "dilation");
  py::gil_scoped_release nogil;
  return ops::conv_transpose1d(x, w, opt(b), s, p, op_, groups, d);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, py::handle stride,
                        py::handle padding, py::handle output_padding, int64_t groups, py::handle dilation) {
  const char* op = "conv_transpose2d";
  const ops::Size2 s = size2(stride, op, "stride"), p = size2(padding, op, "padding");
  const ops::Size2 op_ = size2(output_padding, op, "output_padding"), d = size2(dilation, op, "dilation");
  py::gil_scoped_release nogil;
  return ops::conv_transpose2d(x, w, opt(b), s, p, op_, groups, d);
}

Tensor avg_pool1d(const Tensor& x, py::handle kernel, py::handle stride, py::handle padding, bool ceil_mode,
                  bool count_include_pad) {
  const char* op = "avg_pool1d";
  const int64_t k = size1(kernel, op, "kernel_size");
  const int64_t s = stride.is_none() ? 0 : size1(stride, op, "stride");
  const int64_t p = size1(padding, op, "padding");
  py::gil_scoped_release nogil;
  return ops::avg_pool1d(x, k, s, p, ceil_mode, count_include_pad);
}

Tensor avg_pool2d(const Tensor& x, py::handle kernel, py::handle stride, py::handle padding, bool ceil_mode,
                  bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  const std::vector<int64_t> k = ints_from_arg(kernel, op, "kernel_size");
  const std::vector<int64_t> s = stride.is_none() ? std::vector<int64_t>{} : ints_from_arg(stride, op, "stride");
  const std::vector<int64_t> p = ints_from_arg(padding, op, "padding");
  py::gil_scoped_release nogil;
  return ops::avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override);
}

}  // namespace

void bind_nn(py::module_& m, py::class_<Tensor>& cls) {
  py::module_ nn = m.attr("_nn");
  const auto none = py::none();
  nn.def("conv1d", &conv1d, py::arg("input"), py::arg("weight"), py::arg("bias") = none, py::arg("stride") = 1,
         py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
         "input (N, C_in, L) or (C_in, L), weight (C_out, C_in / groups, k); padding an int, 'same' or 'valid'.");
  nn.def("conv2d", &conv2d, py::arg("input"), py::arg("weight"), py::arg("bias") = none, py::arg("stride") = 1,
         py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
         "input (N, C_in, H, W) or (C_in, H, W), weight (C_out, C_in / groups, kH, kW); padding an int, a pair, "
         "'same' or 'valid'.");
  nn.def("conv_transpose1d", &conv_transpose1d, py::arg("input"), py::arg("weight"), py::arg("bias") = none,
         py::arg("stride") = 1, py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
         py::arg("dilation") = 1, "Transposed conv1d: weight (C_in, C_out / groups, k).");
  nn.def("conv_transpose2d", &conv_transpose2d, py::arg("input"), py::arg("weight"), py::arg("bias") = none,
         py::arg("stride") = 1, py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
         py::arg("dilation") = 1, "Transposed conv2d: weight (C_in, C_out / groups, kH, kW).");
  nn.def("layer_norm", [](const Tensor& x, py::handle shape, const std::optional<Tensor>& w,
                          const std::optional<Tensor>& b, double eps) {
           const Shape s = ints_from_arg(shape, "layer_norm", "normalized_shape");
           py::gil_scoped_release nogil;
           return ops::layer_norm(x, s, opt(w), opt(b), eps);
         }, py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = none, py::arg("bias") = none,
         py::arg("eps") = 1e-5, "Normalises over the trailing normalized_shape dims, then weight * x + bias.");
  nn.def("group_norm", [](const Tensor& x, int64_t groups, const std::optional<Tensor>& w,
                          const std::optional<Tensor>& b, double eps) {
           py::gil_scoped_release nogil;
           return ops::group_norm(x, groups, opt(w), opt(b), eps);
         }, py::arg("input"), py::arg("num_groups"), py::arg("weight") = none, py::arg("bias") = none,
         py::arg("eps") = 1e-5, "input (N, C, *) normalised over groups of C / num_groups channels.");
  nn.def("batch_norm", [](const Tensor& x, const std::optional<Tensor>& rm, const std::optional<Tensor>& rv,
                          const std::optional<Tensor>& w, const std::optional<Tensor>& b, bool training,
                          double momentum, double eps) {
           py::gil_scoped_release nogil;
           return ops::batch_norm(x, opt(rm), opt(rv), opt(w), opt(b), training, momentum, eps);
         }, py::arg("input"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight") = none,
         py::arg("bias") = none, py::arg("training") = false, py::arg("momentum") = 0.1, py::arg("eps") = 1e-5,
         "Batch statistics when training (running stats updated in place), running stats otherwise.");
  nn.def("avg_pool1d", &avg_pool1d, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = none,
         py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
         "Average pooling over (N, C, L) or (C, L); stride defaults to kernel_size.");
  nn.def("avg_pool2d", &avg_pool2d, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = none,
         py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
         py::arg("divisor_override") = none, "Average pooling over (N, C, H, W) or (C, H, W).");
  for (auto [name, fn] : {std::pair{"softmax", &ops::softmax}, std::pair{"log_softmax", &ops::log_softmax}}) {
    auto f = [fn = fn](const Tensor& x, int64_t dim) {
      py::gil_scoped_release nogil;
      return fn(x, dim);
    };
    nn.def(name, f, py::arg("input"), py::arg("dim"), "Along dim, computed stably (max-shifted).");
    m.def(name, f, py::arg("input"), py::arg("dim"), "Along dim, computed stably (max-shifted).");
    cls.def(name, f, py::arg("dim"), "Along dim, computed stably (max-shifted).");
  }
}

}  // namespace tse::python
