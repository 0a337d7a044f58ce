#pragma once
// Tensor: a cheap shared handle over Storage + offset + sizes + strides (in elements) + dtype.
// Views (view/reshape, permute, transpose, narrow/slice/select, expand, squeeze/unsqueeze) share
// storage; every view is itself a recorded op, so gradients flow through views.
// Autograd metadata is attached lazily: tensors that never require grad carry none.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tse/core/device.hpp"
#include "tse/core/dtype.hpp"
#include "tse/core/error.hpp"
#include "tse/core/storage.hpp"

namespace tse {

using Shape = std::vector<int64_t>;

namespace autograd {
struct AutogradMeta;
class Node;
}  // namespace autograd

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape sizes;
  Shape strides;  // in elements
  DType dtype = DType::f32;
  std::shared_ptr<autograd::AutogradMeta> autograd;  // null unless the tensor takes part in autograd
};

class TSE_API Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// A fresh contiguous tensor (uninitialised memory).
  static Tensor empty(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());
  /// A tensor over existing storage (no copy).
  static Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& sizes, const Shape& strides,
                             int64_t offset, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata ------------------------------------------------------------------------------
  int64_t dim() const { return static_cast<int64_t>(checked().sizes.size()); }
  const Shape& sizes() const { return checked().sizes; }
  const Shape& shape() const { return checked().sizes; }
  const Shape& strides() const { return checked().strides; }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  DType dtype() const { return checked().dtype; }
  Device device() const { return checked().storage->device(); }
  int64_t storage_offset() const { return checked().offset; }
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }
  bool is_contiguous() const;
  size_t itemsize() const { return tse::itemsize(dtype()); }
  /// Pointer to the first element (storage base + offset).
  void* data_ptr() const;
  /// Typed pointer; throws ValueError when T does not match dtype().
  template <typename T>
  T* data() const {
    TSE_CHECK(dtype() == dtype_of<T>::value, "Tensor::data<T>: tensor has dtype ", dtype(),
              ", requested ", dtype_of<T>::value);
    return static_cast<T*>(data_ptr());
  }
  /// The single value of a one-element tensor, converted to double.
  double item() const;
  std::string str() const;  // "Tensor(shape=[2, 3], dtype=float32, device=cpu)" + values when small
  std::string shape_str() const;

  // ---- copies and conversion -----------------------------------------------------------------
  Tensor contiguous() const;  // self when already contiguous, else a differentiable copy
  Tensor clone() const;       // always a copy (differentiable)
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor detach() const;      // shares storage, no autograd history

  // ---- views (share storage, differentiable) --------------------------------------------------
  Tensor view(const Shape& sizes) const;     // needs compatible strides; -1 infers one dim
  Tensor reshape(const Shape& sizes) const;  // a view when possible, else a copy
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // python-style clamping
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& sizes) const;  // -1 keeps a size
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- autograd ------------------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf as requiring grad (a parameter). Non-leaves inherit it from their inputs.
  Tensor& requires_grad_(bool requires_grad = true);
  bool is_leaf() const;
  Tensor grad() const;  // accumulated gradient of a leaf (undefined before any backward)
  void set_grad(const Tensor& g);
  std::shared_ptr<autograd::Node> grad_fn() const;
  /// Backpropagates from this tensor; a non-scalar needs an explicit grad of the same shape.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  uint64_t version() const { return storage()->version(); }

  // ---- in place (bump the version counter; refused on tensors that record grad) ----------------
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // broadcast src into self, converting dtype
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double value);

  // ---- ops as methods (the free functions in tse::ops document them) ----------------------------
  Tensor add(const Tensor& o) const;
  Tensor sub(const Tensor& o) const;
  Tensor mul(const Tensor& o) const;
  Tensor div(const Tensor& o) const;
  Tensor pow(double e) const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor abs() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor clamp(double min, double max) const;
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;

 private:
  const TensorImpl& checked() const {
    TSE_CHECK(impl_ != nullptr, "Tensor: use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

/// Contiguous (row-major) strides for sizes.
TSE_API Shape contiguous_strides(const Shape& sizes);
TSE_API int64_t shape_numel(const Shape& sizes);
TSE_API std::string shape_to_string(const Shape& sizes);
/// Wraps a possibly negative dim into [0, ndim); IndexError naming op otherwise.
TSE_API int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace tse
