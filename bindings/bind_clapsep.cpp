// tse.models' CLAP / CLAPSep classes: HTSAT, CLAPAudioEncoder, CLAPSep and separate_chunked
// (include/tse/models/htsat.hpp, clapsep.hpp). Configs come as a dict and/or keyword arguments.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

audio::ClapLength length_arg(const std::string& s) {
  if (s == "pad") return audio::ClapLength::pad;
  if (s == "stretch") return audio::ClapLength::stretch;
  throw py::value_error("length must be \"pad\" (CLAPSep's encoder) or \"stretch\" (frozen CLAP), got \"" + s + "\"");
}

// progress: None / False (none), True (a tqdm bar, or a line on stderr without tqdm), or a
// callable(done, total). The holder is released by the caller with the GIL held.
models::ProgressCallback progress_arg(const py::object& progress, const char* desc, std::shared_ptr<py::object>& holder) {
  if (progress.is_none() || (py::isinstance<py::bool_>(progress) && !progress.cast<bool>())) return nullptr;
  py::object fn = progress;
  if (py::isinstance<py::bool_>(progress)) fn = py::module_::import("tse._progress").attr("bar")(desc);
  else if (!PyCallable_Check(progress.ptr())) throw py::type_error("progress must be None, a bool or a callable(done, total)");
  holder = std::make_shared<py::object>(fn);
  py::object* f = holder.get();
  return [f](int64_t done, int64_t total) {
    py::gil_scoped_acquire gil;
    (*f)(done, total);
  };
}

models::ChunkOptions chunk_options(double window, double overlap, const std::string& crossfade) {
  return {.window_seconds = window, .overlap_seconds = overlap, .crossfade = crossfade};
}

models::CLAPSepConfig clapsep_config(const py::object& config, const py::kwargs& kwargs) {
  if (py::isinstance<py::str>(config)) {
    const std::string name = config.cast<std::string>();
    models::CLAPSepConfig base;
    if (name == "tiny") base = models::CLAPSepConfig::tiny();
    else if (name != "released") throw py::value_error("config must be a dict, \"released\" or \"tiny\", got \"" + name + "\"");
    const py::dict merged = json_module().attr("loads")(base.to_json());
    for (auto item : kwargs) merged[item.first] = item.second;
    return models::CLAPSepConfig::from_json(json_module().attr("dumps")(merged).cast<std::string>());
  }
  return models::CLAPSepConfig::from_json(config_json(config, kwargs));
}

}  // namespace

void bind_clapsep(py::module_& m) {
  auto fspath = [](const py::object& path) { return py::str(py::module_::import("os").attr("fspath")(path)).cast<std::string>(); };

  py::class_<models::HTSAT, nn::Module, std::shared_ptr<models::HTSAT>>(
      m, "HTSAT", "LAION-CLAP's HTSAT audio encoder (audio_branch.* names, no tscam/head)")
      .def(py::init([](py::object config, std::optional<DType> dtype, py::kwargs kwargs) {
             return std::make_shared<models::HTSAT>(models::HTSATConfig::from_json(config_json(config, kwargs)),
                                                    dtype.value_or(DType::f32));
           }),
           py::arg("config") = py::none(), py::kw_only(), py::arg("dtype") = py::none())
      .def_property_readonly("config", [](const models::HTSAT& self) { return json_module().attr("loads")(self.config().to_json()); })
      .def(
          "logmel",
          [](const models::HTSAT& self, const Tensor& wave, const std::string& length) {
            const auto l = length_arg(length);
            py::gil_scoped_release nogil;
            return self.logmel(wave, l);
          },
          py::arg("wave_48k"), py::arg("length") = "pad", "(B, L) at 48 kHz -> (B, 1, 1024, 64) log-mel in dB")
      .def(
          "encode",
          [](models::HTSAT& self, const Tensor& logmel) {
            models::HTSATFeatures f;
            {
              py::gil_scoped_release nogil;
              f = self.encode(logmel);
            }
            py::dict d;
            d["logmel"] = f.logmel;
            d["bn0"] = f.bn0;
            d["patch_embed"] = f.patch_embed;
            d["stages"] = f.stages;
            return d;
          },
          py::arg("logmel"), "{'logmel', 'bn0', 'patch_embed', 'stages': [each stage's output]}")
      .def("pool", &models::HTSAT::pool, py::arg("last_stage"))
      .def_readonly("bn0", &models::HTSAT::bn0)
      .def_readonly("patch_embed", &models::HTSAT::patch_embed)
      .def_readonly("layers", &models::HTSAT::layers)
      .def_readonly("norm", &models::HTSAT::norm);

  py::class_<models::CLAPAudioEncoder, nn::Module, std::shared_ptr<models::CLAPAudioEncoder>>(
      m, "CLAPAudioEncoder", "CLAP's audio embedding: audio_branch (HTSAT) + audio_projection, L2-normalised")
      .def(py::init([](py::object config, int64_t dim, std::optional<DType> dtype, py::kwargs kwargs) {
             return std::make_shared<models::CLAPAudioEncoder>(models::HTSATConfig::from_json(config_json(config, kwargs)), dim,
                                                               dtype.value_or(DType::f32));
           }),
           py::arg("config") = py::none(), py::kw_only(), py::arg("embedding_dim") = 512, py::arg("dtype") = py::none())
      .def(
          "embed",
          [](models::CLAPAudioEncoder& self, const Tensor& wave) {
            py::gil_scoped_release nogil;
            return self.embed(wave);
          },
          py::arg("wave_48k"), "48 kHz audio (L) or (B, L), <= 10 s -> unit (512) or (B, 512)")
      .def(
          "forward",
          [](models::CLAPAudioEncoder& self, const Tensor& logmel) {
            py::gil_scoped_release nogil;
            return self.forward(logmel);
          },
          py::arg("logmel"))
      .def_readonly("audio_branch", &models::CLAPAudioEncoder::audio_branch)
      .def_readonly("audio_projection", &models::CLAPAudioEncoder::audio_projection);

  auto opt_tensor = [](const std::optional<Tensor>& t) { return t.value_or(Tensor()); };
  py::class_<models::CLAPSep, models::Separator, std::shared_ptr<models::CLAPSep>>(
      m, "CLAPSep", "CLAPSep: LoRA-tuned HTSAT encoder + FiLM Swin U-Net decoder + MaskNet")
      .def(py::init([](py::object config, std::optional<DType> dtype, py::kwargs kwargs) {
             return std::make_shared<models::CLAPSep>(clapsep_config(config, kwargs), dtype.value_or(DType::f32));
           }),
           py::arg("config") = py::none(), py::kw_only(), py::arg("dtype") = py::none())
      .def_property_readonly("config",
                             [](const models::CLAPSep& self) { return json_module().attr("loads")(self.config().to_json()); })
      .def_property_readonly("max_samples", [](const models::CLAPSep& self) { return self.config().max_samples(); })
      .def(
          "condition",
          [opt_tensor](const models::CLAPSep& self, std::optional<Tensor> pos, std::optional<Tensor> neg) {
            return self.condition(opt_tensor(pos), opt_tensor(neg));
          },
          py::arg("positive") = py::none(), py::arg("negative") = py::none(),
          "concat(positive, negative) with zeros for a missing side, (B, 1024)")
      .def(
          "separate",
          [opt_tensor](models::CLAPSep& self, const Tensor& mixture, std::optional<Tensor> pos, std::optional<Tensor> neg,
                       std::optional<Tensor> query, double window, double overlap, const std::string& crossfade,
                       const py::object& progress) {
            if (query && (pos || neg)) throw py::value_error("CLAPSep.separate: give query or positive/negative, not both");
            const Tensor q = query ? *query : self.condition(opt_tensor(pos), opt_tensor(neg));
            const bool single = !query && (!pos || pos->dim() == 1) && (!neg || neg->dim() == 1) && mixture.dim() == 1;
            std::shared_ptr<py::object> holder;
            const auto cb = progress_arg(progress, "CLAPSep", holder);
            Tensor out;
            {
              py::gil_scoped_release nogil;
              const Tensor qq = (single ? q.squeeze(0) : q).to(self.decoder_model->spec_norm->weight.dtype());
              out = models::separate_chunked(self, mixture, qq, chunk_options(window, overlap, crossfade), cb);
            }
            return out;
          },
          py::arg("mixture"), py::arg("positive") = py::none(), py::arg("negative") = py::none(), py::kw_only(),
          py::arg("query") = py::none(), py::arg("window_seconds") = 10.0, py::arg("overlap_seconds") = 1.0,
          py::arg("crossfade") = "hann", py::arg("progress") = py::none(),
          "mixture (L) or (B, L) at 32 kHz, embeddings (512) or (B, 512) (at least one side), any length: "
          "10 s windows overlap-added beyond one window")
      .def(
          "forward_taps",
          [](models::CLAPSep& self, const Tensor& mixture, const Tensor& query) {
            py::gil_scoped_release nogil;
            return self.forward_taps(mixture, query);
          },
          py::arg("mixture"), py::arg("query"), "forward() and every named intermediate tensor")
      .def("freeze_for_finetuning", &models::CLAPSep::freeze_for_finetuning)
      .def("merge_lora", &models::CLAPSep::merge_lora, py::arg("merge") = true)
      .def_static(
          "load",
          [fspath](const py::object& path, std::optional<DType> dtype) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            return models::CLAPSep::load(p, dtype.value_or(DType::f32));
          },
          py::arg("path"), py::arg("dtype") = py::none())
      .def_readonly("audio_branch", &models::CLAPSep::audio_branch)
      .def_readonly("decoder_model", &models::CLAPSep::decoder_model);

  py::class_<models::CLAPSepDecoder, nn::Module, std::shared_ptr<models::CLAPSepDecoder>>(m, "CLAPSepDecoder");

  m.def(
      "separate_chunked",
      [](models::Separator& model, const Tensor& mixture, const Tensor& query, double window, double overlap,
         const std::string& crossfade, const py::object& progress) {
        std::shared_ptr<py::object> holder;
        const auto cb = progress_arg(progress, model.type_name().c_str(), holder);
        py::gil_scoped_release nogil;
        return models::separate_chunked(model, mixture, query, chunk_options(window, overlap, crossfade), cb);
      },
      py::arg("model"), py::arg("mixture"), py::arg("query"), py::kw_only(), py::arg("window_seconds") = 10.0,
      py::arg("overlap_seconds") = 1.0, py::arg("crossfade") = "hann", py::arg("progress") = py::none(),
      "any-length audio through model.separate in overlapping windows, weighted overlap-add");
}

}  // namespace tse::python
