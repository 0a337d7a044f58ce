// Tensor factories and host <-> vector conversion.
#include "tse/ops/factory.hpp"

#include <cmath>

#include "src/cpu/dtype_dispatch.hpp"
#include "src/cpu/elementwise.hpp"
#include "tse/ops/elementwise.hpp"

namespace tse::ops {

Tensor empty(const Shape& sizes, DType dtype, Device device) { return Tensor::empty(sizes, dtype, device); }

Tensor full(const Shape& sizes, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(sizes, dtype, device);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& sizes, DType dtype, Device device) { return full(sizes, 0.0, dtype, device); }
Tensor ones(const Shape& sizes, DType dtype, Device device) { return full(sizes, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& x) { return zeros(x.sizes(), x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return ones(x.sizes(), x.dtype(), x.device()); }
Tensor full_like(const Tensor& x, double value) { return full(x.sizes(), value, x.dtype(), x.device()); }
Tensor empty_like(const Tensor& x) { return empty(x.sizes(), x.dtype(), x.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

namespace {
// Values are computed in double on the host and converted once: exact for integers, and the
// same rounding as numpy for floats.
Tensor from_doubles(const std::vector<double>& v, const Shape& sizes, DType dtype, Device device) {
  Tensor host = Tensor::empty(sizes, dtype, Device::cpu());
  cpu::dispatch_all(dtype, "tensor", [&]<typename T>() {
    T* p = static_cast<T*>(host.data_ptr());
    for (size_t i = 0; i < v.size(); ++i) p[i] = cpu::convert<T>(v[i]);
  });
  return host.to(device);
}
}  // namespace

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  TSE_CHECK(step != 0.0 && std::isfinite(step), "arange: step must be finite and nonzero, got ", step);
  TSE_CHECK(std::isfinite(start) && std::isfinite(end), "arange: start and end must be finite");
  const double n = std::ceil((end - start) / step);
  TSE_CHECK(n < 1e12, "arange: too many elements (", n, ")");
  const int64_t count = n > 0 ? static_cast<int64_t>(n) : 0;
  std::vector<double> v(count);
  for (int64_t i = 0; i < count; ++i) v[i] = start + static_cast<double>(i) * step;
  return from_doubles(v, {count}, dtype, device);
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  TSE_CHECK(steps >= 0, "linspace: steps must be >= 0, got ", steps);
  std::vector<double> v(steps);
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  // Symmetric evaluation from both ends (as PyTorch) keeps the last value exactly end.
  const int64_t half = steps / 2;
  for (int64_t i = 0; i < steps; ++i)
    v[i] = i < half ? start + step * static_cast<double>(i) : end - step * static_cast<double>(steps - 1 - i);
  return from_doubles(v, {steps}, dtype, device);
}

Tensor eye(int64_t n, DType dtype, Device device) {
  TSE_CHECK(n >= 0, "eye: n must be >= 0, got ", n);
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  return from_doubles(v, {n, n}, dtype, device);
}

Tensor from_vector(const std::vector<double>& data, const Shape& sizes, DType dtype) {
  TSE_CHECK(static_cast<int64_t>(data.size()) == shape_numel(sizes), "from_vector: ", data.size(),
            " values do not fill shape ", shape_to_string(sizes));
  return from_doubles(data, sizes, dtype, Device::cpu());
}

Tensor from_vector(const std::vector<float>& data, const Shape& sizes) {
  return from_vector(std::vector<double>(data.begin(), data.end()), sizes, DType::f32);
}

Tensor from_vector(const std::vector<int64_t>& data, const Shape& sizes) {
  return from_vector(std::vector<double>(data.begin(), data.end()), sizes, DType::i64);
}

std::vector<double> to_vector(const Tensor& x) {
  const Tensor h = x.device().is_cpu() ? x : x.detach().to(Device::cpu());
  Tensor c = Tensor::empty(h.sizes(), h.dtype(), Device::cpu());
  cpu::copy(c, h);
  std::vector<double> v(static_cast<size_t>(c.numel()));
  cpu::dispatch_all(c.dtype(), "to_vector", [&]<typename T>() {
    const T* p = static_cast<const T*>(c.data_ptr());
    for (size_t i = 0; i < v.size(); ++i) v[i] = cpu::convert<double>(p[i]);
  });
  return v;
}

}  // namespace tse::ops
