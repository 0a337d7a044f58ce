"""Ops against numpy formulas, float32 and float64, with broadcasting and strided inputs.

Each table row is (name, tse function, numpy reference, input domain). References are computed
in float64 from the very values the tse op sees.
"""

import math

import numpy as np
import pytest

import tse
import tse.nn.functional as F

DTYPES = {"float32": (tse.float32, np.float32, 2e-5, 2e-6), "float64": (tse.float64, np.float64, 1e-10, 1e-12)}
_erf = np.vectorize(math.erf)


def check(out, expected, dtype_name):
    _, np_dtype, rtol, atol = DTYPES[dtype_name]
    assert isinstance(out, tse.Tensor)
    got = out.numpy()
    assert got.shape == np.shape(expected)
    if got.dtype.kind == "f":
        assert got.dtype == np_dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def make(rng, shape, domain, dtype_name):
    tse_dtype, np_dtype, _, _ = DTYPES[dtype_name]
    a = rng.uniform(domain[0], domain[1], size=shape).astype(np_dtype)
    return tse.from_numpy(a), a.astype(np.float64)


def softplus_ref(x, beta, threshold):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


UNARY = [
    ("neg", tse.neg, np.negative, (-2, 2)),
    ("exp", tse.exp, np.exp, (-3, 3)),
    ("log", tse.log, np.log, (0.1, 5)),
    ("log10", tse.log10, np.log10, (0.1, 5)),
    ("sqrt", tse.sqrt, np.sqrt, (0.1, 5)),
    ("rsqrt", tse.rsqrt, lambda x: 1 / np.sqrt(x), (0.1, 5)),
    ("abs", tse.abs, np.abs, (-2, 2)),
    ("sin", tse.sin, np.sin, (-3, 3)),
    ("cos", tse.cos, np.cos, (-3, 3)),
    ("tanh", tse.tanh, np.tanh, (-3, 3)),
    ("sigmoid", tse.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-5, 5)),
    ("relu", tse.relu, lambda x: np.maximum(x, 0), (-2, 2)),
    ("silu", F.silu, lambda x: x / (1 + np.exp(-x)), (-4, 4)),
    ("gelu", F.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), (-4, 4)),
    (
        "gelu_tanh",
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        (-4, 4),
    ),
    ("leaky_relu", lambda x: F.leaky_relu(x, negative_slope=0.2), lambda x: np.where(x > 0, x, 0.2 * x), (-2, 2)),
    ("softplus", lambda x: F.softplus(x, beta=2.0, threshold=3.0), lambda x: softplus_ref(x, 2.0, 3.0), (-3, 3)),
    ("clamp", lambda x: tse.clamp(x, min=-0.5, max=0.5), lambda x: np.clip(x, -0.5, 0.5), (-2, 2)),
    ("clamp_min", lambda x: tse.clamp(x, min=-0.5), lambda x: np.maximum(x, -0.5), (-2, 2)),
    ("clamp_max", lambda x: x.clamp(max=0.25), lambda x: np.minimum(x, 0.25), (-2, 2)),
    ("pow_int", lambda x: tse.pow(x, 3), lambda x: x**3, (-2, 2)),
    ("pow_half", lambda x: x**0.5, np.sqrt, (0.1, 4)),
    ("rpow", lambda x: 2**x, lambda x: 2.0**x, (-2, 2)),
    ("pow_number_base", lambda x: tse.pow(3.0, x), lambda x: 3.0**x, (-2, 2)),
    ("rsub", lambda x: 1 - x, lambda x: 1 - x, (-2, 2)),
    ("rdiv", lambda x: 2 / x, lambda x: 2 / x, (0.5, 2)),
    ("add_scalar_alpha", lambda x: tse.add(x, 2, alpha=3), lambda x: x + 6, (-2, 2)),
    ("sub_scalar", lambda x: x.sub(0.5), lambda x: x - 0.5, (-2, 2)),
    ("mul_scalar", lambda x: tse.mul(x, 1.5), lambda x: x * 1.5, (-2, 2)),
    ("div_scalar", lambda x: x / 4, lambda x: x / 4, (-2, 2)),
    ("masked_fill", lambda x: tse.masked_fill(x, x > 0, -1.0), lambda x: np.where(x > 0, -1.0, x), (-2, 2)),
    ("where_scalar", lambda x: tse.where(x > 0, x, 0.0), lambda x: np.where(x > 0, x, 0.0), (-2, 2)),
    ("glu", lambda x: F.glu(x, dim=-1), lambda x: x[..., :2] / (1 + np.exp(-x[..., 2:])), (-2, 2)),
    ("dropout_eval", lambda x: F.dropout(x, p=0.3, training=False), lambda x: x, (-2, 2)),
]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "transposed"])
@pytest.mark.parametrize("name,fn,ref,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, fn, ref, domain, dtype_name, strided, rng):
    x, xr = make(rng, (4, 3) if strided else (3, 4), domain, dtype_name)
    if strided:
        x, xr = x.t(), xr.T
    check(fn(x), ref(xr), dtype_name)


BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1, 4), (2, 4)), ((4,), (2, 3, 4)), ((), (3,))]
BINARY = [
    ("add", tse.add, np.add, (-2, 2)),
    ("add_alpha", lambda a, b: tse.add(a, b, alpha=0.5), lambda a, b: a + 0.5 * b, (-2, 2)),
    ("sub", tse.sub, np.subtract, (-2, 2)),
    ("sub_alpha", lambda a, b: a.sub(b, alpha=2), lambda a, b: a - 2 * b, (-2, 2)),
    ("mul", tse.mul, np.multiply, (-2, 2)),
    ("div", tse.div, np.divide, (0.5, 2)),
    ("pow", tse.pow, np.power, (0.5, 2)),
    ("atan2", tse.atan2, np.arctan2, (-2, 2)),
    ("maximum", tse.maximum, np.maximum, (-2, 2)),
    ("minimum", tse.minimum, np.minimum, (-2, 2)),
    ("max_other", tse.max, np.maximum, (-2, 2)),
    ("operator_add", lambda a, b: a + b, np.add, (-2, 2)),
    ("operator_sub", lambda a, b: a - b, np.subtract, (-2, 2)),
    ("operator_mul", lambda a, b: a * b, np.multiply, (-2, 2)),
    ("operator_div", lambda a, b: a / b, np.divide, (0.5, 2)),
    ("operator_pow", lambda a, b: a**b, np.power, (0.5, 2)),
]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=[f"{a}x{b}" for a, b in BROADCAST_SHAPES])
@pytest.mark.parametrize("name,fn,ref,domain", BINARY, ids=[b[0] for b in BINARY])
def test_binary_broadcasting(name, fn, ref, domain, shapes, dtype_name, rng):
    a, ar = make(rng, shapes[0], domain, dtype_name)
    b, br = make(rng, shapes[1], domain, dtype_name)
    check(fn(a, b), ref(ar, br), dtype_name)


COMPARISONS = [
    ("eq", tse.eq, np.equal, lambda a, b: a == b),
    ("ne", tse.ne, np.not_equal, lambda a, b: a != b),
    ("lt", tse.lt, np.less, lambda a, b: a < b),
    ("le", tse.le, np.less_equal, lambda a, b: a <= b),
    ("gt", tse.gt, np.greater, lambda a, b: a > b),
    ("ge", tse.ge, np.greater_equal, lambda a, b: a >= b),
]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("name,fn,ref,op", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons(name, fn, ref, op, dtype_name, rng):
    _, np_dtype, _, _ = DTYPES[dtype_name]
    a = rng.integers(-2, 3, size=(3, 1, 4)).astype(np_dtype)  # small integers: ties happen
    b = rng.integers(-2, 3, size=(2, 4)).astype(np_dtype)
    ta, tb = tse.from_numpy(a), tse.from_numpy(b)
    for out in (fn(ta, tb), op(ta, tb)):
        assert out.dtype is tse.bool
        np.testing.assert_array_equal(out.numpy(), ref(a, b))
    np.testing.assert_array_equal(fn(ta, 1).numpy(), ref(a, 1))
    np.testing.assert_array_equal(op(ta, 1.0).numpy(), ref(a, 1.0))


def test_comparison_with_float_scalar_on_int_tensor():
    t = tse.tensor([1, 2, 3])
    np.testing.assert_array_equal((t == 2.5).numpy(), [False, False, False])
    np.testing.assert_array_equal((t < 2.5).numpy(), [True, True, False])
    assert (t + 0.5).dtype is tse.float32


def test_logical_and_predicates(rng):
    a = rng.uniform(size=(3, 4)) > 0.5
    b = rng.uniform(size=(4,)) > 0.5
    ta, tb = tse.from_numpy(a), tse.from_numpy(b)
    np.testing.assert_array_equal(tse.logical_and(ta, tb).numpy(), a & b)
    np.testing.assert_array_equal(tse.logical_or(ta, tb).numpy(), a | b)
    np.testing.assert_array_equal(tse.logical_not(ta).numpy(), ~a)
    np.testing.assert_array_equal((ta & tb).numpy(), a & b)
    np.testing.assert_array_equal((ta | tb).numpy(), a | b)
    np.testing.assert_array_equal((~ta).numpy(), ~a)
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(tse.isnan(tse.from_numpy(x)).numpy(), np.isnan(x))
    np.testing.assert_array_equal(tse.from_numpy(x).isfinite().numpy(), np.isfinite(x))


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_where_broadcasts_three_ways(dtype_name, rng):
    cond = rng.uniform(size=(3, 1)) > 0.5
    a, ar = make(rng, (1, 4), (-1, 1), dtype_name)
    b, br = make(rng, (3, 4), (-1, 1), dtype_name)
    check(tse.where(tse.from_numpy(cond), a, b), np.where(cond, ar, br), dtype_name)
    check(a.where(tse.from_numpy(cond), b), np.where(cond, ar, br), dtype_name)


DIMS = [None, 0, 1, -1, (0, 2)]
REDUCTIONS = [
    ("sum", lambda x, d, k: tse.sum(x, dim=d, keepdim=k), lambda x, d, k: np.sum(x, axis=d, keepdims=k)),
    ("mean", lambda x, d, k: x.mean(d, k), lambda x, d, k: np.mean(x, axis=d, keepdims=k)),
    ("var", lambda x, d, k: tse.var(x, dim=d, keepdim=k), lambda x, d, k: np.var(x, axis=d, keepdims=k, ddof=1)),
    (
        "var_correction0",
        lambda x, d, k: tse.var(x, d, keepdim=k, correction=0),
        lambda x, d, k: np.var(x, axis=d, keepdims=k),
    ),
    (
        "var_unbiased_false",
        lambda x, d, k: x.var(d, False, k),
        lambda x, d, k: np.var(x, axis=d, keepdims=k),
    ),
    ("std", lambda x, d, k: tse.std(x, dim=d, keepdim=k), lambda x, d, k: np.std(x, axis=d, keepdims=k, ddof=1)),
    ("amax", lambda x, d, k: tse.amax(x, dim=() if d is None else d, keepdim=k),
     lambda x, d, k: np.max(x, axis=d, keepdims=k)),
    ("amin", lambda x, d, k: x.amin(() if d is None else d, k), lambda x, d, k: np.min(x, axis=d, keepdims=k)),
    ("norm2", lambda x, d, k: tse.norm(x, dim=d, keepdim=k),
     lambda x, d, k: np.sqrt(np.sum(x * x, axis=d, keepdims=k))),
    ("norm1", lambda x, d, k: tse.norm(x, p=1, dim=d, keepdim=k),
     lambda x, d, k: np.sum(np.abs(x), axis=d, keepdims=k)),
    ("norm3", lambda x, d, k: x.norm(3, d, k),
     lambda x, d, k: np.sum(np.abs(x) ** 3, axis=d, keepdims=k) ** (1 / 3)),
    ("norm_inf", lambda x, d, k: tse.norm(x, p=float("inf"), dim=d, keepdim=k),
     lambda x, d, k: np.max(np.abs(x), axis=d, keepdims=k)),
]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("name,fn,ref", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions(name, fn, ref, dim, keepdim, dtype_name, rng):
    x, xr = make(rng, (2, 3, 4), (-2, 2), dtype_name)
    check(fn(x, dim, keepdim), ref(xr, dim, keepdim), dtype_name)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("dim", [0, 1, -1, (0, 2)], ids=str)
def test_logsumexp(dim, dtype_name, rng):
    x, xr = make(rng, (2, 3, 4), (-3, 3), dtype_name)
    check(tse.logsumexp(x, dim), np.log(np.sum(np.exp(xr), axis=dim)), dtype_name)
    check(x.logsumexp(dim, keepdim=True), np.log(np.sum(np.exp(xr), axis=dim, keepdims=True)), dtype_name)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim(keepdim, dtype_name, rng):
    x, xr = make(rng, (3, 5), (-2, 2), dtype_name)
    for fn, ref, arg in ((tse.max, np.max, np.argmax), (tse.min, np.min, np.argmin)):
        r = fn(x, 1, keepdim=keepdim)
        values, indices = r
        assert type(r).__name__ in ("max", "min") and r.values is values and r.indices is indices
        check(values, ref(xr, axis=1, keepdims=keepdim), dtype_name)
        assert indices.dtype is tse.int64
        np.testing.assert_array_equal(indices.numpy(), arg(xr, axis=1, keepdims=keepdim))
    check(tse.max(x), np.max(xr), dtype_name)
    check(x.min(), np.min(xr), dtype_name)
    np.testing.assert_array_equal(tse.argmax(x, dim=0).numpy(), np.argmax(xr, axis=0))
    np.testing.assert_array_equal(x.argmin(1, keepdim=True).numpy(), np.argmin(xr, axis=1)[:, None])
    assert tse.argmax(x).item() == np.argmax(xr)


def test_sum_dtype_and_integer_sum():
    x = tse.ones(3, 4)
    assert tse.sum(x, dtype=tse.float64).dtype is tse.float64
    i = tse.arange(6).reshape(2, 3)
    assert i.sum().item() == 15 and i.sum().dtype is tse.int64
    np.testing.assert_array_equal(i.sum(dim=0).numpy(), [3, 5, 7])


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_cat_stack_split_chunk(dtype_name, rng):
    a, ar = make(rng, (2, 3), (-1, 1), dtype_name)
    b, br = make(rng, (2, 4), (-1, 1), dtype_name)
    check(tse.cat([a, b], dim=1), np.concatenate([ar, br], axis=1), dtype_name)
    check(tse.cat((a, a), 0), np.concatenate([ar, ar]), dtype_name)
    check(tse.stack([a, a * 2], dim=1), np.stack([ar, ar * 2], axis=1), dtype_name)
    x, xr = make(rng, (7, 2), (-1, 1), dtype_name)
    parts = tse.split(x, 3)
    assert [p.shape[0] for p in parts] == [3, 3, 1]
    for p, r in zip(parts, np.split(xr, [3, 6])):
        check(p, r, dtype_name)
    parts = x.split([2, 5], dim=0)
    assert [p.shape for p in parts] == [(2, 2), (5, 2)]
    parts = tse.split(x, split_size_or_sections=1, dim=1)
    check(parts[1], xr[:, 1:2], dtype_name)
    chunks = tse.chunk(x, 3)
    assert [c.shape[0] for c in chunks] == [3, 3, 1]
    assert len(x.chunk(2, dim=1)) == 2


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_roll_flip_tril_triu_repeat(dtype_name, rng):
    x, xr = make(rng, (3, 4), (-1, 1), dtype_name)
    check(tse.roll(x, 1, 0), np.roll(xr, 1, 0), dtype_name)
    check(tse.roll(x, shifts=(1, -2), dims=(0, 1)), np.roll(xr, (1, -2), (0, 1)), dtype_name)
    check(x.roll(5), np.roll(xr, 5), dtype_name)
    check(tse.flip(x, [0, 1]), np.flip(xr, (0, 1)), dtype_name)
    check(x.flip(1), np.flip(xr, 1), dtype_name)
    for k in (-1, 0, 1):
        check(tse.tril(x, k), np.tril(xr, k), dtype_name)
        check(x.triu(diagonal=k), np.triu(xr, k), dtype_name)
    check(x.repeat(2, 1, 2), np.tile(xr, (2, 1, 2)), dtype_name)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_gather_index_select_scatter_add(dtype_name, rng):
    x, xr = make(rng, (3, 4), (-1, 1), dtype_name)
    idx = rng.integers(0, 3, size=(2, 4))
    check(tse.gather(x, 0, tse.from_numpy(idx)), np.take_along_axis(xr, idx, 0), dtype_name)
    idx1 = rng.integers(0, 4, size=(3, 2))
    check(x.gather(1, tse.from_numpy(idx1)), np.take_along_axis(xr, idx1, 1), dtype_name)
    sel = np.array([2, 0, 2])
    check(tse.index_select(x, 1, tse.from_numpy(sel)), xr[:, sel], dtype_name)
    check(x.index_select(0, tse.tensor([1])), xr[[1]], dtype_name)
    src, srcr = make(rng, (2, 4), (-1, 1), dtype_name)
    expected = xr.copy()
    for i in range(2):
        for j in range(4):
            expected[idx[i, j], j] += srcr[i, j]
    check(tse.scatter_add(x, 0, tse.from_numpy(idx), src), expected, dtype_name)
    with pytest.raises(IndexError):
        tse.index_select(x, 0, tse.tensor([3]))


PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("mode", list(PAD_MODES))
def test_pad(mode, dtype_name, rng):
    x, xr = make(rng, (1, 2, 4, 5), (-1, 1), dtype_name)
    pads = (2, 1, 1, 3)  # last dim (left, right), then the dim before
    np_pads = [(0, 0), (0, 0), (1, 3), (2, 1)]
    expected = np.pad(xr, np_pads, mode=PAD_MODES[mode])
    check(F.pad(x, pads, mode=mode), expected, dtype_name)
    if mode == "constant":
        check(F.pad(x, [1, 1], value=2.5), np.pad(xr, [(0, 0)] * 3 + [(1, 1)], constant_values=2.5), dtype_name)
        check(F.pad(x, (-1, -1)), xr[..., 1:-1], dtype_name)


def linear_ref(x, out_len, align_corners, axis):
    n = x.shape[axis]
    i = np.arange(out_len, dtype=np.float64)
    if align_corners:
        src = i * (n - 1) / (out_len - 1) if out_len > 1 else np.zeros(out_len)
    else:
        src = np.maximum((i + 0.5) * n / out_len - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
    return np.take(x, i0, axis) * (1 - lam) + np.take(x, i1, axis) * lam


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_interpolate(dtype_name, rng):
    x, xr = make(rng, (1, 2, 5), (-1, 1), dtype_name)
    check(F.interpolate(x, scale_factor=2), np.repeat(xr, 2, axis=2), dtype_name)
    check(F.interpolate(x, size=10, mode="nearest"), np.repeat(xr, 2, axis=2), dtype_name)
    for ac in (False, True):
        check(F.interpolate(x, size=8, mode="linear", align_corners=ac), linear_ref(xr, 8, ac, 2), dtype_name)
    y, yr = make(rng, (1, 1, 3, 4), (-1, 1), dtype_name)
    for ac in (False, True):
        expected = linear_ref(linear_ref(yr, 6, ac, 2), 7, ac, 3)
        check(F.interpolate(y, size=(6, 7), mode="bilinear", align_corners=ac), expected, dtype_name)
    assert F.interpolate(y, scale_factor=(2, 3), mode="bicubic", align_corners=False).shape == (1, 1, 6, 12)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, size=4, mode="nearest", align_corners=True)


def test_dropout_statistics():
    tse.manual_seed(0)
    x = tse.ones(100_000)
    y = tse.dropout(x, p=0.25, train=True).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    z = F.dropout(x, p=0.25, training=False)
    np.testing.assert_array_equal(z.numpy(), x.numpy())


def test_factories():
    assert tse.zeros(2, 3).shape == (2, 3) and tse.zeros((2, 3)).shape == (2, 3)
    assert tse.ones([4], dtype=tse.float64).dtype is tse.float64
    assert tse.empty(3, 2).shape == (3, 2)
    np.testing.assert_array_equal(tse.full((2, 2), 7.0).numpy(), np.full((2, 2), 7.0))
    assert tse.full((2,), 3).dtype is tse.int64
    assert tse.full((2,), True).dtype is tse.bool
    assert tse.full((2,), 1.5).dtype is tse.float32
    np.testing.assert_array_equal(tse.arange(5).numpy(), np.arange(5))
    assert tse.arange(5).dtype is tse.int64
    np.testing.assert_allclose(tse.arange(1, 2, 0.25).numpy(), [1, 1.25, 1.5, 1.75])
    assert tse.arange(0, 1, 0.5).dtype is tse.float32
    np.testing.assert_array_equal(tse.arange(start=2, end=8, step=3).numpy(), [2, 5])
    np.testing.assert_allclose(tse.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(tse.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(tse.eye(2, 4, dtype=tse.int64).numpy(), np.eye(2, 4))
    x = tse.rand(3, 4, dtype=tse.float64)
    assert x.dtype is tse.float64 and 0 <= x.min().item() and x.max().item() < 1
    assert tse.zeros_like(x).sum().item() == 0 and tse.zeros_like(x).dtype is tse.float64
    assert tse.ones_like(x, dtype=tse.float32).dtype is tse.float32
    np.testing.assert_array_equal(tse.full_like(x, 2.0).numpy(), np.full((3, 4), 2.0))
    assert tse.randn_like(x).shape == (3, 4) and tse.rand_like(x).shape == (3, 4)
    assert tse.empty_like(x).shape == (3, 4)
    assert tse.scalar_tensor(2.5).shape == ()
    w = tse.zeros(3, requires_grad=True)
    assert w.requires_grad and w.is_leaf


def test_random_seeding_and_state():
    tse.manual_seed(123)
    a = tse.randn(5)
    state = tse.get_rng_state()
    b = tse.rand(5)
    tse.set_rng_state(state)
    b2 = tse.rand(5)
    np.testing.assert_array_equal(b.numpy(), b2.numpy())
    tse.manual_seed(123)
    np.testing.assert_array_equal(tse.randn(5).numpy(), a.numpy())
    r = tse.randint(3, 7, (1000,))
    assert r.dtype is tse.int64 and r.min().item() >= 3 and r.max().item() <= 6
    r2 = tse.randint(4, size=(10,))
    assert r2.max().item() < 4
    x = tse.randn(200_000, dtype=tse.float64).numpy()
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
    assert state == tse.GeneratorState(state.seed, state.offset)


def test_threads():
    n = tse.get_num_threads()
    tse.set_num_threads(1)
    assert tse.get_num_threads() == 1
    tse.set_num_threads(n)
    assert tse.get_num_threads() == n


def test_torch_style_keywords(rng):
    x = tse.from_numpy(rng.uniform(-1, 1, size=(3, 4)).astype(np.float32))
    mask = x > 0
    assert tse.add(input=x, other=x, alpha=2).shape == (3, 4)
    assert tse.sum(input=x, dim=1, keepdim=True).shape == (3, 1)
    assert tse.mean(x, dim=[0, 1]).shape == ()
    assert tse.var(x, dim=0, correction=0, keepdim=True).shape == (1, 4)
    assert tse.var(x, unbiased=False).shape == ()
    assert tse.max(x, dim=1, keepdim=True).values.shape == (3, 1)
    assert tse.clamp(x, min=0.0).min().item() >= 0
    assert tse.where(condition=mask, input=x, other=tse.zeros_like(x)).shape == (3, 4)
    assert tse.masked_fill(x, mask=mask, value=0.0).max().item() <= 0
    assert tse.cat(tensors=[x, x], dim=0).shape == (6, 4)
    assert tse.stack(tensors=[x, x], dim=-1).shape == (3, 4, 2)
    assert len(tse.split(tensor=x, split_size_or_sections=2, dim=1)) == 2
    assert tse.roll(x, shifts=1, dims=0).shape == (3, 4)
    assert tse.tril(x, diagonal=1).shape == (3, 4)
    assert tse.gather(x, dim=1, index=tse.zeros(3, 1, dtype=tse.int64)).shape == (3, 1)
    assert F.leaky_relu(x, negative_slope=0.1).shape == (3, 4)
    assert F.gelu(x, approximate="tanh").shape == (3, 4)
    assert F.softplus(x, beta=2, threshold=10).shape == (3, 4)
    assert F.glu(x, dim=1).shape == (3, 2)
    assert F.dropout(x, p=0.1, training=False).shape == (3, 4)
    img = x.reshape(1, 1, 3, 4)
    assert F.pad(img, pad=(1, 1), mode="replicate", value=None).shape == (1, 1, 3, 6)
    assert F.interpolate(input=img, size=None, scale_factor=2.0, mode="bilinear", align_corners=False).shape == (
        1,
        1,
        6,
        8,
    )
    assert tse.norm(x, p="fro", dim=None, keepdim=False).shape == ()
    assert tse.logsumexp(x, dim=1, keepdim=False).shape == (3,)
    assert tse.transpose(x, dim0=0, dim1=1).shape == (4, 3)
    assert tse.reshape(x, shape=(2, 6)).shape == (2, 6)
    assert tse.squeeze(x[None], dim=0).shape == (3, 4)
    assert tse.flatten(x, start_dim=0, end_dim=-1).shape == (12,)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4,)), ((3, 4), (4,)), ((4,), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2))]


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=[f"{a}x{b}" for a, b in MATMUL_SHAPES])
def test_matmul(shapes, dtype_name, rng):
    a, ar = make(rng, shapes[0], (-1, 1), dtype_name)
    b, br = make(rng, shapes[1], (-1, 1), dtype_name)
    check(tse.matmul(a, b), np.matmul(ar, br), dtype_name)
    check(a @ b, np.matmul(ar, br), dtype_name)
    check(a.matmul(b), np.matmul(ar, br), dtype_name)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_bmm_and_linear(dtype_name, rng):
    a, ar = make(rng, (2, 3, 4), (-1, 1), dtype_name)
    b, br = make(rng, (2, 4, 5), (-1, 1), dtype_name)
    check(tse.bmm(a, b), ar @ br, dtype_name)
    check(a.bmm(b), ar @ br, dtype_name)
    w, wr = make(rng, (6, 4), (-1, 1), dtype_name)
    bias, biasr = make(rng, (6,), (-1, 1), dtype_name)
    check(F.linear(a, w, bias), ar @ wr.T + biasr, dtype_name)
    check(F.linear(a, w), ar @ wr.T, dtype_name)
    check(F.linear(input=a[0, 0], weight=w, bias=None), ar[0, 0] @ wr.T, dtype_name)
    with pytest.raises(ValueError, match="matmul"):
        tse.matmul(a, a)
