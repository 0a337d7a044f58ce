#pragma once
/// \file loss.hpp
/// The separation losses as modules (torch.nn-style loss objects over tse::metrics): forward(
/// estimate, reference) -> a scalar, differentiable in the estimate. Both take (B, L) or (L).
#include "tse/nn/module.hpp"

namespace tse::nn {

/// CLAPSep's training loss: batch mean of -0.9 SNR - 0.1 SI-SNR (zero mean), eps = float32
/// epsilon (metrics::clapsep_loss).
class TSE_API CLAPSepLoss : public Module {
 public:
  std::string type_name() const override { return "CLAPSepLoss"; }
  Tensor forward(const Tensor& estimate, const Tensor& reference) const;
  Tensor operator()(const Tensor& estimate, const Tensor& reference) const { return forward(estimate, reference); }
};

/// Negative SI-SDR averaged over the batch (Saijo et al., ESPnet recipes); zero_mean and eps as
/// metrics::si_sdr (eps < 0: the dtype's machine epsilon).
class TSE_API NegSISDR : public Module {
 public:
  explicit NegSISDR(bool zero_mean = false, double eps = -1.0) : zero_mean(zero_mean), eps(eps) {}
  std::string type_name() const override { return "NegSISDR"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& estimate, const Tensor& reference) const;
  Tensor operator()(const Tensor& estimate, const Tensor& reference) const { return forward(estimate, reference); }
  bool zero_mean;
  double eps;
};

}  // namespace tse::nn
