// tse._C.nn: nn::Module and the layers (re-exported by tse.nn), with torch.nn's class names,
// constructor keywords and methods (named_parameters, state_dict, load_state_dict, train, eval,
// to, zero_grad, ...). Modules are held by shared_ptr: a child returned to Python stays alive
// with its parent. Forward calls release the GIL.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

using ModulePtr = std::shared_ptr<nn::Module>;

py::dict to_dict(const nn::NamedTensors& v) {
  py::dict d;
  for (const auto& [k, t] : v) d[py::str(k)] = t;
  return d;
}

nn::NamedTensors from_mapping(const py::handle& state, const char* who) {
  if (!py::isinstance<py::dict>(state) && !py::hasattr(state, "items"))
    throw py::type_error(std::string(who) + ": state_dict must be a mapping of str to Tensor");
  nn::NamedTensors out;
  for (auto item : state.attr("items")()) {
    auto kv = item.cast<py::tuple>();
    out.emplace_back(kv[0].cast<std::string>(), kv[1].cast<Tensor>());
  }
  return out;
}

ops::Size2 size2_arg(py::handle h, const char* who, const char* arg) {
  const auto v = ints_from_arg(h, who, arg);
  if (v.size() == 1) return {v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  throw py::value_error(std::string(who) + ": '" + arg + "' must be an int or a pair of ints");
}

DType dtype_arg(const std::optional<DType>& d) { return d.value_or(DType::f32); }

nn::ConvNorm conv_norm_arg(const std::string& s) {
  if (s == "group_norm") return nn::ConvNorm::group_norm;
  if (s == "batch_norm") return nn::ConvNorm::batch_norm;
  throw py::value_error("conv_norm must be \"group_norm\" or \"batch_norm\", got \"" + s + "\"");
}

// forward and __call__ of a one-tensor layer.
template <class M, class C>
void def_forward1(C& cls) {
  auto f = [](M& m, const Tensor& x) {
    py::gil_scoped_release nogil;
    return m.forward(x);
  };
  cls.def("forward", f, py::arg("input")).def("__call__", f, py::arg("input"));
}

}  // namespace

void bind_modules(py::module_& parent) {
  py::module_ m = parent.def_submodule("nn", "nn::Module and the layers (re-exported as tse.nn)");

  py::class_<nn::Module, ModulePtr>(m, "Module")
      .def("named_parameters", [](const nn::Module& self, bool recurse) { return self.named_parameters(recurse); },
           py::arg("recurse") = true, "[(dotted name, parameter)] in PyTorch's order")
      .def("parameters", &nn::Module::parameters, py::arg("recurse") = true)
      .def("named_buffers", &nn::Module::named_buffers, py::arg("recurse") = true)
      .def("constant_names", &nn::Module::constant_names, py::arg("recurse") = true,
           "names of the computed constants (not in state_dict(); checked when a state dict carries them)")
      .def("named_constants", &nn::Module::named_constants, py::arg("recurse") = true)
      .def("named_children", &nn::Module::named_children)
      .def("named_modules",
           [](ModulePtr self) {
             py::list out;
             for (auto& [name, ptr] : self->named_modules())
               out.append(py::make_tuple(name, name.empty() ? self : self->child(name)));
             return out;
           })
      .def("children",
           [](const nn::Module& self) {
             py::list out;
             for (auto& [n, c] : self.named_children()) out.append(c);
             return out;
           })
      .def("get_submodule", &nn::Module::child, py::arg("target"))
      .def("num_parameters", &nn::Module::num_parameters, py::arg("trainable_only") = false)
      .def("state_dict", [](const nn::Module& self) { return to_dict(self.state_dict()); },
           "{name: tensor} (parameters and persistent buffers, detached, sharing storage)")
      .def(
          "load_state_dict",
          [](nn::Module& self, py::handle state, bool strict) {
            auto named = from_mapping(state, "load_state_dict");
            nn::LoadResult r;
            {
              py::gil_scoped_release nogil;
              r = self.load_state_dict(named, strict);
            }
            py::object nt = py::module_::import("collections").attr("namedtuple")(
                "IncompatibleKeys", py::make_tuple("missing_keys", "unexpected_keys"));
            return nt(r.missing_keys, r.unexpected_keys);
          },
          py::arg("state_dict"), py::arg("strict") = true)
      .def(
          "train", [](ModulePtr self, bool mode) { return self->train(mode), self; }, py::arg("mode") = true)
      .def("eval", [](ModulePtr self) { return self->eval(), self; })
      .def_property_readonly("training", &nn::Module::is_training)
      .def(
          "to",
          [](ModulePtr self, py::object target) {
            if (auto dt = dtype_from_python(target)) {
              self->to(*dt);
            } else {
              self->to(target.cast<Device>());
            }
            return self;
          },
          py::arg("target"), "to(tse.float64) or to('cpu'); returns self")
      .def("double", [](ModulePtr self) { return self->to(DType::f64), self; })
      .def("float", [](ModulePtr self) { return self->to(DType::f32), self; })
      .def("zero_grad", &nn::Module::zero_grad)
      .def(
          "requires_grad_", [](ModulePtr self, bool on) { return self->requires_grad_(on), self; },
          py::arg("requires_grad") = true)
      .def_property_readonly("type_name", &nn::Module::type_name)
      .def("extra_repr", &nn::Module::extra_repr)
      .def("__repr__", &nn::Module::repr);

  py::class_<nn::ModuleList, nn::Module, std::shared_ptr<nn::ModuleList>>(m, "ModuleList")
      .def("__len__", &nn::ModuleList::size)
      .def("__getitem__", [](const nn::ModuleList& self, int64_t i) {
        const int64_t n = static_cast<int64_t>(self.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw py::index_error("ModuleList index out of range");
        return self[static_cast<size_t>(i)];
      });

  auto linear = py::class_<nn::Linear, nn::Module, std::shared_ptr<nn::Linear>>(m, "Linear")
                    .def(py::init([](int64_t in, int64_t out, bool bias, std::optional<DType> dt) {
                           return std::make_shared<nn::Linear>(in, out, bias, dtype_arg(dt));
                         }),
                         py::arg("in_features"), py::arg("out_features"), py::arg("bias") = true,
                         py::arg("dtype") = py::none())
                    .def_readonly("in_features", &nn::Linear::in_features)
                    .def_readonly("out_features", &nn::Linear::out_features)
                    .def_readonly("weight", &nn::Linear::weight)
                    .def_readonly("bias", &nn::Linear::bias);
  def_forward1<nn::Linear>(linear);

  auto layer_norm = py::class_<nn::LayerNorm, nn::Module, std::shared_ptr<nn::LayerNorm>>(m, "LayerNorm")
                        .def(py::init([](py::handle shape, double eps, bool affine, std::optional<DType> dt) {
                               auto v = ints_from_arg(shape, "LayerNorm", "normalized_shape");
                               return std::make_shared<nn::LayerNorm>(Shape(v.begin(), v.end()), eps, affine, dtype_arg(dt));
                             }),
                             py::arg("normalized_shape"), py::arg("eps") = 1e-5, py::arg("elementwise_affine") = true,
                             py::arg("dtype") = py::none())
                        .def_readonly("eps", &nn::LayerNorm::eps)
                        .def_readonly("weight", &nn::LayerNorm::weight)
                        .def_readonly("bias", &nn::LayerNorm::bias);
  def_forward1<nn::LayerNorm>(layer_norm);

  auto group_norm = py::class_<nn::GroupNorm, nn::Module, std::shared_ptr<nn::GroupNorm>>(m, "GroupNorm")
                        .def(py::init([](int64_t g, int64_t c, double eps, bool affine, std::optional<DType> dt) {
                               return std::make_shared<nn::GroupNorm>(g, c, eps, affine, dtype_arg(dt));
                             }),
                             py::arg("num_groups"), py::arg("num_channels"), py::arg("eps") = 1e-5,
                             py::arg("affine") = true, py::arg("dtype") = py::none())
                        .def_readonly("weight", &nn::GroupNorm::weight)
                        .def_readonly("bias", &nn::GroupNorm::bias);
  def_forward1<nn::GroupNorm>(group_norm);

  auto batch_norm = py::class_<nn::BatchNorm, nn::Module, std::shared_ptr<nn::BatchNorm>>(m, "_BatchNorm")
                        .def_readonly("weight", &nn::BatchNorm::weight)
                        .def_readonly("bias", &nn::BatchNorm::bias)
                        .def_readonly("running_mean", &nn::BatchNorm::running_mean)
                        .def_readonly("running_var", &nn::BatchNorm::running_var)
                        .def_readonly("num_batches_tracked", &nn::BatchNorm::num_batches_tracked);
  def_forward1<nn::BatchNorm>(batch_norm);
  auto bn_init = [](auto tag) {
    using B = typename decltype(tag)::type;
    return py::init([](int64_t n, double eps, std::optional<double> momentum, bool affine, bool track,
                       std::optional<DType> dt) {
      return std::make_shared<B>(n, eps, momentum.value_or(-1.0), affine, track, dtype_arg(dt));
    });
  };
  struct Tag1 { using type = nn::BatchNorm1d; };
  struct Tag2 { using type = nn::BatchNorm2d; };
  py::class_<nn::BatchNorm1d, nn::BatchNorm, std::shared_ptr<nn::BatchNorm1d>>(m, "BatchNorm1d")
      .def(bn_init(Tag1{}), py::arg("num_features"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1,
           py::arg("affine") = true, py::arg("track_running_stats") = true, py::arg("dtype") = py::none());
  py::class_<nn::BatchNorm2d, nn::BatchNorm, std::shared_ptr<nn::BatchNorm2d>>(m, "BatchNorm2d")
      .def(bn_init(Tag2{}), py::arg("num_features"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1,
           py::arg("affine") = true, py::arg("track_running_stats") = true, py::arg("dtype") = py::none());

  auto conv1d =
      py::class_<nn::Conv1d, nn::Module, std::shared_ptr<nn::Conv1d>>(m, "Conv1d")
          .def(py::init([](int64_t in, int64_t out, int64_t k, int64_t stride, py::handle padding, int64_t dilation,
                           int64_t groups, bool bias, std::optional<DType> dt) {
                 nn::Conv1dOptions o{.stride = stride, .dilation = dilation, .groups = groups, .bias = bias,
                                     .dtype = dtype_arg(dt)};
                 if (py::isinstance<py::str>(padding)) {
                   const auto s = padding.cast<std::string>();
                   if (s != "same" && s != "valid") throw py::value_error("Conv1d: padding must be an int, 'same' or 'valid'");
                   o.same = s == "same";
                 } else {
                   o.padding = padding.cast<int64_t>();
                 }
                 return std::make_shared<nn::Conv1d>(in, out, k, o);
               }),
               py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
               py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1, py::arg("bias") = true,
               py::arg("dtype") = py::none())
          .def_readonly("weight", &nn::Conv1d::weight)
          .def_readonly("bias", &nn::Conv1d::bias);
  def_forward1<nn::Conv1d>(conv1d);

  auto conv2d_options = [](const char* who, py::handle stride, py::handle padding, py::handle dilation, int64_t groups,
                           bool bias, std::optional<DType> dt) {
    nn::Conv2dOptions o{.stride = size2_arg(stride, who, "stride"), .dilation = size2_arg(dilation, who, "dilation"),
                        .groups = groups, .bias = bias, .dtype = dtype_arg(dt)};
    if (py::isinstance<py::str>(padding)) {
      const auto s = padding.cast<std::string>();
      if (s != "same" && s != "valid") throw py::value_error(std::string(who) + ": padding must be an int, a pair, 'same' or 'valid'");
      o.same = s == "same";
    } else {
      o.padding = size2_arg(padding, who, "padding");
    }
    return o;
  };
  auto conv2d = py::class_<nn::Conv2d, nn::Module, std::shared_ptr<nn::Conv2d>>(m, "Conv2d")
                    .def(py::init([conv2d_options](int64_t in, int64_t out, py::handle k, py::handle stride,
                                                   py::handle padding, py::handle dilation, int64_t groups, bool bias,
                                                   std::optional<DType> dt) {
                           return std::make_shared<nn::Conv2d>(
                               in, out, size2_arg(k, "Conv2d", "kernel_size"),
                               conv2d_options("Conv2d", stride, padding, dilation, groups, bias, dt));
                         }),
                         py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
                         py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1, py::arg("bias") = true,
                         py::arg("dtype") = py::none())
                    .def_readonly("weight", &nn::Conv2d::weight)
                    .def_readonly("bias", &nn::Conv2d::bias);
  def_forward1<nn::Conv2d>(conv2d);

  auto convt = py::class_<nn::ConvTranspose2d, nn::Module, std::shared_ptr<nn::ConvTranspose2d>>(m, "ConvTranspose2d")
                   .def(py::init([conv2d_options](int64_t in, int64_t out, py::handle k, py::handle stride,
                                                  py::handle padding, py::handle output_padding, int64_t groups, bool bias,
                                                  py::handle dilation, std::optional<DType> dt) {
                          auto o = conv2d_options("ConvTranspose2d", stride, padding, dilation, groups, bias, dt);
                          o.output_padding = size2_arg(output_padding, "ConvTranspose2d", "output_padding");
                          return std::make_shared<nn::ConvTranspose2d>(in, out, size2_arg(k, "ConvTranspose2d", "kernel_size"), o);
                        }),
                        py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
                        py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
                        py::arg("bias") = true, py::arg("dilation") = 1, py::arg("dtype") = py::none())
                   .def_readonly("weight", &nn::ConvTranspose2d::weight)
                   .def_readonly("bias", &nn::ConvTranspose2d::bias);
  def_forward1<nn::ConvTranspose2d>(convt);

  auto dropout = py::class_<nn::Dropout, nn::Module, std::shared_ptr<nn::Dropout>>(m, "Dropout")
                     .def(py::init<double>(), py::arg("p") = 0.5)
                     .def_readonly("p", &nn::Dropout::p);
  def_forward1<nn::Dropout>(dropout);
  auto silu = py::class_<nn::SiLU, nn::Module, std::shared_ptr<nn::SiLU>>(m, "SiLU").def(py::init<>());
  def_forward1<nn::SiLU>(silu);
  auto gelu = py::class_<nn::GELU, nn::Module, std::shared_ptr<nn::GELU>>(m, "GELU")
                  .def(py::init<std::string>(), py::arg("approximate") = "none");
  def_forward1<nn::GELU>(gelu);
  auto glu = py::class_<nn::GLU, nn::Module, std::shared_ptr<nn::GLU>>(m, "GLU").def(py::init<int64_t>(), py::arg("dim") = -1);
  def_forward1<nn::GLU>(glu);

  auto film_call = [](const nn::FiLM& self, const Tensor& x, const Tensor& cond) {
    py::gil_scoped_release nogil;
    return self.forward(x, cond);
  };
  py::class_<nn::FiLM, nn::Module, std::shared_ptr<nn::FiLM>>(m, "FiLM")
      .def(py::init([](int64_t cond_dim, int64_t features, int64_t feature_dim, std::optional<DType> dt) {
             return std::make_shared<nn::FiLM>(cond_dim, features, feature_dim, dtype_arg(dt));
           }),
           py::arg("cond_dim"), py::arg("features"), py::arg("feature_dim") = -1, py::arg("dtype") = py::none())
      .def_readonly("gamma", &nn::FiLM::gamma)
      .def_readonly("beta", &nn::FiLM::beta)
      .def("forward", film_call, py::arg("input"), py::arg("cond"))
      .def("__call__", film_call, py::arg("input"), py::arg("cond"));

  // ---- audio front-end ---------------------------------------------------------------------
  auto stft_options = [](int64_t n_fft, std::optional<int64_t> hop, std::optional<int64_t> win, const std::string& window,
                         bool center, const std::string& pad_mode) {
    return audio::StftOptions{.n_fft = n_fft, .hop_length = hop.value_or(0), .win_length = win.value_or(0),
                              .window = window, .center = center, .pad_mode = pad_mode};
  };
  auto stft_fwd = [](const nn::STFT& self, const Tensor& x) {
    py::gil_scoped_release nogil;
    return self.forward(x);
  };
  py::class_<nn::STFT, nn::Module, std::shared_ptr<nn::STFT>>(m, "STFT")
      .def(py::init([stft_options](int64_t n_fft, std::optional<int64_t> hop, std::optional<int64_t> win,
                                   const std::string& window, bool center, const std::string& pad_mode) {
             return std::make_shared<nn::STFT>(stft_options(n_fft, hop, win, window, center, pad_mode));
           }),
           py::arg("n_fft") = 1024, py::arg("hop_length") = py::none(), py::arg("win_length") = py::none(),
           py::arg("window") = "hann", py::arg("center") = true, py::arg("pad_mode") = "reflect")
      .def("forward", stft_fwd, py::arg("input"))
      .def("__call__", stft_fwd, py::arg("input"));
  auto istft_fwd = [](const nn::ISTFT& self, const Tensor& spec, std::optional<int64_t> length) {
    py::gil_scoped_release nogil;
    return self.forward(spec, length.value_or(-1));
  };
  py::class_<nn::ISTFT, nn::Module, std::shared_ptr<nn::ISTFT>>(m, "ISTFT")
      .def(py::init([stft_options](int64_t n_fft, std::optional<int64_t> hop, std::optional<int64_t> win,
                                   const std::string& window, bool center) {
             return std::make_shared<nn::ISTFT>(stft_options(n_fft, hop, win, window, center, "reflect"));
           }),
           py::arg("n_fft") = 1024, py::arg("hop_length") = py::none(), py::arg("win_length") = py::none(),
           py::arg("window") = "hann", py::arg("center") = true)
      .def("forward", istft_fwd, py::arg("input"), py::arg("length") = py::none())
      .def("__call__", istft_fwd, py::arg("input"), py::arg("length") = py::none());
  auto logmel = py::class_<nn::LogMel, nn::Module, std::shared_ptr<nn::LogMel>>(m, "LogMel")
                    .def(py::init([stft_options](double sr, int64_t n_fft, std::optional<int64_t> hop,
                                                 std::optional<int64_t> win, const std::string& window, bool center,
                                                 const std::string& pad_mode, int64_t n_mels, double fmin,
                                                 std::optional<double> fmax, double power, bool htk,
                                                 const std::string& norm, double amin, double ref,
                                                 std::optional<double> top_db, std::optional<DType> dt) {
                           return std::make_shared<nn::LogMel>(nn::LogMelOptions{
                               .sample_rate = sr,
                               .stft = stft_options(n_fft, hop, win, window, center, pad_mode),
                               .n_mels = n_mels,
                               .fmin = fmin,
                               .fmax = fmax.value_or(-1.0),
                               .power = power,
                               .htk = htk,
                               .norm = norm,
                               .amin = amin,
                               .ref = ref,
                               .top_db = top_db.value_or(-1.0),
                               .dtype = dtype_arg(dt)});
                         }),
                         py::arg("sample_rate") = 32000, py::arg("n_fft") = 1024, py::arg("hop_length") = py::none(),
                         py::arg("win_length") = py::none(), py::arg("window") = "hann", py::arg("center") = true,
                         py::arg("pad_mode") = "reflect", py::arg("n_mels") = 64, py::arg("fmin") = 0.0,
                         py::arg("fmax") = py::none(), py::arg("power") = 2.0, py::arg("htk") = false,
                         py::arg("norm") = "slaney", py::arg("amin") = 1e-10, py::arg("ref") = 1.0,
                         py::arg("top_db") = py::none(), py::arg("dtype") = py::none())
                    .def_readonly("filterbank", &nn::LogMel::filterbank);
  def_forward1<nn::LogMel>(logmel);

  // ---- losses -------------------------------------------------------------------------------
  auto clapsep_call = [](const nn::CLAPSepLoss& self, const Tensor& est, const Tensor& ref) {
    py::gil_scoped_release nogil;
    return self.forward(est, ref);
  };
  auto neg_call = [](const nn::NegSISDR& self, const Tensor& est, const Tensor& ref) {
    py::gil_scoped_release nogil;
    return self.forward(est, ref);
  };
  py::class_<nn::CLAPSepLoss, nn::Module, std::shared_ptr<nn::CLAPSepLoss>>(m, "CLAPSepLoss")
      .def(py::init<>())
      .def("forward", clapsep_call, py::arg("estimate"), py::arg("reference"))
      .def("__call__", clapsep_call, py::arg("estimate"), py::arg("reference"));
  py::class_<nn::NegSISDR, nn::Module, std::shared_ptr<nn::NegSISDR>>(m, "NegSISDR")
      .def(py::init([](bool zero_mean, std::optional<double> eps) {
             return std::make_shared<nn::NegSISDR>(zero_mean, eps.value_or(-1.0));
           }),
           py::arg("zero_mean") = false, py::arg("eps") = py::none())
      .def("forward", neg_call, py::arg("estimate"), py::arg("reference"))
      .def("__call__", neg_call, py::arg("estimate"), py::arg("reference"));

  // ---- Conformer blocks ------------------------------------------------------------------
  auto pe_call = [](const nn::RelPositionalEncoding& self, const Tensor& x) {
    py::gil_scoped_release nogil;
    auto [y, pos] = self.forward(x);
    return py::make_tuple(y, pos);
  };
  py::class_<nn::RelPositionalEncoding, nn::Module, std::shared_ptr<nn::RelPositionalEncoding>>(m, "RelPositionalEncoding")
      .def(py::init([](int64_t d, double p, const std::string& recipe) {
             if (recipe != "espnet_f32" && recipe != "exact")
               throw py::value_error("RelPositionalEncoding: recipe must be 'espnet_f32' or 'exact'");
             return std::make_shared<nn::RelPositionalEncoding>(
                 d, p, recipe == "exact" ? ops::RelPosTable::exact : ops::RelPosTable::espnet_f32);
           }),
           py::arg("d_model"), py::arg("dropout_rate") = 0.0, py::arg("recipe") = "espnet_f32")
      .def("table", &nn::RelPositionalEncoding::table, py::arg("frames"), py::arg("dtype") = DType::f32)
      .def("forward", pe_call, py::arg("input"))
      .def("__call__", pe_call, py::arg("input"));

  auto att_call = [](const nn::RelPositionMultiHeadedAttention& self, const Tensor& q, const Tensor& k, const Tensor& v,
                     const Tensor& pos, bool need_weights) -> py::object {
    Tensor attn, out;
    {
      py::gil_scoped_release nogil;
      out = self.forward(q, k, v, pos, need_weights ? &attn : nullptr);
    }
    if (need_weights) return py::make_tuple(out, attn);
    return py::cast(out);
  };
  py::class_<nn::RelPositionMultiHeadedAttention, nn::Module, std::shared_ptr<nn::RelPositionMultiHeadedAttention>>(
      m, "RelPositionMultiHeadedAttention")
      .def(py::init([](int64_t h, int64_t d, double p, std::optional<DType> dt) {
             return std::make_shared<nn::RelPositionMultiHeadedAttention>(h, d, p, dtype_arg(dt));
           }),
           py::arg("n_head"), py::arg("n_feat"), py::arg("dropout_rate") = 0.0, py::arg("dtype") = py::none())
      .def("forward", att_call, py::arg("query"), py::arg("key"), py::arg("value"), py::arg("pos_emb"),
           py::arg("need_weights") = false)
      .def("__call__", att_call, py::arg("query"), py::arg("key"), py::arg("value"), py::arg("pos_emb"),
           py::arg("need_weights") = false);

  auto ff = py::class_<nn::FeedForward, nn::Module, std::shared_ptr<nn::FeedForward>>(m, "PositionwiseFeedForward")
                .def(py::init([](int64_t d, int64_t hidden, double p, std::optional<DType> dt) {
                       return std::make_shared<nn::FeedForward>(d, hidden, p, dtype_arg(dt));
                     }),
                     py::arg("idim"), py::arg("hidden_units"), py::arg("dropout_rate") = 0.0, py::arg("dtype") = py::none());
  def_forward1<nn::FeedForward>(ff);

  auto conv_mod = py::class_<nn::ConvolutionModule, nn::Module, std::shared_ptr<nn::ConvolutionModule>>(m, "ConvolutionModule")
                      .def(py::init([](int64_t c, int64_t k, const std::string& norm, int64_t groups, std::optional<DType> dt) {
                             return std::make_shared<nn::ConvolutionModule>(c, k, conv_norm_arg(norm), groups, dtype_arg(dt));
                           }),
                           py::arg("channels"), py::arg("kernel_size"), py::arg("norm") = "group_norm",
                           py::arg("norm_groups") = 8, py::arg("dtype") = py::none());
  def_forward1<nn::ConvolutionModule>(conv_mod);

  auto layer_call = [](const nn::ConformerLayer& self, const Tensor& x, const Tensor& pos) {
    py::gil_scoped_release nogil;
    return self.forward(x, pos);
  };
  py::class_<nn::ConformerLayer, nn::Module, std::shared_ptr<nn::ConformerLayer>>(m, "ConformerLayer")
      .def(py::init([](int64_t d, int64_t h, int64_t ffn, int64_t k, const std::string& norm, int64_t groups, double p,
                       double attn_p, std::optional<DType> dt) {
             return std::make_shared<nn::ConformerLayer>(nn::ConformerLayerOptions{.d_model = d,
                                                                                   .n_head = h,
                                                                                   .ffn_dim = ffn,
                                                                                   .conv_kernel = k,
                                                                                   .conv_norm = conv_norm_arg(norm),
                                                                                   .conv_norm_groups = groups,
                                                                                   .dropout = p,
                                                                                   .attn_dropout = attn_p,
                                                                                   .dtype = dtype_arg(dt)});
           }),
           py::arg("d_model") = 256, py::arg("n_head") = 4, py::arg("ffn_dim") = 1024, py::arg("conv_kernel") = 33,
           py::arg("conv_norm") = "group_norm", py::arg("conv_norm_groups") = 8, py::arg("dropout_rate") = 0.0,
           py::arg("attn_dropout_rate") = 0.0, py::arg("dtype") = py::none())
      .def("forward", layer_call, py::arg("input"), py::arg("pos_emb"))
      .def("__call__", layer_call, py::arg("input"), py::arg("pos_emb"));

  auto cond_call = [](const nn::ConditioningBlock& self, const Tensor& h, const Tensor& q) {
    py::gil_scoped_release nogil;
    return self.forward(h, q);
  };
  py::class_<nn::ConditioningBlock, nn::Module, std::shared_ptr<nn::ConditioningBlock>>(m, "ConditioningBlock")
      .def(py::init([](int64_t d, int64_t q, int64_t hidden, bool residual, std::optional<DType> dt) {
             return std::make_shared<nn::ConditioningBlock>(d, q, hidden, residual, dtype_arg(dt));
           }),
           py::arg("d_model"), py::arg("query_dim"), py::arg("hidden") = 0, py::arg("residual") = true,
           py::arg("dtype") = py::none())
      .def("forward", cond_call, py::arg("input"), py::arg("query"))
      .def("__call__", cond_call, py::arg("input"), py::arg("query"));

  bind_swin(m);
}

}  // namespace tse::python
