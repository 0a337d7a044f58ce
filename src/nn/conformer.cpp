#include "tse/nn/conformer.hpp"

#include <cmath>
#include <sstream>

#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/nn/init.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/shape.hpp"

namespace tse::nn {
namespace {

void check_btd(const char* who, const char* arg, const Tensor& x, int64_t d) {
  TSE_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d, who, ": ", arg, " must be (B, T, ", d, "), got ",
            x.defined() ? x.shape_str() : "undefined");
}

// A 1x1 Conv1d applied to (B, T, C_in) as a GEMM: the weight [C_out, C_in, 1] viewed [C_out, C_in].
Tensor pointwise(const Conv1d& conv, const Tensor& x) {
  return ops::linear(x, conv.weight.view({conv.out_channels, conv.in_channels}), conv.bias);
}

}  // namespace

// ---- RelPositionalEncoding -----------------------------------------------------------------

RelPositionalEncoding::RelPositionalEncoding(int64_t d, double p, ops::RelPosTable r) : d_model(d), dropout(p), recipe(r) {
  TSE_CHECK(d > 0 && d % 2 == 0, "RelPositionalEncoding: d_model must be positive and even, got ", d);
  TSE_CHECK(p >= 0.0 && p < 1.0, "RelPositionalEncoding: dropout must be in [0, 1), got ", p);
}

std::string RelPositionalEncoding::extra_repr() const {
  std::ostringstream os;
  os << "d_model=" << d_model << ", dropout=" << dropout;
  return os.str();
}

Tensor RelPositionalEncoding::table(int64_t frames, DType dtype) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cached_.defined() || cached_.size(1) != 2 * frames - 1 || cached_.dtype() != dtype)
    cached_ = ops::rel_position_table(frames, d_model, dtype, recipe);
  return cached_;
}

std::pair<Tensor, Tensor> RelPositionalEncoding::forward(const Tensor& x) const {
  check_btd("RelPositionalEncoding", "x", x, d_model);
  TSE_CHECK(x.size(1) >= 1, "RelPositionalEncoding: x needs at least one frame, got ", x.shape_str());
  Tensor scaled = ops::mul(x, std::sqrt(static_cast<double>(d_model)));
  Tensor pos = table(x.size(1), x.dtype());
  if (dropout > 0.0 && is_training()) return {ops::dropout(scaled, dropout, true), ops::dropout(pos, dropout, true)};
  return {scaled, pos};
}

// ---- RelPositionMultiHeadedAttention -------------------------------------------------------

RelPositionMultiHeadedAttention::RelPositionMultiHeadedAttention(int64_t h, int64_t d, double p, DType dtype)
    : n_head(h), n_feat(d), d_k(h > 0 ? d / h : 0), dropout(p) {
  TSE_CHECK(h > 0 && d > 0 && d % h == 0, "RelPositionMultiHeadedAttention: n_feat (", d,
            ") must be a positive multiple of n_head (", h, ")");
  TSE_CHECK(p >= 0.0 && p < 1.0, "RelPositionMultiHeadedAttention: dropout must be in [0, 1), got ", p);
  linear_q = register_module("linear_q", std::make_shared<Linear>(d, d, true, dtype));
  linear_k = register_module("linear_k", std::make_shared<Linear>(d, d, true, dtype));
  linear_v = register_module("linear_v", std::make_shared<Linear>(d, d, true, dtype));
  linear_out = register_module("linear_out", std::make_shared<Linear>(d, d, true, dtype));
  linear_pos = register_module("linear_pos", std::make_shared<Linear>(d, d, false, dtype));
  // ESPnet: torch.nn.init.xavier_uniform_ on the [H, d_k] biases.
  pos_bias_u = init::xavier_uniform({h, d_k}, 1.0, dtype);
  pos_bias_v = init::xavier_uniform({h, d_k}, 1.0, dtype);
  register_parameter("pos_bias_u", &pos_bias_u);
  register_parameter("pos_bias_v", &pos_bias_v);
}

std::string RelPositionMultiHeadedAttention::extra_repr() const {
  std::ostringstream os;
  os << "n_head=" << n_head << ", n_feat=" << n_feat << ", dropout=" << dropout;
  return os.str();
}

Tensor RelPositionMultiHeadedAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                const Tensor& pos_emb, Tensor* attn_out) const {
  const char* who = "RelPositionMultiHeadedAttention";
  check_btd(who, "query", query, n_feat);
  check_btd(who, "key", key, n_feat);
  check_btd(who, "value", value, n_feat);
  TSE_CHECK(key.sizes() == value.sizes() && key.size(0) == query.size(0), who, ": key ", key.shape_str(), " and value ",
            value.shape_str(), " must match each other and the batch of query ", query.shape_str());
  TSE_CHECK(pos_emb.defined() && pos_emb.dim() == 3 && pos_emb.size(2) == n_feat &&
                pos_emb.size(1) == 2 * key.size(1) - 1 && (pos_emb.size(0) == 1 || pos_emb.size(0) == query.size(0)),
            who, ": pos_emb must be (1 or B, 2T - 1, ", n_feat, ") for T = ", key.size(1), ", got ",
            pos_emb.defined() ? pos_emb.shape_str() : "undefined");
  Tensor q = linear_q->forward(query), k = linear_k->forward(key), v = linear_v->forward(value);
  Tensor p = linear_pos->forward(pos_emb);
  const double p_drop = dropout > 0.0 && is_training() ? dropout : 0.0;
  Tensor ctx = ops::rel_pos_attention(q, k, v, p, pos_bias_u, pos_bias_v, n_head, attn_out, p_drop);
  return linear_out->forward(ctx);
}

// ---- FeedForward ---------------------------------------------------------------------------

FeedForward::FeedForward(int64_t d, int64_t hidden, double p, DType dtype) {
  w_1 = register_module("w_1", std::make_shared<Linear>(d, hidden, true, dtype));
  w_2 = register_module("w_2", std::make_shared<Linear>(hidden, d, true, dtype));
  drop = register_module("dropout", std::make_shared<Dropout>(p));
}

Tensor FeedForward::forward(const Tensor& x) const { return w_2->forward(drop->forward(ops::silu(w_1->forward(x)))); }

// ---- ConvolutionModule ---------------------------------------------------------------------

ConvolutionModule::ConvolutionModule(int64_t c, int64_t k, ConvNorm norm, int64_t groups, DType dtype)
    : channels(c), kernel_size(k), norm_kind(norm) {
  TSE_CHECK(k > 0 && k % 2 == 1, "ConvolutionModule: kernel_size must be odd (symmetric \"same\" padding), got ", k);
  pointwise_conv1 = register_module("pointwise_conv1", std::make_shared<Conv1d>(c, 2 * c, 1, Conv1dOptions{.dtype = dtype}));
  depthwise_conv = register_module(
      "depthwise_conv", std::make_shared<Conv1d>(c, c, k, Conv1dOptions{.padding = (k - 1) / 2, .groups = c, .dtype = dtype}));
  if (norm == ConvNorm::group_norm)
    group_norm = register_module("norm", std::make_shared<GroupNorm>(groups, c, 1e-5, true, dtype));
  else
    batch_norm = register_module("norm", std::make_shared<BatchNorm1d>(c, 1e-5, 0.1, true, true, dtype));
  pointwise_conv2 = register_module("pointwise_conv2", std::make_shared<Conv1d>(c, c, 1, Conv1dOptions{.dtype = dtype}));
}

std::string ConvolutionModule::extra_repr() const {
  std::ostringstream os;
  os << "channels=" << channels << ", kernel_size=" << kernel_size
     << ", norm=" << (norm_kind == ConvNorm::group_norm ? "group_norm" : "batch_norm");
  return os.str();
}

Tensor ConvolutionModule::forward(const Tensor& x) const {
  check_btd("ConvolutionModule", "x", x, channels);
  Tensor y = ops::glu(pointwise(*pointwise_conv1, x), -1);  // (B, T, C): first half * sigmoid(second)
  y = depthwise_conv->forward(y.transpose(1, 2));            // (B, C, T)
  y = norm_kind == ConvNorm::group_norm ? group_norm->forward(y) : batch_norm->forward(y);
  y = ops::silu(y).transpose(1, 2);  // back to (B, T, C)
  return pointwise(*pointwise_conv2, y);
}

// ---- ConformerLayer ------------------------------------------------------------------------

ConformerLayer::ConformerLayer(const ConformerLayerOptions& o) : options(o) {
  const DType dt = o.dtype;
  self_attn = register_module("self_attn",
                              std::make_shared<RelPositionMultiHeadedAttention>(o.n_head, o.d_model, o.attn_dropout, dt));
  feed_forward = register_module("feed_forward", std::make_shared<FeedForward>(o.d_model, o.ffn_dim, o.dropout, dt));
  feed_forward_macaron =
      register_module("feed_forward_macaron", std::make_shared<FeedForward>(o.d_model, o.ffn_dim, o.dropout, dt));
  conv_module = register_module(
      "conv_module", std::make_shared<ConvolutionModule>(o.d_model, o.conv_kernel, o.conv_norm, o.conv_norm_groups, dt));
  // ESPnet's LayerNorm class: eps 1e-12.
  norm_ff = register_module("norm_ff", std::make_shared<LayerNorm>(o.d_model, 1e-12, true, dt));
  norm_mha = register_module("norm_mha", std::make_shared<LayerNorm>(o.d_model, 1e-12, true, dt));
  norm_ff_macaron = register_module("norm_ff_macaron", std::make_shared<LayerNorm>(o.d_model, 1e-12, true, dt));
  norm_conv = register_module("norm_conv", std::make_shared<LayerNorm>(o.d_model, 1e-12, true, dt));
  norm_final = register_module("norm_final", std::make_shared<LayerNorm>(o.d_model, 1e-12, true, dt));
  drop = register_module("dropout", std::make_shared<Dropout>(o.dropout));
}

Tensor ConformerLayer::forward(const Tensor& x_in, const Tensor& pos_emb) const {
  check_btd("EncoderLayer", "x", x_in, options.d_model);
  Tensor x = ops::add(x_in, drop->forward(feed_forward_macaron->forward(norm_ff_macaron->forward(x_in))), 0.5);
  Tensor h = norm_mha->forward(x);
  x = ops::add(x, drop->forward(self_attn->forward(h, h, h, pos_emb)));
  x = ops::add(x, drop->forward(conv_module->forward(norm_conv->forward(x))));
  x = ops::add(x, drop->forward(feed_forward->forward(norm_ff->forward(x))), 0.5);
  return norm_final->forward(x);
}

// ---- ConditioningBlock ---------------------------------------------------------------------

ConditioningBlock::ConditioningBlock(int64_t d, int64_t q, int64_t h, bool res, DType dtype)
    : d_model(d), query_dim(q), hidden(h > 0 ? h : d), residual(res) {
  linear1 = register_module("linear1", std::make_shared<Linear>(d, hidden, true, dtype));
  film = register_module("film", std::make_shared<FiLM>(q, hidden, -1, dtype));
  linear2 = register_module("linear2", std::make_shared<Linear>(hidden, d, true, dtype));
}

std::string ConditioningBlock::extra_repr() const {
  std::ostringstream os;
  os << "d_model=" << d_model << ", query_dim=" << query_dim << ", hidden=" << hidden
     << ", residual=" << (residual ? "True" : "False");
  return os.str();
}

Tensor ConditioningBlock::forward(const Tensor& h, const Tensor& query) const {
  check_btd("ConditioningBlock", "h", h, d_model);
  Tensor z = linear2->forward(film->forward(ops::silu(linear1->forward(h)), query));
  return residual ? ops::add(h, z) : z;
}

}  // namespace tse::nn
