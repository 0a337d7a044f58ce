#pragma once
// Internal kernel interface of the normalization family (layer_norm, group_norm, batch_norm).
// The op layer has checked the arguments, made every tensor contiguous, allocated the outputs and
// flattened the input to the 2-D or 3-D view the kernel expects; all tensors share one floating
// dtype. The statistics layout is oneDNN's for every dtype: the mean and the biased variance of
// each normalised group (1 / sqrt(var + eps) is recomputed where needed).
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse {
namespace detail {

/// The tensors of one normalization forward. y has x's shape; weight and bias are undefined (1
/// and 0) or per-channel vectors; mean and var hold one value per group, or are both undefined
/// when no backward will need them (batch norm in eval mode reads them instead).
struct NormForward {
  Tensor y, mean, var;
  Tensor x, weight, bias;
  double eps = 1e-5;
};

/// The tensors of one normalization backward: dx (always defined, x's shape) and dweight, dbias
/// (undefined where not wanted) from dy, the forward's x, statistics and weight.
struct NormBackward {
  Tensor dx, dweight, dbias;
  Tensor dy, x, mean, var, weight;
  double eps = 1e-5;
};

/// x (R, D): each row normalised, weight and bias (D) applied elementwise; mean, var (R).
using LayerNormForwardFn = void(const NormForward& a);
using LayerNormBackwardFn = void(const NormBackward& a);

/// x (N, C, S), groups | C: each sample's block of C / groups consecutive channels times S is
/// normalised; weight and bias (C) per channel; mean, var (N, groups) flattened.
using GroupNormForwardFn = void(const NormForward& a, int64_t groups);
using GroupNormBackwardFn = void(const NormBackward& a, int64_t groups);

/// x (N, C, S): each channel normalised over N and S; weight, bias, mean and var (C).
/// training: writes the batch statistics to mean and var (both defined) and the backward
/// differentiates through them; eval: reads mean and var (the running statistics) and the
/// backward is the affine map's.
using BatchNormForwardFn = void(const NormForward& a, bool training);
using BatchNormBackwardFn = void(const NormBackward& a, bool training);

}  // namespace detail

namespace cpu {
using namespace detail;
/// float32 layer_norm through oneDNN's layer normalization primitive (cached per problem);
/// everything else (float64, group_norm, batch_norm) through the plain loops of
/// normalization.cpp, which beat oneDNN 2.6's batch normalization on plain nchw data.
LayerNormForwardFn layer_norm_forward;
LayerNormBackwardFn layer_norm_backward;
GroupNormForwardFn group_norm_forward;
GroupNormBackwardFn group_norm_backward;
BatchNormForwardFn batch_norm_forward;
BatchNormBackwardFn batch_norm_backward;
}  // namespace cpu

namespace cuda {
using namespace detail;
/// One block per row, f32 accumulated in double (src/cuda/normalization.cu).
LayerNormForwardFn layer_norm_forward;
LayerNormBackwardFn layer_norm_backward;
}  // namespace cuda

}  // namespace tse
