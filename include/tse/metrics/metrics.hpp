#pragma once
/// \file metrics.hpp
/// Separation metrics and losses. Arguments are (estimate, reference[, mixture]) in that order,
/// signals (..., L) batched over the leading dims, results (...) in dB. The names say which
/// definition is meant, because codebases disagree (USERS.md s.4.1, MODELS.md B s.7.1):
///   snr      the plain signal-to-noise ratio, called "SDR" by AudioSep and DCASE, and the SNR
///            of CLAPSep's training loss;
///   si_sdr   scale-invariant SDR (torchmetrics' defaults: no mean removal, eps of the dtype);
///   sdr_bss  BSS-eval SDR with a 512-tap distortion filter (torchmetrics / fast_bss_eval), the
///            "SDR" of CLAPSep's code.
/// Silent references never divide by zero (the eps terms), and give finite values.
#include <cstdint>

#include "tse/core/tensor.hpp"

namespace tse::metrics {

/// 10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps)) (torchmetrics' signal_noise_ratio;
/// eps < 0: the machine epsilon of the dtype). With clamp > 0 instead AudioSep's and DCASE's
/// form: 10 log10(max(mean s^2, clamp) / max(mean (s - s_hat)^2, clamp)) (their clamp is 1e-10).
/// Differentiable.
TSE_API Tensor snr(const Tensor& estimate, const Tensor& reference, double eps = -1.0, double clamp = 0.0);

/// alpha = (<s_hat, s> + eps) / (<s, s> + eps); 10 log10((|alpha s|^2 + eps) / (|alpha s - s_hat|^2
/// + eps)), after removing both means when zero_mean (eps < 0: the dtype's machine epsilon).
/// Differentiable.
TSE_API Tensor si_sdr(const Tensor& estimate, const Tensor& reference, bool zero_mean = false, double eps = -1.0);

/// BSS-eval SDR (torchmetrics.functional.signal_distortion_ratio, = fast_bss_eval.sdr for one
/// source): in float64, both signals scaled to unit norm (floor 1e-6), the optimal
/// filter_length-tap distortion filter from the Toeplitz system of the reference's
/// autocorrelation (+ load_diag on its diagonal), coherence c, 10 log10(c / (1 - c)). Returned
/// in the input dtype; not differentiable.
TSE_API Tensor sdr_bss(const Tensor& estimate, const Tensor& reference, int64_t filter_length = 512,
                       bool zero_mean = false, double load_diag = 0.0);

/// Improvements over the mixture: metric(estimate, reference) - metric(mixture, reference).
TSE_API Tensor snri(const Tensor& estimate, const Tensor& reference, const Tensor& mixture);
TSE_API Tensor si_sdri(const Tensor& estimate, const Tensor& reference, const Tensor& mixture);
TSE_API Tensor sdri_bss(const Tensor& estimate, const Tensor& reference, const Tensor& mixture);

/// CLAPSep's training loss, batch mean of -0.9 snr - 0.1 si_sdr(zero_mean = true), both with
/// eps = float32's machine epsilon (1.19e-7) whatever the dtype, as in the official code.
TSE_API Tensor clapsep_loss(const Tensor& estimate, const Tensor& reference);

/// Negative SI-SDR averaged over the batch: the loss of Saijo et al. and ESPnet-style recipes.
TSE_API Tensor neg_si_sdr(const Tensor& estimate, const Tensor& reference, bool zero_mean = false, double eps = -1.0);

}  // namespace tse::metrics
