// tse.nn's Swin / CLAPSep blocks and the torch-named transformer layers (include/tse/nn/swin.hpp,
// transformer.hpp), plus their functional pieces.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

DType dt_or_f32(const std::optional<DType>& d) { return d.value_or(DType::f32); }

std::pair<int64_t, int64_t> resolution_arg(py::handle h, const char* who) {
  const auto v = ints_from_arg(h, who, "input_resolution");
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  throw py::value_error(std::string(who) + ": 'input_resolution' must be an int or a pair of ints");
}

nn::SwinOptions swin_options(int64_t window, double mlp_ratio, bool qkv_bias, int64_t rank, double alpha,
                             const std::optional<DType>& dt) {
  return {.window_size = window, .mlp_ratio = mlp_ratio, .qkv_bias = qkv_bias, .lora_rank = rank, .lora_alpha = alpha,
          .dtype = dt_or_f32(dt)};
}

template <class M, class C>
void def_forward(C& cls) {
  auto f = [](M& m, const Tensor& x) {
    py::gil_scoped_release nogil;
    return m.forward(x);
  };
  cls.def("forward", f, py::arg("input")).def("__call__", f, py::arg("input"));
}

}  // namespace

void bind_swin(py::module_& m) {
  auto lora = py::class_<nn::LoRALinear, nn::Linear, std::shared_ptr<nn::LoRALinear>>(
                  m, "LoRALinear", "loralib's Linear: x W^T + b + (alpha / r) (x A^T) B^T")
                  .def(py::init([](int64_t in, int64_t out, int64_t r, double alpha, bool bias, std::optional<DType> dt) {
                         return std::make_shared<nn::LoRALinear>(in, out, r, alpha, bias, dt_or_f32(dt));
                       }),
                       py::arg("in_features"), py::arg("out_features"), py::arg("r") = 0, py::arg("lora_alpha") = 1.0,
                       py::arg("bias") = true, py::kw_only(), py::arg("dtype") = py::none())
                  .def_readonly("r", &nn::LoRALinear::rank)
                  .def_readonly("lora_alpha", &nn::LoRALinear::alpha)
                  .def_property_readonly("scaling", &nn::LoRALinear::scaling)
                  .def_readonly("lora_A", &nn::LoRALinear::lora_A)
                  .def_readonly("lora_B", &nn::LoRALinear::lora_B)
                  .def_property_readonly("merged", &nn::LoRALinear::merged)
                  .def("merged_weight", &nn::LoRALinear::merged_weight)
                  .def("merge", &nn::LoRALinear::merge)
                  .def("unmerge", &nn::LoRALinear::unmerge);
  def_forward<nn::LoRALinear>(lora);

  auto attn_call = [](nn::WindowAttention& self, const Tensor& x, std::optional<Tensor> mask) {
    py::gil_scoped_release nogil;
    return self.forward(x, mask.value_or(Tensor()));
  };
  py::class_<nn::WindowAttention, nn::Module, std::shared_ptr<nn::WindowAttention>>(m, "WindowAttention")
      .def(py::init([](int64_t dim, int64_t window, int64_t heads, bool qkv_bias, int64_t r, double alpha,
                       std::optional<DType> dt) {
             return std::make_shared<nn::WindowAttention>(dim, heads, swin_options(window, 4.0, qkv_bias, r, alpha, dt));
           }),
           py::arg("dim"), py::arg("window_size"), py::arg("num_heads"), py::arg("qkv_bias") = true, py::kw_only(),
           py::arg("lora_rank") = 0, py::arg("lora_alpha") = 1.0, py::arg("dtype") = py::none())
      .def_readonly("qkv", &nn::WindowAttention::qkv)
      .def_readonly("proj", &nn::WindowAttention::proj)
      .def_readonly("relative_position_bias_table", &nn::WindowAttention::relative_position_bias_table)
      .def_readonly("relative_position_index", &nn::WindowAttention::relative_position_index)
      .def("relative_position_bias", &nn::WindowAttention::relative_position_bias)
      .def("forward", attn_call, py::arg("windows"), py::arg("mask") = py::none())
      .def("__call__", attn_call, py::arg("windows"), py::arg("mask") = py::none());

  auto mlp = py::class_<nn::SwinMlp, nn::Module, std::shared_ptr<nn::SwinMlp>>(m, "Mlp", "fc2(GELU(fc1(x)))")
                 .def(py::init([](int64_t dim, int64_t hidden, std::optional<DType> dt) {
                        return std::make_shared<nn::SwinMlp>(dim, hidden, dt_or_f32(dt));
                      }),
                      py::arg("in_features"), py::arg("hidden_features"), py::kw_only(), py::arg("dtype") = py::none())
                 .def_readonly("fc1", &nn::SwinMlp::fc1)
                 .def_readonly("fc2", &nn::SwinMlp::fc2);
  def_forward<nn::SwinMlp>(mlp);

  auto block = py::class_<nn::SwinBlock, nn::Module, std::shared_ptr<nn::SwinBlock>>(
                   m, "SwinTransformerBlock", "HTSAT's pre-norm Swin block (x: (B, H*W, C))")
                   .def(py::init([](int64_t dim, py::handle res, int64_t heads, int64_t window, int64_t shift,
                                    double mlp_ratio, bool qkv_bias, double drop_path, int64_t r, double alpha,
                                    std::optional<DType> dt) {
                          return std::make_shared<nn::SwinBlock>(dim, resolution_arg(res, "SwinTransformerBlock"), heads,
                                                                 shift, drop_path,
                                                                 swin_options(window, mlp_ratio, qkv_bias, r, alpha, dt));
                        }),
                        py::arg("dim"), py::arg("input_resolution"), py::arg("num_heads"), py::arg("window_size") = 8,
                        py::arg("shift_size") = 0, py::arg("mlp_ratio") = 4.0, py::arg("qkv_bias") = true,
                        py::arg("drop_path") = 0.0, py::kw_only(), py::arg("lora_rank") = 0, py::arg("lora_alpha") = 1.0,
                        py::arg("dtype") = py::none())
                   .def_readonly("window_size", &nn::SwinBlock::window_size)
                   .def_readonly("shift_size", &nn::SwinBlock::shift_size)
                   .def_readonly("attn_mask", &nn::SwinBlock::attn_mask)
                   .def_readonly("norm1", &nn::SwinBlock::norm1)
                   .def_readonly("attn", &nn::SwinBlock::attn)
                   .def_readonly("norm2", &nn::SwinBlock::norm2)
                   .def_readonly("mlp", &nn::SwinBlock::mlp);
  def_forward<nn::SwinBlock>(block);

  auto merging = py::class_<nn::PatchMerging, nn::Module, std::shared_ptr<nn::PatchMerging>>(m, "PatchMerging")
                     .def(py::init([](py::handle res, int64_t dim, std::optional<DType> dt) {
                            return std::make_shared<nn::PatchMerging>(resolution_arg(res, "PatchMerging"), dim, dt_or_f32(dt));
                          }),
                          py::arg("input_resolution"), py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none())
                     .def_readonly("reduction", &nn::PatchMerging::reduction)
                     .def_readonly("norm", &nn::PatchMerging::norm);
  def_forward<nn::PatchMerging>(merging);

  auto expand = py::class_<nn::PatchExpand, nn::Module, std::shared_ptr<nn::PatchExpand>>(m, "PatchExpand")
                    .def(py::init([](py::handle res, int64_t dim, std::optional<DType> dt) {
                           return std::make_shared<nn::PatchExpand>(resolution_arg(res, "PatchExpand"), dim, dt_or_f32(dt));
                         }),
                         py::arg("input_resolution"), py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none())
                    .def_readonly("expand", &nn::PatchExpand::expand)
                    .def_readonly("norm", &nn::PatchExpand::norm);
  def_forward<nn::PatchExpand>(expand);

  auto embed = py::class_<nn::PatchEmbed, nn::Module, std::shared_ptr<nn::PatchEmbed>>(m, "PatchEmbed")
                   .def(py::init([](int64_t patch, int64_t in, int64_t dim, std::optional<DType> dt) {
                          return std::make_shared<nn::PatchEmbed>(patch, in, dim, dt_or_f32(dt));
                        }),
                        py::arg("patch_size") = 4, py::arg("in_chans") = 1, py::arg("embed_dim") = 128, py::kw_only(),
                        py::arg("dtype") = py::none())
                   .def_readonly("proj", &nn::PatchEmbed::proj)
                   .def_readonly("norm", &nn::PatchEmbed::norm);
  def_forward<nn::PatchEmbed>(embed);

  auto inverse = py::class_<nn::InversePatchEmbed, nn::Module, std::shared_ptr<nn::InversePatchEmbed>>(m, "InversePatchEmbed")
                     .def(py::init([](int64_t patch, int64_t out, int64_t dim, std::optional<DType> dt) {
                            return std::make_shared<nn::InversePatchEmbed>(patch, out, dim, dt_or_f32(dt));
                          }),
                          py::arg("patch_size") = 4, py::arg("out_chans") = 1, py::arg("embed_dim") = 128, py::kw_only(),
                          py::arg("dtype") = py::none())
                     .def_readonly("proj", &nn::InversePatchEmbed::proj)
                     .def_readonly("norm", &nn::InversePatchEmbed::norm);
  def_forward<nn::InversePatchEmbed>(inverse);

  auto skip_call = [](nn::FiLMSkip& self, const Tensor& skip, const Tensor& cond, std::optional<Tensor> x) {
    py::gil_scoped_release nogil;
    return self.forward(skip, cond, x.value_or(Tensor()));
  };
  py::class_<nn::FiLMSkip, nn::Module, std::shared_ptr<nn::FiLMSkip>>(
      m, "FiLMSkip", "CLAPSep's SkipTrans: LayerNorm(FiLM(Linear(skip), c) [+ x])")
      .def(py::init([](int64_t in, int64_t out, int64_t cond, std::optional<DType> dt) {
             return std::make_shared<nn::FiLMSkip>(in, out, cond, dt_or_f32(dt));
           }),
           py::arg("in_features"), py::arg("out_features"), py::arg("embed_dim") = 1024, py::kw_only(),
           py::arg("dtype") = py::none())
      .def_readonly("feature_proj", &nn::FiLMSkip::feature_proj)
      .def_readonly("skip_conv", &nn::FiLMSkip::skip_conv)
      .def_readonly("norm", &nn::FiLMSkip::norm)
      .def("forward", skip_call, py::arg("skip"), py::arg("embed"), py::arg("x") = py::none())
      .def("__call__", skip_call, py::arg("skip"), py::arg("embed"), py::arg("x") = py::none());

  auto mha = py::class_<nn::MultiheadAttention, nn::Module, std::shared_ptr<nn::MultiheadAttention>>(
                 m, "MultiheadAttention", "batch-first self-attention with torch's parameter names")
                 .def(py::init([](int64_t d, int64_t heads, double dropout, std::optional<DType> dt) {
                        return std::make_shared<nn::MultiheadAttention>(d, heads, dropout, dt_or_f32(dt));
                      }),
                      py::arg("embed_dim"), py::arg("num_heads"), py::arg("dropout") = 0.0, py::kw_only(),
                      py::arg("dtype") = py::none())
                 .def_readonly("in_proj_weight", &nn::MultiheadAttention::in_proj_weight)
                 .def_readonly("in_proj_bias", &nn::MultiheadAttention::in_proj_bias)
                 .def_readonly("out_proj", &nn::MultiheadAttention::out_proj);
  def_forward<nn::MultiheadAttention>(mha);

  auto layer = py::class_<nn::TransformerEncoderLayer, nn::Module, std::shared_ptr<nn::TransformerEncoderLayer>>(
                   m, "TransformerEncoderLayer", "torch.nn.TransformerEncoderLayer(batch_first=True)")
                   .def(py::init([](int64_t d, int64_t heads, int64_t ff, double dropout, const std::string& act,
                                    double eps, bool norm_first, std::optional<DType> dt) {
                          return std::make_shared<nn::TransformerEncoderLayer>(d, heads, ff, dropout, act, eps, norm_first,
                                                                               dt_or_f32(dt));
                        }),
                        py::arg("d_model"), py::arg("nhead"), py::arg("dim_feedforward") = 2048, py::arg("dropout") = 0.0,
                        py::arg("activation") = "relu", py::arg("layer_norm_eps") = 1e-5, py::arg("norm_first") = false,
                        py::kw_only(), py::arg("dtype") = py::none())
                   .def_readonly("self_attn", &nn::TransformerEncoderLayer::self_attn)
                   .def_readonly("linear1", &nn::TransformerEncoderLayer::linear1)
                   .def_readonly("linear2", &nn::TransformerEncoderLayer::linear2)
                   .def_readonly("norm1", &nn::TransformerEncoderLayer::norm1)
                   .def_readonly("norm2", &nn::TransformerEncoderLayer::norm2);
  def_forward<nn::TransformerEncoderLayer>(layer);

  // functional pieces
  m.def("window_partition", &nn::window_partition, py::arg("x"), py::arg("window_size"),
        "(B, H, W, C) -> (B * nW, ws * ws, C)");
  m.def("window_reverse", &nn::window_reverse, py::arg("windows"), py::arg("window_size"), py::arg("H"), py::arg("W"));
  m.def("relative_position_index", &nn::relative_position_index, py::arg("window_size"));
  m.def(
      "shifted_window_mask",
      [](int64_t H, int64_t W, int64_t ws, int64_t shift, std::optional<DType> dt) {
        return nn::shifted_window_mask(H, W, ws, shift, dt_or_f32(dt));
      },
      py::arg("H"), py::arg("W"), py::arg("window_size"), py::arg("shift_size"), py::kw_only(), py::arg("dtype") = py::none());
  m.def("drop_path", &nn::drop_path, py::arg("x"), py::arg("p"), py::arg("training"));
  m.def("wav_to_image", &nn::wav_to_image, py::arg("logmel"), py::arg("chunks") = 4,
        "HTSAT's reshape_wav2img: (B, 1, chunks * W, F) -> (B, 1, chunks * F, W)");
  m.def("image_to_wav", &nn::image_to_wav, py::arg("image"), py::arg("chunks") = 4, "the inverse of wav_to_image");
}

}  // namespace tse::python
