#include "tse/nn/loss.hpp"

#include <sstream>

#include "tse/metrics/metrics.hpp"

namespace tse::nn {

Tensor CLAPSepLoss::forward(const Tensor& estimate, const Tensor& reference) const {
  return metrics::clapsep_loss(estimate, reference);
}

std::string NegSISDR::extra_repr() const {
  std::ostringstream os;
  os << "zero_mean=" << (zero_mean ? "True" : "False") << ", eps=" << eps;
  return os.str();
}

Tensor NegSISDR::forward(const Tensor& estimate, const Tensor& reference) const {
  return metrics::neg_si_sdr(estimate, reference, zero_mean, eps);
}

}  // namespace tse::nn
