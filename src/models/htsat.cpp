#include "tse/models/htsat.hpp"

#include <cmath>

#include "src/core/config_fields.hpp"
#include "src/models/torchlibrosa_constants.hpp"
#include "tse/audio/spectral.hpp"
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

const tse::detail::ConfigFields<HTSATConfig>& htsat_fields() {
  using C = HTSATConfig;
  static const auto* f = &(*new tse::detail::ConfigFields<C>("HTSATConfig"))
                              .add("spec_size", &C::spec_size)
                              .add("patch_size", &C::patch_size)
                              .add("mel_bins", &C::mel_bins)
                              .add("embed_dim", &C::embed_dim)
                              .add("depths", &C::depths)
                              .add("num_heads", &C::num_heads)
                              .add("window_size", &C::window_size)
                              .add("mlp_ratio", &C::mlp_ratio)
                              .add("drop_path_rate", &C::drop_path_rate)
                              .add("lora_rank", &C::lora_rank)
                              .add("lora_alpha", &C::lora_alpha);
  return *f;
}

// audio_projection: "0" Linear, "1" ReLU (no parameters), "2" Linear.
class ProjectionMLP : public nn::Module {
 public:
  ProjectionMLP(int64_t in, int64_t out, DType dtype) {
    first = register_module("0", std::make_shared<nn::Linear>(in, out, true, dtype));
    second = register_module("2", std::make_shared<nn::Linear>(out, out, true, dtype));
  }
  std::string type_name() const override { return "Sequential"; }
  std::shared_ptr<nn::Linear> first, second;
};

}  // namespace

std::string HTSATConfig::to_json() const { return htsat_fields().to_json(*this).dump(); }

HTSATConfig HTSATConfig::from_json(const std::string& json) {
  HTSATConfig c = htsat_fields().from_json_text(json);
  c.validate();
  return c;
}

void HTSATConfig::validate() const {
  auto positive = [](const char* name, int64_t v) { TSE_CHECK(v > 0, "HTSATConfig: ", name, " must be positive, got ", v); };
  positive("spec_size", spec_size);
  positive("patch_size", patch_size);
  positive("mel_bins", mel_bins);
  positive("embed_dim", embed_dim);
  positive("window_size", window_size);
  TSE_CHECK(mel_bins == 64, "HTSATConfig: mel_bins must be 64 (CLAP's front-end), got ", mel_bins);
  TSE_CHECK(spec_size % mel_bins == 0 && spec_size % patch_size == 0, "HTSATConfig: spec_size ", spec_size,
            " must be a multiple of mel_bins and patch_size");
  TSE_CHECK(!depths.empty() && depths.size() == num_heads.size(), "HTSATConfig: depths and num_heads need one entry per "
            "stage, got ", depths.size(), " and ", num_heads.size());
  int64_t grid = spec_size / patch_size;
  for (size_t s = 0; s < depths.size(); ++s) {
    TSE_CHECK(depths[s] >= 1, "HTSATConfig: depths[", s, "] must be >= 1, got ", depths[s]);
    TSE_CHECK(num_heads[s] >= 1 && stage_dim(static_cast<int64_t>(s)) % num_heads[s] == 0, "HTSATConfig: num_heads[", s,
              "] = ", num_heads[s], " must divide the stage width ", stage_dim(static_cast<int64_t>(s)));
    const int64_t ws = std::min(window_size, grid);
    TSE_CHECK(grid % ws == 0, "HTSATConfig: stage ", s, "'s grid ", grid, " is not a multiple of the window ", ws);
    if (s + 1 < depths.size()) {
      TSE_CHECK(grid % 2 == 0, "HTSATConfig: stage ", s, "'s grid ", grid, " cannot be halved");
      grid /= 2;
    }
  }
  TSE_CHECK(mlp_ratio > 0, "HTSATConfig: mlp_ratio must be positive, got ", mlp_ratio);
  TSE_CHECK(drop_path_rate >= 0 && drop_path_rate < 1, "HTSATConfig: drop_path_rate must be in [0, 1), got ", drop_path_rate);
  TSE_CHECK(lora_rank >= 0, "HTSATConfig: lora_rank must be >= 0, got ", lora_rank);
}

// ---- HTSAT ----------------------------------------------------------------------------------

HTSAT::HTSAT(const HTSATConfig& config, DType dtype) : config_(config) {
  config_.validate();
  const HTSATConfig& c = config_;
  // torchlibrosa's front-end, stored by CLAP as parameters: ours is computed (audio::clap_logmel).
  register_constant("spectrogram_extractor.stft.conv_real.weight", [] { return detail::stft_conv_weight(1024, false); });
  register_constant("spectrogram_extractor.stft.conv_imag.weight", [] { return detail::stft_conv_weight(1024, true); });
  register_constant("logmel_extractor.melW", [] {
    return audio::mel_filterbank(48000, 1024, 64, 50, 14000, false, "slaney", DType::f64).transpose(0, 1).contiguous();
  });
  bn0 = register_module("bn0", std::make_shared<nn::BatchNorm2d>(c.mel_bins, 1e-5, 0.1, true, true, dtype));
  patch_embed = register_module("patch_embed", std::make_shared<nn::PatchEmbed>(c.patch_size, 1, c.embed_dim, dtype));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());

  int64_t total_blocks = 0;
  for (int64_t d : c.depths) total_blocks += d;
  int64_t block = 0, grid = c.spec_size / c.patch_size;
  nn::SwinOptions o{.window_size = c.window_size, .mlp_ratio = c.mlp_ratio, .qkv_bias = true,
                    .lora_rank = c.lora_rank, .lora_alpha = c.lora_alpha, .dtype = dtype};
  for (int64_t s = 0; s < c.num_stages(); ++s) {
    std::vector<double> rates;
    for (int64_t b = 0; b < c.depths[static_cast<size_t>(s)]; ++b, ++block)
      rates.push_back(total_blocks > 1 ? c.drop_path_rate * static_cast<double>(block) / static_cast<double>(total_blocks - 1) : 0.0);
    const bool last = s + 1 == c.num_stages();
    stages_.push_back(layers->push_back(std::make_shared<nn::SwinStage>(
        c.stage_dim(s), std::make_pair(grid, grid), c.depths[static_cast<size_t>(s)], c.num_heads[static_cast<size_t>(s)],
        rates, true, last ? nn::SwinStage::Resample::none : nn::SwinStage::Resample::merge_after, o)));
    if (!last) grid /= 2;
  }
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(c.num_features(), 1e-5, true, dtype));

  // HTSAT's _init_weights: Linear weights trunc-normal(0.02), biases 0 (LayerNorms are 1 / 0).
  autograd::NoGradGuard no_grad;
  for (auto& [name, m] : named_modules())
    if (auto* lin = dynamic_cast<nn::Linear*>(m)) {
      lin->weight.copy_(nn::init::trunc_normal(lin->weight.sizes(), 0.0, 0.02, -2.0, 2.0, dtype));
      if (lin->bias.defined()) lin->bias.zero_();
    }
}

Tensor HTSAT::logmel(const Tensor& wave_48k, audio::ClapLength length) const {
  TSE_CHECK(wave_48k.dim() == 2, "HTSAT.logmel: audio must be (B, L) at 48 kHz, got ", wave_48k.shape_str());
  TSE_CHECK(length != audio::ClapLength::none, "HTSAT.logmel: length must be pad or stretch");
  return audio::clap_logmel(wave_48k, length).unsqueeze(1);
}

HTSATFeatures HTSAT::encode(const Tensor& logmel) {
  TSE_CHECK(logmel.dim() == 4 && logmel.size(1) == 1 && logmel.size(2) == config_.frames() &&
                logmel.size(3) == config_.mel_bins,
            "HTSAT.encode: logmel must be (B, 1, ", config_.frames(), ", ", config_.mel_bins, "), got ", logmel.shape_str());
  HTSATFeatures f;
  f.logmel = logmel;
  f.bn0 = bn0->forward(logmel.transpose(1, 3)).transpose(1, 3);  // mel bins are bn0's channels
  Tensor h = patch_embed->forward(nn::wav_to_image(f.bn0, config_.freq_ratio()));
  f.patch_embed = h;
  for (const auto& stage : stages_) {
    h = stage->forward(h);
    f.stages.push_back(h);
  }
  return f;
}

Tensor HTSAT::pool(const Tensor& last_stage) const { return ops::mean(norm->forward(last_stage), {1}); }

// ---- CLAPAudioEncoder -----------------------------------------------------------------------

CLAPAudioEncoder::CLAPAudioEncoder(const HTSATConfig& config, int64_t embedding_dim, DType dtype) {
  TSE_CHECK(config.lora_rank == 0, "CLAPAudioEncoder: CLAP's query encoder has no LoRA (lora_rank ", config.lora_rank, ")");
  audio_branch = register_module("audio_branch", std::make_shared<HTSAT>(config, dtype));
  auto proj = std::make_shared<ProjectionMLP>(config.num_features(), embedding_dim, dtype);
  projection_in = proj->first;
  projection_out = proj->second;
  audio_projection = register_module("audio_projection", std::static_pointer_cast<nn::Module>(proj));
}

Tensor CLAPAudioEncoder::forward(const Tensor& logmel) {
  const HTSATFeatures f = audio_branch->encode(logmel);
  const Tensor e = projection_out->forward(ops::relu(projection_in->forward(audio_branch->pool(f.stages.back()))));
  return ops::div(e, ops::clamp_min(ops::norm(e, 2.0, {-1}, true), 1e-12));
}

Tensor CLAPAudioEncoder::embed(const Tensor& wave_48k) {
  constexpr int64_t kClip = 480000;
  TSE_CHECK(wave_48k.dim() == 1 || wave_48k.dim() == 2, "CLAPAudioEncoder.embed: audio must be (L) or (B, L), got ",
            wave_48k.shape_str());
  TSE_CHECK(is_floating(wave_48k.dtype()), "CLAPAudioEncoder.embed: audio must be floating point, got ", wave_48k.dtype());
  const int64_t L = wave_48k.size(-1);
  TSE_CHECK(L > 0, "CLAPAudioEncoder.embed: audio is empty");
  TSE_CHECK(L <= kClip, "CLAPAudioEncoder.embed: audio has ", L, " samples; CLAP embeds at most 10 s at 48 kHz (480000): ",
            "crop it first");
  TSE_CHECK(ops::to_vector(ops::sum(ops::logical_not(ops::isfinite(wave_48k)).to(DType::f64)))[0] == 0.0,
            "CLAPAudioEncoder.embed: audio holds NaN or Inf");
  autograd::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  Tensor x = wave_48k.dim() == 1 ? wave_48k.unsqueeze(0) : wave_48k;
  x = x.to(audio_branch->bn0->weight.dtype());
  if (L < kClip) {  // LAION's repeatpad: tile floor(480000 / L) times, then zero-pad
    x = ops::repeat(x, {1, kClip / L});
    x = ops::pad(x, {0, kClip - x.size(-1)});
  }
  Tensor e = forward(audio_branch->logmel(x, audio::ClapLength::stretch));
  train(was_training);
  return wave_48k.dim() == 1 ? e.squeeze(0) : e;
}

}  // namespace tse::models
