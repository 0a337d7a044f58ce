#pragma once
/// \file conformer_tse.hpp
/// The Conformer-FiLM target sound extractor of Saijo et al. (MODELS.md B s.2): magnitude STFT
/// of the mixture -> Linear + LayerNorm -> x sqrt(D) -> for each layer: conditioning block (FiLM
/// from the query) then an ESPnet Conformer layer -> after_norm -> Linear -> sigmoid mask ->
/// mask x mixture STFT (mixture phase) -> iSTFT at the input length.
///
/// Parameter names follow ESPnet's ConformerEncoder (embed.0, embed.1, encoders.{l}.…,
/// after_norm) plus ours (cond_blocks.{l}.…, mask_head). The default config is the paper's size:
/// 16 layers x 256, 4 heads, FFN 1024, kernel 33, GroupNorm(8), query 512: 32,004,353 parameters.
#include <map>
#include <memory>
#include <string>

#include "tse/models/separator.hpp"
#include "tse/nn/conformer.hpp"

namespace tse::models {

struct TSE_API ConformerTSEConfig {
  int64_t sample_rate = 32000;  // what the model is trained at (the caller resamples)
  int64_t n_fft = 1024;         // 32 ms Hann window at 32 kHz
  int64_t hop_length = 512;     // 16 ms
  int64_t d_model = 256;
  int64_t num_layers = 16;
  int64_t num_heads = 4;
  int64_t ffn_dim = 1024;
  int64_t conv_kernel = 33;
  nn::ConvNorm conv_norm = nn::ConvNorm::group_norm;
  int64_t conv_norm_groups = 8;
  int64_t query_dim = 512;
  int64_t cond_hidden = 0;      // hidden size of the conditioning block; 0: d_model
  bool cond_residual = true;    // h + block(h, q) (MODELS.md B s.2.4 default) or block(h, q)
  double dropout = 0.0;         // ref. [33]: 0 everywhere
  double attn_dropout = 0.0;
  double pos_dropout = 0.0;
  std::string mask_activation = "sigmoid";  // "sigmoid" (ref. [33]) or "relu" (ESPnet default)
  /// MERL TUSS: divide the waveform by its std (+1e-8) before the STFT and scale the output back.
  bool normalize_input = false;

  int64_t n_bins() const { return n_fft / 2 + 1; }
  /// JSON object with every field (the checkpoint's metadata); from_json accepts a subset and
  /// rejects unknown keys or wrong types, naming them.
  std::string to_json() const;
  static ConformerTSEConfig from_json(const std::string& json);
  /// ValueError naming the field when a value is out of range.
  void validate() const;
};

class TSE_API ConformerTSE : public Separator {
 public:
  explicit ConformerTSE(const ConformerTSEConfig& config = {}, DType dtype = DType::f32);
  std::string type_name() const override { return "ConformerTSE"; }
  std::string extra_repr() const override;

  /// mixture (B, L) waveform at config.sample_rate, query (B, query_dim) (or (1, query_dim),
  /// shared by the batch) -> the target waveform (B, L). Differentiable in the parameters, the
  /// mixture and the query. ValueError for wrong shapes or dtypes, empty or too-short audio
  /// (fewer than n_fft / 2 + 1 samples), NaN/Inf in mixture or query.
  Tensor forward(const Tensor& mixture, const Tensor& query) override;
  /// The network alone: magnitude (B, T, F) and query -> mask (B, T, F).
  Tensor estimate_mask(const Tensor& magnitude, const Tensor& query);
  /// Inference helper: eval mode, no gradients; mixture (L) or (B, L), query (D) or (B, D); the
  /// result has the mixture's leading shape. Restores the previous training mode.
  Tensor separate(const Tensor& mixture, const Tensor& query) override;
  int64_t sample_rate() const override { return config_.sample_rate; }
  int64_t query_dim() const override { return config_.query_dim; }

  /// safetensors metadata describing this model (model type, config JSON, sample rate, STFT,
  /// format version).
  std::map<std::string, std::string> metadata() const override;

  const ConformerTSEConfig& config() const { return config_; }

  /// A model built from the config in a file written by save() and loaded strictly. ValueError
  /// when the file holds another model type or format version, or its tensors do not fit.
  static std::shared_ptr<ConformerTSE> load(const std::string& path, DType dtype = DType::f32);

  std::shared_ptr<nn::ModuleList> embed;  // 0: Linear(F -> D), 1: LayerNorm(D, eps 1e-5)
  std::shared_ptr<nn::RelPositionalEncoding> pos_enc;
  std::shared_ptr<nn::ModuleList> encoders;     // ConformerLayer x num_layers
  std::shared_ptr<nn::LayerNorm> after_norm;    // eps 1e-12
  std::shared_ptr<nn::ModuleList> cond_blocks;  // ConditioningBlock x num_layers
  std::shared_ptr<nn::Linear> mask_head;        // D -> F

 private:
  ConformerTSEConfig config_;
  std::shared_ptr<nn::Linear> embed_linear_;
  std::shared_ptr<nn::LayerNorm> embed_norm_;
  std::shared_ptr<nn::Dropout> embed_dropout_;
  std::vector<std::shared_ptr<nn::ConformerLayer>> layers_;
  std::vector<std::shared_ptr<nn::ConditioningBlock>> conds_;
};

}  // namespace tse::models
