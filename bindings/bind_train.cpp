// tse.train: the data pipeline (built-in sounds, on-the-fly mixing) and the Trainer.
#include "bindings/common.hpp"

namespace tse::python {

void bind_train(py::module_& m) {
  py::module_ train = m.def_submodule("train", "Data pipeline and Trainer");
  (void)train;
}

}  // namespace tse::python
