// Tensor metadata, views (recorded on the tape) and autograd accessors.
#include "tse/core/tensor.hpp"

#include <algorithm>
#include <numeric>
#include <optional>
#include <sstream>

#include "src/core/cuda_backend.hpp"
#include "tse/autograd/engine.hpp"
#include "tse/autograd/function.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

Shape contiguous_strides(const Shape& sizes) {
  Shape s(sizes.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= std::max<int64_t>(sizes[i], 1);
  }
  return s;
}

int64_t shape_numel(const Shape& sizes) {
  int64_t n = 1;
  for (int64_t v : sizes) n *= v;
  return n;
}

std::string shape_to_string(const Shape& sizes) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < sizes.size(); ++i) os << (i ? ", " : "") << sizes[i];
  os << "]";
  return os.str();
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  TSE_CHECK_INDEX(dim >= lo && dim <= hi, op, ": dim ", dim, " out of range for a ", ndim,
                  "-d tensor (expected in [", lo, ", ", hi, "])");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Tensor Tensor::empty(const Shape& sizes, DType dtype, Device device) {
  for (int64_t s : sizes) TSE_CHECK(s >= 0, "empty: negative size in ", shape_to_string(sizes));
  const int64_t n = shape_numel(sizes);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(n) * tse::itemsize(dtype), device);
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, const Shape& sizes, const Shape& strides,
                            int64_t offset, DType dtype) {
  TSE_CHECK(sizes.size() == strides.size(), "from_storage: sizes ", shape_to_string(sizes), " and strides ",
            shape_to_string(strides), " differ in length");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = sizes;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return shape_numel(sizes()); }

bool Tensor::is_contiguous() const {
  const auto& sz = sizes();
  const auto& st = strides();
  int64_t expected = 1;
  for (int64_t i = static_cast<int64_t>(sz.size()) - 1; i >= 0; --i) {
    if (sz[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= sz[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const auto& t = checked();
  return static_cast<char*>(t.storage->data()) + t.offset * static_cast<int64_t>(tse::itemsize(t.dtype));
}

double Tensor::item() const {
  TSE_CHECK(numel() == 1, "item: the tensor has ", numel(), " elements (shape ", shape_str(),
            "), item() needs exactly one");
  return ops::to_vector(*this)[0];
}

std::string Tensor::shape_str() const { return shape_to_string(sizes()); }

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(shape=" << shape_str() << ", dtype=" << dtype() << ", device=" << device();
  if (requires_grad()) os << ", requires_grad=true";
  if (numel() <= 16) {
    auto v = ops::to_vector(*this);
    os << ", values=[";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "]";
  }
  os << ")";
  return os.str();
}

// ---- copies ------------------------------------------------------------------------------------

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : ops::copy(*this); }
Tensor Tensor::clone() const { return ops::copy(*this); }
Tensor Tensor::to(DType dtype) const { return dtype == this->dtype() ? *this : ops::to_dtype(*this, dtype); }

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  TSE_CHECK(device.is_cpu() || device.index < cuda::device_count(), "to: ", device,
            " is not available (", cuda::device_count(), " CUDA devices visible)");
  const Tensor src = contiguous();
  Tensor out = Tensor::empty(sizes(), dtype(), device);
  const size_t nbytes = static_cast<size_t>(numel()) * itemsize();
  if (nbytes > 0) {
    if (src.device().is_cpu() && device.is_cuda()) {
      cuda::copy_host_to_device(out.data_ptr(), src.data_ptr(), nbytes, device.index);
    } else if (src.device().is_cuda() && device.is_cpu()) {
      cuda::copy_device_to_host(out.data_ptr(), src.data_ptr(), nbytes, src.device().index);
    } else {
      throw NotImplementedError("to: copies between two CUDA devices are not supported yet");
    }
  }
  if (needs_grad({*this})) {
    const Device from = this->device();
    record("to_device", {*this}, {out}, [from](const Grads& g) -> Grads { return {g[0].to(from)}; });
  }
  return out;
}

Tensor Tensor::detach() const {
  const auto& t = checked();
  return from_storage(t.storage, t.sizes, t.strides, t.offset, t.dtype);
}

// ---- views -------------------------------------------------------------------------------------

namespace {

Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  return Tensor::from_storage(base.storage(), std::move(sizes), std::move(strides), offset, base.dtype());
}

Shape infer_size(const Shape& requested, int64_t numel, const char* op) {
  Shape out = requested;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      TSE_CHECK(infer < 0, op, ": only one dimension can be -1 in ", shape_to_string(requested));
      infer = static_cast<int64_t>(i);
    } else {
      TSE_CHECK(out[i] >= 0, op, ": invalid size ", out[i], " in ", shape_to_string(requested));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    TSE_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_to_string(requested),
              " is invalid for input of size ", numel);
    out[infer] = numel / known;
  }
  TSE_CHECK(shape_numel(out) == numel, op, ": shape ", shape_to_string(requested), " is invalid for input of size ",
            numel);
  return out;
}

// Strides for viewing (sizes, strides) as new_sizes without a copy, or empty when impossible
// (the algorithm of PyTorch's computeStride: match chunks of contiguous dims).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes) {
  const int64_t numel = shape_numel(sizes);
  Shape out(new_sizes.size());
  if (numel == 0 || sizes.empty()) return contiguous_strides(new_sizes);
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

void record_reshape_back(const Tensor& in, const Tensor& out, const char* name) {
  if (needs_grad({in})) {
    Shape in_sizes = in.sizes();
    record(name, {in}, {out}, [in_sizes](const Grads& g) -> Grads { return {g[0].reshape(in_sizes)}; });
  }
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  Shape new_sizes = infer_size(requested, numel(), "view");
  auto st = view_strides(sizes(), strides(), new_sizes);
  TSE_CHECK(st.has_value(), "view: shape ", shape_to_string(requested), " is incompatible with the strides ",
            shape_to_string(strides()), " of a tensor of shape ", shape_str(), "; use reshape() (it copies)");
  Tensor out = make_view(*this, new_sizes, *st, storage_offset());
  record_reshape_back(*this, out, "view");
  return out;
}

Tensor Tensor::reshape(const Shape& requested) const {
  Shape new_sizes = infer_size(requested, numel(), "reshape");
  if (new_sizes == sizes()) return *this;
  if (view_strides(sizes(), strides(), new_sizes)) return view(new_sizes);
  return ops::copy(*this).view(new_sizes);
}

Tensor Tensor::permute(const Shape& dims) const {
  const int64_t n = dim();
  TSE_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: got ", dims.size(), " dims for a ", n,
            "-d tensor of shape ", shape_str());
  Shape sz(n), st(n), inverse(n);
  std::vector<bool> used(n, false);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = wrap_dim(dims[i], n, "permute");
    TSE_CHECK(!used[d], "permute: dim ", dims[i], " repeated in ", shape_to_string(dims));
    used[d] = true;
    sz[i] = sizes()[d];
    st[i] = strides()[d];
    inverse[d] = i;
  }
  Tensor out = make_view(*this, sz, st, storage_offset());
  if (needs_grad({*this}))
    record("permute", {*this}, {out}, [inverse](const Grads& g) -> Grads { return {g[0].permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  const int64_t n = dim();
  if (n == 0) return *this;
  d0 = wrap_dim(d0, n, "transpose");
  d1 = wrap_dim(d1, n, "transpose");
  Shape perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[d0], perm[d1]);
  return permute(perm);
}

Tensor Tensor::t() const {
  TSE_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dims, got shape ", shape_str());
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  TSE_CHECK(dim() > 0, "slice: cannot slice a 0-d tensor");
  d = wrap_dim(d, dim(), "slice");
  TSE_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = sizes()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sz = sizes(), st = strides();
  sz[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, sz, st, storage_offset() + start * strides()[d]);
  if (needs_grad({*this})) {
    Shape in_sizes = sizes();
    record("slice", {*this}, {out}, [in_sizes, d, start, end, step](const Grads& g) -> Grads {
      Tensor z = ops::zeros(in_sizes, g[0].dtype(), g[0].device());
      z.slice(d, start, end, step).copy_(g[0]);
      return {z};
    });
  }
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  TSE_CHECK(dim() > 0, "narrow: cannot narrow a 0-d tensor");
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = sizes()[d];
  if (start < 0) start += n;
  TSE_CHECK_INDEX(start >= 0 && length >= 0 && start + length <= n, "narrow: start ", start, " + length ", length,
                  " exceeds size ", n, " of dim ", d, " (shape ", shape_str(), ")");
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  TSE_CHECK(dim() > 0, "select: cannot select from a 0-d tensor");
  d = wrap_dim(d, dim(), "select");
  const int64_t n = sizes()[d];
  TSE_CHECK_INDEX(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target) const {
  const int64_t n = dim(), m = static_cast<int64_t>(target.size());
  TSE_CHECK(m >= n, "expand: target ", shape_to_string(target), " has fewer dims than the tensor ", shape_str());
  Shape sz(m), st(m);
  for (int64_t i = m - 1; i >= 0; --i) {
    const int64_t j = i - (m - n);
    const int64_t want = target[i];
    if (j >= 0) {
      const int64_t have = sizes()[j];
      if (want == -1 || want == have) {
        sz[i] = have;
        st[i] = strides()[j];
      } else {
        TSE_CHECK(have == 1 && want >= 0, "expand: cannot expand size ", have, " of dim ", j, " to ", want,
                  " (tensor ", shape_str(), ", target ", shape_to_string(target), ")");
        sz[i] = want;
        st[i] = 0;
      }
    } else {
      TSE_CHECK(want >= 0, "expand: -1 not allowed for the new leading dim ", i);
      sz[i] = want;
      st[i] = 0;
    }
  }
  if (sz == sizes()) return *this;
  Tensor out = make_view(*this, sz, st, storage_offset());
  if (needs_grad({*this})) {
    Shape in_sizes = sizes();
    record("expand", {*this}, {out}, [in_sizes](const Grads& g) -> Grads { return {autograd::sum_to(g[0], in_sizes)}; });
  }
  return out;
}

Tensor Tensor::squeeze() const {
  Shape sz, st;
  for (int64_t i = 0; i < dim(); ++i)
    if (sizes()[i] != 1) {
      sz.push_back(sizes()[i]);
      st.push_back(strides()[i]);
    }
  if (sz.size() == sizes().size()) return *this;
  Tensor out = make_view(*this, sz, st, storage_offset());
  record_reshape_back(*this, out, "squeeze");
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return *this;
  d = wrap_dim(d, dim(), "squeeze");
  if (sizes()[d] != 1) return *this;
  Shape sz = sizes(), st = strides();
  sz.erase(sz.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, sz, st, storage_offset());
  record_reshape_back(*this, out, "squeeze");
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sz = sizes(), st = strides();
  const int64_t s = d < dim() ? sizes()[d] * strides()[d] : 1;
  sz.insert(sz.begin() + d, 1);
  st.insert(st.begin() + d, s);
  Tensor out = make_view(*this, sz, st, storage_offset());
  record_reshape_back(*this, out, "unsqueeze");
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  TSE_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape sz(sizes().begin(), sizes().begin() + start_dim);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= sizes()[i];
  sz.push_back(m);
  sz.insert(sz.end(), sizes().begin() + end_dim + 1, sizes().end());
  return reshape(sz);
}

// ---- autograd ----------------------------------------------------------------------------------

bool Tensor::requires_grad() const {
  const auto& m = checked().autograd;
  return m && m->requires_grad;
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  auto& m = impl_->autograd;
  TSE_CHECK(defined(), "requires_grad_: undefined tensor");
  if (m && m->grad_fn) {
    TSE_CHECK(requires_grad, "requires_grad_: cannot turn off requires_grad of a non-leaf tensor; use detach()");
    return *this;
  }
  TSE_CHECK(!requires_grad || is_floating(dtype()), "requires_grad_: only floating-point tensors can require grad, got ",
            dtype());
  if (!m) m = std::make_shared<autograd::AutogradMeta>();
  m->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  const auto& m = checked().autograd;
  return !m || !m->grad_fn;
}

Tensor Tensor::grad() const {
  const auto& m = checked().autograd;
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
  TSE_CHECK(defined(), "set_grad: undefined tensor");
  if (g.defined())
    TSE_CHECK(g.sizes() == sizes() && g.dtype() == dtype() && g.device() == device(),
              "set_grad: gradient ", g.shape_str(), " ", g.dtype(), " on ", g.device(), " does not match tensor ",
              shape_str(), " ", dtype(), " on ", device());
  auto& m = impl_->autograd;
  if (!m) m = std::make_shared<autograd::AutogradMeta>();
  m->grad = g;
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  const auto& m = checked().autograd;
  return m ? m->grad_fn : nullptr;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward({*this}, grad.defined() ? std::vector<Tensor>{grad} : std::vector<Tensor>{}, retain_graph);
}

// ---- ops as methods ----------------------------------------------------------------------------

Tensor Tensor::add(const Tensor& o) const { return ops::add(*this, o); }
Tensor Tensor::sub(const Tensor& o) const { return ops::sub(*this, o); }
Tensor Tensor::mul(const Tensor& o) const { return ops::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return ops::div(*this, o); }
Tensor Tensor::pow(double e) const { return ops::pow(*this, e); }
Tensor Tensor::neg() const { return ops::neg(*this); }
Tensor Tensor::exp() const { return ops::exp(*this); }
Tensor Tensor::log() const { return ops::log(*this); }
Tensor Tensor::sqrt() const { return ops::sqrt(*this); }
Tensor Tensor::rsqrt() const { return ops::rsqrt(*this); }
Tensor Tensor::abs() const { return ops::abs(*this); }
Tensor Tensor::sin() const { return ops::sin(*this); }
Tensor Tensor::cos() const { return ops::cos(*this); }
Tensor Tensor::tanh() const { return ops::tanh(*this); }
Tensor Tensor::sigmoid() const { return ops::sigmoid(*this); }
Tensor Tensor::relu() const { return ops::relu(*this); }
Tensor Tensor::clamp(double min, double max) const { return ops::clamp(*this, min, max); }
Tensor Tensor::sum() const { return ops::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return ops::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return ops::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return ops::mean(*this, dims, keepdim); }

}  // namespace tse
