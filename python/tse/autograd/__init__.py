"""Autograd: ``backward``, ``grad``, ``gradcheck`` and the grad-mode switches.

Recording is per thread and on by default; ``tse.no_grad()`` turns it off for a block or a
function. ``grad`` returns gradients without touching any ``.grad``.
"""

from collections.abc import Sequence
from typing import Any, Optional, Union

from .. import _C
from .._C import Node, Tensor
from .gradcheck import GradcheckError, gradcheck
from .grad_mode import enable_grad, no_grad, set_grad_enabled

_Tensors = Union[Tensor, Sequence[Tensor]]
_OptionalTensors = Union[Tensor, Sequence[Optional[Tensor]]]


def _as_list(tensors: _OptionalTensors, what: str) -> list[Any]:
    if isinstance(tensors, _C.Tensor):
        return [tensors]
    if tensors is None:
        raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got None")
    return list(tensors)


def backward(
    tensors: _Tensors, grad_tensors: Optional[_OptionalTensors] = None, retain_graph: bool = False
) -> None:
    """Backpropagates from tensors; leaves accumulate into ``.grad`` (``+=``).

    grad_tensors gives the gradient of each tensor (None: ones, allowed for one-element tensors).
    The graph's saved tensors are freed afterwards unless retain_graph.
    """
    tensors = _as_list(tensors, "tensors")
    grads: list[Optional[Tensor]] = (
        [None] * len(tensors) if grad_tensors is None else _as_list(grad_tensors, "grad_tensors")
    )
    _C._autograd_backward(tensors, grads, retain_graph)


def grad(
    outputs: _Tensors,
    inputs: _Tensors,
    grad_outputs: Optional[_OptionalTensors] = None,
    retain_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Optional[Tensor], ...]:
    """Gradients of outputs with respect to inputs, as a tuple, without touching any ``.grad``.

    An input the outputs do not depend on raises, or gets None when allow_unused.
    """
    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    grads: list[Optional[Tensor]] = (
        [None] * len(outputs) if grad_outputs is None else _as_list(grad_outputs, "grad_outputs")
    )
    return _C._autograd_grad(outputs, inputs, grads, retain_graph, allow_unused)


__all__ = [
    "GradcheckError",
    "Node",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "no_grad",
    "set_grad_enabled",
]
