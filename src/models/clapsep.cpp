#include "tse/models/clapsep.hpp"

#include <cmath>
#include <numeric>
#include <sstream>

#include "src/core/config_fields.hpp"
#include "src/models/torchlibrosa_constants.hpp"
#include "tse/audio/resample.hpp"
#include "tse/audio/spectral.hpp"
#include "tse/audio/stft.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/nn/init.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse::models {
namespace {

constexpr const char* kFormatVersion = "1";
constexpr int64_t kStages = 4;  // film.in_features = encoder_embed_dim * 8 assumes four stages

const tse::detail::ConfigFields<CLAPSepConfig>& clapsep_fields() {
  using C = CLAPSepConfig;
  static const auto* f = &(*new tse::detail::ConfigFields<C>("CLAPSepConfig"))
                              .add("sample_rate", &C::sample_rate)
                              .add("n_fft", &C::n_fft)
                              .add("hop_length", &C::hop_length)
                              .add("embedding_dim", &C::embedding_dim)
                              .add("encoder_embed_dim", &C::encoder_embed_dim)
                              .add("encoder_depths", &C::encoder_depths)
                              .add("encoder_num_heads", &C::encoder_num_heads)
                              .add("encoder_drop_path", &C::encoder_drop_path)
                              .add("lora_rank", &C::lora_rank)
                              .add("lora_alpha", &C::lora_alpha)
                              .add("decoder_embed_dim", &C::decoder_embed_dim)
                              .add("decoder_depths", &C::decoder_depths)
                              .add("decoder_num_heads", &C::decoder_num_heads)
                              .add("decoder_drop_path", &C::decoder_drop_path)
                              .add("d_attn", &C::d_attn)
                              .add("n_masker_layer", &C::n_masker_layer)
                              .add("window_size", &C::window_size)
                              .add("mlp_ratio", &C::mlp_ratio);
  return *f;
}

bool all_finite(const Tensor& x) {
  return ops::to_vector(ops::sum(ops::logical_not(ops::isfinite(x)).to(DType::f64)))[0] == 0.0;
}

// Linear weights trunc-normal(0.02), biases 0: the decoder's _init_weights (s.6.1).
void swin_init(nn::Module& m, DType dtype) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, sub] : m.named_modules())
    if (auto* lin = dynamic_cast<nn::Linear*>(sub)) {
      lin->weight.copy_(nn::init::trunc_normal(lin->weight.sizes(), 0.0, 0.02, -2.0, 2.0, dtype));
      if (lin->bias.defined()) lin->bias.zero_();
    }
}

}  // namespace

// ---- config ---------------------------------------------------------------------------------

int64_t CLAPSepConfig::max_samples() const {
  const int64_t frames = encoder().frames();
  return (frames - 1) * hop_length + hop_length - 1;
}

HTSATConfig CLAPSepConfig::encoder() const {
  HTSATConfig h;
  h.embed_dim = encoder_embed_dim;
  h.depths = encoder_depths;
  h.num_heads = encoder_num_heads;
  h.window_size = window_size;
  h.mlp_ratio = mlp_ratio;
  h.drop_path_rate = encoder_drop_path;
  h.lora_rank = lora_rank;
  h.lora_alpha = lora_alpha;
  return h;
}

CLAPSepConfig CLAPSepConfig::tiny() {
  CLAPSepConfig c;
  c.encoder_embed_dim = 8;
  c.encoder_depths = {2, 2, 2, 2};
  c.encoder_num_heads = {2, 2, 4, 8};
  c.decoder_embed_dim = 8;
  c.decoder_num_heads = {2, 2, 4, 8};
  c.d_attn = 32;
  c.n_masker_layer = 2;
  return c;
}

std::string CLAPSepConfig::to_json() const { return clapsep_fields().to_json(*this).dump(); }

CLAPSepConfig CLAPSepConfig::from_json(const std::string& json) {
  CLAPSepConfig c = clapsep_fields().from_json_text(json);
  c.validate();
  return c;
}

void CLAPSepConfig::validate() const {
  auto positive = [](const char* name, int64_t v) { TSE_CHECK(v > 0, "CLAPSepConfig: ", name, " must be positive, got ", v); };
  positive("sample_rate", sample_rate);
  positive("hop_length", hop_length);
  positive("embedding_dim", embedding_dim);
  positive("decoder_embed_dim", decoder_embed_dim);
  positive("d_attn", d_attn);
  positive("n_masker_layer", n_masker_layer);
  TSE_CHECK(n_fft >= 2 && n_fft % 2 == 0, "CLAPSepConfig: n_fft must be even and >= 2, got ", n_fft);
  TSE_CHECK(hop_length * 100 == sample_rate, "CLAPSepConfig: hop_length must be 10 ms (", sample_rate / 100,
            " samples at ", sample_rate, " Hz) so that STFT frames line up with HTSAT's; got ", hop_length);
  TSE_CHECK(static_cast<int64_t>(encoder_depths.size()) == kStages && static_cast<int64_t>(decoder_depths.size()) == kStages &&
                static_cast<int64_t>(decoder_num_heads.size()) == kStages,
            "CLAPSepConfig: the encoder and decoder have 4 stages (encoder_depths, decoder_depths, decoder_num_heads need 4 "
            "entries)");
  for (int64_t i = 0; i < kStages; ++i) {
    TSE_CHECK(decoder_depths[static_cast<size_t>(i)] >= 1, "CLAPSepConfig: decoder_depths[", i, "] must be >= 1");
    const int64_t heads = decoder_num_heads[static_cast<size_t>(i)];
    TSE_CHECK(heads >= 1 && (decoder_embed_dim << i) % heads == 0, "CLAPSepConfig: decoder_num_heads[", i, "] = ", heads,
              " must divide the level width ", decoder_embed_dim << i);
  }
  TSE_CHECK(d_attn % 8 == 0, "CLAPSepConfig: d_attn must be a multiple of the MaskNet's 8 heads, got ", d_attn);
  TSE_CHECK(decoder_drop_path >= 0 && decoder_drop_path < 1, "CLAPSepConfig: decoder_drop_path must be in [0, 1), got ",
            decoder_drop_path);
  encoder().validate();
}

// ---- decoder --------------------------------------------------------------------------------

CLAPSepDecoder::CLAPSepDecoder(const CLAPSepConfig& config, DType dtype) : config_(config) {
  config_.validate();
  const CLAPSepConfig& c = config_;
  const HTSATConfig enc = c.encoder();
  const int64_t cond = c.cond_dim(), top = kStages - 1;
  auto dec_dim = [&](int64_t s) { return c.decoder_embed_dim << s; };
  auto grid = [&](int64_t s) { return (enc.spec_size / enc.patch_size) >> s; };

  // drop-path rates linspace(0, rate, sum(depths)), level s taking its slice (finest first).
  int64_t total = 0;
  for (int64_t d : c.decoder_depths) total += d;
  std::vector<std::vector<double>> rates(kStages);
  for (int64_t s = 0, k = 0; s < kStages; ++s)
    for (int64_t b = 0; b < c.decoder_depths[static_cast<size_t>(s)]; ++b, ++k)
      rates[static_cast<size_t>(s)].push_back(total > 1 ? c.decoder_drop_path * static_cast<double>(k) / static_cast<double>(total - 1) : 0.0);

  film = register_module("film", std::make_shared<nn::FiLMSkip>(enc.stage_dim(top), dec_dim(top), cond, dtype));
  skip = register_module("skip", std::make_shared<nn::ModuleList>());
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  nn::SwinOptions o{.window_size = c.window_size, .mlp_ratio = c.mlp_ratio, .qkv_bias = true, .dtype = dtype};
  for (int64_t i = 0; i < kStages; ++i) {  // index 0 is the coarsest level (ModuleList[::-1])
    const int64_t s = top - i;
    skips_.push_back(skip->push_back(std::make_shared<nn::FiLMSkip>(enc.stage_dim(s), dec_dim(s), cond, dtype)));
    levels_.push_back(layers->push_back(std::make_shared<nn::SwinStage>(
        dec_dim(s), std::make_pair(grid(s), grid(s)), c.decoder_depths[static_cast<size_t>(s)],
        c.decoder_num_heads[static_cast<size_t>(s)], rates[static_cast<size_t>(s)], true,
        i == 0 ? nn::SwinStage::Resample::none : nn::SwinStage::Resample::expand_before, o)));
  }
  inverse_patch_embed =
      register_module("inverse_patch_embed", std::make_shared<nn::InversePatchEmbed>(enc.patch_size, 1, dec_dim(0), dtype));
  spec_norm = register_module("spec_norm", std::make_shared<nn::BatchNorm2d>(c.n_bins(), 1e-5, 0.01, true, true, dtype));
  mask_net = register_module("mask_net", std::make_shared<nn::ModuleList>());
  mask_in_ = mask_net->push_back(std::make_shared<nn::Linear>(c.n_bins() + enc.mel_bins, c.d_attn, true, dtype));
  mask_norm_ = mask_net->push_back(std::make_shared<nn::LayerNorm>(c.d_attn, 1e-5, true, dtype));
  mask_transformer_ = mask_net->push_back(
      std::make_shared<nn::TransformerEncoder>(c.n_masker_layer, c.d_attn, 8, 4 * c.d_attn, 0.0, dtype));
  mask_out_ = mask_net->push_back(std::make_shared<nn::Linear>(c.d_attn, c.n_bins(), true, dtype));
  swin_init(*this, dtype);
}

CLAPSepDecoder::Output CLAPSepDecoder::forward(const Tensor& patch_embed, const std::vector<Tensor>& stages,
                                               const Tensor& magnitude, const Tensor& cond) {
  TSE_CHECK(static_cast<int64_t>(stages.size()) == kStages, "HTSAT_Decoder: need the 4 encoder stages, got ", stages.size());
  const HTSATConfig enc = config_.encoder();
  TSE_CHECK(magnitude.dim() == 3 && magnitude.size(2) == config_.n_bins() && magnitude.size(1) <= enc.frames(),
            "HTSAT_Decoder: magnitude must be (B, T <= ", enc.frames(), ", ", config_.n_bins(), "), got ",
            magnitude.shape_str());
  Output out;
  // skip inputs, coarsest first: stage 2, 1, 0 outputs and the patch embedding.
  const std::vector<Tensor> skip_in{stages[2], stages[1], stages[0], patch_embed};
  Tensor h = film->forward(stages[3], cond);
  out.film = h;
  for (int64_t i = 0; i < kStages; ++i) {
    h = levels_[static_cast<size_t>(i)]->forward(h);
    h = skips_[static_cast<size_t>(i)]->forward(skip_in[static_cast<size_t>(i)], cond, h);
    out.skip.push_back(h);
  }
  const int64_t T = magnitude.size(1);
  const Tensor wav = nn::image_to_wav(inverse_patch_embed->forward(h), enc.freq_ratio());  // (B, 1, frames, 64)
  out.h_d = ops::narrow(ops::select(wav, 1, 0), 1, 0, T);                                  // (B, T, 64)
  // spec_norm: BatchNorm over the frequency bins of the linear magnitude.
  const Tensor normed = spec_norm->forward(magnitude.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2);
  Tensor z = mask_in_->forward(ops::cat({normed, out.h_d}, -1));
  z = mask_out_->forward(mask_transformer_->forward(mask_norm_->forward(z)));
  out.mask = ops::sigmoid(z);
  return out;
}

// ---- CLAPSep --------------------------------------------------------------------------------

CLAPSep::CLAPSep(const CLAPSepConfig& config, DType dtype) : config_(config) {
  config_.validate();
  const int64_t N = config_.n_fft;
  register_constant("stft.conv_real.weight", [N] { return detail::stft_conv_weight(N, false); });
  register_constant("stft.conv_imag.weight", [N] { return detail::stft_conv_weight(N, true); });
  register_constant("istft.conv_real.weight", [N] { return detail::istft_conv_weight(N, false); });
  register_constant("istft.conv_imag.weight", [N] { return detail::istft_conv_weight(N, true); });
  register_constant("istft.ola_window", [N] { return detail::ola_window(N); });
  const int64_t sr = config_.sample_rate;
  register_constant("resampler.kernel", [sr] {  // the HF class's torchaudio Resample (MODELS.md D2)
    const int64_t g = std::gcd(sr, int64_t{48000});
    const Tensor k = audio::sinc_resample_kernel(sr / g, 48000 / g, DType::f32);
    return k.reshape({k.size(0), 1, k.size(1)});
  });
  audio_branch = register_module("audio_branch", std::make_shared<HTSAT>(config_.encoder(), dtype));
  decoder_model = register_module("decoder_model", std::make_shared<CLAPSepDecoder>(config_, dtype));
  freeze_for_finetuning();
  on_train(is_training());
}

std::string CLAPSep::extra_repr() const {
  std::ostringstream os;
  os << "sample_rate=" << config_.sample_rate << ", lora_rank=" << config_.lora_rank << ", d_attn=" << config_.d_attn;
  return os.str();
}

void CLAPSep::on_train(bool /*on*/) {
  if (audio_branch) audio_branch->train(false);
}

void CLAPSep::freeze_for_finetuning() {
  audio_branch->requires_grad_(false);
  for (auto& [name, p] : audio_branch->named_parameters()) {
    auto ends_with = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".lora_A") || ends_with(".lora_B") || ends_with("attn.qkv.bias") || ends_with("attn.proj.bias")) {
      Tensor t = p;
      t.requires_grad_(true);
    }
  }
  decoder_model->requires_grad_(true);
}

void CLAPSep::merge_lora(bool merge) {
  for (auto& [name, m] : audio_branch->named_modules())
    if (auto* lora = dynamic_cast<nn::LoRALinear*>(m)) merge ? lora->merge() : lora->unmerge();
}

Tensor CLAPSep::condition(const Tensor& positive, const Tensor& negative) const {
  const int64_t E = config_.embedding_dim;
  TSE_CHECK(positive.defined() || negative.defined(), "CLAPSep: give a positive or a negative query embedding (or both)");
  auto as_batch = [&](const Tensor& e, const char* side) {
    TSE_CHECK((e.dim() == 1 || e.dim() == 2) && e.size(-1) == E, "CLAPSep: the ", side, " embedding must be (", E,
              ") or (B, ", E, "), got ", e.shape_str());
    TSE_CHECK(is_floating(e.dtype()), "CLAPSep: the ", side, " embedding must be floating point, got ", e.dtype());
    TSE_CHECK(all_finite(e), "CLAPSep: the ", side, " embedding holds NaN or Inf");
    return e.dim() == 1 ? e.unsqueeze(0) : e;
  };
  Tensor p = positive.defined() ? as_batch(positive, "positive") : Tensor();
  Tensor n = negative.defined() ? as_batch(negative, "negative") : Tensor();
  if (!p.defined()) p = ops::zeros({n.size(0), E}, n.dtype());
  if (!n.defined()) n = ops::zeros({p.size(0), E}, p.dtype());
  if (p.size(0) != n.size(0)) {
    TSE_CHECK(p.size(0) == 1 || n.size(0) == 1, "CLAPSep: positive and negative batches differ: ", p.size(0), " vs ", n.size(0));
    const int64_t B = std::max(p.size(0), n.size(0));
    p = ops::expand(p, {B, E});
    n = ops::expand(n, {B, E});
  }
  return ops::cat({p, n.to(p.dtype())}, -1);
}

Tensor CLAPSep::run(const Tensor& mixture, const Tensor& query, std::map<std::string, Tensor>* taps) {
  const CLAPSepConfig& c = config_;
  const DType dt = decoder_model->spec_norm->weight.dtype();
  TSE_CHECK(mixture.defined() && mixture.dim() == 2, "CLAPSep: mixture must be a (B, L) waveform at ", c.sample_rate,
            " Hz, got ", mixture.defined() ? mixture.shape_str() : "undefined");
  TSE_CHECK(mixture.dtype() == dt, "CLAPSep: mixture must be ", dt, " like the model's parameters, got ", mixture.dtype());
  TSE_CHECK(mixture.size(0) > 0, "CLAPSep: mixture has an empty batch");
  TSE_CHECK(mixture.size(1) > c.n_fft / 2, "CLAPSep: mixture needs more than n_fft / 2 = ", c.n_fft / 2,
            " samples, got ", mixture.size(1), mixture.size(1) == 0 ? " (empty audio)" : "");
  TSE_CHECK(mixture.size(1) <= c.max_samples(), "CLAPSep: one forward takes at most ", c.max_samples(),
            " samples (HTSAT's 1024 frames, 10.24 s at ", c.sample_rate, " Hz), got ", mixture.size(1),
            "; separate() splits longer audio into overlapping windows");
  TSE_CHECK(all_finite(mixture), "CLAPSep: mixture contains NaN or Inf");
  const int64_t B = mixture.size(0);
  TSE_CHECK(query.defined() && query.dim() == 2 && query.size(1) == c.cond_dim() && (query.size(0) == B || query.size(0) == 1),
            "CLAPSep: query must be (B, ", c.cond_dim(), ") or (1, ", c.cond_dim(), ") = concat(positive, negative), got ",
            query.defined() ? query.shape_str() : "undefined");
  TSE_CHECK(query.dtype() == dt, "CLAPSep: query must be ", dt, ", got ", query.dtype());
  TSE_CHECK(all_finite(query), "CLAPSep: query contains NaN or Inf");

  Tensor cond = ops::div(query, ops::clamp_min(ops::norm(query, 2.0, {-1}, true), 1e-12));
  if (cond.size(0) != B) cond = ops::expand(cond, {B, c.cond_dim()});

  const Tensor x48 = audio::resample(mixture, c.sample_rate, 48000, "sinc_hann");
  const Tensor logmel = audio_branch->logmel(x48, audio::ClapLength::pad);
  const HTSATFeatures enc = audio_branch->encode(logmel);
  const audio::StftOptions so{.n_fft = c.n_fft, .hop_length = c.hop_length};
  const Tensor spec = audio::stft(mixture, so);             // (B, F, T, 2)
  const Tensor mag = audio::magnitude(spec).transpose(1, 2);  // (B, T, F)
  const CLAPSepDecoder::Output dec = decoder_model->forward(enc.patch_embed, enc.stages, mag, cond);
  const Tensor wave = audio::istft(audio::mask_apply(dec.mask.transpose(1, 2), spec), so, mixture.size(1));
  if (taps) {
    auto& t = *taps;
    t["resampled"] = x48;
    const Tensor power48 = ops::pow(audio::magnitude(audio::stft(x48, {.n_fft = 1024, .hop_length = 480})), 2.0);
    t["power"] = ops::pad(power48, {0, audio_branch->config().frames() - power48.size(-1)}).transpose(1, 2).unsqueeze(1);
    t["logmel"] = enc.logmel;
    t["bn0"] = enc.bn0;
    t["enc.patch_embed"] = enc.patch_embed;
    for (size_t s = 0; s < enc.stages.size(); ++s) t["enc.layers." + std::to_string(s)] = enc.stages[s];
    t["cond"] = cond;
    t["dec.film"] = dec.film;
    for (size_t i = 0; i < dec.skip.size(); ++i) t["dec.skip." + std::to_string(i)] = dec.skip[i];
    t["dec.h_d"] = dec.h_d;
    t["magnitude"] = mag.unsqueeze(1);
    t["mask"] = dec.mask.unsqueeze(1);
    t["waveform"] = wave;
  }
  return wave;
}

Tensor CLAPSep::forward(const Tensor& mixture, const Tensor& query) { return run(mixture, query, nullptr); }

std::map<std::string, Tensor> CLAPSep::forward_taps(const Tensor& mixture, const Tensor& query) {
  std::map<std::string, Tensor> taps;
  run(mixture, query, &taps);
  return taps;
}

Tensor CLAPSep::separate(const Tensor& mixture, const Tensor& query) {
  TSE_CHECK(mixture.defined() && (mixture.dim() == 1 || mixture.dim() == 2),
            "CLAPSep.separate: mixture must be (L) or (B, L), got ", mixture.defined() ? mixture.shape_str() : "undefined");
  TSE_CHECK(query.defined() && (query.dim() == 1 || query.dim() == 2),
            "CLAPSep.separate: query must be (D) or (B, D), got ", query.defined() ? query.shape_str() : "undefined");
  if (mixture.size(-1) > config_.max_samples()) return separate_chunked(*this, mixture, query);
  return forward_in_eval(mixture, query);
}

Tensor CLAPSep::separate(const Tensor& mixture, const Tensor& positive, const Tensor& negative) {
  Tensor q = condition(positive, negative);
  const bool single = (!positive.defined() || positive.dim() == 1) && (!negative.defined() || negative.dim() == 1);
  q = q.to(decoder_model->spec_norm->weight.dtype());
  return separate(mixture, single && mixture.dim() == 1 ? q.squeeze(0) : q);
}

std::map<std::string, std::string> CLAPSep::metadata() const {
  return {{"model_type", "CLAPSep"},
          {"config", config_.to_json()},
          {"sample_rate", std::to_string(config_.sample_rate)},
          {"format_version", kFormatVersion}};
}

std::shared_ptr<CLAPSep> CLAPSep::load(const std::string& path, DType dtype) {
  const ModelFile file = read_model_file(path, "CLAPSep", kFormatVersion);
  auto model = std::make_shared<CLAPSep>(CLAPSepConfig::from_json(file.config), dtype);
  model->load_state_dict(file.state);
  return model;
}

}  // namespace tse::models
