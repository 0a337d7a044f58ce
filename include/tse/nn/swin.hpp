#pragma once
/// \file swin.hpp
/// The Swin-transformer pieces of HTSAT (LAION-CLAP's audio encoder) and of CLAPSep's decoder
/// (MODELS.md A s.3, s.6, s.7), with the official parameter names. Tokens are (B, H*W, C),
/// row-major on an H x W grid (H: the 4-chunk x mel axis of HTSAT's image, W: time).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tse/nn/layers.hpp"

namespace tse::nn {

// ---- functional pieces (differentiable, any float dtype) ----------------------------------

/// (B, H, W, C) -> (B * nW, ws * ws, C): non-overlapping ws x ws windows, windows row-major
/// over the grid, tokens row-major inside a window. H and W must be multiples of ws.
TSE_API Tensor window_partition(const Tensor& x, int64_t window_size);
/// The inverse of window_partition: (B * nW, ws * ws, C) -> (B, H, W, C).
TSE_API Tensor window_reverse(const Tensor& windows, int64_t window_size, int64_t height, int64_t width);
/// Swin's relative-position index [ws^2, ws^2] (int64): for tokens a = (ia, ja), b = (ib, jb)
/// of a window, (ia - ib + ws - 1) (2 ws - 1) + (ja - jb + ws - 1).
TSE_API Tensor relative_position_index(int64_t window_size);
/// The shifted-window mask [nW, ws^2, ws^2]: 0 where two tokens of a window come from the same
/// region of the rolled grid (rows/cols split at H - ws and H - shift), -100 elsewhere.
TSE_API Tensor shifted_window_mask(int64_t height, int64_t width, int64_t window_size, int64_t shift_size,
                                   DType dtype = DType::f32);
/// Per-sample stochastic depth: in training, zeroes whole batch items with probability p and
/// scales the rest by 1 / (1 - p) (timm's drop_path); the identity otherwise.
TSE_API Tensor drop_path(const Tensor& x, double p, bool training);
/// HTSAT's reshape_wav2img for a full 1024-frame log-mel: (B, 1, 1024, 64) -> (B, 1, 256, 256),
/// image row 64 k + f, column t - 256 k for frame t of chunk k = t / 256 and mel bin f (s.3.2).
/// `chunks` generalises the 4: (B, 1, chunks * W, F) -> (B, 1, chunks * F, W).
TSE_API Tensor wav_to_image(const Tensor& logmel, int64_t chunks = 4);
/// The exact inverse (CLAPSep's reshape_img2wav): (B, 1, chunks * F, W) -> (B, 1, chunks * W, F).
TSE_API Tensor image_to_wav(const Tensor& image, int64_t chunks = 4);

// ---- modules --------------------------------------------------------------------------------

/// loralib's Linear with a low-rank update: y = x W^T + b + (alpha / r) (x A^T) B^T, with
/// lora_A [r, in] (kaiming-uniform, a = sqrt 5) and lora_B [out, r] (zeros). rank 0 is a plain
/// Linear with no LoRA tensors. merge() folds (alpha / r) B A into a cached weight used by
/// forward (the state dict keeps W, A and B unmerged, so saving a merged model loses nothing);
/// unmerge() drops the cache. A merged forward computes no gradient for A and B.
class TSE_API LoRALinear : public Linear {
 public:
  LoRALinear(int64_t in_features, int64_t out_features, int64_t rank, double alpha = 1.0, bool bias = true,
             DType dtype = DType::f32);
  std::string type_name() const override { return rank > 0 ? "LoRALinear" : "Linear"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  double scaling() const { return rank > 0 ? alpha / static_cast<double>(rank) : 0.0; }
  /// W + (alpha / r) B A, the weight a merged forward uses.
  Tensor merged_weight() const;
  void merge();
  void unmerge();
  bool merged() const { return merged_weight_.defined(); }
  int64_t rank;
  double alpha;
  Tensor lora_A, lora_B;

 protected:
  void on_train(bool on) override {  // loralib: training mode unmerges
    if (on) unmerge();
  }

 private:
  Tensor merged_weight_;
};

/// Options shared by the attention and block constructors.
struct SwinOptions {
  int64_t window_size = 8;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int64_t lora_rank = 0;  // > 0: LoRALinear on attn.qkv and attn.proj (CLAPSep's encoder: 16)
  double lora_alpha = 1.0;
  DType dtype = DType::f32;
};

/// Windowed multi-head self-attention with a learned relative-position bias (HTSAT's
/// WindowAttention): qkv (C -> 3C, bias) split [q | k | v] and heads of C / nH channels;
/// softmax(q k^T / sqrt(d) + bias + mask) v; proj (C -> C). Parameter names:
/// relative_position_bias_table [(2 ws - 1)^2, nH], relative_position_index (a constant),
/// qkv.{weight,bias[,lora_A,lora_B]}, proj.{...}.
class TSE_API WindowAttention : public Module {
 public:
  WindowAttention(int64_t dim, int64_t num_heads, const SwinOptions& options = {});
  std::string type_name() const override { return "WindowAttention"; }
  std::string extra_repr() const override;
  /// windows (B * nW, ws^2, C), mask [nW, ws^2, ws^2] or undefined -> (B * nW, ws^2, C).
  Tensor forward(const Tensor& windows, const Tensor& mask = Tensor()) const;
  /// The bias of every head [nH, ws^2, ws^2], gathered from the table.
  Tensor relative_position_bias() const;
  int64_t dim, num_heads, window_size;
  Tensor relative_position_bias_table, relative_position_index;
  std::shared_ptr<LoRALinear> qkv, proj;
};

/// HTSAT's Mlp: fc2(GELU(fc1(x))), hidden = mlp_ratio * C (exact erf GELU).
class TSE_API SwinMlp : public Module {
 public:
  SwinMlp(int64_t dim, int64_t hidden, DType dtype = DType::f32);
  std::string type_name() const override { return "Mlp"; }
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<Linear> fc1, fc2;
};

/// HTSAT's SwinTransformerBlock (pre-norm): x += drop_path(W-MSA(LN1(x))) with a cyclic shift
/// by -shift before and +shift after the windowed attention; x += drop_path(MLP(LN2(x))).
/// A grid no larger than the window forces shift 0 and window = the grid side (HTSAT's rule).
/// Names: attn_mask (a constant, shifted blocks only), norm1, attn, norm2, mlp.
class TSE_API SwinBlock : public Module {
 public:
  SwinBlock(int64_t dim, std::pair<int64_t, int64_t> resolution, int64_t num_heads, int64_t shift_size,
            double drop_path = 0.0, const SwinOptions& options = {});
  std::string type_name() const override { return "SwinTransformerBlock"; }
  std::string extra_repr() const override;
  /// x (B, H * W, C) -> (B, H * W, C).
  Tensor forward(const Tensor& x) const;
  int64_t dim, height, width, num_heads, window_size, shift_size;
  double drop_path_rate;
  Tensor attn_mask;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<WindowAttention> attn;
  std::shared_ptr<SwinMlp> mlp;
};

/// HTSAT's PatchMerging: the 2 x 2 phases (even row, even col), (odd, even), (even, odd), (odd,
/// odd) concatenated -> LayerNorm(4C) -> reduction Linear(4C -> 2C, no bias).
/// (B, H * W, C) -> (B, H/2 * W/2, 2C).
class TSE_API PatchMerging : public Module {
 public:
  PatchMerging(std::pair<int64_t, int64_t> resolution, int64_t dim, DType dtype = DType::f32);
  std::string type_name() const override { return "PatchMerging"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  int64_t height, width, dim;
  std::shared_ptr<Linear> reduction;
  std::shared_ptr<LayerNorm> norm;
};

/// CLAPSep's PatchExpand, PatchMerging's inverse: expand Linear(C -> 2C, no bias), the four
/// C/2 blocks e0..e3 placed at (2h, 2w), (2h+1, 2w), (2h, 2w+1), (2h+1, 2w+1), LayerNorm(C/2).
/// (B, H * W, C) -> (B, 2H * 2W, C/2).
class TSE_API PatchExpand : public Module {
 public:
  PatchExpand(std::pair<int64_t, int64_t> resolution, int64_t dim, DType dtype = DType::f32);
  std::string type_name() const override { return "PatchExpand"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  int64_t height, width, dim;
  std::shared_ptr<Linear> expand;
  std::shared_ptr<LayerNorm> norm;
};

/// HTSAT's PatchEmbed: Conv2d(in -> C, kernel = stride = patch) -> tokens row-major -> LayerNorm.
/// image (B, in, S, S) -> (B, (S / patch)^2, C).
class TSE_API PatchEmbed : public Module {
 public:
  PatchEmbed(int64_t patch_size, int64_t in_channels, int64_t embed_dim, DType dtype = DType::f32);
  std::string type_name() const override { return "PatchEmbed"; }
  Tensor forward(const Tensor& image) const;
  int64_t patch_size, in_channels, embed_dim;
  std::shared_ptr<Conv2d> proj;
  std::shared_ptr<LayerNorm> norm;
};

/// CLAPSep's InversePatchEmbed: LayerNorm(C) -> (B, C, g, g) -> ConvTranspose2d(C -> out,
/// kernel = stride = patch). tokens (B, g * g, C) -> image (B, out, g * patch, g * patch).
class TSE_API InversePatchEmbed : public Module {
 public:
  InversePatchEmbed(int64_t patch_size, int64_t out_channels, int64_t embed_dim, DType dtype = DType::f32);
  std::string type_name() const override { return "InversePatchEmbed"; }
  Tensor forward(const Tensor& tokens) const;
  int64_t patch_size, out_channels, embed_dim;
  std::shared_ptr<ConvTranspose2d> proj;
  std::shared_ptr<LayerNorm> norm;
};

/// One Swin stage (HTSAT's BasicLayer / CLAPSep's BasicLayerDec): `blocks` (SwinBlock x depth at
/// `resolution`, odd blocks shifted by window / 2 when `alternate_shift`), and an optional
/// `downsample`: PatchMerging after the blocks (encoder) or PatchExpand before them (decoder:
/// from the grid of half the resolution and twice the dim).
class TSE_API SwinStage : public Module {
 public:
  enum class Resample { none, merge_after, expand_before };
  SwinStage(int64_t dim, std::pair<int64_t, int64_t> resolution, int64_t depth, int64_t num_heads,
            const std::vector<double>& drop_path, bool alternate_shift, Resample resample, const SwinOptions& options = {});
  std::string type_name() const override { return resample == Resample::expand_before ? "BasicLayerDec" : "BasicLayer"; }
  Tensor forward(const Tensor& x) const;
  Resample resample;
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<PatchMerging> merge;   // registered as "downsample" when present
  std::shared_ptr<PatchExpand> expand;   // registered as "downsample" when present

 private:
  std::vector<std::shared_ptr<SwinBlock>> blocks_;
};

/// CLAPSep's SkipTrans: u = FiLM(feature_proj(skip), c) = gamma(c) * Linear(skip) + beta(c) (no
/// +1), then norm(u + x) with a residual x, or norm(u) without. Names feature_proj, skip_conv
/// (the FiLM: skip_conv.gamma, skip_conv.beta), norm.
class TSE_API FiLMSkip : public Module {
 public:
  FiLMSkip(int64_t in_features, int64_t out_features, int64_t cond_dim, DType dtype = DType::f32);
  std::string type_name() const override { return "SkipTrans"; }
  std::string extra_repr() const override;
  /// skip (B, N, in), cond (B, cond_dim), residual (B, N, out) or undefined -> (B, N, out).
  Tensor forward(const Tensor& skip, const Tensor& cond, const Tensor& residual = Tensor()) const;
  int64_t in_features, out_features, cond_dim;
  std::shared_ptr<Linear> feature_proj;
  std::shared_ptr<FiLM> skip_conv;
  std::shared_ptr<LayerNorm> norm;
};

}  // namespace tse::nn
