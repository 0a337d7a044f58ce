// tse._C.models: the models (re-exported by tse.models). A model's config is passed as keyword
// arguments (or a dict) and goes through the C++ config's JSON parser, so unknown keys and wrong
// types are errors naming the key.
#include "bindings/common.hpp"

namespace tse::python {

py::object json_module() { return py::module_::import("json"); }

std::string config_json(const py::object& config, const py::kwargs& kwargs) {
  py::dict merged;
  if (!config.is_none()) {
    if (!py::isinstance<py::dict>(config)) throw py::type_error("config must be a dict (or pass keyword arguments)");
    for (auto item : config.cast<py::dict>()) merged[item.first] = item.second;
  }
  for (auto item : kwargs) merged[item.first] = item.second;
  return json_module().attr("dumps")(merged).cast<std::string>();
}

void bind_models(py::module_& parent) {
  py::module_ m = parent.def_submodule("models", "The models (re-exported as tse.models)");

  auto fspath = [](const py::object& path) { return py::str(py::module_::import("os").attr("fspath")(path)).cast<std::string>(); };
  auto call = [](models::Separator& self, const Tensor& mixture, const Tensor& query) {
    py::gil_scoped_release nogil;
    return self.forward(mixture, query);
  };
  py::class_<models::Separator, nn::Module, std::shared_ptr<models::Separator>>(
      m, "Separator", "base of the query-conditioned extractors: what the Trainer and separate_waveform take")
      .def("forward", call, py::arg("mixture"), py::arg("query"))
      .def("__call__", call, py::arg("mixture"), py::arg("query"))
      .def(
          "separate",
          [](models::Separator& self, const Tensor& mixture, const Tensor& query) {
            py::gil_scoped_release nogil;
            return self.separate(mixture, query);
          },
          py::arg("mixture"), py::arg("query"))
      .def_property_readonly("sample_rate", &models::Separator::sample_rate)
      .def_property_readonly("query_dim", &models::Separator::query_dim)
      .def_property_readonly("supports_negative_queries", &models::Separator::supports_negative_queries)
      .def("metadata", &models::Separator::metadata)
      .def(
          "save",
          [fspath](const models::Separator& self, const py::object& path,
                   std::optional<std::map<std::string, std::string>> extra) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            self.save(p, extra.value_or(std::map<std::string, std::string>{}));
          },
          py::arg("path"), py::arg("extra_metadata") = py::none(),
          "state_dict() and metadata() (+ extra_metadata) to a safetensors file (atomic)");

  py::class_<models::ConformerTSE, models::Separator, std::shared_ptr<models::ConformerTSE>>(m, "ConformerTSE")
      .def(py::init([](py::object config, std::optional<DType> dtype, py::kwargs kwargs) {
             auto cfg = models::ConformerTSEConfig::from_json(config_json(config, kwargs));
             return std::make_shared<models::ConformerTSE>(cfg, dtype.value_or(DType::f32));
           }),
           py::arg("config") = py::none(), py::kw_only(), py::arg("dtype") = py::none())
      .def_property_readonly("config",
                             [](const models::ConformerTSE& self) {
                               return json_module().attr("loads")(self.config().to_json());
                             })
      .def(
          "estimate_mask",
          [](models::ConformerTSE& self, const Tensor& mag, const Tensor& query) {
            py::gil_scoped_release nogil;
            return self.estimate_mask(mag, query);
          },
          py::arg("magnitude"), py::arg("query"))
      .def_static(
          "load",
          [fspath](const py::object& path, std::optional<DType> dtype) {
            const std::string p = fspath(path);
            py::gil_scoped_release nogil;
            return models::ConformerTSE::load(p, dtype.value_or(DType::f32));
          },
          py::arg("path"), py::arg("dtype") = py::none(), "the model a file written by save() describes")
      .def_readonly("embed", &models::ConformerTSE::embed)
      .def_readonly("encoders", &models::ConformerTSE::encoders)
      .def_readonly("cond_blocks", &models::ConformerTSE::cond_blocks)
      .def_readonly("after_norm", &models::ConformerTSE::after_norm)
      .def_readonly("mask_head", &models::ConformerTSE::mask_head);

  py::class_<models::QueryEncoder, std::shared_ptr<models::QueryEncoder>>(m, "QueryEncoder",
                                                                        "queries -> unit condition embeddings")
      .def_property_readonly("name", &models::QueryEncoder::name)
      .def_property_readonly("embedding_dim", &models::QueryEncoder::embedding_dim)
      .def(
          "encode_text",
          [](const models::QueryEncoder& self, py::object texts) {
            if (py::isinstance<py::str>(texts)) return self.encode_text({texts.cast<std::string>()}).squeeze(0);
            return self.encode_text(texts.cast<std::vector<std::string>>());
          },
          py::arg("texts"), "a text -> (D,); a list of texts -> (len, D)")
      .def("to_json", &models::QueryEncoder::to_json)
      .def_static("from_json", &models::QueryEncoder::from_json, py::arg("json"));

  py::class_<models::LabelQueryEncoder, models::QueryEncoder, std::shared_ptr<models::LabelQueryEncoder>>(
      m, "LabelQueryEncoder")
      .def(py::init<std::vector<std::string>, int64_t, uint64_t>(), py::arg("vocabulary"), py::arg("dim") = 512,
           py::arg("seed") = 0)
      .def_property_readonly("vocabulary", &models::LabelQueryEncoder::vocabulary)
      .def_property_readonly("seed", &models::LabelQueryEncoder::seed)
      .def("index_of", &models::LabelQueryEncoder::index_of, py::arg("label"))
      .def("table", &models::LabelQueryEncoder::table);

  py::class_<models::LoadedSeparator>(m, "LoadedSeparator", "a model, its query encoder and the file's metadata")
      .def_readonly("model", &models::LoadedSeparator::model)
      .def_readonly("queries", &models::LoadedSeparator::queries)
      .def_readonly("metadata", &models::LoadedSeparator::metadata);
  m.def(
      "load_separator",
      [fspath](const py::object& path, std::optional<DType> dtype) {
        const std::string p = fspath(path);
        py::gil_scoped_release nogil;
        return models::load_separator(p, dtype.value_or(DType::f32));
      },
      py::arg("path"), py::arg("dtype") = py::none(), "the model (and query encoder) a file written by save() holds");
  m.def(
      "separate_waveform",
      [](models::Separator& model, const Tensor& audio, int64_t sample_rate, const Tensor& query) {
        py::gil_scoped_release nogil;
        return models::separate_waveform(model, audio, sample_rate, query);
      },
      py::arg("model"), py::arg("audio"), py::arg("sample_rate"), py::arg("query"),
      "audio (L) or (C, L) at any rate -> the estimate, same shape and rate");

  bind_clapsep(m);
}

}  // namespace tse::python
