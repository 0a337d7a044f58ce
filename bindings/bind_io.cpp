// tse.io: safetensors files. Arguments are converted with the GIL held; reading, validating and
// writing run with it released.
#include "bindings/common.hpp"

namespace tse::python {
namespace {

/// {name: Tensor} or [(name, Tensor), ...] -> the pair list save_safetensors takes (input order).
std::vector<std::pair<std::string, Tensor>> named_tensors(py::handle obj) {
  std::vector<std::pair<std::string, Tensor>> out;
  auto add = [&](py::handle name, py::handle value) {
    if (!py::isinstance<py::str>(name))
      throw py::type_error("save_safetensors: tensor names must be str, got " +
                           py::str(py::type::handle_of(name)).cast<std::string>());
    if (!py::isinstance<Tensor>(value))
      throw py::type_error("save_safetensors: the value of '" + name.cast<std::string>() + "' must be a tse.Tensor, got " +
                           py::str(py::type::handle_of(value)).cast<std::string>());
    out.emplace_back(name.cast<std::string>(), value.cast<Tensor>());
  };
  if (py::isinstance<py::dict>(obj)) {
    for (auto [k, v] : obj.cast<py::dict>()) add(k, v);
    return out;
  }
  if (py::isinstance<py::str>(obj) || !py::isinstance<py::sequence>(obj))
    throw py::type_error("save_safetensors: tensors must be a dict {name: Tensor} or a list of (name, Tensor) pairs");
  for (py::handle item : obj.cast<py::sequence>()) {
    if (!py::isinstance<py::sequence>(item) || py::isinstance<py::str>(item) || py::len(item) != 2)
      throw py::type_error("save_safetensors: tensors must be a dict {name: Tensor} or a list of (name, Tensor) pairs");
    add(item[py::int_(0)], item[py::int_(1)]);
  }
  return out;
}

}  // namespace

void bind_io(py::module_& m) {
  auto sub = m.def_submodule("io", "Weights files: safetensors read (mmap, validated) and written atomically.");
  sub.def("load_safetensors", [](const std::string& path, bool half_to_f32) {
           std::map<std::string, Tensor> loaded;
           std::vector<std::string> order;
           {
             py::gil_scoped_release release;
             const io::SafetensorsFile f = io::SafetensorsFile::open(path);
             for (const std::string& name : f.names()) loaded.emplace(name, f.tensor(name, half_to_f32));
             order = f.names();
           }
           py::dict d;  // in file order
           for (const std::string& name : order) d[py::str(name)] = py::cast(loaded.at(name));
           return d;
         }, py::arg("path"), py::arg("half_to_f32") = false,
         "{name: Tensor} of a safetensors file, in file order. F16/BF16 stay float16/bfloat16 unless half_to_f32. "
         "RuntimeError naming the file and the broken rule for a malformed file.");
  sub.def("save_safetensors", [](const std::string& path, py::handle tensors,
                                std::optional<std::map<std::string, std::string>> metadata) {
           const auto named = named_tensors(tensors);
           const auto meta = metadata.value_or(std::map<std::string, std::string>{});
           py::gil_scoped_release release;
           io::save_safetensors(path, named, meta);
         }, py::arg("path"), py::arg("tensors"), py::arg("metadata") = py::none(),
         "Writes {name: Tensor} (or a list of (name, Tensor) pairs) and str -> str metadata atomically.");
  sub.def("metadata", [](const std::string& path) {
           py::gil_scoped_release release;
           return io::load_safetensors_metadata(path);
         }, py::arg("path"), "The __metadata__ dict of a safetensors file (the header only; {} when absent).");
}

}  // namespace tse::python
