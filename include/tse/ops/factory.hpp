#pragma once
// Tensor factories.
#include <initializer_list>
#include <vector>

#include "tse/core/tensor.hpp"

namespace tse::ops {

TSE_API Tensor empty(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());
TSE_API Tensor zeros(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());
TSE_API Tensor ones(const Shape& sizes, DType dtype = DType::f32, Device device = Device::cpu());
TSE_API Tensor full(const Shape& sizes, double value, DType dtype = DType::f32, Device device = Device::cpu());
TSE_API Tensor zeros_like(const Tensor& x);
TSE_API Tensor ones_like(const Tensor& x);
TSE_API Tensor full_like(const Tensor& x, double value);
TSE_API Tensor empty_like(const Tensor& x);
/// 0-dim tensor holding value.
TSE_API Tensor scalar_tensor(double value, DType dtype = DType::f32, Device device = Device::cpu());
/// [start, start + step, ...) below end (above end for negative step).
TSE_API Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32,
                      Device device = Device::cpu());
inline Tensor arange(double end, DType dtype = DType::f32) { return arange(0.0, end, 1.0, dtype); }
/// steps values from start to end inclusive.
TSE_API Tensor linspace(double start, double end, int64_t steps, DType dtype = DType::f32,
                        Device device = Device::cpu());
TSE_API Tensor eye(int64_t n, DType dtype = DType::f32, Device device = Device::cpu());
/// A tensor holding a copy of data with the given sizes (numel must match).
TSE_API Tensor from_vector(const std::vector<double>& data, const Shape& sizes, DType dtype = DType::f32);
TSE_API Tensor from_vector(const std::vector<float>& data, const Shape& sizes);
TSE_API Tensor from_vector(const std::vector<int64_t>& data, const Shape& sizes);
/// The values of x converted to double (any dtype, any strides, CPU or copied from GPU).
TSE_API std::vector<double> to_vector(const Tensor& x);

}  // namespace tse::ops
