#pragma once
/// \file transformer.hpp
/// torch.nn's MultiheadAttention and TransformerEncoderLayer with their parameter names
/// (self_attn.in_proj_weight, ..., linear1, linear2, norm1, norm2), as CLAPSep's MaskNet uses
/// them (MODELS.md A s.6.4 step 9): batch first, no positional encoding, no masks.
#include <memory>
#include <string>
#include <vector>

#include "tse/nn/layers.hpp"

namespace tse::nn {

/// Multi-head self-attention: in_proj_weight [3D, D] (rows q, k, v; heads of D / H consecutive
/// rows), in_proj_bias [3D], out_proj Linear(D -> D); softmax(q k^T / sqrt(D / H)) v per head.
class TSE_API MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, DType dtype = DType::f32);
  std::string type_name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;
  /// x (B, T, D) -> (B, T, D): self-attention over all T positions.
  Tensor forward(const Tensor& x) const;
  int64_t embed_dim, num_heads;
  double dropout;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
};

/// nn.TransformerEncoderLayer(batch_first = True): post-norm (norm_first = False) by default:
///   x = norm1(x + dropout(self_attn(x))); x = norm2(x + dropout(linear2(dropout(act(linear1(x))))))
/// with act ReLU (or "gelu"); norm_first = true gives the pre-norm variant.
class TSE_API TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward, double dropout = 0.0,
                          std::string activation = "relu", double layer_norm_eps = 1e-5, bool norm_first = false,
                          DType dtype = DType::f32);
  std::string type_name() const override { return "TransformerEncoderLayer"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) const;
  std::string activation;
  bool norm_first;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> drop;

 private:
  Tensor feed_forward(const Tensor& x) const;
};

/// nn.TransformerEncoder without a final norm: `layers` (TransformerEncoderLayer x N) in turn.
class TSE_API TransformerEncoder : public Module {
 public:
  TransformerEncoder(int64_t num_layers, int64_t d_model, int64_t nhead, int64_t dim_feedforward, double dropout = 0.0,
                     DType dtype = DType::f32);
  std::string type_name() const override { return "TransformerEncoder"; }
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<ModuleList> layers;

 private:
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers_;
};

}  // namespace tse::nn
