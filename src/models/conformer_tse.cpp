#include "tse/models/conformer_tse.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "src/core/config_fields.hpp"
#include "tse/audio/spectral.hpp"
#include "tse/audio/stft.hpp"
#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/io/safetensors.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/reduction.hpp"
#include "tse/ops/shape.hpp"

namespace tse::models {
namespace {

// The checkpoint format of this model; bump when names or semantics change.
constexpr const char* kFormatVersion = "1";

bool all_finite(const Tensor& x) {
  const Tensor c = x.contiguous();
  const int64_t n = c.numel();
  if (c.dtype() == DType::f32) {
    const float* p = static_cast<const float*>(c.data_ptr());
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  } else {
    const double* p = static_cast<const double*>(c.data_ptr());
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

}  // namespace

// ---- config --------------------------------------------------------------------------------

void ConformerTSEConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    TSE_CHECK(v > 0, "ConformerTSEConfig: ", field, " must be positive, got ", v);
  };
  positive("sample_rate", sample_rate);
  positive("n_fft", n_fft);
  positive("hop_length", hop_length);
  positive("d_model", d_model);
  positive("num_layers", num_layers);
  positive("num_heads", num_heads);
  positive("ffn_dim", ffn_dim);
  positive("conv_kernel", conv_kernel);
  positive("conv_norm_groups", conv_norm_groups);
  positive("query_dim", query_dim);
  TSE_CHECK(n_fft % 2 == 0, "ConformerTSEConfig: n_fft must be even, got ", n_fft);
  TSE_CHECK(hop_length <= n_fft, "ConformerTSEConfig: hop_length (", hop_length, ") must not exceed n_fft (", n_fft, ")");
  TSE_CHECK(d_model % num_heads == 0 && d_model % 2 == 0, "ConformerTSEConfig: d_model (", d_model,
            ") must be even and a multiple of num_heads (", num_heads, ")");
  TSE_CHECK(conv_kernel % 2 == 1, "ConformerTSEConfig: conv_kernel must be odd, got ", conv_kernel);
  TSE_CHECK(conv_norm != nn::ConvNorm::group_norm || d_model % conv_norm_groups == 0, "ConformerTSEConfig: d_model (",
            d_model, ") must be divisible by conv_norm_groups (", conv_norm_groups, ")");
  TSE_CHECK(cond_hidden >= 0, "ConformerTSEConfig: cond_hidden must be >= 0 (0: d_model), got ", cond_hidden);
  for (auto [field, p] : {std::pair{"dropout", dropout}, {"attn_dropout", attn_dropout}, {"pos_dropout", pos_dropout}})
    TSE_CHECK(p >= 0.0 && p < 1.0, "ConformerTSEConfig: ", field, " must be in [0, 1), got ", p);
  TSE_CHECK(mask_activation == "sigmoid" || mask_activation == "relu",
            "ConformerTSEConfig: mask_activation must be \"sigmoid\" or \"relu\", got \"", mask_activation, "\"");
}

namespace {
const detail::ConfigFields<ConformerTSEConfig>& config_fields() {
  using C = ConformerTSEConfig;
  static const auto* fields = [] {
    auto* f = new detail::ConfigFields<C>("ConformerTSEConfig");
    f->add("sample_rate", &C::sample_rate)
        .add("n_fft", &C::n_fft)
        .add("hop_length", &C::hop_length)
        .add("d_model", &C::d_model)
        .add("num_layers", &C::num_layers)
        .add("num_heads", &C::num_heads)
        .add("ffn_dim", &C::ffn_dim)
        .add("conv_kernel", &C::conv_kernel)
        .add_enum("conv_norm", &C::conv_norm,
                  {{"group_norm", nn::ConvNorm::group_norm}, {"batch_norm", nn::ConvNorm::batch_norm}})
        .add("conv_norm_groups", &C::conv_norm_groups)
        .add("query_dim", &C::query_dim)
        .add("cond_hidden", &C::cond_hidden)
        .add("cond_residual", &C::cond_residual)
        .add("dropout", &C::dropout)
        .add("attn_dropout", &C::attn_dropout)
        .add("pos_dropout", &C::pos_dropout)
        .add("mask_activation", &C::mask_activation)
        .add("normalize_input", &C::normalize_input);
    return f;
  }();
  return *fields;
}
}  // namespace

std::string ConformerTSEConfig::to_json() const { return config_fields().to_json(*this).dump(); }

ConformerTSEConfig ConformerTSEConfig::from_json(const std::string& text) {
  ConformerTSEConfig c = config_fields().from_json_text(text);
  c.validate();
  return c;
}

// ---- model ---------------------------------------------------------------------------------

ConformerTSE::ConformerTSE(const ConformerTSEConfig& config, DType dtype) : config_(config) {
  config_.validate();
  const auto& c = config_;
  // ESPnet's input layer is Sequential(Linear, LayerNorm, Dropout, RelPositionalEncoding).
  embed = register_module("embed", std::make_shared<nn::ModuleList>());
  embed_linear_ = embed->push_back(std::make_shared<nn::Linear>(c.n_bins(), c.d_model, true, dtype));
  embed_norm_ = embed->push_back(std::make_shared<nn::LayerNorm>(c.d_model, 1e-5, true, dtype));
  embed_dropout_ = embed->push_back(std::make_shared<nn::Dropout>(c.pos_dropout));
  pos_enc = embed->push_back(std::make_shared<nn::RelPositionalEncoding>(c.d_model, c.pos_dropout));
  encoders = register_module("encoders", std::make_shared<nn::ModuleList>());
  nn::ConformerLayerOptions lo{.d_model = c.d_model,
                               .n_head = c.num_heads,
                               .ffn_dim = c.ffn_dim,
                               .conv_kernel = c.conv_kernel,
                               .conv_norm = c.conv_norm,
                               .conv_norm_groups = c.conv_norm_groups,
                               .dropout = c.dropout,
                               .attn_dropout = c.attn_dropout,
                               .dtype = dtype};
  for (int64_t l = 0; l < c.num_layers; ++l) layers_.push_back(encoders->push_back(std::make_shared<nn::ConformerLayer>(lo)));
  after_norm = register_module("after_norm", std::make_shared<nn::LayerNorm>(c.d_model, 1e-12, true, dtype));
  cond_blocks = register_module("cond_blocks", std::make_shared<nn::ModuleList>());
  for (int64_t l = 0; l < c.num_layers; ++l)
    conds_.push_back(cond_blocks->push_back(
        std::make_shared<nn::ConditioningBlock>(c.d_model, c.query_dim, c.cond_hidden, c.cond_residual, dtype)));
  mask_head = register_module("mask_head", std::make_shared<nn::Linear>(c.d_model, c.n_bins(), true, dtype));
}

std::string ConformerTSE::extra_repr() const {
  std::ostringstream os;
  os << "layers=" << config_.num_layers << ", d_model=" << config_.d_model << ", heads=" << config_.num_heads
     << ", ffn=" << config_.ffn_dim << ", kernel=" << config_.conv_kernel << ", query_dim=" << config_.query_dim;
  return os.str();
}

Tensor ConformerTSE::estimate_mask(const Tensor& magnitude, const Tensor& query) {
  const auto& c = config_;
  TSE_CHECK(magnitude.defined() && magnitude.dim() == 3 && magnitude.size(2) == c.n_bins(),
            "ConformerTSE.estimate_mask: magnitude must be (B, T, ", c.n_bins(), "), got ",
            magnitude.defined() ? magnitude.shape_str() : "undefined");
  TSE_CHECK(query.defined() && query.dim() == 2 && query.size(1) == c.query_dim &&
                (query.size(0) == magnitude.size(0) || query.size(0) == 1),
            "ConformerTSE: query must be (B, ", c.query_dim, ") or (1, ", c.query_dim, ") for a batch of ",
            magnitude.size(0), ", got ", query.defined() ? query.shape_str() : "undefined");
  Tensor h = embed_norm_->forward(embed_linear_->forward(magnitude));
  h = embed_dropout_->forward(h);
  auto [x, pos_emb] = pos_enc->forward(h);
  for (size_t l = 0; l < layers_.size(); ++l) {
    x = conds_[l]->forward(x, query);
    x = layers_[l]->forward(x, pos_emb);
  }
  Tensor logits = mask_head->forward(after_norm->forward(x));
  return c.mask_activation == "sigmoid" ? ops::sigmoid(logits) : ops::relu(logits);
}

Tensor ConformerTSE::forward(const Tensor& mixture, const Tensor& query) {
  const auto& c = config_;
  TSE_CHECK(mixture.defined() && mixture.dim() == 2, "ConformerTSE: mixture must be a (B, L) waveform, got ",
            mixture.defined() ? mixture.shape_str() : "undefined");
  const DType dt = embed_linear_->weight.dtype();
  TSE_CHECK(mixture.dtype() == dt, "ConformerTSE: mixture must be ", dt, " like the model's parameters, got ",
            mixture.dtype());
  TSE_CHECK(mixture.size(0) > 0, "ConformerTSE: mixture has an empty batch");
  TSE_CHECK(mixture.size(1) > c.n_fft / 2, "ConformerTSE: mixture needs more than n_fft / 2 = ", c.n_fft / 2,
            " samples (reflect padding of the STFT), got ", mixture.size(1), mixture.size(1) == 0 ? " (empty audio)" : "");
  TSE_CHECK(query.defined() && query.dtype() == mixture.dtype(), "ConformerTSE: query must be ", mixture.dtype(),
            ", got ", query.defined() ? std::string(dtype_name(query.dtype())) : std::string("undefined"));
  TSE_CHECK(all_finite(mixture), "ConformerTSE: mixture contains NaN or Inf");
  TSE_CHECK(all_finite(query), "ConformerTSE: query contains NaN or Inf");

  Tensor wave = mixture;
  Tensor scale;
  if (c.normalize_input) {
    // std over samples (+1e-8), kept so that the output is scaled back.
    scale = ops::add(ops::sqrt(ops::var(mixture, {1}, 1, true)), 1e-8);
    wave = ops::div(mixture, scale);
  }
  const audio::StftOptions so{.n_fft = c.n_fft, .hop_length = c.hop_length};
  Tensor spec = audio::stft(wave, so);                             // (B, F, T, 2)
  Tensor mag = audio::magnitude(spec).transpose(1, 2);             // (B, T, F)
  Tensor mask = estimate_mask(mag, query).transpose(1, 2);         // (B, F, T)
  Tensor target = ops::mul(spec, ops::unsqueeze(mask, -1));        // mixture phase
  Tensor out = audio::istft(target, so, mixture.size(1));
  return c.normalize_input ? ops::mul(out, scale) : out;
}

Tensor ConformerTSE::separate(const Tensor& mixture, const Tensor& query) {
  TSE_CHECK(mixture.defined() && (mixture.dim() == 1 || mixture.dim() == 2),
            "ConformerTSE.separate: mixture must be (L) or (B, L), got ", mixture.defined() ? mixture.shape_str() : "undefined");
  TSE_CHECK(query.defined() && (query.dim() == 1 || query.dim() == 2),
            "ConformerTSE.separate: query must be (D) or (B, D), got ", query.defined() ? query.shape_str() : "undefined");
  return forward_in_eval(mixture, query);
}

std::map<std::string, std::string> ConformerTSE::metadata() const {
  nlohmann::ordered_json stft;
  stft["n_fft"] = config_.n_fft;
  stft["hop_length"] = config_.hop_length;
  stft["win_length"] = config_.n_fft;
  stft["window"] = "hann";
  stft["center"] = true;
  stft["pad_mode"] = "reflect";
  return {{"model_type", "ConformerTSE"},
          {"config", config_.to_json()},
          {"sample_rate", std::to_string(config_.sample_rate)},
          {"stft", stft.dump()},
          {"format_version", kFormatVersion}};
}

std::shared_ptr<ConformerTSE> ConformerTSE::load(const std::string& path, DType dtype) {
  const ModelFile file = read_model_file(path, "ConformerTSE", kFormatVersion);
  auto model = std::make_shared<ConformerTSE>(ConformerTSEConfig::from_json(file.config), dtype);
  model->load_state_dict(file.state);
  return model;
}

}  // namespace tse::models
