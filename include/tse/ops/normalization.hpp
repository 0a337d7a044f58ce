#pragma once
/// \file normalization.hpp
/// Normalization layers: layer_norm, group_norm and batch_norm, with the semantics of
/// torch.nn.functional's functions of the same names. float32 or float64 on CPU; input, weight
/// and bias share one dtype. Each is differentiable in input, weight and bias; the statistics the
/// backward needs (per-group mean and biased variance) are kept inside the tape node, only the
/// output is returned. Non-contiguous inputs are copied to contiguous memory first.
///
/// Every group is normalised as y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased
/// (population) variance. weight and bias are optional: an undefined Tensor means 1 and 0.
#include "tse/core/tensor.hpp"

namespace tse::ops {

/// torch.nn.functional.layer_norm: normalises over the trailing dims of x given by
/// normalized_shape (1 <= its length <= x.dim(), equal to x's trailing sizes), one mean and
/// variance per leading index. weight and bias, when given, have shape normalized_shape and are
/// applied elementwise. ValueError naming both shapes when normalized_shape does not match.
TSE_API Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                          const Tensor& bias = Tensor(), double eps = 1e-5);

/// torch.nn.functional.group_norm: x (N, C, *) with C channels split into num_groups groups of
/// C / num_groups consecutive channels; each (sample, group) is normalised over its channels and
/// all trailing dims. weight and bias, when given, have shape (C) and are applied per channel.
/// ValueError when C % num_groups != 0 or num_groups <= 0.
TSE_API Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(),
                          const Tensor& bias = Tensor(), double eps = 1e-5);

/// torch.nn.functional.batch_norm: x (N, C, *) (e.g. (N, C), (N, C, L), (N, C, H, W)),
/// normalised per channel over the batch and trailing dims.
/// - training: uses the batch mean and biased variance. When running_mean and running_var (C)
///   are given they are updated in place, outside autograd, as
///   running = (1 - momentum) * running + momentum * batch_stat, with the unbiased batch variance
///   for running_var; their version counters advance, so a tape that saved them sees the change.
///   ValueError when a channel has a single value (N * spatial == 1), as torch.
///   The gradient differentiates through the batch statistics.
/// - eval (training = false): uses running_mean and running_var, which are then required; the
///   gradient is that of the per-channel affine map.
/// running_mean and running_var are both given or both undefined; they receive no gradient.
/// An empty input gives an empty output and leaves the running statistics unchanged.
TSE_API Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                          const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                          double momentum = 0.1, double eps = 1e-5);

}  // namespace tse::ops
