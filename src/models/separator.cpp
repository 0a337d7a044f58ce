#include "tse/models/separator.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tse/audio/io.hpp"
#include "tse/audio/resample.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/models/clapsep.hpp"
#include "tse/models/conformer_tse.hpp"
#include "tse/models/query_encoder.hpp"
#include "tse/ops/factory.hpp"

namespace tse::models {

void Separator::save(const std::string& path, const std::map<std::string, std::string>& extra_metadata) const {
  auto meta = metadata();
  for (const auto& [k, v] : extra_metadata) {
    TSE_CHECK(!meta.count(k), type_name(), ".save: extra_metadata must not override \"", k, "\"");
    meta[k] = v;
  }
  io::save_safetensors(path, state_dict(), meta);
}

Tensor Separator::forward_in_eval(const Tensor& mixture, const Tensor& query) {
  const bool was_training = is_training();
  eval();
  autograd::NoGradGuard no_grad;
  Tensor out;
  try {
    out = forward(mixture.dim() == 1 ? mixture.unsqueeze(0) : mixture, query.dim() == 1 ? query.unsqueeze(0) : query);
  } catch (...) {
    train(was_training);
    throw;
  }
  train(was_training);
  return mixture.dim() == 1 ? out.squeeze(0) : out;
}

ModelFile read_model_file(const std::string& path, const std::string& model_type, const std::string& format_version) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  ModelFile out;
  out.metadata = file.metadata();
  auto field = [&](const char* key) -> const std::string& {
    auto it = out.metadata.find(key);
    TSE_CHECK(it != out.metadata.end(), model_type, ".load: '", path, "' has no \"", key, "\" metadata (not written by ",
              model_type, ".save?)");
    return it->second;
  };
  TSE_CHECK(field("model_type") == model_type, model_type, ".load: '", path, "' holds a ", field("model_type"), ", not a ",
            model_type);
  TSE_CHECK(field("format_version") == format_version, model_type, ".load: '", path, "' has format version ",
            field("format_version"), "; this libtse reads version ", format_version);
  out.config = field("config");
  for (const auto& name : file.names()) out.state.emplace_back(name, file.tensor(name, /*half_to_f32=*/true));
  return out;
}

LoadedSeparator load_separator(const std::string& path, DType dtype) {
  LoadedSeparator out;
  out.metadata = io::load_safetensors_metadata(path);
  auto type = out.metadata.find("model_type");
  TSE_CHECK(type != out.metadata.end(), "load_separator: '", path,
            "' has no \"model_type\" metadata: it was not written by a libtse model's save()");
  if (type->second == "ConformerTSE") {
    out.model = ConformerTSE::load(path, dtype);
  } else if (type->second == "CLAPSep") {
    out.model = CLAPSep::load(path, dtype);
  } else {
    throw ValueError("load_separator: '" + path + "' holds a \"" + type->second +
                     "\" model, which this libtse cannot load (known: \"ConformerTSE\", \"CLAPSep\")");
  }
  if (auto q = out.metadata.find("query_encoder"); q != out.metadata.end())
    out.queries = QueryEncoder::from_json(q->second);
  return out;
}

Tensor separate_chunked(Separator& model, const Tensor& mixture, const Tensor& query, const ChunkOptions& o,
                        const ProgressCallback& progress) {
  TSE_CHECK(mixture.defined() && (mixture.dim() == 1 || mixture.dim() == 2),
            "separate_chunked: mixture must be (L) or (B, L), got ", mixture.defined() ? mixture.shape_str() : "undefined");
  TSE_CHECK(is_floating(mixture.dtype()), "separate_chunked: mixture must be floating point, got ", mixture.dtype());
  TSE_CHECK(std::isfinite(o.window_seconds) && o.window_seconds > 0, "separate_chunked: window_seconds must be positive, got ",
            o.window_seconds);
  TSE_CHECK(std::isfinite(o.overlap_seconds) && o.overlap_seconds >= 0 && o.overlap_seconds < o.window_seconds,
            "separate_chunked: overlap_seconds must be in [0, window_seconds), got ", o.overlap_seconds);
  TSE_CHECK(o.crossfade == "hann" || o.crossfade == "triangular",
            "separate_chunked: crossfade must be \"hann\" or \"triangular\", got \"", o.crossfade, "\"");
  const double sr = static_cast<double>(model.sample_rate());
  const int64_t window = static_cast<int64_t>(std::llround(o.window_seconds * sr));
  const int64_t overlap = static_cast<int64_t>(std::llround(o.overlap_seconds * sr));
  TSE_CHECK(window > overlap, "separate_chunked: the window (", window, " samples) must be longer than the overlap (",
            overlap, ")");
  const int64_t L = mixture.size(-1);
  TSE_CHECK(L > 0, "separate_chunked: mixture is empty");
  if (L <= window) {
    Tensor y = model.separate(mixture, query);
    if (progress) progress(1, 1);
    return y;
  }
  const int64_t hop = window - overlap;
  std::vector<int64_t> starts;
  for (int64_t s0 = 0; s0 + window < L; s0 += hop) starts.push_back(s0);
  starts.push_back(L - window);  // the last window ends with the audio

  // Crossfade weights: ramps over `overlap` samples at both ends, sampled at n + 1/2 so they
  // never reach 0; the summed weights are divided out, so they need not add up to 1.
  std::vector<double> w(static_cast<size_t>(window), 1.0);
  for (int64_t n = 0; n < overlap; ++n) {
    const double r = (static_cast<double>(n) + 0.5) / static_cast<double>(overlap);
    const double v = o.crossfade == "hann" ? std::pow(std::sin(0.5 * M_PI * r), 2.0) : r;
    w[static_cast<size_t>(n)] = std::min(w[static_cast<size_t>(n)], v);
    w[static_cast<size_t>(window - 1 - n)] = std::min(w[static_cast<size_t>(window - 1 - n)], v);
  }
  const Tensor x = mixture.dim() == 1 ? mixture.unsqueeze(0) : mixture;
  const int64_t B = x.size(0);
  std::vector<double> acc(static_cast<size_t>(B * L), 0.0), wsum(static_cast<size_t>(L), 0.0);
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t s0 = starts[k];
    const Tensor y = model.separate(x.narrow(1, s0, window).contiguous(), query);
    TSE_CHECK(y.dim() == 2 && y.size(0) == B && y.size(1) == window, "separate_chunked: the model returned ", y.shape_str(),
              " for a (", B, ", ", window, ") window");
    const std::vector<double> yv = ops::to_vector(y);
    for (int64_t n = 0; n < window; ++n) {
      const double wn = w[static_cast<size_t>(n)];
      wsum[static_cast<size_t>(s0 + n)] += wn;
      for (int64_t b = 0; b < B; ++b) acc[static_cast<size_t>(b * L + s0 + n)] += wn * yv[static_cast<size_t>(b * window + n)];
    }
    if (progress) progress(static_cast<int64_t>(k) + 1, static_cast<int64_t>(starts.size()));
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < L; ++n) acc[static_cast<size_t>(b * L + n)] /= wsum[static_cast<size_t>(n)];
  Tensor out = ops::from_vector(acc, {B, L}, mixture.dtype());
  return mixture.dim() == 1 ? out.squeeze(0) : out;
}

Tensor separate_waveform(Separator& model, const Tensor& audio, int64_t sample_rate, const Tensor& query) {
  TSE_CHECK(audio.dim() == 1 || audio.dim() == 2, "separate_waveform: audio must be (L) or (C, L), got ", audio.shape_str());
  TSE_CHECK(audio.dtype() == DType::f32 || audio.dtype() == DType::f64,
            "separate_waveform: audio must be float32 or float64, got ", audio.dtype());
  TSE_CHECK(audio.size(-1) > 0, "separate_waveform: audio is empty");
  TSE_CHECK(sample_rate > 0, "separate_waveform: sample_rate must be positive, got ", sample_rate);
  TSE_CHECK(query.dim() == 1 || (query.dim() == 2 && query.size(0) == 1), "separate_waveform: query must be (D) or (1, D), got ",
            query.shape_str());
  TSE_CHECK(query.size(-1) == model.query_dim(), "separate_waveform: the model takes queries of size ", model.query_dim(),
            ", got ", query.size(-1));
  {
    const Tensor c = audio.to(DType::f64).contiguous();
    const double* p = static_cast<const double*>(c.data_ptr());
    for (int64_t i = 0; i < c.numel(); ++i)
      TSE_CHECK(std::isfinite(p[i]), "separate_waveform: audio holds NaN or Inf (sample ", i, ")");
  }
  const int64_t length = audio.size(-1);
  const Tensor channels = audio.dim() == 1 ? audio.unsqueeze(0) : audio;
  const int64_t model_sr = model.sample_rate();
  Tensor x = channels.to(DType::f32).contiguous();
  if (sample_rate != model_sr) x = audio::resample(x, sample_rate, model_sr, "soxr_hq");
  const Tensor q = query.dim() == 1 ? query.unsqueeze(0) : query;
  Tensor y = model.separate(x, q);
  if (sample_rate != model_sr) y = audio::resample(y, model_sr, sample_rate, "soxr_hq");
  y = audio::pad_or_trim(y, length);
  if (audio.dtype() != DType::f32) y = y.to(audio.dtype());
  return audio.dim() == 1 ? y.squeeze(0) : y;
}

}  // namespace tse::models
