#pragma once
// CUDA status -> tse::BackendError with the call and the code in the message.
#include <cuda_runtime.h>

#include "tse/core/error.hpp"

#define TSE_CUDA_CHECK(call)                                                                          \
  do {                                                                                                \
    cudaError_t tse_err_ = (call);                                                                    \
    if (tse_err_ != cudaSuccess) {                                                                    \
      throw ::tse::BackendError(::tse::detail::str_cat(#call, " failed: ", cudaGetErrorName(tse_err_), \
                                                       " (", static_cast<int>(tse_err_), "): ",        \
                                                       cudaGetErrorString(tse_err_)));                \
    }                                                                                                 \
  } while (0)
