#pragma once
// Shared by the bind_*.cpp files: the dtype caster (tse.float32 and friends, numpy dtypes,
// strings), torch-style argument parsers, numpy conversion, and the bind_* entry points.
//
// GIL rule: every call that runs a kernel converts its Python arguments first and then releases
// the GIL inside its body (py::gil_scoped_release), so other Python threads run meanwhile.
// Constructors never release it (pybind11 issue 5473). Pure metadata calls (views, shapes) keep
// it: releasing costs more than they do.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "tse/tse.hpp"

namespace py = pybind11;

namespace tse::python {

/// The Python object behind tse.float32 etc. There is one per DType, so `t.dtype is tse.float32`.
struct DTypeObject {
  DType dtype;
};

/// The singleton for t.
py::object dtype_object(DType t);
/// t from a tse.dtype, a numpy dtype or scalar type, a Python type (float, int, bool) or a name
/// ("float32", "f32", "float", "bf16", ...); nullopt when h is none of those.
std::optional<DType> dtype_from_python(py::handle h);
/// The numpy dtype holding t's values exactly; TypeError for bfloat16 (numpy has none).
py::dtype numpy_dtype(DType t);

/// f(2, 3) or f((2, 3)) or f([2, 3]): the sizes of a torch-style *size argument.
Shape shape_from_args(const py::args& args, const char* op);
/// A dim argument: None -> {} (all dims), an int -> {d}, a sequence of ints -> the dims.
Shape dims_from_arg(py::handle dim, const char* op);
/// An object Python accepts as an int (has __index__); a Tensor only when it holds one integer.
bool is_int(py::handle h);
/// An int or a sequence of ints.
std::vector<int64_t> ints_from_arg(py::handle h, const char* op, const char* arg);

/// A Python number (bool, int, float or a numpy scalar of those kinds).
struct Scalar {
  double value = 0.0;
  bool is_float = false;
  bool is_bool = false;
};
std::optional<Scalar> scalar_from_python(py::handle h);
/// The dtype a tensor takes in `tensor op scalar` (PyTorch: a float scalar makes an integer or
/// bool tensor float32, an int scalar makes a bool tensor int64).
DType dtype_with_scalar(DType t, const Scalar& s);
/// A Tensor argument that may also be a Python number, which becomes a 0-d tensor of ref's dtype
/// (promoted by dtype_with_scalar) on ref's device; with no ref, float32 / int64 / bool.
Tensor tensor_operand(py::handle h, const Tensor* ref, const char* op, const char* arg);

/// numpy view of a CPU tensor (zero copy: the array's base keeps the storage alive).
py::array tensor_to_numpy(const Tensor& t);
/// A tensor over the memory of a numpy array (zero copy; holds a reference to the array).
Tensor tensor_from_numpy(py::handle arr);
/// torch.tensor: a copy of nested lists / scalars / numpy arrays / tensors.
Tensor tensor_from_data(py::handle data, std::optional<DType> dtype, std::optional<Device> device,
                        bool requires_grad);

void bind_core(py::module_& m);
py::class_<Tensor> bind_tensor(py::module_& m);
void bind_autograd(py::module_& m);
void bind_ops(py::module_& m, py::class_<Tensor>& cls);
void bind_nn(py::module_& m, py::class_<Tensor>& cls);
void bind_audio(py::module_& m);
void bind_metrics(py::module_& m);
void bind_modules(py::module_& m);
void bind_models(py::module_& m);
void bind_swin(py::module_& nn_module);          // from bind_modules (tse.nn)
void bind_clapsep(py::module_& models_module);   // from bind_models (tse.models)
/// Python's json module, and a config dict + keyword arguments merged into JSON text for the
/// C++ config parsers (unknown keys and wrong types are errors naming the key).
py::object json_module();
std::string config_json(const py::object& config, const py::kwargs& kwargs);
void bind_io(py::module_& m);
void bind_optim(py::module_& m);
void bind_train(py::module_& m);

}  // namespace tse::python

namespace pybind11::detail {
/// DType arguments accept everything dtype_from_python does; DType results are the singletons.
template <>
struct type_caster<tse::DType> {
  PYBIND11_TYPE_CASTER(tse::DType, const_name("tse.dtype"));
  bool load(handle src, bool) {
    auto t = tse::python::dtype_from_python(src);
    if (!t) return false;
    value = *t;
    return true;
  }
  static handle cast(tse::DType t, return_value_policy, handle) { return tse::python::dtype_object(t).release(); }
};
}  // namespace pybind11::detail
