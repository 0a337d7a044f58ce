#pragma once
/// \file conformer.hpp
/// ESPnet's Conformer building blocks (MODELS.md B s.2.3 and its ESPnet addendum), with ESPnet's
/// parameter names, plus the conditioning block of Saijo et al. (B s.2.4). All tensors are
/// (B, T, D) (batch, frames, features) unless stated.
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "tse/nn/layers.hpp"
#include "tse/ops/attention.hpp"

namespace tse::nn {

/// ESPnet's RelPositionalEncoding ("new" rel_pos): forward(x) returns (x * sqrt(D), table) with
/// the table [1, 2T - 1, D] of relative distances r = T-1 ... -(T-1) (no parameters; dropout hits
/// both outputs, as ESPnet). Tables are cached per (T, dtype).
class TSE_API RelPositionalEncoding : public Module {
 public:
  explicit RelPositionalEncoding(int64_t d_model, double dropout = 0.0,
                                 ops::RelPosTable recipe = ops::RelPosTable::espnet_f32);
  std::string type_name() const override { return "RelPositionalEncoding"; }
  std::string extra_repr() const override;
  std::pair<Tensor, Tensor> forward(const Tensor& x) const;
  /// The table for T frames (cached).
  Tensor table(int64_t frames, DType dtype) const;
  int64_t d_model;
  double dropout;
  ops::RelPosTable recipe;

 private:
  mutable std::mutex mutex_;
  mutable Tensor cached_;  // last table built
};

/// ESPnet's RelPositionMultiHeadedAttention: q, k, v, out projections with bias, linear_pos
/// without bias, per-head biases pos_bias_u / pos_bias_v [H, d_k] (Xavier-uniform), scores
/// ((q + u) k^T + rel_shift((q + v) p^T)) / sqrt(d_k), softmax, attention dropout.
class TSE_API RelPositionMultiHeadedAttention : public Module {
 public:
  RelPositionMultiHeadedAttention(int64_t n_head, int64_t n_feat, double dropout = 0.0, DType dtype = DType::f32);
  std::string type_name() const override { return "RelPositionMultiHeadedAttention"; }
  std::string extra_repr() const override;
  /// query/key/value (B, T, D), pos_emb (1 or B, 2T - 1, D) -> (B, T, D). attn_out receives the
  /// probabilities (B, H, T, T) when given.
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& pos_emb,
                 Tensor* attn_out = nullptr) const;
  int64_t n_head, n_feat, d_k;
  double dropout;
  std::shared_ptr<Linear> linear_q, linear_k, linear_v, linear_out, linear_pos;
  Tensor pos_bias_u, pos_bias_v;
};

/// ESPnet's PositionwiseFeedForward with Swish: w_2(dropout(swish(w_1(x)))).
class TSE_API FeedForward : public Module {
 public:
  FeedForward(int64_t d_model, int64_t hidden, double dropout = 0.0, DType dtype = DType::f32);
  std::string type_name() const override { return "PositionwiseFeedForward"; }
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<Linear> w_1, w_2;
  std::shared_ptr<Dropout> drop;
};

/// Which normalisation the conv module uses: GroupNorm (ref. [33], our default) or ESPnet's
/// BatchNorm1d.
enum class ConvNorm { group_norm, batch_norm };

/// ESPnet's ConvolutionModule: pointwise_conv1 (D -> 2D) -> GLU over channels -> depthwise_conv
/// (kernel k, "same" zero padding) -> norm -> Swish -> pointwise_conv2 (D -> D). Input and output
/// (B, T, D). The 1x1 convs keep Conv1d's [C_out, C_in, 1] weights (checkpoint names and shapes)
/// but run as GEMMs on the (B, T, D) layout.
class TSE_API ConvolutionModule : public Module {
 public:
  ConvolutionModule(int64_t channels, int64_t kernel_size, ConvNorm norm = ConvNorm::group_norm, int64_t norm_groups = 8,
                    DType dtype = DType::f32);
  std::string type_name() const override { return "ConvolutionModule"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  int64_t channels, kernel_size;
  ConvNorm norm_kind;
  std::shared_ptr<Conv1d> pointwise_conv1, depthwise_conv, pointwise_conv2;
  std::shared_ptr<GroupNorm> group_norm;  // the registered "norm" is one of these two
  std::shared_ptr<BatchNorm1d> batch_norm;
};

struct ConformerLayerOptions {
  int64_t d_model = 256;
  int64_t n_head = 4;
  int64_t ffn_dim = 1024;
  int64_t conv_kernel = 33;
  ConvNorm conv_norm = ConvNorm::group_norm;
  int64_t conv_norm_groups = 8;
  double dropout = 0.0;       // residual branches and FFN hidden
  double attn_dropout = 0.0;  // attention probabilities
  DType dtype = DType::f32;
};

/// ESPnet's conformer EncoderLayer, pre-LN with macaron FFNs (MODELS.md B s.2.3 step 4):
///   x += 0.5 ff_macaron(norm_ff_macaron(x)); x += self_attn(norm_mha(x)); x += conv(norm_conv(x));
///   x += 0.5 ff(norm_ff(x)); x = norm_final(x). Every LayerNorm uses eps 1e-12.
class TSE_API ConformerLayer : public Module {
 public:
  explicit ConformerLayer(const ConformerLayerOptions& options = {});
  std::string type_name() const override { return "EncoderLayer"; }
  Tensor forward(const Tensor& x, const Tensor& pos_emb) const;
  ConformerLayerOptions options;
  std::shared_ptr<RelPositionMultiHeadedAttention> self_attn;
  std::shared_ptr<FeedForward> feed_forward, feed_forward_macaron;
  std::shared_ptr<ConvolutionModule> conv_module;
  std::shared_ptr<LayerNorm> norm_ff, norm_mha, norm_ff_macaron, norm_conv, norm_final;
  std::shared_ptr<Dropout> drop;
};

/// Saijo et al.'s conditioning block placed before each Conformer layer:
///   z = linear2(FiLM(swish(linear1(h)), q)); h + z (residual, the default) or z.
/// h (B, T, D), q (B, query_dim).
class TSE_API ConditioningBlock : public Module {
 public:
  ConditioningBlock(int64_t d_model, int64_t query_dim, int64_t hidden = 0, bool residual = true,
                    DType dtype = DType::f32);
  std::string type_name() const override { return "ConditioningBlock"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& h, const Tensor& query) const;
  int64_t d_model, query_dim, hidden;
  bool residual;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<FiLM> film;
};

}  // namespace tse::nn
