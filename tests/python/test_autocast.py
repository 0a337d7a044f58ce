"""tse.autocast from Python: bf16 GEMMs on float32 tensors, checked against NumPy on operands
rounded to bfloat16 (round to nearest even), forward and backward; the context manager and
decorator forms, nesting, restoring after an exception, thread-locality, bad arguments, the
weight cache, and the tiny CLAPSep golden model under autocast."""

import threading

import numpy as np
import pytest

import tse
from golden import load, rel_to_peak


@pytest.fixture(autouse=True)
def _autocast_off():
    yield
    tse._C._set_autocast_dtype(tse.float32)


def _bf16(a):
    """a (float32) rounded to bfloat16 values, round to nearest even (no NaN in the tests)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).reshape(np.shape(a)).astype(np.float64)


def _rel(got, want):
    return float(np.linalg.norm(np.asarray(got, np.float64) - want) / np.linalg.norm(want))


def test_linear_and_matmul_are_products_of_rounded_operands(rng):
    x = rng.uniform(-1, 1, (3, 17, 64)).astype(np.float32)
    w = rng.uniform(-1, 1, (24, 64)).astype(np.float32)
    b = rng.uniform(-1, 1, (24,)).astype(np.float32)
    with tse.autocast():
        y = tse.nn.functional.linear(tse.tensor(x), tse.tensor(w), tse.tensor(b))
        m = tse.matmul(tse.tensor(x), tse.tensor(w).t())
    assert y.dtype == tse.float32 and m.dtype == tse.float32
    want = _bf16(x) @ _bf16(w).T
    assert _rel(y.numpy(), want + b) <= 2e-6  # the bias is added in float32, not rounded
    assert _rel(m.numpy(), want) <= 2e-6
    assert _rel(m.numpy(), x.astype(np.float64) @ w.T.astype(np.float64)) >= 2e-4  # it did round


def test_backward_of_ops_recorded_under_autocast_is_bf16(rng):
    x = tse.tensor(rng.uniform(-1, 1, (19, 48)).astype(np.float32), requires_grad=True)
    lin = tse.nn.Linear(48, 32)
    g = rng.uniform(-1, 1, (19, 32)).astype(np.float32)
    with tse.autocast():
        y = lin(x)
    y.backward(tse.tensor(g))  # outside the block: still the bf16 GEMMs recorded inside it
    w = lin.weight.detach().numpy()
    assert _rel(x.grad.numpy(), _bf16(g) @ _bf16(w)) <= 2e-6
    assert _rel(lin.weight.grad.numpy(), _bf16(g).T @ _bf16(x.detach().numpy())) <= 2e-6
    assert _rel(lin.bias.grad.numpy(), g.astype(np.float64).sum(0)) <= 1e-6


def test_float64_is_never_autocast(rng):
    a = rng.uniform(-1, 1, (6, 9))
    b = rng.uniform(-1, 1, (9, 4))
    with tse.autocast():
        got = tse.matmul(tse.tensor(a), tse.tensor(b)).numpy()
    assert got.dtype == np.float64 and np.allclose(got, a @ b, rtol=1e-13, atol=1e-13)


def test_modes_nest_restore_and_stay_in_their_thread():
    assert not tse.amp.is_autocast_enabled()
    with tse.autocast():
        assert tse.amp.is_autocast_enabled()
        seen = []
        t = threading.Thread(target=lambda: seen.append(tse.amp.is_autocast_enabled()))
        t.start()
        t.join()
        assert seen == [False]
        with tse.autocast(enabled=False):
            assert not tse.amp.is_autocast_enabled()
        assert tse.amp.is_autocast_enabled()
    assert not tse.amp.is_autocast_enabled()
    with pytest.raises(RuntimeError, match="boom"):
        with tse.autocast():
            raise RuntimeError("boom")
    assert not tse.amp.is_autocast_enabled()

    @tse.autocast()
    def inside():
        return tse.amp.is_autocast_enabled()

    assert inside() and not tse.amp.is_autocast_enabled()


@pytest.mark.parametrize("kwargs,words", [({"dtype": tse.float16}, "tse.bfloat16"), ({"dtype": "bf16"}, "tse.bfloat16"),
                                          ({"enabled": 1}, "enabled must be a bool")])
def test_bad_arguments_are_value_errors(kwargs, words):
    with pytest.raises(ValueError, match=words):
        tse.autocast(**kwargs)
    with pytest.raises(ValueError, match="autocast: dtype must be"):
        tse._C._set_autocast_dtype(tse.int64)


def test_weight_cache_is_reused_refreshed_and_freed(rng):
    tse.amp.clear_cache()
    assert tse.amp.cached_bytes() == 0
    lin = tse.nn.Linear(32, 16, bias=False)
    x = rng.uniform(-1, 1, (5, 32)).astype(np.float32)
    with tse.autocast(), tse.no_grad():
        lin(tse.tensor(x))
        assert tse.amp.cached_bytes() == 16 * 32 * 2
        lin(tse.tensor(x))
        assert tse.amp.cached_bytes() == 16 * 32 * 2
        new = rng.uniform(-1, 1, (16, 32)).astype(np.float32)
        lin.weight.copy_(tse.tensor(new))  # in place: the next product sees it
        assert _rel(lin(tse.tensor(x)).numpy(), _bf16(x) @ _bf16(new).T) <= 2e-6
    del lin
    assert tse.amp.cached_bytes() == 0
    assert isinstance(tse.amp.native_bf16(), bool) and tse.amp.native_bf16("cuda") is False


def test_tiny_clapsep_under_autocast_stays_near_the_official_output():
    g, _ = load("clapsep/clapsep_tiny.safetensors")
    model = tse.models.CLAPSep("tiny")
    model.load_state_dict({k: tse.tensor(v) for k, v in g.items()
                           if not k.startswith(("input.", "output", "audio_branch.tscam_conv.", "audio_branch.head."))})
    model.eval()
    mixture = tse.tensor(g["input.mixture"].astype(np.float32))
    with tse.autocast():
        out = model.separate(mixture, positive=tse.tensor(g["input.embed_pos"].astype(np.float32)),
                             negative=tse.tensor(g["input.embed_neg"].astype(np.float32))).numpy()
    err = rel_to_peak(out, g["output.waveform"])
    assert 1e-6 <= err <= 2e-2  # bf16 operands: ~2e-3 measured; f32 agrees to ~1e-6
