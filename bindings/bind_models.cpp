// tse._C.models: the models (re-exported by tse.models). A model's config is passed as keyword
// arguments (or a dict) and goes through the C++ config's JSON parser, so unknown keys and wrong
// types are errors naming the key.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

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

}  // namespace

void bind_models(py::module_& parent) {
  py::module_ m = parent.def_submodule("models", "The models (re-exported as tse.models)");

  auto call = [](models::ConformerTSE& self, const Tensor& mixture, const Tensor& query) {
    py::gil_scoped_release nogil;
    return self.forward(mixture, query);
  };
  py::class_<models::ConformerTSE, nn::Module, std::shared_ptr<models::ConformerTSE>>(m, "ConformerTSE")
      .def(py::init([](py::object config, std::optional<DType> dtype, py::kwargs kwargs) {
             auto cfg = models::ConformerTSEConfig::from_json(config_json(config, kwargs));
             return std::make_shared<models::ConformerTSE>(cfg, dtype.value_or(DType::f32));
           }),
           py::arg("config") = py::none(), py::kw_only(), py::arg("dtype") = py::none())
      .def_property_readonly("config",
                             [](const models::ConformerTSE& self) {
                               return json_module().attr("loads")(self.config().to_json());
                             })
      .def("forward", call, py::arg("mixture"), py::arg("query"))
      .def("__call__", call, py::arg("mixture"), py::arg("query"))
      .def(
          "estimate_mask",
          [](models::ConformerTSE& self, const Tensor& mag, const Tensor& query) {
            py::gil_scoped_release nogil;
            return self.estimate_mask(mag, query);
          },
          py::arg("magnitude"), py::arg("query"))
      .def(
          "separate",
          [](models::ConformerTSE& self, const Tensor& mixture, const Tensor& query) {
            py::gil_scoped_release nogil;
            return self.separate(mixture, query);
          },
          py::arg("mixture"), py::arg("query"))
      .def("metadata", &models::ConformerTSE::metadata)
      .def(
          "save",
          [](const models::ConformerTSE& self, const py::object& path) {
            const std::string p = py::str(py::module_::import("os").attr("fspath")(path));
            py::gil_scoped_release nogil;
            self.save(p);
          },
          py::arg("path"), "state_dict() and metadata() to a safetensors file (atomic)")
      .def_static(
          "load",
          [](const py::object& path, std::optional<DType> dtype) {
            const std::string p = py::str(py::module_::import("os").attr("fspath")(path));
            py::gil_scoped_release nogil;
            return models::ConformerTSE::load(p, dtype.value_or(DType::f32));
          },
          py::arg("path"), py::arg("dtype") = py::none(), "the model a file written by save() describes")
      .def_readonly("embed", &models::ConformerTSE::embed)
      .def_readonly("encoders", &models::ConformerTSE::encoders)
      .def_readonly("cond_blocks", &models::ConformerTSE::cond_blocks)
      .def_readonly("after_norm", &models::ConformerTSE::after_norm)
      .def_readonly("mask_head", &models::ConformerTSE::mask_head);

  py::class_<models::LabelQueryEncoder, std::shared_ptr<models::LabelQueryEncoder>>(m, "LabelQueryEncoder")
      .def(py::init<std::vector<std::string>, int64_t, uint64_t>(), py::arg("vocabulary"), py::arg("dim") = 512,
           py::arg("seed") = 0)
      .def_property_readonly("vocabulary", &models::LabelQueryEncoder::vocabulary)
      .def_property_readonly("embedding_dim", &models::LabelQueryEncoder::embedding_dim)
      .def(
          "encode_text",
          [](const models::LabelQueryEncoder& self, py::object labels) {
            if (py::isinstance<py::str>(labels)) return self.encode_text({labels.cast<std::string>()}).squeeze(0);
            return self.encode_text(labels.cast<std::vector<std::string>>());
          },
          py::arg("labels"), "a label -> (D,); a list of labels -> (len, D)")
      .def("index_of", &models::LabelQueryEncoder::index_of, py::arg("label"))
      .def("table", &models::LabelQueryEncoder::table);
}

}  // namespace tse::python
