// Core layer: exceptions, dtypes, devices, threads, CUDA queries, the random generator state,
// and the argument parsers every other bind_*.cpp uses.
#include <array>

#include "bindings/common.hpp"

namespace tse::python {
namespace {

constexpr std::array<DType, 7> kAllDTypes = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                             DType::i32, DType::i64, DType::b8};

// Leaked on purpose: these outlive the interpreter's teardown of static objects.
std::array<py::object, 7>& dtype_table() {
  static auto* table = new std::array<py::object, 7>();
  return *table;
}

std::optional<DType> dtype_from_name(const std::string& s) {
  static const std::pair<const char*, DType> names[] = {
      {"float32", DType::f32}, {"float", DType::f32},     {"f32", DType::f32},   {"float64", DType::f64},
      {"double", DType::f64},  {"f64", DType::f64},       {"float16", DType::f16}, {"half", DType::f16},
      {"f16", DType::f16},     {"bfloat16", DType::bf16}, {"bf16", DType::bf16}, {"int32", DType::i32},
      {"int", DType::i32},     {"i32", DType::i32},       {"int64", DType::i64}, {"long", DType::i64},
      {"i64", DType::i64},     {"bool", DType::b8},       {"b8", DType::b8}};
  for (const auto& [name, t] : names)
    if (s == name) return t;
  return std::nullopt;
}

std::optional<DType> dtype_from_descr(const py::dtype& d) {
  if (!d.attr("isnative").cast<bool>()) return std::nullopt;
  const char kind = d.kind();
  const auto size = d.itemsize();
  if (kind == 'f' && size == 2) return DType::f16;
  if (kind == 'f' && size == 4) return DType::f32;
  if (kind == 'f' && size == 8) return DType::f64;
  if (kind == 'i' && size == 4) return DType::i32;
  if (kind == 'i' && size == 8) return DType::i64;
  if (kind == 'b') return DType::b8;
  return std::nullopt;
}

void translate_exception(std::exception_ptr p) {
  // Most derived first: NotImplementedError is a tse::Error; ValueError and IndexError derive
  // from std::invalid_argument / std::out_of_range, not from tse::Error.
  try {
    if (p) std::rethrow_exception(p);
  } catch (const NotImplementedError& e) {
    PyErr_SetString(PyExc_NotImplementedError, e.what());
  } catch (const ValueError& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const IndexError& e) {
    PyErr_SetString(PyExc_IndexError, e.what());
  } catch (const Error& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
}

}  // namespace

py::object dtype_object(DType t) { return dtype_table()[static_cast<size_t>(t)]; }

std::optional<DType> dtype_from_python(py::handle h) {
  if (!h || h.is_none()) return std::nullopt;
  if (py::isinstance<DTypeObject>(h)) return h.cast<const DTypeObject&>().dtype;
  const bool is_str = py::isinstance<py::str>(h);
  if (is_str) {
    if (auto t = dtype_from_name(h.cast<std::string>())) return t;
  }
  // numpy dtypes, numpy scalar types and Python types (float -> float64, as numpy and torch).
  if (is_str || py::isinstance<py::dtype>(h) || PyType_Check(h.ptr())) {
    try {
      return dtype_from_descr(py::dtype::from_args(py::reinterpret_borrow<py::object>(h)));
    } catch (const py::error_already_set&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

py::dtype numpy_dtype(DType t) {
  if (t == DType::bf16)
    throw py::type_error("numpy has no bfloat16: convert first, e.g. t.float().numpy() (a float32 copy)");
  return py::dtype(dtype_name(t));
}

bool is_int(py::handle h) {
  if (!PyIndex_Check(h.ptr())) return false;
  if (!py::isinstance<Tensor>(h)) return true;
  const Tensor& t = h.cast<const Tensor&>();
  return is_integral(t.dtype()) && t.numel() == 1;
}

Shape shape_from_args(const py::args& args, const char* op) {
  if (args.size() == 1 && !is_int(args[0])) return ints_from_arg(args[0], op, "size");
  Shape out;
  for (py::handle a : args) {
    if (!is_int(a))
      throw py::type_error(std::string(op) + ": size must be ints or one sequence of ints, got " +
                           std::string(py::str(py::type::of(a).attr("__name__"))));
    out.push_back(a.cast<int64_t>());
  }
  return out;
}

std::vector<int64_t> ints_from_arg(py::handle h, const char* op, const char* arg) {
  if (is_int(h)) return {h.cast<int64_t>()};
  if (py::isinstance<py::sequence>(h) && !py::isinstance<py::str>(h)) {
    std::vector<int64_t> out;
    for (py::handle v : py::reinterpret_borrow<py::sequence>(h)) {
      if (!is_int(v))
        throw py::type_error(std::string(op) + ": '" + arg + "' must hold ints, got " +
                             std::string(py::str(py::type::of(v).attr("__name__"))));
      out.push_back(v.cast<int64_t>());
    }
    return out;
  }
  throw py::type_error(std::string(op) + ": '" + arg + "' must be an int or a sequence of ints, got " +
                       std::string(py::str(py::type::of(h).attr("__name__"))));
}

Shape dims_from_arg(py::handle dim, const char* op) {
  if (dim.is_none()) return {};
  return ints_from_arg(dim, op, "dim");
}

std::optional<Scalar> scalar_from_python(py::handle h) {
  if (PyBool_Check(h.ptr())) return Scalar{h.ptr() == Py_True ? 1.0 : 0.0, false, true};
  if (PyLong_Check(h.ptr())) return Scalar{h.cast<double>(), false, false};
  if (PyFloat_Check(h.ptr())) return Scalar{PyFloat_AsDouble(h.ptr()), true, false};
  static auto* np_generic = new py::object(py::module_::import("numpy").attr("generic"));
  if (py::isinstance(h, *np_generic)) {
    const char kind = h.attr("dtype").cast<py::dtype>().kind();
    if (kind == 'b') return Scalar{h.cast<bool>() ? 1.0 : 0.0, false, true};
    if (kind == 'i' || kind == 'u') return Scalar{h.cast<double>(), false, false};
    if (kind == 'f') return Scalar{h.cast<double>(), true, false};
  }
  return std::nullopt;
}

DType dtype_with_scalar(DType t, const Scalar& s) {
  if (s.is_float && !is_floating(t)) return DType::f32;
  if (!s.is_bool && !s.is_float && t == DType::b8) return DType::i64;
  return t;
}

Tensor tensor_operand(py::handle h, const Tensor* ref, const char* op, const char* arg) {
  if (py::isinstance<Tensor>(h)) return h.cast<Tensor>();
  if (auto s = scalar_from_python(h)) {
    const DType t = ref ? dtype_with_scalar(ref->dtype(), *s)
                        : (s->is_float ? DType::f32 : s->is_bool ? DType::b8 : DType::i64);
    return ops::scalar_tensor(s->value, t, ref ? ref->device() : Device::cpu());
  }
  throw py::type_error(std::string(op) + ": argument '" + arg + "' must be a Tensor or a number, got " +
                       std::string(py::str(py::type::of(h).attr("__name__"))));
}

void bind_core(py::module_& m) {
  py::register_exception_translator(&translate_exception);

  py::class_<DTypeObject>(m, "dtype", "An element type: tse.float32, tse.float64, tse.int64, ...")
      .def_property_readonly("itemsize", [](const DTypeObject& d) { return itemsize(d.dtype); })
      .def_property_readonly("is_floating_point", [](const DTypeObject& d) { return is_floating(d.dtype); })
      .def("__repr__", [](const DTypeObject& d) { return std::string("tse.") + dtype_name(d.dtype); })
      // Pickled by name: unpickling finds the singleton in tse._C.
      .def("__reduce__", [](const DTypeObject& d) { return std::string(dtype_name(d.dtype)); });
  for (DType t : kAllDTypes) {
    dtype_table()[static_cast<size_t>(t)] = py::cast(DTypeObject{t});
    m.attr(dtype_name(t)) = dtype_object(t);
  }
  m.attr("float") = dtype_object(DType::f32);
  m.attr("double") = dtype_object(DType::f64);
  m.attr("half") = dtype_object(DType::f16);
  m.attr("int") = dtype_object(DType::i32);
  m.attr("long") = dtype_object(DType::i64);
  m.def("promote_types", &promote_types, py::arg("type1"), py::arg("type2"),
        "The dtype of a binary op's result for inputs of type1 and type2.");

  py::class_<Device>(m, "device", "Where a tensor lives: tse.device('cpu'), tse.device('cuda', 0).")
      .def(py::init([](const std::string& s) { return Device::parse(s); }), py::arg("type"))
      .def(py::init([](const std::string& type, int index) {
             TSE_CHECK(index >= 0, "device: index must be >= 0, got ", index);
             Device d = Device::parse(type);
             TSE_CHECK(d.is_cuda() || index == 0, "device: cpu has only index 0, got ", index);
             d.index = index;
             return d;
           }),
           py::arg("type"), py::arg("index"))
      .def_property_readonly("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
      .def_property_readonly("index", [](const Device& d) { return d.index; })
      .def("__str__", &Device::str)
      .def("__repr__",
           [](const Device& d) {
             return d.is_cpu() ? std::string("device(type='cpu')")
                               : "device(type='cuda', index=" + std::to_string(d.index) + ")";
           })
      .def("__eq__", [](const Device& a, const Device& b) { return a == b; }, py::is_operator())
      .def("__hash__", [](const Device& d) { return static_cast<int>(d.type) * 1024 + d.index; })
      .def("__reduce__", [](const Device& d) { return py::make_tuple(py::type::of<Device>(), py::make_tuple(d.str())); });
  py::implicitly_convertible<py::str, Device>();

  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads used by every libtse kernel (>= 1).");
  m.def("get_num_threads", &get_num_threads);
  m.def("_cuda_is_built", &cuda_built);
  m.def("_cuda_device_count", &cuda_device_count);
  m.def("_cuda_is_available", &cuda_is_available);
  m.def("_cpu_cached_bytes", &memory::cpu_cached_bytes, "Bytes held in the CPU allocator's free lists.");
  m.def("_empty_cache", &memory::empty_cache,
        "Returns the cached blocks of the CPU allocator and of every CUDA device to the system.");
  m.def("_cuda_cached_bytes", &memory::cuda_cached_bytes, py::arg("device") = 0,
        "Bytes held in a CUDA device's allocator cache.");
  m.def("_cuda_set_allow_tf32", &set_cuda_allow_tf32, py::arg("on"));
  m.def("_cuda_allow_tf32", &cuda_allow_tf32);

  py::class_<GeneratorState>(m, "GeneratorState", "The default generator's (seed, offset) state.")
      .def(py::init<>())
      .def(py::init([](uint64_t seed, uint64_t offset) { return GeneratorState{seed, offset}; }), py::arg("seed"),
           py::arg("offset") = 0)
      .def_readwrite("seed", &GeneratorState::seed)
      .def_readwrite("offset", &GeneratorState::offset)
      .def("__eq__", [](const GeneratorState& a, const GeneratorState& b) {
             return a.seed == b.seed && a.offset == b.offset;
           }, py::is_operator())
      .def("__repr__", [](const GeneratorState& s) {
             return "GeneratorState(seed=" + std::to_string(s.seed) + ", offset=" + std::to_string(s.offset) + ")";
           })
      .def(py::pickle([](const GeneratorState& s) { return py::make_tuple(s.seed, s.offset); },
                      [](const py::tuple& t) { return GeneratorState{t[0].cast<uint64_t>(), t[1].cast<uint64_t>()}; }));
  m.def("manual_seed", &manual_seed, py::arg("seed"), "Seeds the default generator.");
  m.def("get_rng_state", &get_rng_state);
  m.def("set_rng_state", &set_rng_state, py::arg("new_state"));

  // Exercises the exception translators from Python (tests/python/test_errors.py).
  m.def("_raise_cpp_error", [](const std::string& kind, const std::string& msg) {
    if (kind == "ValueError") throw ValueError(msg);
    if (kind == "IndexError") throw IndexError(msg);
    if (kind == "NotImplementedError") throw NotImplementedError(msg);
    if (kind == "AutogradError") throw AutogradError(msg);
    if (kind == "BackendError") throw BackendError(msg);
    if (kind == "InternalError") throw InternalError(msg);
    throw Error(msg);
  }, py::arg("kind"), py::arg("message"));
}

}  // namespace tse::python
