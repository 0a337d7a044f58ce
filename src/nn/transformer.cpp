#include "tse/nn/transformer.hpp"

#include <cmath>
#include <sstream>
#include <utility>

#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/nn/init.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/attention.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/shape.hpp"
#include "tse/ops/softmax.hpp"

namespace tse::nn {

MultiheadAttention::MultiheadAttention(int64_t d, int64_t heads, double dropout_, DType dtype)
    : embed_dim(d), num_heads(heads), dropout(dropout_) {
  TSE_CHECK(d > 0 && heads > 0 && d % heads == 0, "MultiheadAttention: embed_dim ", d,
            " must be a positive multiple of num_heads ", heads);
  TSE_CHECK(dropout_ >= 0.0 && dropout_ < 1.0, "MultiheadAttention: dropout must be in [0, 1), got ", dropout_);
  in_proj_weight = init::xavier_uniform({3 * d, d}, 1.0, dtype);  // torch's _reset_parameters
  in_proj_bias = ops::zeros({3 * d}, dtype);
  register_parameter("in_proj_weight", &in_proj_weight);
  register_parameter("in_proj_bias", &in_proj_bias);
  out_proj = register_module("out_proj", std::make_shared<Linear>(d, d, true, dtype));
  {
    autograd::NoGradGuard no_grad;
    out_proj->bias.zero_();
  }
}

std::string MultiheadAttention::extra_repr() const {
  std::ostringstream os;
  os << "embed_dim=" << embed_dim << ", num_heads=" << num_heads;
  return os.str();
}

Tensor MultiheadAttention::forward(const Tensor& x) const {
  TSE_CHECK(x.dim() == 3 && x.size(2) == embed_dim, "MultiheadAttention: x must be (B, T, ", embed_dim, "), got ",
            x.shape_str());
  const int64_t B = x.size(0), T = x.size(1), hd = embed_dim / num_heads;
  // (B, T, 3, H, hd) -> (3, B, H, T, hd)
  const Tensor qkv = ops::permute(ops::reshape(ops::linear(x, in_proj_weight, in_proj_bias), {B, T, 3, num_heads, hd}),
                                  {2, 0, 3, 1, 4});
  const Tensor q = ops::select(qkv, 0, 0), k = ops::select(qkv, 0, 1), v = ops::select(qkv, 0, 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  Tensor context;
  if (dropout > 0 && is_training()) {
    // Dropout on the probabilities needs them stored: torch's composite (q scaled first).
    const Tensor attn = ops::softmax(ops::matmul(ops::mul(q, scale), ops::transpose(k, -2, -1)), -1);
    context = ops::matmul(ops::dropout(attn, dropout, true), v);
  } else {
    context = ops::scaled_dot_product_attention(q, k, v, scale);  // fused: no (T, T) matrix in memory
  }
  return out_proj->forward(ops::reshape(ops::transpose(context, 1, 2), {B, T, embed_dim}));
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead, int64_t ff, double dropout,
                                                 std::string act, double eps, bool norm_first_, DType dtype)
    : activation(std::move(act)), norm_first(norm_first_) {
  TSE_CHECK(activation == "relu" || activation == "gelu",
            "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"", activation, "\"");
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(d_model, nhead, dropout, dtype));
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, ff, true, dtype));
  drop = register_module("dropout", std::make_shared<Dropout>(dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(ff, d_model, true, dtype));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model, eps, true, dtype));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model, eps, true, dtype));
}

std::string TransformerEncoderLayer::extra_repr() const {
  return "activation=" + activation + (norm_first ? ", norm_first=True" : "");
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) const {
  const Tensor h = linear1->forward(x);
  return drop->forward(linear2->forward(drop->forward(activation == "relu" ? ops::relu(h) : ops::gelu(h))));
}

Tensor TransformerEncoderLayer::forward(const Tensor& x) const {
  if (norm_first) {
    const Tensor y = ops::add(x, drop->forward(self_attn->forward(norm1->forward(x))));
    return ops::add(y, feed_forward(norm2->forward(y)));
  }
  const Tensor y = norm1->forward(ops::add(x, drop->forward(self_attn->forward(x))));
  return norm2->forward(ops::add(y, feed_forward(y)));
}

TransformerEncoder::TransformerEncoder(int64_t n, int64_t d_model, int64_t nhead, int64_t ff, double dropout, DType dtype) {
  TSE_CHECK(n >= 1, "TransformerEncoder: num_layers must be >= 1, got ", n);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < n; ++i)
    layers_.push_back(layers->push_back(
        std::make_shared<TransformerEncoderLayer>(d_model, nhead, ff, dropout, "relu", 1e-5, false, dtype)));
}

Tensor TransformerEncoder::forward(const Tensor& x) const {
  Tensor h = x;
  for (const auto& l : layers_) h = l->forward(h);
  return h;
}

}  // namespace tse::nn
