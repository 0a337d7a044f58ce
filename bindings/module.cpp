// tse._C: the compiled half of the Python package. python/tse/__init__.py re-exports it and adds
// the pure-Python parts (no_grad, autograd.grad / gradcheck, nn.functional, cuda).
#include "bindings/common.hpp"

PYBIND11_MODULE(_C, m) {
  m.doc() = "libtse's Python bindings: Tensor, autograd, and the ops with PyTorch's names and signatures.";
  m.attr("__version__") = TSE_VERSION_STRING;
  // Order matters: Tensor results and arguments need the dtype and Node types registered, and
  // ops are also bound as Tensor methods.
  tse::python::bind_core(m);
  tse::python::bind_autograd(m);
  auto tensor = tse::python::bind_tensor(m);
  tse::python::bind_ops(m, tensor);
  tse::python::bind_nn(m, tensor);
  tse::python::bind_audio(m);
  tse::python::bind_metrics(m);
  tse::python::bind_modules(m);
  tse::python::bind_models(m);
  tse::python::bind_io(m);
  tse::python::bind_optim(m);
  tse::python::bind_train(m);
}
