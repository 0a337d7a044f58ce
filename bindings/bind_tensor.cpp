// tse.Tensor: metadata, conversion, views and indexing, in-place ops, numpy and DLPack interop,
// and the tensor / from_numpy / as_tensor / from_dlpack constructors. Operators and op methods
// are bound with the ops (bind_ops.cpp).
//
// Zero-copy contracts:
//   from_numpy(arr)  shares arr's memory and holds a reference to arr; arrays that are read-only,
//                    or have negative strides or strides that are not a multiple of the itemsize,
//                    are refused with ValueError (use tse.tensor(arr), which copies).
//   t.numpy()        shares t's memory (strides preserved); the array's base keeps the storage
//                    alive. float16 maps to numpy float16; bfloat16 raises TypeError (numpy has
//                    no bfloat16: t.float().numpy() makes a float32 copy). Tensors that require
//                    grad raise RuntimeError, as in PyTorch: call t.detach().numpy().
//   __dlpack__ / from_dlpack  share memory both ways; a read-only producer is copied.
#include <algorithm>
#include <cstring>

#include "bindings/common.hpp"
#include "bindings/dlpack.hpp"

namespace tse::python {
namespace {

std::string type_name(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

// Drops a reference from any thread, at any time: the last tensor over a numpy array's memory
// may die on a kernel thread or while the GIL is released.
void decref_with_gil(PyObject* o) {
  if (!Py_IsInitialized()) return;  // the interpreter and its memory are gone already
  py::gil_scoped_acquire gil;
  Py_DECREF(o);
}

py::tuple to_tuple(const Shape& s) {
  py::tuple t(s.size());
  for (size_t i = 0; i < s.size(); ++i) t[i] = py::int_(s[i]);
  return t;
}

py::object tensor_item(const Tensor& t) {
  TSE_CHECK(t.numel() == 1, "item: a tensor with ", t.numel(), " elements (shape ", t.shape_str(),
            ") cannot be converted to a Python number");
  const Tensor c = t.device().is_cpu() ? t : t.detach().to(Device::cpu());
  switch (c.dtype()) {
    case DType::i64: return py::int_(*static_cast<const int64_t*>(c.data_ptr()));
    case DType::i32: return py::int_(*static_cast<const int32_t*>(c.data_ptr()));
    case DType::b8: return py::bool_(*static_cast<const bool*>(c.data_ptr()));
    default: return py::float_(c.item());
  }
}

// A numpy-able CPU copy for printing and tolist (bfloat16 widened to float32).
Tensor host_readable(const Tensor& t) {
  Tensor v = t.detach();
  py::gil_scoped_release nogil;
  if (!v.device().is_cpu()) v = v.to(Device::cpu());
  if (v.dtype() == DType::bf16) v = v.to(DType::f32);
  return v;
}

std::string tensor_repr(const Tensor& t) {
  const Tensor v = host_readable(t);
  std::string body;
  if (v.numel() == 0) {
    body = "[]";
  } else {
    auto np = py::module_::import("numpy");
    body = py::str(np.attr("array2string")(tensor_to_numpy(v), py::arg("separator") = ", ",
                                           py::arg("prefix") = "tensor(", py::arg("precision") = 4,
                                           py::arg("threshold") = 1000, py::arg("edgeitems") = 3));
  }
  std::string out = "tensor(" + body;
  if (v.numel() == 0 && t.dim() != 1) {
    std::string dims = std::string(py::str(to_tuple(t.sizes())));
    out += ", size=" + dims;
  }
  if (!t.device().is_cpu()) out += ", device='" + t.device().str() + "'";
  if (t.dtype() != DType::f32 && t.dtype() != DType::i64 && t.dtype() != DType::b8)
    out += std::string(", dtype=tse.") + dtype_name(t.dtype());
  if (auto fn = t.grad_fn()) {
    out += std::string(", grad_fn=<") + fn->name() + ">";
  } else if (t.requires_grad()) {
    out += ", requires_grad=True";
  }
  return out + ")";
}

// ---- indexing: basic indices become views (select / slice / unsqueeze); one integer tensor or
// list becomes index_select ----------------------------------------------------------------------

bool is_advanced_index(py::handle h) {
  return py::isinstance<Tensor>(h) || py::isinstance<py::list>(h) || py::isinstance<py::array>(h);
}

// A 0-d tensor or array index selects, like an int.
bool is_0d_index(py::handle h) {
  if (py::isinstance<Tensor>(h)) return h.cast<const Tensor&>().dim() == 0;
  return py::isinstance<py::array>(h) && py::reinterpret_borrow<py::array>(h).ndim() == 0;
}

Tensor integer_index_tensor(py::handle h) {
  Tensor idx = py::isinstance<Tensor>(h) ? h.cast<Tensor>() : tensor_from_data(h, std::nullopt, std::nullopt, false);
  if (idx.dtype() == DType::b8)
    throw py::index_error("boolean mask indexing is not supported; use tse.where or masked_fill");
  if (!is_integral(idx.dtype()))
    throw py::index_error(std::string("tensors used as indices must be int64 or int32, got ") +
                          dtype_name(idx.dtype()));
  return idx;
}

Tensor apply_index(const Tensor& self, py::handle index, bool* is_view) {
  std::vector<py::handle> items;
  if (py::isinstance<py::tuple>(index)) {
    for (py::handle h : py::reinterpret_borrow<py::tuple>(index)) items.push_back(h);
  } else {
    items.push_back(index);
  }
  int64_t consumed = 0, ellipses = 0, advanced = 0;
  for (py::handle h : items) {
    if (h.is_none()) continue;
    if (h.ptr() == Py_Ellipsis) {
      ++ellipses;
    } else {
      ++consumed;
      if (is_advanced_index(h) && !is_0d_index(h)) ++advanced;
    }
  }
  if (ellipses > 1) throw py::index_error("an index can only have a single ellipsis ('...')");
  if (advanced > 1) throw py::index_error("only one integer tensor or list index is supported");
  if (consumed > self.dim())
    throw py::index_error("too many indices for tensor of dimension " + std::to_string(self.dim()));
  *is_view = advanced == 0;

  Tensor cur = self;
  int64_t d = 0;
  for (py::handle h : items) {
    if (h.is_none()) {
      cur = cur.unsqueeze(d);
      ++d;
    } else if (h.ptr() == Py_Ellipsis) {
      d += self.dim() - consumed;
    } else if (PyBool_Check(h.ptr())) {
      throw py::index_error("boolean indices are not supported");
    } else if (is_advanced_index(h)) {
      Tensor idx = integer_index_tensor(h);
      if (idx.dim() == 0) {
        cur = cur.select(d, py::cast<int64_t>(tensor_item(idx)));
        continue;
      }
      Shape out_sizes(cur.sizes().begin(), cur.sizes().begin() + d);
      out_sizes.insert(out_sizes.end(), idx.sizes().begin(), idx.sizes().end());
      out_sizes.insert(out_sizes.end(), cur.sizes().begin() + d + 1, cur.sizes().end());
      {
        py::gil_scoped_release nogil;
        cur = ops::index_select(cur, d, idx.reshape({-1})).reshape(out_sizes);
      }
      d += idx.dim();
    } else if (is_int(h)) {
      cur = cur.select(d, h.cast<int64_t>());
    } else if (PySlice_Check(h.ptr())) {
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(h.ptr(), &start, &stop, &step) < 0) throw py::error_already_set();
      if (step <= 0) throw py::value_error("slice step must be positive, got " + std::to_string(step));
      PySlice_AdjustIndices(cur.size(d), &start, &stop, step);
      cur = cur.slice(d, start, std::max(start, stop), step);
      ++d;
    } else {
      throw py::type_error("only integers, slices (`:`), ellipsis (`...`), None and integer tensors or lists are "
                           "valid indices, got " + type_name(h));
    }
  }
  return cur;
}

void assign_index(const Tensor& self, py::handle index, py::handle value) {
  bool is_view = true;
  Tensor target = apply_index(self, index, &is_view);
  if (!is_view)
    throw py::index_error("assignment through an integer tensor or list index is not supported; use scatter_add");
  if (auto s = scalar_from_python(value)) {
    py::gil_scoped_release nogil;
    target.fill_(s->value);
    return;
  }
  Tensor src = py::isinstance<Tensor>(value) ? value.cast<Tensor>()
                                             : tensor_from_data(value, target.dtype(), target.device(), false);
  py::gil_scoped_release nogil;
  target.copy_(src);
}

Tensor squeeze(const Tensor& t, py::handle dim) {
  if (dim.is_none()) return t.squeeze();
  Tensor out = t;
  // Squeezing the highest dims first keeps the lower dim numbers valid.
  Shape dims = dims_from_arg(dim, "squeeze");
  for (auto& d : dims) d = wrap_dim(d, t.dim(), "squeeze");
  std::sort(dims.rbegin(), dims.rend());
  for (int64_t d : dims) out = out.squeeze(d);
  return out;
}

Tensor reverse_dims(const Tensor& t) {
  Shape perm(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) perm[i] = t.dim() - 1 - i;
  return t.permute(perm);
}

// ---- in place: return self so `x.add_(y).mul_(2)` chains and `x += y` keeps x's identity --------

Tensor& self_of(py::handle self) { return self.cast<Tensor&>(); }

void inplace_add(Tensor& self, py::handle other, double alpha, const char* op) {
  if (auto s = scalar_from_python(other)) {
    Tensor o = ops::scalar_tensor(s->value, self.dtype(), self.device());
    py::gil_scoped_release nogil;
    self.add_(o, alpha);
    return;
  }
  if (!py::isinstance<Tensor>(other))
    throw py::type_error(std::string(op) + ": 'other' must be a Tensor or a number, got " + type_name(other));
  const Tensor& o = other.cast<const Tensor&>();
  py::gil_scoped_release nogil;
  self.add_(o, alpha);
}

void inplace_mul(Tensor& self, py::handle other, bool divide, const char* op) {
  if (auto s = scalar_from_python(other)) {
    py::gil_scoped_release nogil;
    self.mul_(divide ? 1.0 / s->value : s->value);
    return;
  }
  if (!py::isinstance<Tensor>(other))
    throw py::type_error(std::string(op) + ": 'other' must be a Tensor or a number, got " + type_name(other));
  const Tensor& o = other.cast<const Tensor&>();
  py::gil_scoped_release nogil;
  self.copy_(divide ? ops::div(self, o) : ops::mul(self, o));
}

// ---- conversions ----------------------------------------------------------------------------------

bool is_device_like(py::handle h) { return py::isinstance<py::str>(h) || py::isinstance<Device>(h); }

Tensor tensor_to(const Tensor& self, const py::args& args, py::handle dtype, py::handle device, bool copy) {
  std::optional<DType> dt = dtype_from_python(dtype);
  if (!dtype.is_none() && !dt) throw py::type_error("to: dtype must be a tse.dtype, got " + type_name(dtype));
  std::optional<Device> dev;
  if (!device.is_none()) dev = device.cast<Device>();
  for (py::handle a : args) {
    if (py::isinstance<Tensor>(a)) {
      const Tensor& o = a.cast<const Tensor&>();
      dt = o.dtype();
      dev = o.device();
    } else if (is_device_like(a)) {
      dev = a.cast<Device>();
    } else if (auto t = dtype_from_python(a)) {
      dt = t;
    } else {
      throw py::type_error("to: expected a dtype, a device or a Tensor, got " + type_name(a));
    }
  }
  py::gil_scoped_release nogil;
  Tensor out = self;
  if (dt) out = out.to(*dt);
  if (dev) out = out.to(*dev);
  if (copy && out.is_same(self)) out = out.clone();
  return out;
}

Tensor tensor_to_dtype(const Tensor& self, DType t) {
  py::gil_scoped_release nogil;
  return self.to(t);
}

py::object tensor_dlpack(const Tensor& self, py::handle stream, py::handle max_version, py::handle dl_device,
                         std::optional<bool> copy) {
  if (self.requires_grad())
    throw std::runtime_error("Can't export tensors that require gradient, use tensor.detach()");
  if (self.device().is_cpu() && !stream.is_none())
    throw py::buffer_error("__dlpack__: stream must be None for a CPU tensor");
  Tensor t = self;
  bool copied = false;
  if (!dl_device.is_none()) {
    auto want = dl_device.cast<std::pair<int, int>>();
    Device target;
    if (want.first == kDLCPU) {
      target = Device::cpu();
    } else if (want.first == kDLCUDA) {
      target = Device::cuda(want.second);
    } else {
      throw py::buffer_error("__dlpack__: dl_device type " + std::to_string(want.first) + " is not supported");
    }
    if (target != t.device()) {
      if (copy == false)
        throw py::buffer_error("__dlpack__: the tensor is on " + t.device().str() + " and copy=False");
      py::gil_scoped_release nogil;
      t = t.to(target);
      copied = true;
    }
  }
  if (copy == true && !copied) {
    py::gil_scoped_release nogil;
    t = t.clone();
    copied = true;
  }
  bool versioned = false;
  if (!max_version.is_none()) versioned = max_version.cast<std::pair<int, int>>().first >= 1;
  return to_dlpack(t, versioned, copied);
}

Tensor from_dlpack(py::handle obj, py::handle device, std::optional<bool> copy) {
  Tensor t;
  if (PyCapsule_CheckExact(obj.ptr())) {
    t = from_dlpack_capsule(obj, copy);
  } else if (py::hasattr(obj, "__dlpack__")) {
    py::dict kwargs;
    kwargs["max_version"] = py::make_tuple(kDLPackMajor, kDLPackMinor);
    if (copy) kwargs["copy"] = py::bool_(*copy);
    if (py::hasattr(obj, "__dlpack_device__")) {
      auto dev = obj.attr("__dlpack_device__")().cast<std::pair<int, int>>();
      // CUDA producers order their work before ours on the legacy default stream (1).
      if (dev.first == kDLCUDA) kwargs["stream"] = py::int_(1);
    }
    py::object cap;
    try {
      cap = obj.attr("__dlpack__")(**kwargs);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_TypeError)) throw;
      cap = obj.attr("__dlpack__")();  // a producer older than DLPack 1.0 takes no keywords
    }
    t = from_dlpack_capsule(cap, copy);
  } else {
    throw py::type_error("from_dlpack: expected an object with __dlpack__ or a DLPack capsule, got " +
                         type_name(obj));
  }
  if (!device.is_none()) {
    const Device d = device.cast<Device>();
    if (d != t.device()) {
      if (copy == false) throw py::buffer_error("from_dlpack: the data is on " + t.device().str() + " and copy=False");
      py::gil_scoped_release nogil;
      t = t.to(d);
    }
  }
  return t;
}

Tensor as_tensor(py::handle data, std::optional<DType> dtype, std::optional<Device> device) {
  if (py::isinstance<Tensor>(data)) {
    Tensor t = data.cast<Tensor>();
    py::gil_scoped_release nogil;
    if (dtype) t = t.to(*dtype);
    if (device) t = t.to(*device);
    return t;
  }
  if (py::isinstance<py::array>(data)) {
    auto arr = py::reinterpret_borrow<py::array>(data);
    auto natural = dtype_from_python(arr.dtype());
    bool shareable = natural && arr.writeable() && (!dtype || *dtype == *natural) &&
                     (!device || device->is_cpu());
    for (py::ssize_t d = 0; shareable && d < arr.ndim(); ++d)
      shareable = arr.shape(d) <= 1 || (arr.strides(d) >= 0 && arr.strides(d) % arr.itemsize() == 0);
    if (shareable) return tensor_from_numpy(data);
  }
  return tensor_from_data(data, dtype, device, false);
}

}  // namespace

// ---- numpy ------------------------------------------------------------------------------------------

py::array tensor_to_numpy(const Tensor& t) {
  if (t.requires_grad())
    throw std::runtime_error("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
  if (!t.device().is_cpu())
    throw py::type_error("can't convert " + t.device().str() +
                         " device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first.");
  py::dtype dt = numpy_dtype(t.dtype());
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  std::vector<py::ssize_t> strides(t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) strides[d] = t.strides()[d] * static_cast<py::ssize_t>(t.itemsize());
  auto* keep = new std::shared_ptr<Storage>(t.storage());
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<Storage>*>(p); });
  return py::array(dt, shape, strides, t.data_ptr(), base);
}

Tensor tensor_from_numpy(py::handle obj) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("from_numpy: expected np.ndarray, got " + type_name(obj));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const auto dt = dtype_from_python(arr.dtype());
  if (!dt)
    throw py::type_error("from_numpy: can't convert np.ndarray of type " + std::string(py::str(arr.dtype())) +
                         "; supported: float64, float32, float16, int64, int32 and bool (native byte order)");
  if (!arr.writeable())
    throw py::value_error("from_numpy: the array is read-only and tse tensors are always writable; pass "
                          "arr.copy() or use tse.tensor(arr), which copies");
  const int64_t nd = arr.ndim();
  const int64_t isz = arr.itemsize();
  Shape sizes(nd), strides(nd);
  for (int64_t d = 0; d < nd; ++d) sizes[d] = arr.shape(d);
  const Shape dense = contiguous_strides(sizes);
  int64_t extent = isz;
  bool empty = false;
  for (int64_t d = 0; d < nd; ++d) {
    if (sizes[d] == 0) empty = true;
    if (sizes[d] <= 1) {  // any stride is valid for a dim of size <= 1
      strides[d] = dense[d];
      continue;
    }
    const int64_t sb = arr.strides(d);
    if (sb < 0 || sb % isz != 0) {
      std::string st = py::str(arr.attr("strides"));
      throw py::value_error("from_numpy: strides " + st + " (bytes) are negative or not a multiple of the itemsize " +
                            std::to_string(isz) + "; use np.ascontiguousarray(arr) or tse.tensor(arr), which copy");
    }
    strides[d] = sb / isz;
    extent += (sizes[d] - 1) * sb;
  }
  PyObject* owner = arr.ptr();
  Py_INCREF(owner);
  auto storage = std::make_shared<Storage>(arr.mutable_data(), empty ? 0 : static_cast<size_t>(extent), Device::cpu(),
                                           [owner](void*) { decref_with_gil(owner); });
  return Tensor::from_storage(std::move(storage), sizes, strides, 0, *dt);
}

Tensor tensor_from_data(py::handle data, std::optional<DType> dtype, std::optional<Device> device,
                        bool requires_grad) {
  Tensor out;
  if (py::isinstance<Tensor>(data)) {
    const Tensor src = data.cast<const Tensor&>().detach();
    py::gil_scoped_release nogil;
    out = src.to(dtype.value_or(src.dtype()));
    if (out.storage() == src.storage()) out = out.clone();
    if (device) out = out.to(*device);
  } else {
    auto np = py::module_::import("numpy");
    const bool from_numpy = py::isinstance<py::array>(data) || py::isinstance(data, np.attr("generic"));
    py::array arr = np.attr("asarray")(data);
    const py::dtype descr = arr.dtype();
    const char kind = descr.kind();
    DType natural;
    if (kind == 'b') {
      natural = DType::b8;
    } else if (kind == 'i' || kind == 'u') {
      natural = from_numpy && kind == 'i' && descr.itemsize() == 4 ? DType::i32 : DType::i64;
    } else if (kind == 'f') {
      // Python floats give float32, PyTorch's default; numpy arrays keep their precision.
      natural = !from_numpy ? DType::f32 : descr.itemsize() == 2 ? DType::f16 : descr.itemsize() == 4 ? DType::f32
                                                                                                      : DType::f64;
    } else {
      throw py::type_error("tensor: can't convert data of numpy dtype " + std::string(py::str(descr)) +
                           "; expected numbers, bools, nested sequences of them or numpy arrays");
    }
    const DType target = dtype.value_or(natural);
    const DType host = target == DType::bf16 ? DType::f32 : target;  // numpy has no bfloat16
    // asarray(order="C"), not ascontiguousarray: that one turns 0-d into 1-d.
    py::array c = np.attr("asarray")(arr, py::arg("dtype") = numpy_dtype(host), py::arg("order") = "C");
    Shape sizes(c.shape(), c.shape() + c.ndim());
    out = Tensor::empty(sizes, host);
    const void* src = c.data();
    const size_t nbytes = static_cast<size_t>(out.numel()) * out.itemsize();
    py::gil_scoped_release nogil;
    if (nbytes) std::memcpy(out.data_ptr(), src, nbytes);
    if (target != host) out = out.to(target);
    if (device) out = out.to(*device);
  }
  if (requires_grad) out.requires_grad_(true);
  return out;
}

py::class_<Tensor> bind_tensor(py::module_& m) {
  py::class_<Tensor> cls(m, "Tensor", R"doc(
An n-dimensional array with autograd: a shared handle over storage + offset + sizes + strides.

Views (view, reshape, permute, transpose, narrow, select, expand, squeeze, unsqueeze, indexing
with ints / slices / None / ...) share memory with their base and are differentiable.
)doc");

  // ---- metadata ----
  cls.def_property_readonly("shape", [](const Tensor& t) { return to_tuple(t.sizes()); })
      .def("size", [](const Tensor& t, py::object dim) -> py::object {
             if (dim.is_none()) return to_tuple(t.sizes());
             return py::int_(t.size(dim.cast<int64_t>()));
           }, py::arg("dim") = py::none())
      .def("dim", &Tensor::dim)
      .def_property_readonly("ndim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("device", &Tensor::device)
      .def_property_readonly("is_cuda", [](const Tensor& t) { return t.device().is_cuda(); })
      .def_property_readonly("is_cpu", [](const Tensor& t) { return t.device().is_cpu(); })
      .def("strides", [](const Tensor& t) { return to_tuple(t.strides()); }, "Strides in elements.")
      .def("stride", [](const Tensor& t, py::object dim) -> py::object {
             if (dim.is_none()) return to_tuple(t.strides());
             return py::int_(t.stride(dim.cast<int64_t>()));
           }, py::arg("dim") = py::none())
      .def("storage_offset", &Tensor::storage_offset)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("element_size", &Tensor::itemsize)
      .def_property_readonly("itemsize", &Tensor::itemsize)
      .def_property_readonly("nbytes", [](const Tensor& t) { return static_cast<size_t>(t.numel()) * t.itemsize(); })
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); })
      .def_property_readonly("_version", &Tensor::version);

  // ---- autograd ----
  cls.def_property("requires_grad", &Tensor::requires_grad,
                   [](Tensor& t, bool v) { t.requires_grad_(v); })
      .def("requires_grad_", [](py::object self, bool v) {
             self_of(self).requires_grad_(v);
             return self;
           }, py::arg("requires_grad") = true)
      .def_property("grad",
                    [](const Tensor& t) -> py::object {
                      Tensor g = t.grad();
                      return g.defined() ? py::cast(g) : py::none();
                    },
                    [](Tensor& t, std::optional<Tensor> g) { t.set_grad(g.value_or(Tensor())); })
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def_property_readonly("grad_fn", &Tensor::grad_fn, "The op that produced this tensor (None for leaves).")
      .def("backward",
           [](const Tensor& t, std::optional<Tensor> gradient, bool retain_graph) {
             py::gil_scoped_release nogil;
             t.backward(gradient.value_or(Tensor()), retain_graph);
           },
           py::arg("gradient") = py::none(), py::arg("retain_graph") = false,
           "Backpropagates from this tensor; leaves accumulate into .grad. A tensor with more than one "
           "element needs an explicit gradient of its shape.")
      .def("detach", &Tensor::detach, "Shares storage, no autograd history.")
      .def_property_readonly("data", &Tensor::detach);

  // ---- copies and conversion ----
  cls.def("clone", [](const Tensor& t) {
        py::gil_scoped_release nogil;
        return t.clone();
      })
      .def("contiguous", [](const Tensor& t) {
        py::gil_scoped_release nogil;
        return t.contiguous();
      })
      .def("to", &tensor_to, py::arg("dtype") = py::none(), py::arg("device") = py::none(), py::arg("copy") = false,
           "to(dtype), to(device), to(device, dtype), to(other): a converted copy, or self when nothing changes.")
      .def("cpu", [](const Tensor& t) {
        py::gil_scoped_release nogil;
        return t.to(Device::cpu());
      })
      .def("cuda", [](const Tensor& t, py::object device) {
             Device d = Device::cuda(0);
             if (is_int(device)) d = Device::cuda(device.cast<int>());
             else if (!device.is_none()) d = device.cast<Device>();
             py::gil_scoped_release nogil;
             return t.to(d);
           }, py::arg("device") = py::none())
      .def("float", [](const Tensor& t) { return tensor_to_dtype(t, DType::f32); })
      .def("double", [](const Tensor& t) { return tensor_to_dtype(t, DType::f64); })
      .def("half", [](const Tensor& t) { return tensor_to_dtype(t, DType::f16); })
      .def("bfloat16", [](const Tensor& t) { return tensor_to_dtype(t, DType::bf16); })
      .def("int", [](const Tensor& t) { return tensor_to_dtype(t, DType::i32); })
      .def("long", [](const Tensor& t) { return tensor_to_dtype(t, DType::i64); })
      .def("bool", [](const Tensor& t) { return tensor_to_dtype(t, DType::b8); })
      .def("numpy", [](const Tensor& t, bool force) {
             return tensor_to_numpy(force ? host_readable(t) : t);
           }, py::arg("force") = false,
           "A numpy array sharing this CPU tensor's memory. force=True detaches and copies to the CPU first "
           "(and widens bfloat16 to float32).")
      .def("__array__", [](const Tensor& t, py::object dtype, py::object copy) {
             py::object a = tensor_to_numpy(t);
             if (!dtype.is_none()) a = a.attr("astype")(dtype, py::arg("copy") = false);
             if (!copy.is_none() && copy.cast<bool>()) a = a.attr("copy")();
             return a;
           }, py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def("item", &tensor_item)
      .def("tolist", [](const Tensor& t) { return tensor_to_numpy(host_readable(t)).attr("tolist")(); })
      .def("__repr__", &tensor_repr)
      .def("__format__", [](py::object self, const std::string& spec) -> py::object {
             const Tensor& t = self.cast<const Tensor&>();
             if (t.dim() == 0) return py::module_::import("builtins").attr("format")(tensor_item(t), spec);
             return py::module_::import("builtins").attr("object").attr("__format__")(self, spec);
           })
      .def("__len__", [](const Tensor& t) {
             if (t.dim() == 0) throw py::type_error("len() of a 0-d tensor");
             return t.size(0);
           })
      .def("__iter__", [](const Tensor& t) {
             if (t.dim() == 0) throw py::type_error("iteration over a 0-d tensor");
             std::vector<Tensor> rows;
             for (int64_t i = 0; i < t.size(0); ++i) rows.push_back(t.select(0, i));
             return py::iter(py::cast(rows));
           })
      .def("__bool__", [](const Tensor& t) {
             if (t.numel() != 1)
               throw std::runtime_error("Boolean value of Tensor with more than one value is ambiguous");
             return tensor_item(t).cast<bool>();
           })
      .def("__float__", [](const Tensor& t) { return tensor_item(t).cast<double>(); })
      .def("__int__", [](const Tensor& t) { return py::int_(tensor_item(t)); })
      .def("__index__", [](const Tensor& t) {
             if (!is_integral(t.dtype()) || t.numel() != 1)
               throw py::type_error("only integer tensors of a single element can be converted to an index");
             return tensor_item(t);
           })
      .def("__dlpack__", &tensor_dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(), py::arg("copy") = py::none(),
           "A DLPack capsule sharing this tensor's memory (Python array API).")
      .def("__dlpack_device__", &dlpack_device);

  // Pickled by value (pickle, copy.deepcopy, multiprocessing): the bytes of a contiguous host
  // copy, shape, dtype, device and requires_grad. The autograd history is not kept (as torch).
  cls.def(py::pickle(
      [](const Tensor& t) {
        Tensor c = t.detach();
        {
          py::gil_scoped_release nogil;
          c = c.to(Device::cpu()).contiguous();
        }
        py::bytes data(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.itemsize());
        return py::make_tuple(data, to_tuple(t.sizes()), std::string(dtype_name(t.dtype())), t.device().str(),
                              t.requires_grad());
      },
      [](const py::tuple& state) {
        if (state.size() != 5) throw py::value_error("Tensor.__setstate__: expected a 5-tuple");
        const std::string data = state[0].cast<std::string>();
        const Shape sizes = state[1].cast<Shape>();
        const DType dtype = state[2].cast<DType>();
        Tensor t = Tensor::empty(sizes, dtype);
        const size_t nbytes = static_cast<size_t>(t.numel()) * t.itemsize();
        if (data.size() != nbytes) throw py::value_error("Tensor.__setstate__: data size does not match the shape");
        if (nbytes) std::memcpy(t.data_ptr(), data.data(), nbytes);
        t = t.to(Device::parse(state[3].cast<std::string>()));
        if (state[4].cast<bool>()) t.requires_grad_(true);
        return t;
      }));

  // ---- views ----
  cls.def("view", [](const Tensor& t, py::args shape) { return t.view(shape_from_args(shape, "view")); })
      .def("view_as", [](const Tensor& t, const Tensor& o) { return t.view(o.sizes()); }, py::arg("other"))
      .def("reshape", [](const Tensor& t, py::args shape) {
             Shape s = shape_from_args(shape, "reshape");
             py::gil_scoped_release nogil;
             return t.reshape(s);
           })
      .def("reshape_as", [](const Tensor& t, const Tensor& o) {
             py::gil_scoped_release nogil;
             return t.reshape(o.sizes());
           }, py::arg("other"))
      .def("permute", [](const Tensor& t, py::args dims) { return t.permute(shape_from_args(dims, "permute")); })
      .def("transpose", &Tensor::transpose, py::arg("dim0"), py::arg("dim1"))
      .def("t", &Tensor::t)
      .def_property_readonly("T", &reverse_dims, "The dims reversed (the transpose of a matrix).")
      .def("narrow", &Tensor::narrow, py::arg("dim"), py::arg("start"), py::arg("length"))
      .def("select", &Tensor::select, py::arg("dim"), py::arg("index"))
      .def("expand", [](const Tensor& t, py::args sizes) { return t.expand(shape_from_args(sizes, "expand")); })
      .def("expand_as", [](const Tensor& t, const Tensor& o) { return t.expand(o.sizes()); }, py::arg("other"))
      .def("broadcast_to", &Tensor::expand, py::arg("size"))
      .def("squeeze", &squeeze, py::arg("dim") = py::none())
      .def("unsqueeze", &Tensor::unsqueeze, py::arg("dim"))
      .def("flatten", [](const Tensor& t, int64_t start_dim, int64_t end_dim) {
             py::gil_scoped_release nogil;
             return t.flatten(start_dim, end_dim);
           }, py::arg("start_dim") = 0, py::arg("end_dim") = -1)
      .def("__getitem__", [](const Tensor& t, py::handle index) {
             bool is_view = true;
             return apply_index(t, index, &is_view);
           })
      .def("__setitem__", [](const Tensor& t, py::handle index, py::handle value) { assign_index(t, index, value); });

  // ---- in place ----
  cls.def("add_", [](py::object self, py::handle other, double alpha) {
        inplace_add(self_of(self), other, alpha, "add_");
        return self;
      }, py::arg("other"), py::kw_only(), py::arg("alpha") = 1.0)
      .def("sub_", [](py::object self, py::handle other, double alpha) {
        inplace_add(self_of(self), other, -alpha, "sub_");
        return self;
      }, py::arg("other"), py::kw_only(), py::arg("alpha") = 1.0)
      .def("mul_", [](py::object self, py::handle other) {
        inplace_mul(self_of(self), other, false, "mul_");
        return self;
      }, py::arg("other"))
      .def("div_", [](py::object self, py::handle other) {
        inplace_mul(self_of(self), other, true, "div_");
        return self;
      }, py::arg("other"))
      .def("zero_", [](py::object self) {
        Tensor& t = self_of(self);
        {
          py::gil_scoped_release nogil;
          t.zero_();
        }
        return self;
      })
      .def("fill_", [](py::object self, py::handle value) {
        Tensor& t = self_of(self);
        double v;
        if (py::isinstance<Tensor>(value)) {
          v = tensor_item(value.cast<const Tensor&>()).cast<double>();
        } else {
          auto s = scalar_from_python(value);
          if (!s) throw py::type_error("fill_: 'value' must be a number, got " + type_name(value));
          v = s->value;
        }
        {
          py::gil_scoped_release nogil;
          t.fill_(v);
        }
        return self;
      }, py::arg("value"))
      .def("copy_", [](py::object self, const Tensor& src) {
        Tensor& t = self_of(self);
        {
          py::gil_scoped_release nogil;
          t.copy_(src);
        }
        return self;
      }, py::arg("src"))
      .def("__iadd__", [](py::object self, py::handle other) {
        inplace_add(self_of(self), other, 1.0, "+=");
        return self;
      })
      .def("__isub__", [](py::object self, py::handle other) {
        inplace_add(self_of(self), other, -1.0, "-=");
        return self;
      })
      .def("__imul__", [](py::object self, py::handle other) {
        inplace_mul(self_of(self), other, false, "*=");
        return self;
      })
      .def("__itruediv__", [](py::object self, py::handle other) {
        inplace_mul(self_of(self), other, true, "/=");
        return self;
      });

  // ---- views as functions (torch.reshape, torch.transpose, ...) ----
  m.def("reshape", [](const Tensor& t, const Shape& shape) {
    py::gil_scoped_release nogil;
    return t.reshape(shape);
  }, py::arg("input"), py::arg("shape"), "A view when the strides allow, else a copy; one size may be -1.");
  m.def("permute", &Tensor::permute, py::arg("input"), py::arg("dims"));
  m.def("transpose", &Tensor::transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("t", &Tensor::t, py::arg("input"), "Transpose of a tensor with <= 2 dims.");
  m.def("narrow", &Tensor::narrow, py::arg("input"), py::arg("dim"), py::arg("start"), py::arg("length"));
  m.def("select", &Tensor::select, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("squeeze", &squeeze, py::arg("input"), py::arg("dim") = py::none());
  m.def("unsqueeze", &Tensor::unsqueeze, py::arg("input"), py::arg("dim"));
  m.def("flatten", [](const Tensor& t, int64_t start_dim, int64_t end_dim) {
    py::gil_scoped_release nogil;
    return t.flatten(start_dim, end_dim);
  }, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("broadcast_to", &Tensor::expand, py::arg("input"), py::arg("size"), "A broadcast view (expand).");
  m.def("broadcast_shapes", [](py::args shapes) {
    Shape out;
    for (py::handle s : shapes) out = ops::broadcast_shapes(out, ints_from_arg(s, "broadcast_shapes", "shapes"),
                                                            "broadcast_shapes");
    return to_tuple(out);
  }, "The shape the given shapes broadcast to (numpy rules).");

  // ---- constructors ----
  m.def("tensor", [](py::handle data, std::optional<DType> dtype, std::optional<Device> device, bool requires_grad) {
          return tensor_from_data(data, dtype, device, requires_grad);
        }, py::arg("data"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
        py::arg("requires_grad") = false,
        "A new tensor holding a copy of data (nested sequences of numbers, numpy arrays, tensors). Python "
        "floats give float32, ints int64, bools bool; numpy arrays keep their dtype.");
  m.def("from_numpy", &tensor_from_numpy, py::arg("ndarray"),
        "A tensor sharing the array's memory (no copy); it keeps the array alive. Read-only arrays and "
        "negative or non-itemsize-multiple strides raise ValueError.");
  m.def("as_tensor", &as_tensor, py::arg("data"), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
        "Shares memory with a tensor or a compatible numpy array when possible, else copies.");
  m.def("from_dlpack", &from_dlpack, py::arg("ext_tensor"), py::kw_only(), py::arg("device") = py::none(),
        py::arg("copy") = py::none(),
        "A tensor sharing the memory of an object with __dlpack__ (numpy arrays, ...) or of a DLPack capsule, "
        "which it consumes. Read-only producers are copied (copy=False refuses them).");
  return cls;
}

}  // namespace tse::python
