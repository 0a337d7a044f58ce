"""Finite-difference gradient check over the full Jacobian, in numpy.

The analytical Jacobian comes from one ``autograd.grad`` call per output element; the numerical
one from central differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` per input element, each
perturbation written in place through a numpy view of the input. Float64 inputs are required:
with eps = 1e-6, float32 rounding error (~1e-7 relative) would swamp the difference quotient.
"""

from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from .. import _C
from .._C import Tensor
from .grad_mode import no_grad

_Func = Callable[..., Union[Tensor, Sequence[Any]]]


class GradcheckError(RuntimeError):
    """The analytical and numerical Jacobians differ."""


def _outputs_tuple(out: Union[Tensor, Sequence[Any]]) -> tuple[Tensor, ...]:
    if isinstance(out, _C.Tensor):
        return (out,)
    return tuple(o for o in out if isinstance(o, _C.Tensor))


def _flat_outputs(func: _Func, inputs: tuple[Any, ...]) -> np.ndarray:
    with no_grad():
        outs = _outputs_tuple(func(*inputs))
    return np.concatenate([o.detach().double().numpy().ravel() for o in outs]) if outs else np.zeros(0)


def _numerical_jacobian(func: _Func, inputs: tuple[Any, ...], x: Tensor, eps: float) -> np.ndarray:
    """d outputs / d x as an array of shape (x.numel(), total output elements)."""
    view = x.detach().numpy()  # shares memory with x: perturbations are seen by func
    columns = []
    for idx in np.ndindex(view.shape):
        orig = view[idx]
        view[idx] = orig + eps
        plus = _flat_outputs(func, inputs)
        view[idx] = orig - eps
        minus = _flat_outputs(func, inputs)
        view[idx] = orig
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns) if columns else np.zeros((0, 0))


def _analytical_jacobians(outputs: tuple[Tensor, ...], diff_inputs: list[Tensor]) -> list[np.ndarray]:
    """One (input.numel(), total output elements) array per differentiable input."""
    blocks: list[list[np.ndarray]] = [[] for _ in diff_inputs]
    for out in outputs:
        n = out.numel()
        cols = [np.zeros((x.numel(), n)) for x in diff_inputs]
        if out.requires_grad:
            for k in range(n):
                seed = np.zeros(n)
                seed[k] = 1.0
                g_out = _C.tensor(seed.reshape(out.shape), dtype=out.dtype)
                grads = _C._autograd_grad([out], diff_inputs, [g_out], True, True)
                for i, g in enumerate(grads):
                    if g is not None:
                        cols[i][:, k] = g.detach().double().numpy().ravel()
        for i, c in enumerate(cols):
            blocks[i].append(c)
    return [np.concatenate(b, axis=1) for b in blocks]


def gradcheck(
    func: _Func,
    inputs: Union[Tensor, Sequence[Any]],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Checks the gradients of func at inputs against central finite differences.

    inputs is a Tensor or a tuple (non-tensors are passed through); every tensor that requires
    grad must be float64. Each Jacobian entry must satisfy ``|a - n| <= atol + rtol * |n|``.
    Returns True, or raises GradcheckError naming the output and input (returns False instead
    when raise_exception is False).
    """
    inputs = (inputs,) if isinstance(inputs, _C.Tensor) else tuple(inputs)
    diff = [(i, x) for i, x in enumerate(inputs) if isinstance(x, _C.Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad (set requires_grad=True on at least one tensor)")
    for i, x in diff:
        if x.dtype != _C.float64:
            raise ValueError(
                f"gradcheck: input {i} has dtype {x.dtype}; gradcheck needs float64 inputs (use x.double()), "
                "lower precision makes the finite differences meaningless"
            )
        if x.device.type != "cpu":
            raise ValueError(f"gradcheck: input {i} is on {x.device}; gradcheck runs on the CPU")

    outputs = _outputs_tuple(func(*inputs))
    analytical = _analytical_jacobians(outputs, [x for _, x in diff])
    offsets = np.cumsum([0] + [o.numel() for o in outputs])
    for (i, x), a_full in zip(diff, analytical):
        n_full = _numerical_jacobian(func, inputs, x, eps)
        for k in range(len(outputs)):
            a = a_full[:, offsets[k] : offsets[k + 1]]
            n = n_full[:, offsets[k] : offsets[k + 1]]
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                worst = np.unravel_index(np.argmax(np.abs(a - n) - rtol * np.abs(n)), a.shape)
                raise GradcheckError(
                    f"Jacobian mismatch for output {k} with respect to input {i},\n"
                    f"numerical:{n}\nanalytical:{a}\n"
                    f"worst entry {worst}: numerical {n[worst]:.6g}, analytical {a[worst]:.6g} "
                    f"(atol={atol}, rtol={rtol})"
                )
    return True


__all__ = ["GradcheckError", "gradcheck"]
