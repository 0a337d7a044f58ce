// Ops layer: tse.<op> with PyTorch's names, argument order and keywords, the same ops as Tensor
// methods where PyTorch has them, factories and random tensors, and torch.nn.functional's
// pad / interpolate / dropout in tse._C._nn. Adding an op is one def line here (ARCHITECTURE §4).
#include <algorithm>

#include "bindings/common.hpp"

namespace tse::python {
namespace {

using TensorTensorFn = Tensor (*)(const Tensor&, const Tensor&);
using TensorDoubleFn = Tensor (*)(const Tensor&, double);
using UnaryFn = Tensor (*)(const Tensor&);

std::string type_name(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

// Binds f as tse.<name>(input, ...) and as Tensor.<name>(...).
template <typename F, typename... Extra>
void def_function_and_method(py::module_& m, py::class_<Tensor>& cls, const char* name, F f, const Extra&... extra) {
  m.def(name, f, py::arg("input"), extra...);
  cls.def(name, f, extra...);
}

void def_unary(py::module_& m, py::class_<Tensor>* cls, const char* name, UnaryFn fn, const char* doc) {
  auto f = [fn](const Tensor& x) {
    py::gil_scoped_release nogil;
    return fn(x);
  };
  m.def(name, f, py::arg("input"), doc);
  if (cls) cls->def(name, f, doc);
}

// x <op> other, other a Tensor or a Python number. td handles a number directly when the op has
// a scalar form; otherwise the number becomes a 0-d tensor.
Tensor call_binary(const Tensor& x, py::handle other, TensorTensorFn tt, TensorDoubleFn td, const char* op) {
  if (td && !py::isinstance<Tensor>(other)) {
    if (auto s = scalar_from_python(other)) {
      py::gil_scoped_release nogil;
      return td(x.to(dtype_with_scalar(x.dtype(), *s)), s->value);
    }
  }
  const Tensor o = tensor_operand(other, &x, op, "other");
  py::gil_scoped_release nogil;
  return tt(x, o);
}

template <TensorTensorFn TT, TensorDoubleFn TD>
void def_binary(py::module_& m, py::class_<Tensor>* cls, const char* name, const char* doc) {
  auto f = [name](const Tensor& x, py::handle other) { return call_binary(x, other, TT, TD, name); };
  m.def(name, f, py::arg("input"), py::arg("other"), doc);
  if (cls) cls->def(name, f, py::arg("other"), doc);
}

// Unambiguous pointers to the overloaded ops: the tensor-tensor (_tt) and tensor-number (_td) forms.
Tensor add_tt(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor sub_tt(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
Tensor mul_tt(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
Tensor div_tt(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
Tensor pow_tt(const Tensor& a, const Tensor& b) { return ops::pow(a, b); }
Tensor eq_tt(const Tensor& a, const Tensor& b) { return ops::eq(a, b); }
Tensor ne_tt(const Tensor& a, const Tensor& b) { return ops::ne(a, b); }
Tensor lt_tt(const Tensor& a, const Tensor& b) { return ops::lt(a, b); }
Tensor le_tt(const Tensor& a, const Tensor& b) { return ops::le(a, b); }
Tensor gt_tt(const Tensor& a, const Tensor& b) { return ops::gt(a, b); }
Tensor ge_tt(const Tensor& a, const Tensor& b) { return ops::ge(a, b); }
Tensor add_td(const Tensor& a, double b) { return ops::add(a, b); }
Tensor sub_td(const Tensor& a, double b) { return ops::sub(a, b); }
Tensor rsub_td(const Tensor& a, double b) { return ops::rsub(a, b); }
Tensor mul_td(const Tensor& a, double b) { return ops::mul(a, b); }
Tensor div_td(const Tensor& a, double b) { return ops::div(a, b); }
Tensor rdiv_td(const Tensor& a, double b) { return ops::rdiv(a, b); }
Tensor pow_td(const Tensor& a, double b) { return ops::pow(a, b); }
Tensor rpow_td(const Tensor& a, double b) { return ops::pow(ops::scalar_tensor(b, a.dtype(), a.device()), a); }
Tensor eq_td(const Tensor& a, double b) { return ops::eq(a, b); }
Tensor ne_td(const Tensor& a, double b) { return ops::ne(a, b); }
Tensor lt_td(const Tensor& a, double b) { return ops::lt(a, b); }
Tensor le_td(const Tensor& a, double b) { return ops::le(a, b); }
Tensor gt_td(const Tensor& a, double b) { return ops::gt(a, b); }
Tensor ge_td(const Tensor& a, double b) { return ops::ge(a, b); }

// Python operators: self <op> other with other a Tensor or a number; NotImplemented otherwise,
// so Python tries the other operand's reflected operator.
template <TensorTensorFn TT, TensorDoubleFn TD>
py::object binary_operator(const Tensor& self, py::handle other) {
  if (!py::isinstance<Tensor>(other) && !scalar_from_python(other))
    return py::reinterpret_borrow<py::object>(Py_NotImplemented);
  return py::cast(call_binary(self, other, TT, TD, "operator"));
}

// number <op> self.
template <TensorDoubleFn TD>
py::object reflected_operator(const Tensor& self, py::handle other) {
  auto s = scalar_from_python(other);
  if (!s) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
  Tensor out;
  {
    py::gil_scoped_release nogil;
    out = TD(self.to(dtype_with_scalar(self.dtype(), *s)), s->value);
  }
  return py::cast(std::move(out));
}

Tensor logical_binary(const Tensor& a, const Tensor& b, bool is_and) {
  TSE_CHECK(a.dtype() == DType::b8 && b.dtype() == DType::b8, is_and ? "__and__" : "__or__",
            ": & and | are defined for bool tensors only (got ", a.dtype(), " and ", b.dtype(),
            "); integer bitwise ops are not supported");
  return is_and ? ops::logical_and(a, b) : ops::logical_or(a, b);
}

// a + alpha * b / a - alpha * b, b a Tensor or a number.
Tensor add_or_sub(const Tensor& x, py::handle other, double alpha, bool subtract) {
  const char* op = subtract ? "sub" : "add";
  if (!py::isinstance<Tensor>(other)) {
    if (auto s = scalar_from_python(other)) {
      const double v = alpha * s->value;
      py::gil_scoped_release nogil;
      const Tensor a = x.to(dtype_with_scalar(x.dtype(), *s));
      return subtract ? ops::sub(a, v) : ops::add(a, v);
    }
  }
  const Tensor o = tensor_operand(other, &x, op, "other");
  py::gil_scoped_release nogil;
  return subtract ? ops::sub(x, o, alpha) : ops::add(x, o, alpha);
}

// ---- reductions ----------------------------------------------------------------------------------

Tensor sum_or_mean(const Tensor& x, py::handle dim, bool keepdim, std::optional<DType> dtype, bool mean) {
  const Shape dims = dims_from_arg(dim, mean ? "mean" : "sum");
  py::gil_scoped_release nogil;
  const Tensor in = dtype ? x.to(*dtype) : x;
  return mean ? ops::mean(in, dims, keepdim) : ops::sum(in, dims, keepdim);
}

// var(x, dim, unbiased, keepdim, correction=) with PyTorch's var(x, unbiased) form too.
Tensor var_or_std(const Tensor& x, py::handle dim, py::handle unbiased, bool keepdim, py::handle correction,
                  bool is_std) {
  const char* op = is_std ? "std" : "var";
  if (PyBool_Check(dim.ptr())) {
    if (!unbiased.is_none()) throw py::type_error(std::string(op) + ": got unbiased twice");
    unbiased = dim;
    dim = py::none();
  }
  if (!unbiased.is_none() && !correction.is_none())
    throw py::type_error(std::string(op) + ": pass either unbiased or correction, not both");
  int64_t corr = 1;
  if (!unbiased.is_none()) corr = unbiased.cast<bool>() ? 1 : 0;
  if (!correction.is_none()) corr = correction.cast<int64_t>();
  const Shape dims = dims_from_arg(dim, op);
  py::gil_scoped_release nogil;
  Tensor v = ops::var(x, dims, corr, keepdim);
  return is_std ? ops::sqrt(v) : v;
}

std::array<py::object, 2>& return_types() {
  static auto* types = new std::array<py::object, 2>();  // leaked: outlives interpreter teardown
  return *types;
}

// max(x) -> 0-d; max(x, dim, keepdim) -> (values, indices); max(x, other) -> maximum.
py::object max_or_min(const Tensor& x, py::handle dim, bool keepdim, bool is_max) {
  if (dim.is_none()) {
    Tensor out;
    {
      py::gil_scoped_release nogil;
      out = is_max ? ops::amax(x) : ops::amin(x);
    }
    return py::cast(std::move(out));
  }
  if (py::isinstance<Tensor>(dim)) {
    const Tensor& other = dim.cast<const Tensor&>();
    Tensor out;
    {
      py::gil_scoped_release nogil;
      out = is_max ? ops::maximum(x, other) : ops::minimum(x, other);
    }
    return py::cast(std::move(out));
  }
  const int64_t d = dim.cast<int64_t>();
  std::pair<Tensor, Tensor> r;
  {
    py::gil_scoped_release nogil;
    r = is_max ? ops::max(x, d, keepdim) : ops::min(x, d, keepdim);
  }
  return return_types()[is_max ? 0 : 1](r.first, r.second);
}

Tensor arg_max_or_min(const Tensor& x, py::handle dim, bool keepdim, bool is_max) {
  if (dim.is_none()) {
    py::gil_scoped_release nogil;
    Tensor flat = x.reshape({-1});
    Tensor out = is_max ? ops::argmax(flat, 0) : ops::argmin(flat, 0);
    return keepdim ? out.reshape(Shape(x.dim(), 1)) : out;
  }
  const int64_t d = dim.cast<int64_t>();
  py::gil_scoped_release nogil;
  return is_max ? ops::argmax(x, d, keepdim) : ops::argmin(x, d, keepdim);
}

Tensor amax_or_amin(const Tensor& x, py::handle dim, bool keepdim, bool is_max) {
  const Shape dims = dims_from_arg(dim, is_max ? "amax" : "amin");
  py::gil_scoped_release nogil;
  return is_max ? ops::amax(x, dims, keepdim) : ops::amin(x, dims, keepdim);
}

Tensor norm(const Tensor& x, py::handle p, py::handle dim, bool keepdim, std::optional<DType> dtype) {
  double order = 2.0;
  if (py::isinstance<py::str>(p)) {
    const std::string s = p.cast<std::string>();
    if (s == "nuc") throw NotImplementedError("norm: the nuclear norm (p='nuc') is not implemented");
    if (s != "fro") throw py::value_error("norm: p must be a number, 'fro' or 'nuc', got '" + s + "'");
  } else if (!p.is_none()) {
    order = p.cast<double>();
  }
  const Shape dims = dims_from_arg(dim, "norm");
  py::gil_scoped_release nogil;
  return ops::norm(dtype ? x.to(*dtype) : x, order, dims, keepdim);
}

// ---- shape ops ----------------------------------------------------------------------------------

py::tuple to_tuple(const std::vector<Tensor>& v) {
  py::tuple t(v.size());
  for (size_t i = 0; i < v.size(); ++i) t[i] = py::cast(v[i]);
  return t;
}

py::tuple split(const Tensor& x, py::handle split_size_or_sections, int64_t dim) {
  std::vector<Tensor> parts;
  if (is_int(split_size_or_sections)) {
    const int64_t size = split_size_or_sections.cast<int64_t>();
    py::gil_scoped_release nogil;
    parts = ops::split(x, size, dim);
  } else {
    const auto sections = ints_from_arg(split_size_or_sections, "split", "split_size_or_sections");
    py::gil_scoped_release nogil;
    parts = ops::split(x, sections, dim);
  }
  return to_tuple(parts);
}

py::tuple chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  std::vector<Tensor> parts;
  {
    py::gil_scoped_release nogil;
    parts = ops::chunk(x, chunks, dim);
  }
  return to_tuple(parts);
}

Tensor roll(const Tensor& x, py::handle shifts, py::handle dims) {
  const auto s = ints_from_arg(shifts, "roll", "shifts");
  const std::vector<int64_t> d = dims.is_none() ? std::vector<int64_t>{} : ints_from_arg(dims, "roll", "dims");
  py::gil_scoped_release nogil;
  return ops::roll(x, s, d);
}

Tensor flip(const Tensor& x, const std::vector<int64_t>& dims) {
  py::gil_scoped_release nogil;
  return ops::flip(x, dims);
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, std::optional<double> value) {
  py::gil_scoped_release nogil;
  return ops::pad(x, pads, mode, value.value_or(0.0));
}

Tensor interpolate(const Tensor& x, py::handle size, py::handle scale_factor, const std::string& mode,
                   std::optional<bool> align_corners) {
  const size_t spatial = x.dim() > 2 ? static_cast<size_t>(x.dim() - 2) : 1;
  std::vector<int64_t> sizes;
  if (is_int(size)) {
    sizes.assign(spatial, size.cast<int64_t>());
  } else if (!size.is_none()) {
    sizes = ints_from_arg(size, "interpolate", "size");
  }
  std::vector<double> scales;
  if (py::isinstance<py::sequence>(scale_factor)) {
    scales = scale_factor.cast<std::vector<double>>();
  } else if (!scale_factor.is_none()) {
    scales = {scale_factor.cast<double>()};
  }
  if (align_corners && mode == "nearest")
    throw py::value_error(
        "interpolate: align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic");
  py::gil_scoped_release nogil;
  return ops::interpolate(x, sizes, scales, mode, align_corners.value_or(false));
}

// ---- factories ------------------------------------------------------------------------------------

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.requires_grad_(true);
  return t;
}

using SizedFactory = Tensor (*)(const Shape&, DType, Device);

template <SizedFactory F>
Tensor sized(const py::args& size, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad,
             const char* op) {
  const Shape s = shape_from_args(size, op);
  Tensor out;
  {
    py::gil_scoped_release nogil;
    out = F(s, dtype.value_or(DType::f32), device.value_or(Device::cpu()));
  }
  return finish(std::move(out), requires_grad);
}

template <SizedFactory F>
Tensor sized_like(const Tensor& x, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
  Tensor out;
  {
    py::gil_scoped_release nogil;
    out = F(x.sizes(), dtype.value_or(x.dtype()), device.value_or(x.device()));
  }
  return finish(std::move(out), requires_grad);
}

DType fill_dtype(py::handle value) {
  auto s = scalar_from_python(value);
  if (!s) throw py::type_error("full: fill_value must be a number, got " + type_name(value));
  return s->is_float ? DType::f32 : s->is_bool ? DType::b8 : DType::i64;
}

Tensor full(const Shape& size, py::handle fill_value, std::optional<DType> dtype, std::optional<Device> device,
            bool requires_grad) {
  const DType t = dtype.value_or(fill_dtype(fill_value));
  const double v = scalar_from_python(fill_value)->value;
  Tensor out;
  {
    py::gil_scoped_release nogil;
    out = ops::full(size, v, t, device.value_or(Device::cpu()));
  }
  return finish(std::move(out), requires_grad);
}

Tensor arange(py::handle start, py::handle end, py::handle step, std::optional<DType> dtype,
              std::optional<Device> device, bool requires_grad) {
  if (end.is_none()) {
    end = start;
    start = py::int_(0);
  }
  // All-integer arguments give int64, as in PyTorch; any float gives float32.
  auto integral = [](py::handle h) { return is_int(h) && !PyFloat_Check(h.ptr()); };
  const DType natural = integral(start) && integral(end) && integral(step) ? DType::i64 : DType::f32;
  const double a = start.cast<double>(), b = end.cast<double>(), s = step.cast<double>();
  Tensor out;
  {
    py::gil_scoped_release nogil;
    out = ops::arange(a, b, s, dtype.value_or(natural), device.value_or(Device::cpu()));
  }
  return finish(std::move(out), requires_grad);
}

Tensor eye(int64_t n, std::optional<int64_t> cols, std::optional<DType> dtype, std::optional<Device> device,
           bool requires_grad) {
  const int64_t m = cols.value_or(n);
  Tensor out;
  {
    py::gil_scoped_release nogil;
    const DType t = dtype.value_or(DType::f32);
    const Device d = device.value_or(Device::cpu());
    out = m == n ? ops::eye(n, t, d) : ops::eye(std::max(n, m), t, d).narrow(0, 0, n).narrow(1, 0, m).contiguous();
  }
  return finish(std::move(out), requires_grad);
}

// randint(high, size) or randint(low, high, size).
Tensor randint(const py::args& args, py::handle size_kw, std::optional<DType> dtype, std::optional<Device> device) {
  std::vector<py::handle> a(args.begin(), args.end());
  if (!size_kw.is_none()) a.push_back(size_kw);
  if (a.size() != 2 && a.size() != 3)
    throw py::type_error("randint: expected (high, size) or (low, high, size), got " + std::to_string(a.size()) +
                         " arguments");
  const int64_t low = a.size() == 3 ? a[0].cast<int64_t>() : 0;
  const int64_t high = a[a.size() - 2].cast<int64_t>();
  const Shape s = ints_from_arg(a.back(), "randint", "size");
  py::gil_scoped_release nogil;
  return ops::randint(low, high, s, dtype.value_or(DType::i64), device.value_or(Device::cpu()));
}

Tensor dropout(const Tensor& x, double p, bool training) {
  py::gil_scoped_release nogil;
  return ops::dropout(x, p, training);
}

}  // namespace

void bind_ops(py::module_& m, py::class_<Tensor>& cls) {
  const auto none = py::none();

  // ---- elementwise ----
  auto add = [](const Tensor& x, py::handle other, double alpha) { return add_or_sub(x, other, alpha, false); };
  auto sub = [](const Tensor& x, py::handle other, double alpha) { return add_or_sub(x, other, alpha, true); };
  def_function_and_method(m, cls, "add", add, py::arg("other"), py::kw_only(), py::arg("alpha") = 1.0,
                          "input + alpha * other (broadcasting).");
  def_function_and_method(m, cls, "sub", sub, py::arg("other"), py::kw_only(), py::arg("alpha") = 1.0,
                          "input - alpha * other (broadcasting).");
  def_binary<mul_tt, mul_td>(m, &cls, "mul", "input * other (broadcasting).");
  def_binary<div_tt, div_td>(m, &cls, "div", "input / other (broadcasting).");
  m.def("pow", [](py::handle input, py::handle exponent) {
          if (py::isinstance<Tensor>(input)) return call_binary(input.cast<Tensor>(), exponent, pow_tt, pow_td, "pow");
          // pow(number, tensor)
          const Tensor e = tensor_operand(exponent, nullptr, "pow", "exponent");
          const Tensor b = tensor_operand(input, &e, "pow", "input");
          py::gil_scoped_release nogil;
          return ops::pow(b, e);
        }, py::arg("input"), py::arg("exponent"), "input ** exponent; either may be a number.");
  cls.def("pow", [](const Tensor& x, py::handle exponent) { return call_binary(x, exponent, pow_tt, pow_td, "pow"); },
          py::arg("exponent"));
  def_binary<static_cast<TensorTensorFn>(&ops::atan2), nullptr>(m, &cls, "atan2", "atan2(input, other), quadrant-aware.");
  def_binary<static_cast<TensorTensorFn>(&ops::maximum), nullptr>(m, &cls, "maximum", "Elementwise maximum.");
  def_binary<static_cast<TensorTensorFn>(&ops::minimum), nullptr>(m, &cls, "minimum", "Elementwise minimum.");

  def_unary(m, &cls, "neg", &ops::neg, "-input.");
  def_unary(m, &cls, "exp", &ops::exp, "e ** input.");
  def_unary(m, &cls, "log", &ops::log, "Natural logarithm.");
  def_unary(m, &cls, "log10", &ops::log10, "Base-10 logarithm.");
  def_unary(m, &cls, "sqrt", &ops::sqrt, "Square root.");
  def_unary(m, &cls, "rsqrt", &ops::rsqrt, "1 / sqrt(input).");
  def_unary(m, &cls, "abs", &ops::abs, "|input| (gradient 0 at 0).");
  def_unary(m, &cls, "sin", &ops::sin, "Sine.");
  def_unary(m, &cls, "cos", &ops::cos, "Cosine.");

  auto clamp = [](const Tensor& x, py::handle min, py::handle max) {
    if (min.is_none() && max.is_none()) throw py::value_error("clamp: at least one of 'min' or 'max' must not be None");
    // Tensor bounds are elementwise maximum / minimum.
    if (py::isinstance<Tensor>(min) || py::isinstance<Tensor>(max)) {
      Tensor out = x;
      const std::optional<Tensor> lo =
          min.is_none() ? std::nullopt : std::optional<Tensor>(tensor_operand(min, &x, "clamp", "min"));
      const std::optional<Tensor> hi =
          max.is_none() ? std::nullopt : std::optional<Tensor>(tensor_operand(max, &x, "clamp", "max"));
      py::gil_scoped_release nogil;
      if (lo) out = ops::maximum(out, *lo);
      if (hi) out = ops::minimum(out, *hi);
      return out;
    }
    const std::optional<double> lo = min.is_none() ? std::nullopt : std::optional<double>(min.cast<double>());
    const std::optional<double> hi = max.is_none() ? std::nullopt : std::optional<double>(max.cast<double>());
    py::gil_scoped_release nogil;
    if (lo && hi) return ops::clamp(x, *lo, *hi);
    return lo ? ops::clamp_min(x, *lo) : ops::clamp_max(x, *hi);
  };
  def_function_and_method(m, cls, "clamp", clamp, py::arg("min") = none, py::arg("max") = none,
                          "Clamps to [min, max]; either bound may be None, a number or a tensor.");
  def_function_and_method(m, cls, "clip", clamp, py::arg("min") = none, py::arg("max") = none, "Alias of clamp.");

  m.def("where", [](const Tensor& cond, py::handle input, py::handle other) {
          const Tensor* ref = py::isinstance<Tensor>(input)   ? &input.cast<const Tensor&>()
                              : py::isinstance<Tensor>(other) ? &other.cast<const Tensor&>()
                                                              : nullptr;
          const Tensor a = tensor_operand(input, ref, "where", "input");
          const Tensor b = tensor_operand(other, ref, "where", "other");
          py::gil_scoped_release nogil;
          return ops::where(cond, a, b);
        }, py::arg("condition"), py::arg("input"), py::arg("other"),
        "condition ? input : other, broadcasting all three; input / other may be numbers.");
  cls.def("where", [](const Tensor& x, const Tensor& cond, py::handle other) {
            const Tensor b = tensor_operand(other, &x, "where", "other");
            py::gil_scoped_release nogil;
            return ops::where(cond, x, b);
          }, py::arg("condition"), py::arg("other"));
  def_function_and_method(m, cls, "masked_fill", [](const Tensor& x, const Tensor& mask, py::handle value) {
        const double v = py::isinstance<Tensor>(value) ? value.cast<const Tensor&>().item() : value.cast<double>();
        py::gil_scoped_release nogil;
        return ops::masked_fill(x, mask, v);
      }, py::arg("mask"), py::arg("value"), "input with value where mask (bool, broadcast) is true.");

  def_binary<eq_tt, eq_td>(m, &cls, "eq", "input == other (bool).");
  def_binary<ne_tt, ne_td>(m, &cls, "ne", "input != other (bool).");
  def_binary<lt_tt, lt_td>(m, &cls, "lt", "input < other (bool).");
  def_binary<le_tt, le_td>(m, &cls, "le", "input <= other (bool).");
  def_binary<gt_tt, gt_td>(m, &cls, "gt", "input > other (bool).");
  def_binary<ge_tt, ge_td>(m, &cls, "ge", "input >= other (bool).");
  def_unary(m, &cls, "logical_not", &ops::logical_not, "Elementwise not (bool).");
  def_binary<static_cast<TensorTensorFn>(&ops::logical_and), nullptr>(m, &cls, "logical_and", "Elementwise and.");
  def_binary<static_cast<TensorTensorFn>(&ops::logical_or), nullptr>(m, &cls, "logical_or", "Elementwise or.");
  def_unary(m, &cls, "isnan", &ops::isnan, "Elementwise isnan (bool).");
  def_unary(m, &cls, "isfinite", &ops::isfinite, "Elementwise isfinite (bool).");

  // ---- Python operators ----
  cls.def("__add__", &binary_operator<add_tt, add_td>)
      .def("__radd__", &reflected_operator<add_td>)
      .def("__sub__", &binary_operator<sub_tt, sub_td>)
      .def("__rsub__", &reflected_operator<rsub_td>)
      .def("__mul__", &binary_operator<mul_tt, mul_td>)
      .def("__rmul__", &reflected_operator<mul_td>)
      .def("__truediv__", &binary_operator<div_tt, div_td>)
      .def("__rtruediv__", &reflected_operator<rdiv_td>)
      .def("__pow__", &binary_operator<pow_tt, pow_td>)
      .def("__rpow__", &reflected_operator<rpow_td>)
      .def("__eq__", &binary_operator<eq_tt, eq_td>)
      .def("__ne__", &binary_operator<ne_tt, ne_td>)
      .def("__lt__", &binary_operator<lt_tt, lt_td>)
      .def("__le__", &binary_operator<le_tt, le_td>)
      .def("__gt__", &binary_operator<gt_tt, gt_td>)
      .def("__ge__", &binary_operator<ge_tt, ge_td>)
      .def("__neg__", [](const Tensor& t) {
        py::gil_scoped_release nogil;
        return ops::neg(t);
      })
      .def("__pos__", [](const Tensor& t) { return t; })
      .def("__abs__", [](const Tensor& t) {
        py::gil_scoped_release nogil;
        return ops::abs(t);
      })
      .def("__invert__", [](const Tensor& t) {
        TSE_CHECK(t.dtype() == DType::b8, "__invert__: ~ is defined for bool tensors only, got ", t.dtype());
        py::gil_scoped_release nogil;
        return ops::logical_not(t);
      })
      .def("__and__", [](const Tensor& a, const Tensor& b) {
        py::gil_scoped_release nogil;
        return logical_binary(a, b, true);
      }, py::is_operator())
      .def("__or__", [](const Tensor& a, const Tensor& b) {
        py::gil_scoped_release nogil;
        return logical_binary(a, b, false);
      }, py::is_operator())
      // Identity hash (as PyTorch): == builds a tensor, so tensors hash by what they are.
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.impl()); });

  // ---- activations (Tensor methods only where PyTorch has them) ----
  def_unary(m, &cls, "relu", &ops::relu, "max(input, 0).");
  def_unary(m, &cls, "sigmoid", &ops::sigmoid, "1 / (1 + exp(-input)).");
  def_unary(m, &cls, "tanh", &ops::tanh, "Hyperbolic tangent.");
  def_unary(m, nullptr, "silu", &ops::silu, "input * sigmoid(input).");
  m.def("leaky_relu", [](const Tensor& x, double negative_slope) {
          py::gil_scoped_release nogil;
          return ops::leaky_relu(x, negative_slope);
        }, py::arg("input"), py::arg("negative_slope") = 0.01);
  m.def("gelu", [](const Tensor& x, const std::string& approximate) {
          py::gil_scoped_release nogil;
          return ops::gelu(x, approximate);
        }, py::arg("input"), py::arg("approximate") = "none", "approximate: 'none' (erf) or 'tanh'.");
  m.def("softplus", [](const Tensor& x, double beta, double threshold) {
          py::gil_scoped_release nogil;
          return ops::softplus(x, beta, threshold);
        }, py::arg("input"), py::arg("beta") = 1.0, py::arg("threshold") = 20.0,
        "(1/beta) log(1 + exp(beta input)); linear where beta input > threshold.");
  m.def("glu", [](const Tensor& x, int64_t dim) {
          py::gil_scoped_release nogil;
          return ops::glu(x, dim);
        }, py::arg("input"), py::arg("dim") = -1, "a * sigmoid(b) for the two halves a, b of input along dim.");

  // ---- reductions ----
  def_function_and_method(m, cls, "sum", [](const Tensor& x, py::handle dim, bool keepdim, std::optional<DType> dtype) {
        return sum_or_mean(x, dim, keepdim, dtype, false);
      }, py::arg("dim") = none, py::arg("keepdim") = false, py::kw_only(), py::arg("dtype") = none,
      "Sum over dim (an int, a sequence, or None for all dims).");
  def_function_and_method(m, cls, "mean", [](const Tensor& x, py::handle dim, bool keepdim, std::optional<DType> dtype) {
        return sum_or_mean(x, dim, keepdim, dtype, true);
      }, py::arg("dim") = none, py::arg("keepdim") = false, py::kw_only(), py::arg("dtype") = none,
      "Mean over dim (an int, a sequence, or None for all dims).");
  def_function_and_method(m, cls, "var",
      [](const Tensor& x, py::handle dim, py::handle unbiased, bool keepdim, py::handle correction) {
        return var_or_std(x, dim, unbiased, keepdim, correction, false);
      }, py::arg("dim") = none, py::arg("unbiased") = none, py::arg("keepdim") = false, py::kw_only(),
      py::arg("correction") = none,
      "Variance over dim with Bessel's correction (correction=1 or unbiased=True, the default; 0 = population).");
  def_function_and_method(m, cls, "std",
      [](const Tensor& x, py::handle dim, py::handle unbiased, bool keepdim, py::handle correction) {
        return var_or_std(x, dim, unbiased, keepdim, correction, true);
      }, py::arg("dim") = none, py::arg("unbiased") = none, py::arg("keepdim") = false, py::kw_only(),
      py::arg("correction") = none, "sqrt(var(...)).");
  def_function_and_method(m, cls, "max", [](const Tensor& x, py::handle dim, bool keepdim) {
        return max_or_min(x, dim, keepdim, true);
      }, py::arg("dim") = none, py::arg("keepdim") = false,
      "max(input): the largest value; max(input, dim, keepdim=False): (values, indices); max(input, other): "
      "maximum.");
  def_function_and_method(m, cls, "min", [](const Tensor& x, py::handle dim, bool keepdim) {
        return max_or_min(x, dim, keepdim, false);
      }, py::arg("dim") = none, py::arg("keepdim") = false,
      "min(input): the smallest value; min(input, dim, keepdim=False): (values, indices); min(input, other): "
      "minimum.");
  def_function_and_method(m, cls, "argmax", [](const Tensor& x, py::handle dim, bool keepdim) {
        return arg_max_or_min(x, dim, keepdim, true);
      }, py::arg("dim") = none, py::arg("keepdim") = false, "Index of the maximum (of the flattened input without dim).");
  def_function_and_method(m, cls, "argmin", [](const Tensor& x, py::handle dim, bool keepdim) {
        return arg_max_or_min(x, dim, keepdim, false);
      }, py::arg("dim") = none, py::arg("keepdim") = false, "Index of the minimum (of the flattened input without dim).");
  def_function_and_method(m, cls, "amax", [](const Tensor& x, py::handle dim, bool keepdim) {
        return amax_or_amin(x, dim, keepdim, true);
      }, py::arg("dim") = py::tuple(), py::arg("keepdim") = false, "Maximum over dims (all by default).");
  def_function_and_method(m, cls, "amin", [](const Tensor& x, py::handle dim, bool keepdim) {
        return amax_or_amin(x, dim, keepdim, false);
      }, py::arg("dim") = py::tuple(), py::arg("keepdim") = false, "Minimum over dims (all by default).");
  def_function_and_method(m, cls, "logsumexp", [](const Tensor& x, py::handle dim, bool keepdim) {
        const Shape dims = ints_from_arg(dim, "logsumexp", "dim");
        py::gil_scoped_release nogil;
        return ops::logsumexp(x, dims, keepdim);
      }, py::arg("dim"), py::arg("keepdim") = false, "log(sum(exp(input))) over dim, computed stably.");
  def_function_and_method(m, cls, "norm", &norm, py::arg("p") = "fro", py::arg("dim") = none,
                          py::arg("keepdim") = false, py::arg("dtype") = none,
                          "p-norm over dim (all dims by default); p='fro' is the 2-norm, float('inf') the max-abs.");

  // ---- shape and data movement ----
  auto cat = [](const std::vector<Tensor>& tensors, int64_t dim) {
    py::gil_scoped_release nogil;
    return ops::cat(tensors, dim);
  };
  m.def("cat", cat, py::arg("tensors"), py::arg("dim") = 0, "Concatenates along dim.");
  m.def("concat", cat, py::arg("tensors"), py::arg("dim") = 0, "Alias of cat.");
  m.def("stack", [](const std::vector<Tensor>& tensors, int64_t dim) {
          py::gil_scoped_release nogil;
          return ops::stack(tensors, dim);
        }, py::arg("tensors"), py::arg("dim") = 0, "Stacks along a new dim.");
  m.def("split", &split, py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0,
        "Views of split_size elements along dim (the last may be smaller), or of the given section sizes.");
  cls.def("split", &split, py::arg("split_size"), py::arg("dim") = 0);
  def_function_and_method(m, cls, "chunk", &chunk, py::arg("chunks"), py::arg("dim") = 0,
                          "chunks views of ceil(size / chunks) elements along dim.");
  def_function_and_method(m, cls, "roll", &roll, py::arg("shifts"), py::arg("dims") = none,
                          "Rolls by shifts along dims (the flattened tensor without dims).");
  m.def("flip", [](const Tensor& x, py::handle dims) { return flip(x, ints_from_arg(dims, "flip", "dims")); },
        py::arg("input"), py::arg("dims"), "Reverses the order along dims.");
  cls.def("flip", [](const Tensor& x, py::args dims) { return flip(x, shape_from_args(dims, "flip")); });
  def_function_and_method(m, cls, "tril", [](const Tensor& x, int64_t diagonal) {
        py::gil_scoped_release nogil;
        return ops::tril(x, diagonal);
      }, py::arg("diagonal") = 0, "Lower triangle of the last two dims.");
  def_function_and_method(m, cls, "triu", [](const Tensor& x, int64_t diagonal) {
        py::gil_scoped_release nogil;
        return ops::triu(x, diagonal);
      }, py::arg("diagonal") = 0, "Upper triangle of the last two dims.");
  cls.def("repeat", [](const Tensor& x, py::args repeats) {
    const Shape r = shape_from_args(repeats, "repeat");
    py::gil_scoped_release nogil;
    return ops::repeat(x, r);
  }, "Tiles the tensor (leading new dims allowed).");

  // ---- matrix products ----
  def_function_and_method(m, cls, "matmul", [](const Tensor& a, const Tensor& b) {
        py::gil_scoped_release nogil;
        return ops::matmul(a, b);
      }, py::arg("other"), "torch.matmul: matrix products with broadcast batch dims; 1-D operands are vectors.");
  cls.def("__matmul__", [](const Tensor& a, const Tensor& b) {
    py::gil_scoped_release nogil;
    return ops::matmul(a, b);
  }, py::is_operator());
  def_function_and_method(m, cls, "bmm", [](const Tensor& a, const Tensor& b) {
        py::gil_scoped_release nogil;
        return ops::bmm(a, b);
      }, py::arg("mat2"), "(B, M, K) x (B, K, N) -> (B, M, N), no broadcasting.");

  // ---- indexing ----
  def_function_and_method(m, cls, "gather", [](const Tensor& x, int64_t dim, const Tensor& index) {
        py::gil_scoped_release nogil;
        return ops::gather(x, dim, index);
      }, py::arg("dim"), py::arg("index"), "out[i][j] = input[index[i][j]][j] for dim 0.");
  def_function_and_method(m, cls, "index_select", [](const Tensor& x, int64_t dim, const Tensor& index) {
        py::gil_scoped_release nogil;
        return ops::index_select(x, dim, index);
      }, py::arg("dim"), py::arg("index"), "Entries along dim at a 1-D index.");
  def_function_and_method(m, cls, "scatter_add", [](const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
        py::gil_scoped_release nogil;
        return ops::scatter_add(x, dim, index, src);
      }, py::arg("dim"), py::arg("index"), py::arg("src"), "input with src added at index along dim (out of place).");

  // ---- factories ----
  m.def("zeros", [](py::args size, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return sized<&ops::zeros>(size, dtype, device, requires_grad, "zeros");
        }, py::arg("dtype") = none, py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("ones", [](py::args size, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return sized<&ops::ones>(size, dtype, device, requires_grad, "ones");
        }, py::arg("dtype") = none, py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("empty", [](py::args size, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return sized<&ops::empty>(size, dtype, device, requires_grad, "empty");
        }, py::arg("dtype") = none, py::arg("device") = none, py::arg("requires_grad") = false,
        "Uninitialised memory.");
  m.def("rand", [](py::args size, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return sized<&ops::rand>(size, dtype, device, requires_grad, "rand");
        }, py::arg("dtype") = none, py::arg("device") = none, py::arg("requires_grad") = false, "Uniform on [0, 1).");
  m.def("randn", [](py::args size, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return sized<&ops::randn>(size, dtype, device, requires_grad, "randn");
        }, py::arg("dtype") = none, py::arg("device") = none, py::arg("requires_grad") = false, "Standard normal.");
  m.def("zeros_like", &sized_like<&ops::zeros>, py::arg("input"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("ones_like", &sized_like<&ops::ones>, py::arg("input"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("empty_like", &sized_like<&ops::empty>, py::arg("input"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("rand_like", &sized_like<&ops::rand>, py::arg("input"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("randn_like", &sized_like<&ops::randn>, py::arg("input"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false);
  m.def("full", &full, py::arg("size"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false,
        "A tensor of fill_value; the dtype follows the value's type (float32, int64, bool) unless given.");
  m.def("full_like", [](const Tensor& x, py::handle fill_value, std::optional<DType> dtype, std::optional<Device> device,
                        bool requires_grad) {
          return full(x.sizes(), fill_value, dtype.value_or(x.dtype()), device.value_or(x.device()), requires_grad);
        }, py::arg("input"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = none, py::arg("device") = none,
        py::arg("requires_grad") = false);
  m.def("scalar_tensor", [](double value, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return finish(ops::scalar_tensor(value, dtype.value_or(DType::f32), device.value_or(Device::cpu())),
                        requires_grad);
        }, py::arg("s"), py::kw_only(), py::arg("dtype") = none, py::arg("device") = none,
        py::arg("requires_grad") = false, "A 0-d tensor.");
  m.def("arange", &arange, py::arg("start"), py::arg("end") = none, py::arg("step") = 1, py::kw_only(),
        py::arg("dtype") = none, py::arg("device") = none, py::arg("requires_grad") = false,
        "arange(end) or arange(start, end, step=1): [start, end) in steps; int64 when all are ints, else float32.");
  m.def("linspace", [](double start, double end, int64_t steps, std::optional<DType> dtype,
                       std::optional<Device> device, bool requires_grad) {
          Tensor out;
          {
            py::gil_scoped_release nogil;
            out = ops::linspace(start, end, steps, dtype.value_or(DType::f32), device.value_or(Device::cpu()));
          }
          return finish(std::move(out), requires_grad);
        }, py::arg("start"), py::arg("end"), py::arg("steps"), py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false, "steps values from start to end inclusive.");
  m.def("eye", &eye, py::arg("n"), py::arg("m") = none, py::kw_only(), py::arg("dtype") = none,
        py::arg("device") = none, py::arg("requires_grad") = false, "Ones on the diagonal of an n x m matrix.");
  m.def("randint", &randint, py::arg("size") = none, py::arg("dtype") = none, py::arg("device") = none,
        "randint(high, size) or randint(low, high, size): integers uniform in [low, high), int64 by default.");
  m.def("dropout", &dropout, py::arg("input"), py::arg("p") = 0.5, py::arg("train") = true,
        "Zeroes elements with probability p and scales the rest by 1/(1-p) when train.");

  // ---- max/min results: (values, indices) named tuples, as torch.return_types ----
  auto rt = m.def_submodule("return_types", "Named tuples returned by max / min with a dim.");
  auto namedtuple = py::module_::import("collections").attr("namedtuple");
  return_types()[0] = namedtuple("max", py::make_tuple("values", "indices"), py::arg("module") = "tse.return_types");
  return_types()[1] = namedtuple("min", py::make_tuple("values", "indices"), py::arg("module") = "tse.return_types");
  rt.attr("max") = return_types()[0];
  rt.attr("min") = return_types()[1];

  // ---- torch.nn.functional's own signatures ----
  auto nn = m.def_submodule("_nn", "Functions whose signature is torch.nn.functional's (tse.nn.functional).");
  nn.def("pad", &pad, py::arg("input"), py::arg("pad"), py::arg("mode") = "constant", py::arg("value") = none,
         "pad = (left, right) for the last dim, then the dim before, ...; mode 'constant' (negative pads crop), "
         "'reflect', 'replicate' or 'circular'.");
  nn.def("interpolate", &interpolate, py::arg("input"), py::arg("size") = none, py::arg("scale_factor") = none,
         py::arg("mode") = "nearest", py::arg("align_corners") = none,
         "Resizes (N, C, L) or (N, C, H, W) input to size or by scale_factor; mode 'nearest', 'linear', "
         "'bilinear' or 'bicubic'.");
  nn.def("linear", [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias) {
          py::gil_scoped_release nogil;
          return ops::linear(x, weight, bias.value_or(Tensor()));
        }, py::arg("input"), py::arg("weight"), py::arg("bias") = none,
        "input (..., in) @ weight (out, in)^T + bias (out) -> (..., out).");
  nn.def("scaled_dot_product_attention",
         [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<double> scale) {
           py::gil_scoped_release nogil;
           return ops::scaled_dot_product_attention(q, k, v, scale);
         },
         py::arg("query"), py::arg("key"), py::arg("value"), py::kw_only(), py::arg("scale") = none,
         "softmax(query key^T * scale) value without a mask or dropout; scale defaults to 1/sqrt(d). Fused on CPU: "
         "the (Tq, Tk) attention matrix is never stored.");
  nn.def("dropout", &dropout, py::arg("input"), py::arg("p") = 0.5, py::arg("training") = true,
         "Zeroes elements with probability p and scales the rest by 1/(1-p) when training.");
}

}  // namespace tse::python
