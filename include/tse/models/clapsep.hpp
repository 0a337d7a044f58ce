#pragma once
/// \file clapsep.hpp
/// CLAPSep (Ma et al., MODELS.md A s.1-s.8): the 32 kHz mixture's STFT magnitude is masked by a
/// network that reads (1) a LoRA-tuned copy of CLAP's HTSAT encoder run on the 48 kHz-resampled
/// mixture, (2) a condition c = L2normalise(concat(e_pos, e_neg)) of CLAP query embeddings, (3)
/// a FiLM-conditioned Swin U-Net decoder and (4) a transformer MaskNet over the frames; the
/// masked magnitude with the mixture's phase is inverted at the input length.
///
/// State-dict names are the official `audio_branch.*` (without tscam/head) and `decoder_model.*`
/// (s.9.2); computed constants (STFT/iSTFT conv rows, OLA window, melW, relative-position
/// indices, shift masks, the resampler kernel) are accepted and checked when a file carries them.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tse/models/htsat.hpp"
#include "tse/models/separator.hpp"
#include "tse/nn/transformer.hpp"

namespace tse::models {

struct TSE_API CLAPSepConfig {
  int64_t sample_rate = 32000;
  int64_t n_fft = 1024;  // 513 bins = 64 * spec_factor + 1
  int64_t hop_length = 320;
  int64_t embedding_dim = 512;  // one CLAP embedding; the condition is twice that (P + N)
  // The LoRA-tuned HTSAT encoder (HTSAT-base).
  int64_t encoder_embed_dim = 128;
  std::vector<int64_t> encoder_depths{2, 2, 12, 2};
  std::vector<int64_t> encoder_num_heads{4, 8, 16, 32};
  double encoder_drop_path = 0.1;  // never active: CLAPSep keeps the encoder in eval
  int64_t lora_rank = 16;
  double lora_alpha = 1.0;  // loralib's default: scaling 1/16
  // The decoder.
  int64_t decoder_embed_dim = 128;
  std::vector<int64_t> decoder_depths{1, 1, 1, 1};
  std::vector<int64_t> decoder_num_heads{4, 8, 16, 32};
  double decoder_drop_path = 0.1;
  int64_t d_attn = 640;          // MaskNet width (8 heads)
  int64_t n_masker_layer = 3;
  int64_t window_size = 8;
  double mlp_ratio = 4.0;

  int64_t n_bins() const { return n_fft / 2 + 1; }
  int64_t cond_dim() const { return 2 * embedding_dim; }
  /// The most samples one forward takes: HTSAT sees at most 1024 frames (10.23 s).
  int64_t max_samples() const;
  HTSATConfig encoder() const;
  /// The configuration of ../shared/golden/clapsep/clapsep_tiny (embed 8, d_attn 32, ...).
  static CLAPSepConfig tiny();
  std::string to_json() const;
  static CLAPSepConfig from_json(const std::string& json);
  void validate() const;
};

/// CLAPSep's HTSAT_Decoder (s.6): film, skip.{0..3}, layers.{0..3} (coarsest first),
/// inverse_patch_embed, spec_norm, mask_net.{0: Linear, 1: LayerNorm, 2: TransformerEncoder, 3: Linear}.
class TSE_API CLAPSepDecoder : public nn::Module {
 public:
  explicit CLAPSepDecoder(const CLAPSepConfig& config = {}, DType dtype = DType::f32);
  std::string type_name() const override { return "HTSAT_Decoder"; }
  struct Output {
    Tensor film;               // bottleneck (B, 64, C3)
    std::vector<Tensor> skip;  // each level after its SkipTrans, coarsest first
    Tensor h_d;                // (B, T, 64)
    Tensor mask;               // (B, T, F) in (0, 1)
  };
  /// encoder stages (the HTSAT features: patch_embed then every stage), the mixture magnitude
  /// (B, T, F) and the condition (B, cond_dim) -> the mask and the intermediate features.
  Output forward(const Tensor& patch_embed, const std::vector<Tensor>& stages, const Tensor& magnitude,
                 const Tensor& cond);

  std::shared_ptr<nn::FiLMSkip> film;
  std::shared_ptr<nn::ModuleList> skip, layers;
  std::shared_ptr<nn::InversePatchEmbed> inverse_patch_embed;
  std::shared_ptr<nn::BatchNorm2d> spec_norm;
  std::shared_ptr<nn::ModuleList> mask_net;

 private:
  CLAPSepConfig config_;
  std::vector<std::shared_ptr<nn::FiLMSkip>> skips_;
  std::vector<std::shared_ptr<nn::SwinStage>> levels_;
  std::shared_ptr<nn::Linear> mask_in_, mask_out_;
  std::shared_ptr<nn::LayerNorm> mask_norm_;
  std::shared_ptr<nn::TransformerEncoder> mask_transformer_;
};

class TSE_API CLAPSep : public Separator {
 public:
  explicit CLAPSep(const CLAPSepConfig& config = {}, DType dtype = DType::f32);
  std::string type_name() const override { return "CLAPSep"; }
  std::string extra_repr() const override;

  /// c = L2normalise(concat(positive, negative)) (eps 1e-12): each (B, 512) or (512), an
  /// undefined side is zeros; at least one side must be given. ValueError otherwise.
  Tensor condition(const Tensor& positive, const Tensor& negative) const;
  /// mixture (B, L) at 32 kHz with L <= max_samples(), query (B, 1024) or (1, 1024) =
  /// concat(e_pos, e_neg) (normalised inside) -> estimate (B, L). Differentiable.
  Tensor forward(const Tensor& mixture, const Tensor& query) override;
  /// forward() that also returns the named intermediate tensors: resampled, power (HTSAT's,
  /// padded), logmel, bn0, enc.patch_embed, enc.layers.{s}, cond, dec.film, dec.skip.{i},
  /// dec.h_d, magnitude, mask (B, 1, T, F), waveform.
  std::map<std::string, Tensor> forward_taps(const Tensor& mixture, const Tensor& query);
  /// Eval mode, no gradients: mixture (L) or (B, L), query (D) or (B, D) -> same leading shape.
  /// Audio longer than max_samples() goes through separate_chunked (10 s windows, 1 s Hann
  /// crossfades); call separate_chunked directly for other windows or a progress callback.
  Tensor separate(const Tensor& mixture, const Tensor& query) override;
  /// The same with the embeddings given per side (either may be undefined, not both).
  Tensor separate(const Tensor& mixture, const Tensor& positive, const Tensor& negative);

  int64_t sample_rate() const override { return config_.sample_rate; }
  int64_t query_dim() const override { return config_.cond_dim(); }
  bool supports_negative_queries() const override { return true; }
  std::map<std::string, std::string> metadata() const override;
  /// A model built from the config in a file written by save() and loaded strictly.
  static std::shared_ptr<CLAPSep> load(const std::string& path, DType dtype = DType::f32);
  const CLAPSepConfig& config() const { return config_; }

  /// CLAPSep's fine-tuning scope (the default after construction): LoRA A/B and the encoder's
  /// attn.qkv / attn.proj biases, and the whole decoder; every other encoder tensor frozen
  /// (requires_grad false, so no gradient is computed for it).
  void freeze_for_finetuning();
  /// Folds (or unfolds) the encoder's LoRA into its attention weights (inference speed).
  void merge_lora(bool merge = true);

  std::shared_ptr<HTSAT> audio_branch;
  std::shared_ptr<CLAPSepDecoder> decoder_model;

 protected:
  void on_train(bool on) override;  // the encoder stays in eval, as CLAPSep's training_step forces

 private:
  Tensor run(const Tensor& mixture, const Tensor& query, std::map<std::string, Tensor>* taps);
  CLAPSepConfig config_;
};

}  // namespace tse::models
