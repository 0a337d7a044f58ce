// tse.audio: STFT / iSTFT with torch.stft's keywords, spectral helpers, mel front-ends and the
// resamplers. Kernels run with the GIL released.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

audio::StftOptions stft_options(int64_t n_fft, std::optional<int64_t> hop, std::optional<int64_t> win,
                                const std::string& window, bool center, const std::string& pad_mode) {
  audio::StftOptions o;
  o.n_fft = n_fft;
  o.hop_length = hop.value_or(0);
  o.win_length = win.value_or(0);
  o.window = window;
  o.center = center;
  o.pad_mode = pad_mode;
  return o;
}

audio::ClapLength clap_length(const std::string& s) {
  if (s == "none") return audio::ClapLength::none;
  if (s == "stretch") return audio::ClapLength::stretch;
  if (s == "pad") return audio::ClapLength::pad;
  throw ValueError("clap_logmel: length must be 'none', 'stretch' or 'pad', got '" + s + "'");
}

// Wraps f so that it runs without the GIL.
template <typename R, typename... A>
auto nogil(R (*f)(A...)) {
  return [f](A... a) {
    py::gil_scoped_release release;
    return f(a...);
  };
}

void bind_audio_io(py::module_& a);

}  // namespace

void bind_audio(py::module_& m) {
  auto a = m.def_submodule("audio", "Audio front-end: STFT, mel, resampling.");
  const auto none = py::none();
  a.def("stft", [](const Tensor& x, int64_t n_fft, std::optional<int64_t> hop, std::optional<int64_t> win,
                   const std::string& window, bool center, const std::string& pad_mode) {
          const audio::StftOptions o = stft_options(n_fft, hop, win, window, center, pad_mode);
          py::gil_scoped_release release;
          return audio::stft(x, o);
        }, py::arg("input"), py::arg("n_fft"), py::arg("hop_length") = none, py::arg("win_length") = none,
        py::arg("window") = "hann", py::arg("center") = true, py::arg("pad_mode") = "reflect",
        "(..., L) -> (..., n_fft // 2 + 1, frames, 2) (re, im), as torch.stft(..., return_complex=False) with a "
        "periodic window; hop_length defaults to n_fft // 4, win_length to n_fft.");
  a.def("istft", [](const Tensor& spec, int64_t n_fft, std::optional<int64_t> hop, std::optional<int64_t> win,
                    const std::string& window, bool center, std::optional<int64_t> length) {
          const audio::StftOptions o = stft_options(n_fft, hop, win, window, center, "reflect");
          py::gil_scoped_release release;
          return audio::istft(spec, o, length.value_or(-1));
        }, py::arg("input"), py::arg("n_fft"), py::arg("hop_length") = none, py::arg("win_length") = none,
        py::arg("window") = "hann", py::arg("center") = true, py::arg("length") = none,
        "Inverse of stft: (..., F, frames, 2) -> (..., length), overlap-add divided by the summed squared window.");
  a.def("stft_window", [](int64_t n_fft, std::optional<int64_t> win, const std::string& window,
                          std::optional<DType> dtype) {
          return audio::stft_window(stft_options(n_fft, 1, win, window, true, "reflect"), dtype.value_or(DType::f32));
        }, py::arg("n_fft"), py::arg("win_length") = none, py::arg("window") = "hann", py::arg("dtype") = none,
        "The analysis/synthesis window of stft (periodic), n_fft long with win_length centred.");
  a.def("magnitude", nogil(&audio::magnitude), py::arg("spec"), py::arg("eps") = 0.0,
        "|z| of (..., 2) spectra; eps > 0 gives sqrt(max(re^2 + im^2, eps)).");
  a.def("phasor", nogil(&audio::phasor), py::arg("spec"), py::arg("clamp") = 1e-10,
        "(re, im) / max(|z|, clamp): the unit phasor (cos, sin).");
  a.def("polar", nogil(&audio::polar), py::arg("mag"), py::arg("phasor"), "mag * phasor -> (..., 2).");
  a.def("complex_mul", nogil(&audio::complex_mul), py::arg("a"), py::arg("b"), "Complex product on (..., 2).");
  a.def("mask_apply", nogil(&audio::mask_apply), py::arg("mask"), py::arg("spec"),
        "relu(mask * |spec|) with spec's phase (CLAPSep).");
  a.def("mel_filterbank", [](double sr, int64_t n_fft, int64_t n_mels, double fmin, std::optional<double> fmax,
                             bool htk, const std::string& norm, std::optional<DType> dtype) {
          return audio::mel_filterbank(sr, n_fft, n_mels, fmin, fmax.value_or(-1.0), htk, norm,
                                       dtype.value_or(DType::f32));
        }, py::arg("sr"), py::arg("n_fft"), py::arg("n_mels"), py::arg("fmin") = 0.0, py::arg("fmax") = none,
        py::arg("htk") = false, py::arg("norm") = "slaney", py::arg("dtype") = none,
        "librosa.filters.mel: [n_mels, n_fft // 2 + 1], bit for bit.");
  a.def("power_to_db", [](const Tensor& x, double amin, double ref, std::optional<double> top_db) {
          py::gil_scoped_release release;
          return audio::power_to_db(x, amin, ref, top_db.value_or(-1.0));
        }, py::arg("input"), py::arg("amin") = 1e-10, py::arg("ref") = 1.0, py::arg("top_db") = none,
        "librosa.power_to_db.");
  a.def("log_mel", [](const Tensor& power, const Tensor& fb, double amin, double ref, std::optional<double> top_db) {
          py::gil_scoped_release release;
          return audio::log_mel(power, fb, amin, ref, top_db.value_or(-1.0));
        }, py::arg("power"), py::arg("filterbank"), py::arg("amin") = 1e-10, py::arg("ref") = 1.0,
        py::arg("top_db") = none, "power_to_db(filterbank @ power): (..., F, T) -> (..., n_mels, T).");
  a.def("clap_logmel", [](const Tensor& wave, const std::string& length) {
          const audio::ClapLength l = clap_length(length);
          py::gil_scoped_release release;
          return audio::clap_logmel(wave, l);
        }, py::arg("wave_48k"), py::arg("length") = "none",
        "The HTSAT front-end: 48 kHz (..., L) -> log-mel (..., frames, 64); length 'none', 'stretch' (bicubic to "
        "1024 frames) or 'pad' (power zero-padded to 1024 frames).");
  a.def("resample", nogil(&audio::resample), py::arg("input"), py::arg("orig_sr"), py::arg("new_sr"),
        py::arg("method") = "sinc_hann",
        "Resamples (..., L): 'sinc_hann' = torchaudio's Resample (differentiable), 'soxr_hq' = libsoxr.");
  a.def("sinc_resample_kernel", [](int64_t orig, int64_t new_, std::optional<DType> dtype) {
          return audio::sinc_resample_kernel(orig, new_, dtype.value_or(DType::f32));
        }, py::arg("orig"), py::arg("new"), py::arg("dtype") = none,
        "torchaudio's polyphase kernel (new, taps) for rates already reduced by their gcd.");
  bind_audio_io(a);
}

namespace {

void bind_audio_io(py::module_& a) {
  // Paths may be str or os.PathLike.
  auto fspath = [](const py::object& p) { return py::str(py::module_::import("os").attr("fspath")(p)).cast<std::string>(); };
  a.def("info", [fspath](const py::object& path_like) {
          const audio::AudioInfo i = audio::info(fspath(path_like));
          py::dict d;
          d["sample_rate"] = i.sample_rate;
          d["channels"] = i.channels;
          d["frames"] = i.frames;
          d["format"] = i.format;
          d["subtype"] = i.subtype;
          return d;
        }, py::arg("path"), "The header of an audio file: sample_rate, channels, frames, format, subtype.");
  a.def("load", [fspath](const py::object& path_like, std::optional<int64_t> sr, bool mono) {
          const std::string path = fspath(path_like);
          audio::LoadedAudio l;
          {
            py::gil_scoped_release release;
            l = audio::load(path, sr.value_or(0), mono);
          }
          return py::make_tuple(l.samples, l.sample_rate);
        }, py::arg("path"), py::arg("sr") = py::none(), py::arg("mono") = false,
        "(samples float32 (channels, frames), sample_rate); sr resamples (libsoxr HQ), mono averages channels.");
  a.def("save", [fspath](const py::object& path_like, const Tensor& x, int64_t sr, const std::string& subtype) {
          const std::string path = fspath(path_like);
          py::gil_scoped_release release;
          return audio::save(path, x, sr, subtype);
        }, py::arg("path"), py::arg("x"), py::arg("sr"), py::arg("subtype") = "",
        "Writes (frames) or (channels, frames) atomically; PCM subtypes clip; returns the number of clipped samples.");
  a.def("mix_at_snr", [](const Tensor& target, const Tensor& noise, double snr_db, bool peak_normalize) {
          audio::Mixture m;
          {
            py::gil_scoped_release release;
            m = audio::mix_at_snr(target, noise, snr_db, peak_normalize);
          }
          return py::make_tuple(m.mixture, m.target, m.noise, m.gain);
        }, py::arg("target"), py::arg("noise"), py::arg("snr_db"), py::arg("peak_normalize") = true,
        "(mixture, target, noise, gain): noise scaled to snr_db (DCASE recipe), peaks above 1 normalised to 0.9.");
  a.def("pad_or_trim", nogil(&audio::pad_or_trim), py::arg("input"), py::arg("length"),
        "(..., L) cut or zero-padded at the end to length.");
  a.def("random_segment", nogil(&audio::random_segment), py::arg("input"), py::arg("length"),
        "A random length-sample segment of (..., L) (global generator; zero-padded when shorter).");
}

}  // namespace

}  // namespace tse::python
