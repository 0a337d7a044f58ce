"""tse.nn.functional's layer ops (conv, norms, softmax, pooling) from Python: torch's keywords and
int-or-tuple arguments, numpy references written here, autograd, and errors as Python exceptions."""

import numpy as np
import pytest

import tse
import tse.nn.functional as F


def t(a, grad=False):
    x = tse.from_numpy(np.ascontiguousarray(a))
    return x.requires_grad_() if grad else x


def np_conv2d(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, co, oh, ow))
    cog = co // groups
    for o in range(co):
        g = o // cog
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cig : (g + 1) * cig, i * dh : i * dh + sh * oh : sh, j * dw : j * dw + sw * ow : sw]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j])
    return out + (b[None, :, None, None] if b is not None else 0)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), ((2, 1), (1, 2), 1, 2), (1, 1, (2, 1), 4)])
def test_conv2d_matches_numpy(rng, stride, padding, dilation, groups):
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6 if groups != 4 else 8, 4 // groups, 3, 2))
    b = rng.standard_normal(w.shape[0])
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    want = np_conv2d(x, w, b, pair(stride), pair(padding), pair(dilation), groups)
    got = F.conv2d(t(x), t(w), t(b), stride=stride, padding=padding, dilation=dilation, groups=groups).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    got32 = F.conv2d(t(x.astype(np.float32)), t(w.astype(np.float32)), t(b.astype(np.float32)), stride, padding,
                     dilation, groups).numpy()
    np.testing.assert_allclose(got32, want, rtol=1e-4, atol=1e-4)


def test_conv1d_same_padding_depthwise_and_grads(rng):
    x = rng.standard_normal((1, 6, 40))
    w = rng.standard_normal((6, 1, 33)) * 0.1
    y = F.conv1d(t(x), t(w), padding="same", groups=6).numpy()
    want = np_conv2d(x[:, :, None], w[:, :, None], None, (1, 1), (0, 16), (1, 1), 6)[:, :, 0]
    np.testing.assert_allclose(y, want, atol=1e-12)
    xs, ws = t(rng.standard_normal((1, 2, 7)), True), t(rng.standard_normal((3, 2, 3)), True)
    assert tse.autograd.gradcheck(lambda a, b: F.conv1d(a, b, stride=2, padding=1), (xs, ws))


def test_conv_transpose_is_the_adjoint_of_conv(rng):
    x = rng.standard_normal((1, 3, 8, 8))
    w = rng.standard_normal((4, 3, 4, 4))
    y = rng.standard_normal((1, 4, 2, 2))
    lhs = np.sum(F.conv2d(t(x), t(w), stride=4).numpy() * y)
    rhs = np.sum(x * F.conv_transpose2d(t(y), t(w), stride=4).numpy())
    assert lhs == pytest.approx(rhs, rel=1e-12)
    x1, w1 = rng.standard_normal((2, 3, 10)), rng.standard_normal((3, 2, 4))
    out = F.conv_transpose1d(t(x1), t(w1), stride=2, padding=1, output_padding=1)
    assert out.shape == (2, 2, (10 - 1) * 2 - 2 + 3 + 1 + 1)


def test_layer_group_and_batch_norm_match_numpy(rng):
    x = rng.standard_normal((4, 6, 5))
    w, b = rng.standard_normal(5), rng.standard_normal(5)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(F.layer_norm(t(x), (5,), t(w), t(b)).numpy(), (x - mu) / np.sqrt(var + 1e-5) * w + b,
                               atol=1e-12)
    g = x.reshape(4, 3, 10)
    gn = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(F.group_norm(t(x), 3).numpy(), gn, atol=1e-12)
    rm, rv = t(np.zeros(6)), t(np.ones(6))
    y = F.batch_norm(t(x), rm, rv, training=True, momentum=0.1).numpy()
    bm, bv = x.mean((0, 2)), x.var((0, 2))
    np.testing.assert_allclose(y, (x - bm[None, :, None]) / np.sqrt(bv[None, :, None] + 1e-5), atol=1e-12)
    np.testing.assert_allclose(rm.numpy(), 0.1 * bm, atol=1e-14)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * x.var((0, 2), ddof=1), atol=1e-14)
    ev = F.batch_norm(t(x), rm, rv).numpy()
    np.testing.assert_allclose(ev, (x - rm.numpy()[None, :, None]) / np.sqrt(rv.numpy()[None, :, None] + 1e-5),
                               atol=1e-12)


def test_softmax_everywhere_it_is_bound(rng):
    x = rng.standard_normal((3, 4, 5))
    e = np.exp(x - x.max(1, keepdims=True))
    want = e / e.sum(1, keepdims=True)
    for got in (F.softmax(t(x), 1), tse.softmax(t(x), dim=1), t(x).softmax(1)):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-14)
    np.testing.assert_allclose(t(x).log_softmax(-2).numpy(), np.log(want), atol=1e-12)
    masked = np.array([[0.0, -np.inf, 1.0]])
    p = F.softmax(t(masked), -1).numpy()
    assert p[0, 1] == 0.0 and p.sum() == pytest.approx(1.0)


def test_avg_pool_matches_numpy(rng):
    x = rng.standard_normal((2, 3, 8, 6))
    want = x.reshape(2, 3, 4, 2, 3, 2).mean((3, 5))
    np.testing.assert_allclose(F.avg_pool2d(t(x), 2).numpy(), want, atol=1e-14)
    np.testing.assert_allclose(F.avg_pool2d(t(x), (2, 2), divisor_override=1).numpy(), want * 4, atol=1e-13)
    x1 = rng.standard_normal((1, 2, 12))
    np.testing.assert_allclose(F.avg_pool1d(t(x1), 4).numpy(), x1.reshape(1, 2, 3, 4).mean(-1), atol=1e-14)
    padded = F.avg_pool1d(t(np.ones((1, 1, 4))), 3, stride=1, padding=1, count_include_pad=False).numpy()
    np.testing.assert_allclose(padded, np.ones((1, 1, 4)))


def test_layer_op_errors_are_python_exceptions():
    with pytest.raises(ValueError, match="conv2d"):
        F.conv2d(tse.zeros(1, 3, 8, 8), tse.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="same"):
        F.conv1d(tse.zeros(1, 1, 8), tse.zeros(1, 1, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(tse.zeros(1, 1, 8, 8), tse.zeros(1, 1, 3, 3), stride=(1, 2, 3))
    with pytest.raises(ValueError, match="num_groups|groups"):
        F.group_norm(tse.zeros(2, 6, 4), 4)
    with pytest.raises(ValueError):
        F.batch_norm(tse.zeros(2, 3), None, None, training=False)
    with pytest.raises(IndexError):
        F.softmax(tse.zeros(2, 3), 2)
    with pytest.raises(ValueError, match="padding"):
        F.avg_pool2d(tse.zeros(1, 1, 4, 4), 2, padding=2)
