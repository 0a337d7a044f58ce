#pragma once
// Calls f.template operator()<T>() for the C++ type of a runtime dtype, or throws ValueError
// naming op and the dtype. Use with C++20 template lambdas: [&]<typename T>() { ... }.
#include "tse/core/dtype.hpp"

namespace tse::cpu {

template <typename F>
void dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f.template operator()<float>(); return;
    case DType::f64: f.template operator()<double>(); return;
    default:
      throw ValueError(detail::str_cat(op, ": unsupported dtype ", t, " on cpu (expected float32 or float64)"));
  }
}

template <typename F>
void dispatch_numeric(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f.template operator()<float>(); return;
    case DType::f64: f.template operator()<double>(); return;
    case DType::i32: f.template operator()<int32_t>(); return;
    case DType::i64: f.template operator()<int64_t>(); return;
    default:
      throw ValueError(
          detail::str_cat(op, ": unsupported dtype ", t, " on cpu (expected float32, float64, int32 or int64)"));
  }
}

template <typename F>
void dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f.template operator()<float>(); return;
    case DType::f64: f.template operator()<double>(); return;
    case DType::i32: f.template operator()<int32_t>(); return;
    case DType::i64: f.template operator()<int64_t>(); return;
    case DType::b8: f.template operator()<bool>(); return;
    case DType::f16: f.template operator()<Half>(); return;
    case DType::bf16: f.template operator()<BFloat16>(); return;
  }
  throw ValueError(detail::str_cat(op, ": unsupported dtype ", t));
}

/// Scalar conversion usable for every storage type (Half/BFloat16 go through float).
template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace tse::cpu
