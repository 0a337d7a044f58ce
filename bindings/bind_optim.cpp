// tse.optim: optimisers, learning-rate schedules and gradient clipping.
#include "bindings/common.hpp"

namespace tse::python {

void bind_optim(py::module_& m) {
  py::module_ optim = m.def_submodule("optim", "Optimisers, learning-rate schedules, gradient clipping");
  (void)optim;
}

}  // namespace tse::python
