#pragma once
/// \file htsat.hpp
/// HTSAT, LAION-CLAP's audio encoder (MODELS.md A s.3), and the CLAP audio embedding built on it
/// (s.3.7). Parameter names are those of `audio_branch.*` / `audio_projection.*` in a CLAP
/// checkpoint (s.9.1), without the tscam/head classifier CLAP and CLAPSep never use. The
/// torchlibrosa constants the checkpoint stores as parameters (STFT conv rows, melW) and the
/// Swin index/mask buffers are computed here, and checked when a state dict carries them.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tse/audio/spectral.hpp"
#include "tse/nn/swin.hpp"

namespace tse::models {

struct TSE_API HTSATConfig {
  int64_t spec_size = 256;   // the square image side; spec_size * freq_ratio frames
  int64_t patch_size = 4;
  int64_t mel_bins = 64;     // freq_ratio = spec_size / mel_bins time chunks stacked in the image
  int64_t embed_dim = 128;   // HTSAT-base (CLAPSep); HTSAT-tiny: 96
  std::vector<int64_t> depths{2, 2, 12, 2};
  std::vector<int64_t> num_heads{4, 8, 16, 32};
  int64_t window_size = 8;
  double mlp_ratio = 4.0;
  double drop_path_rate = 0.1;  // linearly spaced over all blocks (training only)
  int64_t lora_rank = 0;        // CLAPSep's encoder copy: 16 on every attn.qkv / attn.proj
  double lora_alpha = 1.0;
  int64_t freq_ratio() const { return spec_size / mel_bins; }
  int64_t frames() const { return spec_size * freq_ratio(); }  // 1024
  int64_t num_stages() const { return static_cast<int64_t>(depths.size()); }
  /// Channels of stage s: embed_dim * 2^s; num_features() is the last stage's.
  int64_t stage_dim(int64_t s) const { return embed_dim << s; }
  int64_t num_features() const { return stage_dim(num_stages() - 1); }
  std::string to_json() const;
  static HTSATConfig from_json(const std::string& json);
  void validate() const;
};

/// What the encoder computes on the way, for CLAPSep's decoder and for debugging.
struct TSE_API HTSATFeatures {
  Tensor logmel;               // (B, 1, frames, 64) dB, before bn0
  Tensor bn0;                  // (B, 1, frames, 64)
  Tensor patch_embed;          // (B, (spec/patch)^2, C)
  std::vector<Tensor> stages;  // stage s output (after its PatchMerging), the last before `norm`
};

class TSE_API HTSAT : public nn::Module {
 public:
  explicit HTSAT(const HTSATConfig& config = {}, DType dtype = DType::f32);
  std::string type_name() const override { return "HTSAT_Swin_Transformer"; }
  /// 48 kHz audio (B, L) -> HTSAT's log-mel (B, 1, frames, 64): zero-padded power (CLAPSep's
  /// encoder, ClapLength::pad) or bicubically stretched log-mel (frozen CLAP, ClapLength::stretch).
  Tensor logmel(const Tensor& wave_48k, audio::ClapLength length) const;
  /// log-mel (B, 1, frames, 64) -> bn0 -> image -> patch embed -> every stage.
  HTSATFeatures encode(const Tensor& logmel);
  /// The 1024-d pooled embedding: mean over tokens of norm(last stage) -> (B, num_features).
  Tensor pool(const Tensor& last_stage) const;
  const HTSATConfig& config() const { return config_; }

  std::shared_ptr<nn::BatchNorm2d> bn0;
  std::shared_ptr<nn::PatchEmbed> patch_embed;
  std::shared_ptr<nn::ModuleList> layers;  // SwinStage x num_stages
  std::shared_ptr<nn::LayerNorm> norm;

 private:
  HTSATConfig config_;
  std::vector<std::shared_ptr<nn::SwinStage>> stages_;
};

/// CLAP's audio embedding: `audio_branch` (HTSAT, no LoRA) -> pooled 1024-d -> audio_projection
/// (0: Linear(1024 -> 512), ReLU, 2: Linear(512 -> 512)) -> L2 normalise (eps 1e-12).
class TSE_API CLAPAudioEncoder : public nn::Module {
 public:
  explicit CLAPAudioEncoder(const HTSATConfig& config = {}, int64_t embedding_dim = 512, DType dtype = DType::f32);
  std::string type_name() const override { return "CLAPAudioEncoder"; }
  /// 48 kHz audio (L) or (B, L), at most 10 s (480,000 samples; longer clips: crop first) ->
  /// (512) or (B, 512). Shorter clips are tiled and zero-padded to 10 s (LAION's "repeatpad").
  /// Eval mode, no gradients. ValueError for empty, too long or non-finite audio.
  Tensor embed(const Tensor& wave_48k);
  /// The differentiable path from a (B, 1, frames, 64) log-mel.
  Tensor forward(const Tensor& logmel);
  std::shared_ptr<HTSAT> audio_branch;
  std::shared_ptr<nn::Module> audio_projection;
  std::shared_ptr<nn::Linear> projection_in, projection_out;
};

}  // namespace tse::models
