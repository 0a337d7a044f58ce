#pragma once
// DLPack: the C structs of the public DLPack 1.0 ABI (https://dmlc.github.io/dlpack/latest/c_api.html),
// written out here because pybind11 ships no DLPack support, plus our producer and consumer.
//
// Capsule protocol (Python array API): a producer returns a PyCapsule named "dltensor"
// (DLManagedTensor) or "dltensor_versioned" (DLManagedTensorVersioned, DLPack >= 1.0). A
// consumer that takes ownership renames it "used_dltensor" / "used_dltensor_versioned" and calls
// the deleter when done; a capsule that dies unconsumed calls the deleter from its destructor.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>

#include "tse/core/tensor.hpp"

extern "C" {

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

enum DLDeviceType : int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,  // pinned host memory: readable as CPU memory
};

struct DLDevice {
  DLDeviceType device_type;
  int32_t device_id;
};

enum DLDataTypeCode : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
};

struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL means compact row-major
  uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

inline constexpr uint64_t DLPACK_FLAG_BITMASK_READ_ONLY = 1ull << 0;
inline constexpr uint64_t DLPACK_FLAG_BITMASK_IS_COPIED = 1ull << 1;

struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

}  // extern "C"

namespace tse::python {

inline constexpr uint32_t kDLPackMajor = 1;
inline constexpr uint32_t kDLPackMinor = 0;

/// A capsule sharing t's memory. versioned selects DLManagedTensorVersioned ("dltensor_versioned");
/// copied sets its IS_COPIED flag.
pybind11::capsule to_dlpack(const Tensor& t, bool versioned, bool copied);

/// Takes ownership of an unconsumed DLPack capsule (renaming it) and returns a tensor over its
/// memory. A read-only producer is copied unless copy is false (then BufferError); copy true
/// always copies.
Tensor from_dlpack_capsule(pybind11::handle capsule, std::optional<bool> copy);

/// (device_type, device_id) of t as DLPack numbers.
pybind11::tuple dlpack_device(const Tensor& t);

}  // namespace tse::python
