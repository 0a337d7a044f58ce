#include "tse/nn/swin.hpp"

#include <cmath>
#include <vector>

#include "tse/autograd/grad_mode.hpp"
#include "tse/core/error.hpp"
#include "tse/nn/init.hpp"
#include "tse/ops/activation.hpp"
#include "tse/ops/attention.hpp"
#include "tse/ops/elementwise.hpp"
#include "tse/ops/factory.hpp"
#include "tse/ops/indexing.hpp"
#include "tse/ops/matmul.hpp"
#include "tse/ops/random.hpp"
#include "tse/ops/shape.hpp"
#include "tse/ops/softmax.hpp"

namespace tse::nn {
namespace {

using detail::str_cat;

void check_tokens(const char* who, const Tensor& x, int64_t tokens, int64_t dim) {
  TSE_CHECK(x.dim() == 3 && x.size(1) == tokens && x.size(2) == dim, who, ": x must be (B, ", tokens, ", ", dim,
            "), got ", x.shape_str());
}

}  // namespace

// ---- functional pieces ----------------------------------------------------------------------

Tensor window_partition(const Tensor& x, int64_t ws) {
  TSE_CHECK(x.dim() == 4, "window_partition: x must be (B, H, W, C), got ", x.shape_str());
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TSE_CHECK(ws > 0 && H % ws == 0 && W % ws == 0, "window_partition: the grid ", H, "x", W,
            " is not a multiple of the window ", ws);
  return ops::reshape(ops::permute(ops::reshape(x, {B, H / ws, ws, W / ws, ws, C}), {0, 1, 3, 2, 4, 5}),
                      {B * (H / ws) * (W / ws), ws * ws, C});
}

Tensor window_reverse(const Tensor& windows, int64_t ws, int64_t H, int64_t W) {
  TSE_CHECK(ws > 0 && H % ws == 0 && W % ws == 0, "window_reverse: the grid ", H, "x", W,
            " is not a multiple of the window ", ws);
  const int64_t nW = (H / ws) * (W / ws);
  TSE_CHECK(windows.dim() == 3 && windows.size(1) == ws * ws && windows.size(0) % nW == 0,
            "window_reverse: windows must be (B * ", nW, ", ", ws * ws, ", C), got ", windows.shape_str());
  const int64_t B = windows.size(0) / nW, C = windows.size(2);
  return ops::reshape(ops::permute(ops::reshape(windows, {B, H / ws, W / ws, ws, ws, C}), {0, 1, 3, 2, 4, 5}),
                      {B, H, W, C});
}

Tensor relative_position_index(int64_t ws) {
  TSE_CHECK(ws > 0, "relative_position_index: window_size must be positive, got ", ws);
  const int64_t n = ws * ws, side = 2 * ws - 1;
  std::vector<int64_t> idx(static_cast<size_t>(n * n));
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < n; ++b)
      idx[static_cast<size_t>(a * n + b)] = (a / ws - b / ws + ws - 1) * side + (a % ws - b % ws + ws - 1);
  return ops::from_vector(idx, {n, n});
}

Tensor shifted_window_mask(int64_t H, int64_t W, int64_t ws, int64_t shift, DType dtype) {
  TSE_CHECK(ws > 0 && H % ws == 0 && W % ws == 0 && shift > 0 && shift < ws, "shifted_window_mask: need a grid ", H,
            "x", W, " divisible by the window ", ws, " and 0 < shift ", shift, " < window");
  // Region labels of the rolled grid: rows [0, H - ws), [H - ws, H - shift), [H - shift, H).
  auto region = [&](int64_t i, int64_t n) { return i < n - ws ? 0 : (i < n - shift ? 1 : 2); };
  const int64_t nWh = H / ws, nWw = W / ws, n = ws * ws;
  std::vector<double> mask(static_cast<size_t>(nWh * nWw * n * n));
  for (int64_t wh = 0; wh < nWh; ++wh)
    for (int64_t ww = 0; ww < nWw; ++ww) {
      std::vector<int> label(static_cast<size_t>(n));
      for (int64_t p = 0; p < n; ++p)
        label[static_cast<size_t>(p)] = 3 * region(wh * ws + p / ws, H) + region(ww * ws + p % ws, W);
      double* m = mask.data() + (wh * nWw + ww) * n * n;
      for (int64_t a = 0; a < n; ++a)
        for (int64_t b = 0; b < n; ++b) m[a * n + b] = label[static_cast<size_t>(a)] == label[static_cast<size_t>(b)] ? 0.0 : -100.0;
    }
  return ops::from_vector(mask, {nWh * nWw, n, n}, dtype);
}

Tensor drop_path(const Tensor& x, double p, bool training) {
  TSE_CHECK(p >= 0.0 && p < 1.0, "drop_path: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  Shape shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  const double keep = 1.0 - p;
  Tensor keep_mask;
  {
    autograd::NoGradGuard no_grad;
    keep_mask = ops::div(ops::ge(ops::rand(shape, x.dtype()), p).to(x.dtype()), keep);
  }
  return ops::mul(x, keep_mask);
}

Tensor wav_to_image(const Tensor& logmel, int64_t chunks) {
  TSE_CHECK(logmel.dim() == 4 && logmel.size(1) == 1 && chunks > 0 && logmel.size(2) % chunks == 0,
            "wav_to_image: logmel must be (B, 1, T, F) with T a multiple of ", chunks, ", got ", logmel.shape_str());
  const int64_t B = logmel.size(0), W = logmel.size(2) / chunks, F = logmel.size(3);
  return ops::reshape(ops::permute(ops::reshape(logmel, {B, 1, chunks, W, F}), {0, 1, 2, 4, 3}), {B, 1, chunks * F, W});
}

Tensor image_to_wav(const Tensor& image, int64_t chunks) {
  TSE_CHECK(image.dim() == 4 && image.size(1) == 1 && chunks > 0 && image.size(2) % chunks == 0,
            "image_to_wav: image must be (B, 1, chunks * F, W) with chunks = ", chunks, ", got ", image.shape_str());
  const int64_t B = image.size(0), F = image.size(2) / chunks, W = image.size(3);
  return ops::reshape(ops::permute(ops::reshape(image, {B, 1, chunks, F, W}), {0, 1, 2, 4, 3}), {B, 1, chunks * W, F});
}

// ---- LoRALinear ---------------------------------------------------------------------------

LoRALinear::LoRALinear(int64_t in, int64_t out, int64_t r, double alpha_, bool with_bias, DType dtype)
    : Linear(in, out, with_bias, dtype), rank(r), alpha(alpha_) {
  TSE_CHECK(r >= 0, "LoRALinear: rank must be >= 0, got ", r);
  TSE_CHECK(std::isfinite(alpha_), "LoRALinear: alpha must be finite, got ", alpha_);
  if (r == 0) return;
  lora_A = init::default_uniform({r, in}, in, dtype);  // kaiming_uniform(a = sqrt 5)
  lora_B = ops::zeros({out, r}, dtype);
  register_parameter("lora_A", &lora_A);
  register_parameter("lora_B", &lora_B);
}

std::string LoRALinear::extra_repr() const {
  std::string s = Linear::extra_repr();
  if (rank > 0) s += str_cat(", rank=", rank, ", alpha=", alpha, merged() ? ", merged" : "");
  return s;
}

Tensor LoRALinear::merged_weight() const {
  if (rank == 0) return weight.detach();
  autograd::NoGradGuard no_grad;
  return ops::add(weight, ops::matmul(lora_B, lora_A), scaling());
}

void LoRALinear::merge() { merged_weight_ = merged_weight(); }

void LoRALinear::unmerge() { merged_weight_ = Tensor(); }

Tensor LoRALinear::forward(const Tensor& x) const {
  if (rank == 0) return Linear::forward(x);
  if (merged()) {
    // A cast or move of the module (to()) leaves the cache behind: refold it.
    if (merged_weight_.dtype() != weight.dtype() || merged_weight_.device() != weight.device())
      const_cast<LoRALinear*>(this)->merge();
    TSE_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "LoRALinear: x must be (..., ", in_features, "), got ",
              x.shape_str());
    return ops::linear(x, merged_weight_, bias);
  }
  return ops::add(Linear::forward(x), ops::linear(ops::linear(x, lora_A), lora_B), scaling());
}

// ---- WindowAttention ----------------------------------------------------------------------

WindowAttention::WindowAttention(int64_t dim_, int64_t heads, const SwinOptions& o)
    : dim(dim_), num_heads(heads), window_size(o.window_size) {
  TSE_CHECK(dim_ > 0 && heads > 0 && dim_ % heads == 0, "WindowAttention: dim ", dim_,
            " must be a positive multiple of num_heads ", heads);
  TSE_CHECK(o.window_size > 0, "WindowAttention: window_size must be positive, got ", o.window_size);
  const int64_t side = 2 * o.window_size - 1;
  relative_position_bias_table = init::trunc_normal({side * side, heads}, 0.0, 0.02, -2.0, 2.0, o.dtype);
  relative_position_index = nn::relative_position_index(o.window_size);
  register_parameter("relative_position_bias_table", &relative_position_bias_table);
  register_buffer("relative_position_index", &relative_position_index, BufferKind::constant);
  qkv = register_module("qkv", std::make_shared<LoRALinear>(dim_, 3 * dim_, o.lora_rank, o.lora_alpha, o.qkv_bias, o.dtype));
  proj = register_module("proj", std::make_shared<LoRALinear>(dim_, dim_, o.lora_rank, o.lora_alpha, true, o.dtype));
}

std::string WindowAttention::extra_repr() const {
  return str_cat("dim=", dim, ", window_size=(", window_size, ", ", window_size, "), num_heads=", num_heads);
}

Tensor WindowAttention::relative_position_bias() const {
  const int64_t n = window_size * window_size;
  const Tensor gathered = ops::index_select(relative_position_bias_table, 0, ops::reshape(relative_position_index, {n * n}));
  return ops::permute(ops::reshape(gathered, {n, n, num_heads}), {2, 0, 1});
}

Tensor WindowAttention::forward(const Tensor& windows, const Tensor& mask) const {
  const int64_t n = window_size * window_size;
  TSE_CHECK(windows.dim() == 3 && windows.size(1) == n && windows.size(2) == dim,
            "WindowAttention: windows must be (B * nW, ", n, ", ", dim, "), got ", windows.shape_str());
  const int64_t Bw = windows.size(0), hd = dim / num_heads;
  const Tensor qkv_ = ops::permute(ops::reshape(qkv->forward(windows), {Bw, n, 3, num_heads, hd}), {2, 0, 3, 1, 4});
  const Tensor q = ops::select(qkv_, 0, 0), k = ops::select(qkv_, 0, 1), v = ops::select(qkv_, 0, 2);
  // softmax(q k^T / sqrt(d) + bias + mask) in one fused pass (ops::window_softmax).
  const Tensor attn = ops::window_softmax(ops::matmul(q, ops::transpose(k, -2, -1)), relative_position_bias(), mask,
                                          1.0 / std::sqrt(static_cast<double>(hd)));
  const Tensor out = ops::matmul(attn, v);  // (Bw, nH, n, hd)
  return proj->forward(ops::reshape(ops::transpose(out, 1, 2), {Bw, n, dim}));
}

// ---- SwinMlp / SwinBlock ------------------------------------------------------------------

SwinMlp::SwinMlp(int64_t dim, int64_t hidden, DType dtype) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, true, dtype));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, true, dtype));
}

Tensor SwinMlp::forward(const Tensor& x) const { return fc2->forward(ops::gelu(fc1->forward(x))); }

SwinBlock::SwinBlock(int64_t dim_, std::pair<int64_t, int64_t> resolution, int64_t heads, int64_t shift,
                     double drop_path_, const SwinOptions& o)
    : dim(dim_), height(resolution.first), width(resolution.second), num_heads(heads), window_size(o.window_size),
      shift_size(shift), drop_path_rate(drop_path_) {
  TSE_CHECK(height > 0 && width > 0, "SwinBlock: resolution must be positive, got ", height, "x", width);
  TSE_CHECK(drop_path_ >= 0.0 && drop_path_ < 1.0, "SwinBlock: drop_path must be in [0, 1), got ", drop_path_);
  if (std::min(height, width) <= window_size) {  // HTSAT: one window covers the grid
    shift_size = 0;
    window_size = std::min(height, width);
  }
  TSE_CHECK(shift_size >= 0 && shift_size < window_size, "SwinBlock: shift_size must be in [0, window_size ",
            window_size, "), got ", shift_size);
  TSE_CHECK(height % window_size == 0 && width % window_size == 0, "SwinBlock: the grid ", height, "x", width,
            " must be a multiple of the window ", window_size);
  SwinOptions attn_options = o;
  attn_options.window_size = window_size;
  if (shift_size > 0) attn_mask = shifted_window_mask(height, width, window_size, shift_size, o.dtype);
  register_buffer("attn_mask", &attn_mask, BufferKind::constant);
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(dim_, 1e-5, true, o.dtype));
  attn = register_module("attn", std::make_shared<WindowAttention>(dim_, heads, attn_options));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(dim_, 1e-5, true, o.dtype));
  mlp = register_module("mlp", std::make_shared<SwinMlp>(dim_, static_cast<int64_t>(dim_ * o.mlp_ratio), o.dtype));
}

std::string SwinBlock::extra_repr() const {
  return str_cat("dim=", dim, ", input_resolution=(", height, ", ", width, "), num_heads=", num_heads,
                 ", window_size=", window_size, ", shift_size=", shift_size, ", drop_path=", drop_path_rate);
}

Tensor SwinBlock::forward(const Tensor& x) const {
  check_tokens("SwinBlock", x, height * width, dim);
  const int64_t B = x.size(0);
  Tensor h = ops::reshape(norm1->forward(x), {B, height, width, dim});
  if (shift_size > 0) h = ops::roll(h, {-shift_size, -shift_size}, {1, 2});
  h = window_reverse(attn->forward(window_partition(h, window_size), attn_mask), window_size, height, width);
  if (shift_size > 0) h = ops::roll(h, {shift_size, shift_size}, {1, 2});
  const bool training = is_training();
  const Tensor y = ops::add(x, drop_path(ops::reshape(h, {B, height * width, dim}), drop_path_rate, training));
  return ops::add(y, drop_path(mlp->forward(norm2->forward(y)), drop_path_rate, training));
}

// ---- PatchMerging / PatchExpand -----------------------------------------------------------

PatchMerging::PatchMerging(std::pair<int64_t, int64_t> resolution, int64_t dim_, DType dtype)
    : height(resolution.first), width(resolution.second), dim(dim_) {
  TSE_CHECK(height > 0 && width > 0 && height % 2 == 0 && width % 2 == 0, "PatchMerging: resolution must be even, got ",
            height, "x", width);
  reduction = register_module("reduction", std::make_shared<Linear>(4 * dim_, 2 * dim_, false, dtype));
  norm = register_module("norm", std::make_shared<LayerNorm>(4 * dim_, 1e-5, true, dtype));
}

std::string PatchMerging::extra_repr() const {
  return str_cat("input_resolution=(", height, ", ", width, "), dim=", dim);
}

Tensor PatchMerging::forward(const Tensor& x) const {
  check_tokens("PatchMerging", x, height * width, dim);
  const int64_t B = x.size(0);
  // (B, H/2, dh, W/2, dw, C) -> (B, H/2, W/2, dw, dh, C): x0..x3 = (dh, dw) = 00, 10, 01, 11.
  const Tensor phases = ops::permute(ops::reshape(x, {B, height / 2, 2, width / 2, 2, dim}), {0, 1, 3, 4, 2, 5});
  return reduction->forward(norm->forward(ops::reshape(phases, {B, height / 2 * (width / 2), 4 * dim})));
}

PatchExpand::PatchExpand(std::pair<int64_t, int64_t> resolution, int64_t dim_, DType dtype)
    : height(resolution.first), width(resolution.second), dim(dim_) {
  TSE_CHECK(height > 0 && width > 0 && dim_ > 0 && dim_ % 2 == 0, "PatchExpand: need a positive grid and an even dim, got ",
            height, "x", width, ", dim ", dim_);
  expand = register_module("expand", std::make_shared<Linear>(dim_, 2 * dim_, false, dtype));
  norm = register_module("norm", std::make_shared<LayerNorm>(dim_ / 2, 1e-5, true, dtype));
}

std::string PatchExpand::extra_repr() const {
  return str_cat("input_resolution=(", height, ", ", width, "), dim=", dim);
}

Tensor PatchExpand::forward(const Tensor& x) const {
  check_tokens("PatchExpand", x, height * width, dim);
  const int64_t B = x.size(0), c = dim / 2;
  // block e = 2 dw + dh goes to (2h + dh, 2w + dw): (B, H, W, dw, dh, c) -> (B, H, dh, W, dw, c).
  const Tensor blocks = ops::reshape(expand->forward(x), {B, height, width, 2, 2, c});
  return norm->forward(ops::reshape(ops::permute(blocks, {0, 1, 4, 2, 3, 5}), {B, 4 * height * width, c}));
}

// ---- PatchEmbed / InversePatchEmbed -------------------------------------------------------

PatchEmbed::PatchEmbed(int64_t patch, int64_t in, int64_t embed, DType dtype)
    : patch_size(patch), in_channels(in), embed_dim(embed) {
  Conv2dOptions o;
  o.stride = patch;
  o.dtype = dtype;
  proj = register_module("proj", std::make_shared<Conv2d>(in, embed, patch, o));
  norm = register_module("norm", std::make_shared<LayerNorm>(embed, 1e-5, true, dtype));
}

Tensor PatchEmbed::forward(const Tensor& image) const {
  TSE_CHECK(image.dim() == 4 && image.size(1) == in_channels && image.size(2) % patch_size == 0 &&
                image.size(3) % patch_size == 0,
            "PatchEmbed: image must be (B, ", in_channels, ", H, W) with H and W multiples of ", patch_size, ", got ",
            image.shape_str());
  const Tensor t = proj->forward(image);  // (B, C, gh, gw)
  return norm->forward(ops::transpose(ops::flatten(t, 2), 1, 2));
}

InversePatchEmbed::InversePatchEmbed(int64_t patch, int64_t out, int64_t embed, DType dtype)
    : patch_size(patch), out_channels(out), embed_dim(embed) {
  Conv2dOptions o;
  o.stride = patch;
  o.dtype = dtype;
  proj = register_module("proj", std::make_shared<ConvTranspose2d>(embed, out, patch, o));
  norm = register_module("norm", std::make_shared<LayerNorm>(embed, 1e-5, true, dtype));
}

Tensor InversePatchEmbed::forward(const Tensor& tokens) const {
  TSE_CHECK(tokens.dim() == 3 && tokens.size(2) == embed_dim, "InversePatchEmbed: tokens must be (B, N, ", embed_dim,
            "), got ", tokens.shape_str());
  const int64_t B = tokens.size(0), N = tokens.size(1);
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(N))));
  TSE_CHECK(g * g == N, "InversePatchEmbed: the tokens must form a square grid, got ", N);
  const Tensor grid = ops::reshape(ops::transpose(norm->forward(tokens), 1, 2), {B, embed_dim, g, g});
  return proj->forward(grid);
}

// ---- SwinStage ----------------------------------------------------------------------------

SwinStage::SwinStage(int64_t dim, std::pair<int64_t, int64_t> res, int64_t depth, int64_t heads,
                     const std::vector<double>& drop_path, bool alternate_shift, Resample resample_,
                     const SwinOptions& o)
    : resample(resample_) {
  TSE_CHECK(depth >= 1 && static_cast<int64_t>(drop_path.size()) == depth, "SwinStage: need depth >= 1 and one drop_path "
            "rate per block, got depth ", depth, " and ", drop_path.size(), " rates");
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  for (int64_t b = 0; b < depth; ++b) {
    const int64_t shift = alternate_shift && b % 2 == 1 ? o.window_size / 2 : 0;
    blocks_.push_back(blocks->push_back(std::make_shared<SwinBlock>(dim, res, heads, shift, drop_path[static_cast<size_t>(b)], o)));
  }
  if (resample_ == Resample::merge_after)
    merge = register_module("downsample", std::make_shared<PatchMerging>(res, dim, o.dtype));
  else if (resample_ == Resample::expand_before)
    expand = register_module("downsample",
                             std::make_shared<PatchExpand>(std::make_pair(res.first / 2, res.second / 2), 2 * dim, o.dtype));
}

Tensor SwinStage::forward(const Tensor& x) const {
  Tensor h = expand ? expand->forward(x) : x;
  for (const auto& b : blocks_) h = b->forward(h);
  return merge ? merge->forward(h) : h;
}

// ---- FiLMSkip -----------------------------------------------------------------------------

FiLMSkip::FiLMSkip(int64_t in, int64_t out, int64_t cond, DType dtype) : in_features(in), out_features(out), cond_dim(cond) {
  feature_proj = register_module("feature_proj", std::make_shared<Linear>(in, out, true, dtype));
  skip_conv = register_module("skip_conv", std::make_shared<FiLM>(cond, out, -1, dtype));
  norm = register_module("norm", std::make_shared<LayerNorm>(out, 1e-5, true, dtype));
}

std::string FiLMSkip::extra_repr() const {
  return str_cat("in_features=", in_features, ", out_features=", out_features, ", embed_dim=", cond_dim);
}

Tensor FiLMSkip::forward(const Tensor& skip, const Tensor& cond, const Tensor& residual) const {
  TSE_CHECK(skip.dim() == 3 && skip.size(2) == in_features, "SkipTrans: skip must be (B, N, ", in_features, "), got ",
            skip.shape_str());
  Tensor u = skip_conv->forward(feature_proj->forward(skip), cond);
  if (residual.defined()) {
    TSE_CHECK(residual.sizes() == u.sizes(), "SkipTrans: residual must be ", u.shape_str(), ", got ",
              residual.shape_str());
    u = ops::add(u, residual);
  }
  return norm->forward(u);
}

}  // namespace tse::nn
