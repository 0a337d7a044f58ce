// Separation metrics: snr and si_sdr composed from differentiable ops (so they serve as losses),
// sdr_bss as a float64 kernel (correlations by FFTW, the Toeplitz solve by Eigen).
#include "tse/metrics/metrics.hpp"

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <vector>

#include "src/core/parallel.hpp"
#include "src/cpu/fft.hpp"
#include "src/ops/op_utils.hpp"
#include "tse/core/storage.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse::metrics {
namespace {

constexpr double kFloat32Eps = 1.1920928955078125e-07;

/// Checks a metric's (estimate, reference) pair: defined, floating, same dtype, device and shape.
void check_pair(const Tensor& est, const Tensor& ref, const char* op) {
  ops::detail::check_defined(est, op, "estimate");
  ops::detail::check_defined(ref, op, "reference");
  ops::detail::check_floating(est, op, "estimate");
  ops::detail::check_floating(ref, op, "reference");
  ops::detail::check_same_device(est, ref, op);
  TSE_CHECK(est.dtype() == ref.dtype(), op, ": dtype mismatch: 'estimate' is ", est.dtype(), ", 'reference' is ",
            ref.dtype());
  TSE_CHECK(est.sizes() == ref.sizes(), op, ": 'estimate' ", est.shape_str(), " and 'reference' ", ref.shape_str(),
            " must have the same shape (..., samples)");
  TSE_CHECK(est.dim() >= 1 && est.size(est.dim() - 1) > 0, op, ": signals must be (..., samples) with samples > 0, got ",
            est.shape_str());
}

double dtype_eps(DType d) {
  return d == DType::f64 ? std::numeric_limits<double>::epsilon() : static_cast<double>(std::numeric_limits<float>::epsilon());
}

/// 10 log10(x), differentiable.
Tensor db(const Tensor& x) { return ops::mul(ops::log10(x), 10.0); }

Tensor sum_last(const Tensor& x) { return ops::sum(x, {x.dim() - 1}); }

Tensor remove_mean(const Tensor& x) { return ops::sub(x, ops::mean(x, {x.dim() - 1}, true)); }

/// One item of sdr_bss in float64: t and p are the reference and estimate, L samples each.
double sdr_bss_item(const double* t_in, const double* p_in, int64_t L, int64_t filt, bool zero_mean,
                    double load_diag) {
  std::vector<double> t(t_in, t_in + L), p(p_in, p_in + L);
  auto centre_and_normalise = [&](std::vector<double>& v) {
    if (zero_mean) {
      double m = 0;
      for (double x : v) m += x;
      m /= static_cast<double>(L);
      for (double& x : v) x -= m;
    }
    double nrm = 0;
    for (double x : v) nrm += x * x;
    nrm = std::max(std::sqrt(nrm), 1e-6);
    for (double& x : v) x /= nrm;
  };
  centre_and_normalise(t);
  centre_and_normalise(p);
  // Auto- and cross-correlation for lags 0..filt-1 by zero-padded FFTs (no circular wrap).
  int64_t n = 1;
  while (n < L + filt - 1) n *= 2;
  const int64_t F = n / 2 + 1;
  Storage buf_t(static_cast<size_t>(n) * sizeof(double), Device::cpu()), buf_p(static_cast<size_t>(n) * sizeof(double), Device::cpu());
  Storage spec_t(static_cast<size_t>(F) * 2 * sizeof(double), Device::cpu()), spec_p(static_cast<size_t>(F) * 2 * sizeof(double), Device::cpu());
  double* bt = static_cast<double*>(buf_t.data());
  double* bp = static_cast<double*>(buf_p.data());
  std::fill(bt, bt + n, 0.0);
  std::fill(bp, bp + n, 0.0);
  std::copy(t.begin(), t.end(), bt);
  std::copy(p.begin(), p.end(), bp);
  double* st = static_cast<double*>(spec_t.data());
  double* sp = static_cast<double*>(spec_p.data());
  cpu::fft::rfft_rows(DType::f64, n, 1, bt, st);
  cpu::fft::rfft_rows(DType::f64, n, 1, bp, sp);
  // |T|^2 into spec_p's partner buffer, conj(T) P into spec_p.
  Storage spec_r(static_cast<size_t>(F) * 2 * sizeof(double), Device::cpu());
  double* sr = static_cast<double*>(spec_r.data());
  for (int64_t k = 0; k < F; ++k) {
    const double tr = st[2 * k], ti = st[2 * k + 1], pr = sp[2 * k], pi = sp[2 * k + 1];
    sr[2 * k] = tr * tr + ti * ti;
    sr[2 * k + 1] = 0.0;
    sp[2 * k] = tr * pr + ti * pi;
    sp[2 * k + 1] = tr * pi - ti * pr;
  }
  cpu::fft::irfft_rows(DType::f64, n, 1, sr, bt);  // bt = n * autocorrelation
  cpu::fft::irfft_rows(DType::f64, n, 1, sp, bp);  // bp = n * cross-correlation
  const double inv_n = 1.0 / static_cast<double>(n);
  Eigen::MatrixXd R(filt, filt);
  Eigen::VectorXd b(filt);
  for (int64_t i = 0; i < filt; ++i) {
    b(i) = bp[i] * inv_n;
    for (int64_t j = 0; j < filt; ++j) R(i, j) = bt[std::abs(i - j)] * inv_n;
    R(i, i) += load_diag;
  }
  // R is a (semi-definite) autocorrelation matrix: LDLT with pivoting, which also gives the
  // minimum-norm-like answer 0 on null directions (a silent reference).
  const Eigen::VectorXd sol = R.ldlt().solve(b);
  const double coh = b.dot(sol);
  // The coherence lies in [0, 1]; keeping both sides off 0 bounds the result to +-200 dB
  // instead of +-inf for silent or perfect estimates.
  constexpr double kTiny = 1e-20;
  return 10.0 * std::log10(std::max(coh, kTiny) / std::max(1.0 - coh, kTiny));
}

}  // namespace

Tensor snr(const Tensor& estimate, const Tensor& reference, double eps, double clamp) {
  check_pair(estimate, reference, "snr");
  TSE_CHECK(clamp >= 0, "snr: clamp must be >= 0, got ", clamp);
  const Tensor noise = ops::sub(reference, estimate);
  if (clamp > 0) {
    const Tensor ps = ops::clamp_min(ops::mean(reference * reference, {reference.dim() - 1}), clamp);
    const Tensor pn = ops::clamp_min(ops::mean(noise * noise, {noise.dim() - 1}), clamp);
    return db(ops::div(ps, pn));
  }
  const double e = eps < 0 ? dtype_eps(estimate.dtype()) : eps;
  return db(ops::div(ops::add(sum_last(reference * reference), e), ops::add(sum_last(noise * noise), e)));
}

Tensor si_sdr(const Tensor& estimate, const Tensor& reference, bool zero_mean, double eps) {
  check_pair(estimate, reference, "si_sdr");
  const double e = eps < 0 ? dtype_eps(estimate.dtype()) : eps;
  const Tensor s_hat = zero_mean ? remove_mean(estimate) : estimate;
  const Tensor s = zero_mean ? remove_mean(reference) : reference;
  const Tensor alpha = ops::div(ops::add(sum_last(s_hat * s), e), ops::add(sum_last(s * s), e));
  const Tensor target = ops::mul(alpha.unsqueeze(alpha.dim()), s);
  const Tensor noise = ops::sub(target, s_hat);
  return db(ops::div(ops::add(sum_last(target * target), e), ops::add(sum_last(noise * noise), e)));
}

Tensor sdr_bss(const Tensor& estimate, const Tensor& reference, int64_t filter_length, bool zero_mean,
               double load_diag) {
  check_pair(estimate, reference, "sdr_bss");
  TSE_CHECK(filter_length >= 1, "sdr_bss: filter_length must be >= 1, got ", filter_length);
  TSE_CHECK(load_diag >= 0, "sdr_bss: load_diag must be >= 0, got ", load_diag);
  TSE_CHECK(estimate.device().is_cpu(), "sdr_bss: only CPU tensors are supported yet, got ", estimate.device());
  const int64_t L = estimate.size(estimate.dim() - 1);
  const Shape lead(estimate.sizes().begin(), estimate.sizes().end() - 1);
  const int64_t B = shape_numel(lead);
  const Tensor p = estimate.detach().to(DType::f64).contiguous(), t = reference.detach().to(DType::f64).contiguous();
  std::vector<double> out(static_cast<size_t>(B));
  tse::detail::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      out[static_cast<size_t>(b)] = sdr_bss_item(t.data<double>() + b * L, p.data<double>() + b * L, L,
                                                 filter_length, zero_mean, load_diag);
  });
  return ops::from_vector(out, lead, estimate.dtype());
}

Tensor snri(const Tensor& estimate, const Tensor& reference, const Tensor& mixture) {
  check_pair(mixture, reference, "snri");
  return ops::sub(snr(estimate, reference), snr(mixture, reference));
}

Tensor si_sdri(const Tensor& estimate, const Tensor& reference, const Tensor& mixture) {
  check_pair(mixture, reference, "si_sdri");
  return ops::sub(si_sdr(estimate, reference), si_sdr(mixture, reference));
}

Tensor sdri_bss(const Tensor& estimate, const Tensor& reference, const Tensor& mixture) {
  check_pair(mixture, reference, "sdri_bss");
  return ops::sub(sdr_bss(estimate, reference), sdr_bss(mixture, reference));
}

Tensor clapsep_loss(const Tensor& estimate, const Tensor& reference) {
  const Tensor s = snr(estimate, reference, kFloat32Eps);
  const Tensor si = si_sdr(estimate, reference, true, kFloat32Eps);
  return ops::mean(ops::sub(ops::mul(s, -0.9), ops::mul(si, 0.1)));
}

Tensor neg_si_sdr(const Tensor& estimate, const Tensor& reference, bool zero_mean, double eps) {
  return ops::neg(ops::mean(si_sdr(estimate, reference, zero_mean, eps)));
}

}  // namespace tse::metrics
