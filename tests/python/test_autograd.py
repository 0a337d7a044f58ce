"""Autograd from Python: backward, accumulation, retain_graph, grad modes, autograd.grad, gradcheck."""

import threading

import numpy as np
import pytest

import tse
import tse.nn.functional as F
from tse.autograd import GradcheckError, gradcheck


def f64(*shape, rng, low=-1.0, high=1.0):
    return tse.tensor(rng.uniform(low, high, size=shape), dtype=tse.float64, requires_grad=True)


def test_backward_and_leaf_metadata(rng):
    x = f64(3, 4, rng=rng)
    assert x.is_leaf and x.grad_fn is None and x.grad is None
    y = (x * x).sum()
    assert not y.is_leaf and y.grad_fn.name() == "sum"
    assert "grad_fn=<sum>" in repr(y)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())


def test_gradients_accumulate_and_reset(rng):
    x = f64(5, rng=rng)
    for _ in range(3):
        (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(5, 6.0))
    x.grad = None
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones(5))
    x.grad.zero_()
    assert x.grad.sum().item() == 0.0


def test_backward_with_explicit_gradient(rng):
    x = f64(2, 3, rng=rng)
    y = x * 3.0
    with pytest.raises(ValueError, match="one-element"):
        y.backward()
    g = tse.ones(2, 3, dtype=tse.float64) * 0.5
    y.backward(gradient=g)
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 1.5))


def test_retain_graph(rng):
    x = f64(4, rng=rng)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_no_grad_context_and_decorator(rng):
    x = f64(3, rng=rng)
    assert tse.is_grad_enabled()
    with tse.no_grad():
        assert not tse.is_grad_enabled()
        y = x * 2
        with tse.enable_grad():
            assert tse.is_grad_enabled()
            z = x * 2
        assert not tse.is_grad_enabled()
    assert tse.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @tse.no_grad()
    def infer(a):
        """Docstring kept."""
        return a * a, tse.is_grad_enabled()

    out, mode = infer(x)
    assert not out.requires_grad and mode is False
    assert tse.is_grad_enabled()
    assert infer.__doc__ == "Docstring kept." and infer.__name__ == "infer"


def test_no_grad_restored_after_exception():
    with pytest.raises(KeyError):
        with tse.no_grad():
            raise KeyError("x")
    assert tse.is_grad_enabled()


def test_set_grad_enabled():
    with tse.set_grad_enabled(False):
        assert not tse.is_grad_enabled()
    assert tse.is_grad_enabled()
    tse.set_grad_enabled(False)
    assert not tse.is_grad_enabled()
    tse.set_grad_enabled(True)


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["worker"] = tse.is_grad_enabled()

    with tse.no_grad():
        th = threading.Thread(target=worker)
        th.start()
        th.join()
    assert seen["worker"] is True


def test_autograd_grad_does_not_touch_dot_grad(rng):
    x = f64(3, rng=rng)
    w = f64(3, rng=rng)
    y = (x * w).sum()
    gx, gw = tse.autograd.grad(y, [x, w])
    np.testing.assert_allclose(gx.numpy(), w.detach().numpy())
    np.testing.assert_allclose(gw.numpy(), x.detach().numpy())
    assert x.grad is None and w.grad is None


def test_autograd_grad_allow_unused_and_grad_outputs(rng):
    x = f64(3, rng=rng)
    unused = f64(2, rng=rng)
    y = x * 2.0
    with pytest.raises(ValueError, match="allow_unused"):
        tse.autograd.grad(y.sum(), [x, unused], retain_graph=True)
    gx, gu = tse.autograd.grad([y], [x, unused], grad_outputs=[tse.ones(3, dtype=tse.float64)], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.numpy(), np.full(3, 2.0))


def test_autograd_backward_function(rng):
    x = f64(2, rng=rng)
    tse.autograd.backward([(x * 3.0).sum()])
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_grad_flows_through_views_and_indexing(rng):
    x = f64(3, 4, rng=rng)
    y = x[1:, ::2].t().reshape(-1)[None, ...]
    y.sum().backward()
    expected = np.zeros((3, 4))
    expected[1:, ::2] = 1.0
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_requires_grad_setter_and_detach(rng):
    x = tse.zeros(3)
    x.requires_grad = True
    assert x.requires_grad_(False) is x and not x.requires_grad
    y = f64(2, rng=rng) * 2
    assert not y.detach().requires_grad
    with pytest.raises(ValueError, match="floating-point"):
        tse.zeros(2, dtype=tse.int64).requires_grad_()


@pytest.mark.parametrize(
    "name,fn,shapes,domain",
    [
        ("mul_broadcast", lambda a, b: a * b, [(2, 3), (3,)], (-1, 1)),
        ("div", lambda a, b: a / b, [(3,), (3,)], (0.5, 2)),
        ("exp_log", lambda a: (a.exp() + 1).log(), [(4,)], (-1, 1)),
        ("sqrt", lambda a: tse.sqrt(a), [(4,)], (0.5, 2)),
        ("tanh_sigmoid", lambda a: tse.tanh(a) * tse.sigmoid(a), [(2, 2)], (-2, 2)),
        ("gelu", lambda a: F.gelu(a), [(5,)], (-2, 2)),
        ("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), [(5,)], (-2, 2)),
        ("softplus", lambda a: F.softplus(a, beta=2.0), [(5,)], (-2, 2)),
        ("glu", lambda a: F.glu(a, dim=-1), [(2, 4)], (-1, 1)),
        ("sum_mean", lambda a: a.sum(dim=1, keepdim=True) * a.mean(0), [(3, 4)], (-1, 1)),
        ("var", lambda a: tse.var(a, dim=0), [(4, 3)], (-1, 1)),
        ("logsumexp", lambda a: tse.logsumexp(a, dim=1), [(3, 4)], (-1, 1)),
        ("norm", lambda a: tse.norm(a, p=2, dim=1), [(3, 4)], (0.5, 1)),
        ("pow", lambda a: a ** 3.0, [(4,)], (-1, 1)),
        ("atan2", lambda a, b: tse.atan2(a, b), [(3,), (3,)], (0.5, 1)),
        ("cat_stack", lambda a, b: tse.stack([tse.cat([a, b]), tse.cat([b, a])], dim=1), [(2,), (3,)], (-1, 1)),
        ("where", lambda a, b: tse.where(a > 0, a, b * 2), [(5,), (5,)], (-1, 1)),
        ("pad_reflect", lambda a: F.pad(a, (2, 1), mode="reflect"), [(1, 2, 5)], (-1, 1)),
        ("interpolate", lambda a: F.interpolate(a, scale_factor=2, mode="linear"), [(1, 2, 4)], (-1, 1)),
        ("roll_flip", lambda a: tse.flip(tse.roll(a, 1, 1), [0]), [(2, 3)], (-1, 1)),
        ("matmul", lambda a, b: a @ b, [(2, 3, 4), (4, 2)], (-1, 1)),
        ("linear", lambda x, w, b: F.linear(x, w, b), [(2, 3), (4, 3), (4,)], (-1, 1)),
    ],
)
def test_gradcheck_passes(name, fn, shapes, domain, rng):
    inputs = [f64(*s, rng=rng, low=domain[0], high=domain[1]) for s in shapes]
    assert gradcheck(fn, inputs)


def test_gradcheck_catches_a_wrong_gradient(rng):
    x = f64(4, rng=rng)

    def wrong(a):
        # Values a*a, but the recorded graph differentiates 3*a: gradient 3 instead of 2a.
        return (a * a).detach() + a * 3.0 - (a * 3.0).detach()

    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(wrong, (x,))
    assert gradcheck(wrong, (x,), raise_exception=False) is False


def test_gradcheck_requires_float64(rng):
    x = tse.tensor(rng.uniform(size=3), dtype=tse.float32, requires_grad=True)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda a: a * 2, (x,))
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda a: a * 2, (tse.ones(2, dtype=tse.float64),))
