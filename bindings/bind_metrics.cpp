// tse.metrics: separation metrics and losses, (estimate, reference[, mixture]) like the C++ API.
#include "bindings/common.hpp"

namespace tse::python {

void bind_metrics(py::module_& m) {
  auto mt = m.def_submodule("metrics", "Separation metrics and losses (estimate, reference[, mixture]).");
  const auto none = py::none();
  mt.def("snr", [](const Tensor& est, const Tensor& ref, std::optional<double> eps, std::optional<double> clamp) {
           py::gil_scoped_release release;
           return metrics::snr(est, ref, eps.value_or(-1.0), clamp.value_or(0.0));
         }, py::arg("estimate"), py::arg("reference"), py::arg("eps") = none, py::arg("clamp") = none,
         "Plain SNR in dB: 10 log10((sum s^2 + eps) / (sum (s - est)^2 + eps)), eps = the dtype's machine "
         "epsilon; clamp=1e-10 gives AudioSep's / DCASE's 'SDR' (clamped means).");
  mt.def("si_sdr", [](const Tensor& est, const Tensor& ref, bool zero_mean, std::optional<double> eps) {
           py::gil_scoped_release release;
           return metrics::si_sdr(est, ref, zero_mean, eps.value_or(-1.0));
         }, py::arg("estimate"), py::arg("reference"), py::arg("zero_mean") = false, py::arg("eps") = none,
         "Scale-invariant SDR in dB (torchmetrics' defaults).");
  mt.def("sdr_bss", [](const Tensor& est, const Tensor& ref, int64_t filter_length, bool zero_mean, double load_diag) {
           py::gil_scoped_release release;
           return metrics::sdr_bss(est, ref, filter_length, zero_mean, load_diag);
         }, py::arg("estimate"), py::arg("reference"), py::arg("filter_length") = 512, py::arg("zero_mean") = false,
         py::arg("load_diag") = 0.0, "BSS-eval SDR with a distortion filter (torchmetrics / fast_bss_eval); not "
         "differentiable.");
  auto improvement = [&](const char* name, Tensor (*f)(const Tensor&, const Tensor&, const Tensor&), const char* doc) {
    mt.def(name, [f](const Tensor& est, const Tensor& ref, const Tensor& mix) {
             py::gil_scoped_release release;
             return f(est, ref, mix);
           }, py::arg("estimate"), py::arg("reference"), py::arg("mixture"), doc);
  };
  improvement("snri", &metrics::snri, "snr(estimate, reference) - snr(mixture, reference).");
  improvement("si_sdri", &metrics::si_sdri, "si_sdr(estimate, reference) - si_sdr(mixture, reference).");
  improvement("sdri_bss", &metrics::sdri_bss, "sdr_bss(estimate, reference) - sdr_bss(mixture, reference).");
  mt.def("clapsep_loss", [](const Tensor& est, const Tensor& ref) {
           py::gil_scoped_release release;
           return metrics::clapsep_loss(est, ref);
         }, py::arg("estimate"), py::arg("reference"),
         "CLAPSep's loss: batch mean of -0.9 snr - 0.1 si_sdr(zero_mean=True), eps 1.19e-7.");
  mt.def("neg_si_sdr", [](const Tensor& est, const Tensor& ref, bool zero_mean, std::optional<double> eps) {
           py::gil_scoped_release release;
           return metrics::neg_si_sdr(est, ref, zero_mean, eps.value_or(-1.0));
         }, py::arg("estimate"), py::arg("reference"), py::arg("zero_mean") = false, py::arg("eps") = none,
         "Batch mean of -si_sdr.");
}

}  // namespace tse::python
