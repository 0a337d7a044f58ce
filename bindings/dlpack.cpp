// DLPack producer (Tensor.__dlpack__) and consumer (tse.from_dlpack). See dlpack.hpp.
#include "bindings/dlpack.hpp"

#include <memory>
#include <string>
#include <vector>

#include "bindings/common.hpp"

namespace tse::python {
namespace {

constexpr const char* kName = "dltensor";
constexpr const char* kUsedName = "used_dltensor";
constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";

DLDataType dl_dtype(DType t) {
  switch (t) {
    case DType::f32: return {kDLFloat, 32, 1};
    case DType::f64: return {kDLFloat, 64, 1};
    case DType::f16: return {kDLFloat, 16, 1};
    case DType::bf16: return {kDLBfloat, 16, 1};
    case DType::i32: return {kDLInt, 32, 1};
    case DType::i64: return {kDLInt, 64, 1};
    case DType::b8: return {kDLBool, 8, 1};
  }
  TSE_ASSERT(false, "dl_dtype: unknown dtype");
  return {};
}

std::optional<DType> dtype_from_dl(DLDataType d) {
  if (d.lanes != 1) return std::nullopt;
  if (d.code == kDLFloat && d.bits == 32) return DType::f32;
  if (d.code == kDLFloat && d.bits == 64) return DType::f64;
  if (d.code == kDLFloat && d.bits == 16) return DType::f16;
  if (d.code == kDLBfloat && d.bits == 16) return DType::bf16;
  if (d.code == kDLInt && d.bits == 32) return DType::i32;
  if (d.code == kDLInt && d.bits == 64) return DType::i64;
  if (d.code == kDLBool && d.bits == 8) return DType::b8;
  return std::nullopt;
}

// What a capsule we produce owns: the tensor (keeping its storage alive) and the shape/strides
// arrays DLTensor points into. One struct serves both ABI versions.
struct ExportContext {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
  DLManagedTensor legacy{};
  DLManagedTensorVersioned versioned{};
};

void fill_dl_tensor(DLTensor& dl, ExportContext& ctx) {
  const Tensor& t = ctx.tensor;
  dl.data = t.storage()->data();
  dl.byte_offset = static_cast<uint64_t>(t.storage_offset()) * t.itemsize();
  dl.device = {t.device().is_cpu() ? kDLCPU : kDLCUDA, t.device().is_cpu() ? 0 : t.device().index};
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = dl_dtype(t.dtype());
  dl.shape = ctx.shape.data();
  dl.strides = ctx.strides.data();
}

// Capsule destructors: free the tensor only when no consumer took it. They may run while an
// exception is being raised, so the error indicator is saved around them.
void legacy_capsule_destructor(PyObject* cap) {
  if (PyCapsule_IsValid(cap, kUsedName)) return;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kName));
  if (m) {
    if (m->deleter) m->deleter(m);
  } else {
    PyErr_WriteUnraisable(cap);
  }
  PyErr_Restore(type, value, tb);
}

void versioned_capsule_destructor(PyObject* cap) {
  if (PyCapsule_IsValid(cap, kUsedVersionedName)) return;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersionedName));
  if (m) {
    if (m->deleter) m->deleter(m);
  } else {
    PyErr_WriteUnraisable(cap);
  }
  PyErr_Restore(type, value, tb);
}

// A producer's deleter may touch Python objects (numpy's does), and our storage may be released
// on any thread, so it runs under the GIL.
template <typename Managed>
void call_deleter_with_gil(Managed* m) {
  if (!m->deleter || !Py_IsInitialized()) return;
  py::gil_scoped_acquire gil;
  m->deleter(m);
}

}  // namespace

py::capsule to_dlpack(const Tensor& t, bool versioned, bool copied) {
  auto ctx = std::make_unique<ExportContext>();
  ctx->tensor = t.detach();
  ctx->shape = t.sizes();
  ctx->strides = t.strides();
  PyObject* cap = nullptr;
  if (versioned) {
    DLManagedTensorVersioned& m = ctx->versioned;
    m.version = {kDLPackMajor, kDLPackMinor};
    m.manager_ctx = ctx.get();
    m.deleter = [](DLManagedTensorVersioned* self) { delete static_cast<ExportContext*>(self->manager_ctx); };
    m.flags = copied ? DLPACK_FLAG_BITMASK_IS_COPIED : 0;
    fill_dl_tensor(m.dl_tensor, *ctx);
    cap = PyCapsule_New(&m, kVersionedName, versioned_capsule_destructor);
  } else {
    DLManagedTensor& m = ctx->legacy;
    m.manager_ctx = ctx.get();
    m.deleter = [](DLManagedTensor* self) { delete static_cast<ExportContext*>(self->manager_ctx); };
    fill_dl_tensor(m.dl_tensor, *ctx);
    cap = PyCapsule_New(&m, kName, legacy_capsule_destructor);
  }
  if (!cap) throw py::error_already_set();
  ctx.release();  // owned by the capsule now
  return py::reinterpret_steal<py::capsule>(cap);
}

py::tuple dlpack_device(const Tensor& t) {
  const Device d = t.device();
  return py::make_tuple(static_cast<int>(d.is_cpu() ? kDLCPU : kDLCUDA), d.is_cpu() ? 0 : d.index);
}

Tensor from_dlpack_capsule(py::handle cap, std::optional<bool> copy) {
  PyObject* c = cap.ptr();
  const bool versioned = PyCapsule_IsValid(c, kVersionedName);
  if (!versioned && !PyCapsule_IsValid(c, kName))
    throw py::value_error(
        "from_dlpack: expected a DLPack capsule named 'dltensor' or 'dltensor_versioned' (a capsule can be "
        "consumed only once)");
  DLTensor* dl = nullptr;
  uint64_t flags = 0;
  DLManagedTensor* legacy = nullptr;
  DLManagedTensorVersioned* vers = nullptr;
  if (versioned) {
    vers = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(c, kVersionedName));
    if (vers->version.major != kDLPackMajor)
      throw py::buffer_error("from_dlpack: DLPack major version " + std::to_string(vers->version.major) +
                             " is not supported (libtse reads version " + std::to_string(kDLPackMajor) + ")");
    dl = &vers->dl_tensor;
    flags = vers->flags;
  } else {
    legacy = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, kName));
    dl = &legacy->dl_tensor;
  }

  Device device;
  if (dl->device.device_type == kDLCPU || dl->device.device_type == kDLCUDAHost) {
    device = Device::cpu();
  } else if (dl->device.device_type == kDLCUDA) {
    device = Device::cuda(dl->device.device_id);
  } else {
    throw py::buffer_error("from_dlpack: DLPack device type " + std::to_string(dl->device.device_type) +
                           " is not supported (only CPU and CUDA)");
  }
  const auto dtype = dtype_from_dl(dl->dtype);
  if (!dtype)
    throw py::type_error("from_dlpack: DLPack dtype (code " + std::to_string(dl->dtype.code) + ", bits " +
                         std::to_string(dl->dtype.bits) + ", lanes " + std::to_string(dl->dtype.lanes) +
                         ") has no tse dtype");
  const bool read_only = (flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0;
  if (read_only && copy == false)
    throw py::buffer_error("from_dlpack: the producer's memory is read-only and copy=False; tse tensors are "
                           "always writable (pass copy=None or True to copy)");

  const int64_t nd = dl->ndim;
  Shape sizes(dl->shape, dl->shape + nd);
  Shape strides = dl->strides ? Shape(dl->strides, dl->strides + nd) : contiguous_strides(sizes);
  const int64_t isz = static_cast<int64_t>(itemsize(*dtype));
  int64_t extent = isz;
  bool empty = false;
  for (int64_t d = 0; d < nd; ++d) {
    if (sizes[d] == 0) empty = true;
    if (sizes[d] > 1) {
      if (strides[d] < 0)
        throw py::value_error("from_dlpack: negative strides " + shape_to_string(strides) + " are not supported");
      extent += (sizes[d] - 1) * strides[d] * isz;
    }
  }

  // From here on we own the producer's tensor.
  PyCapsule_SetName(c, versioned ? kUsedVersionedName : kUsedName);
  Storage::Deleter deleter;
  if (versioned) {
    deleter = [vers](void*) { call_deleter_with_gil(vers); };
  } else {
    deleter = [legacy](void*) { call_deleter_with_gil(legacy); };
  }
  auto storage = std::make_shared<Storage>(static_cast<char*>(dl->data) + dl->byte_offset,
                                           empty ? 0 : static_cast<size_t>(extent), device, std::move(deleter));
  Tensor t = Tensor::from_storage(std::move(storage), sizes, strides, 0, *dtype);
  if (read_only || copy == true) {
    py::gil_scoped_release nogil;
    return t.clone();
  }
  return t;
}

}  // namespace tse::python
