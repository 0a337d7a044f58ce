"""tse.Tensor from Python: metadata, dtypes/devices, conversion, views, indexing, in place."""

import pickle

import numpy as np
import pytest

import tse


def test_metadata():
    t = tse.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.dim() == 3 and t.ndim == 3 and t.numel() == 24 and len(t) == 2
    assert t.dtype is tse.float32 and t.device == tse.device("cpu") and t.is_cpu and not t.is_cuda
    assert t.strides() == (12, 4, 1) and t.stride() == (12, 4, 1) and t.stride(0) == 12
    assert t.is_contiguous() and not t.transpose(0, 2).is_contiguous()
    assert t.element_size() == 4 and t.itemsize == 4 and t.nbytes == 96
    assert t.is_floating_point() and not tse.zeros(2, dtype=tse.int32).is_floating_point()
    assert t[1].storage_offset() == 12
    assert not t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None


def test_dtype_objects():
    assert tse.float32 is tse.float and tse.float64 is tse.double and tse.int64 is tse.long
    assert repr(tse.bfloat16) == "tse.bfloat16" and tse.float16.itemsize == 2
    assert tse.float64.is_floating_point and not tse.int32.is_floating_point
    assert pickle.loads(pickle.dumps(tse.float64)) is tse.float64
    assert tse.promote_types(tse.int64, tse.float32) is tse.float32
    for spec in ("float64", "double", np.float64, np.dtype("float64"), float):
        assert tse.zeros(1, dtype=spec).dtype is tse.float64
    assert tse.zeros(1, dtype=int).dtype is tse.int64
    assert tse.zeros(1, dtype=bool).dtype is tse.bool
    with pytest.raises(TypeError):
        tse.zeros(1, dtype="complex128")


def test_devices():
    d = tse.device("cpu")
    assert d.type == "cpu" and d.index == 0 and str(d) == "cpu" and repr(d) == "device(type='cpu')"
    assert tse.device("cuda:1").index == 1 and tse.device("cuda", 2).type == "cuda"
    assert tse.device("cpu") == tse.device("cpu") and hash(tse.device("cpu")) == hash(tse.device("cpu"))
    assert pickle.loads(pickle.dumps(tse.device("cuda:1"))) == tse.device("cuda:1")
    assert tse.zeros(2, device="cpu").device == d
    assert isinstance(tse.cuda.is_available(), bool) and tse.cuda.device_count() >= 0


def test_cuda_settings_work_without_a_gpu():
    assert tse.cuda.allow_tf32() is False  # off by default
    tse.cuda.set_allow_tf32(True)
    try:
        assert tse.cuda.allow_tf32() is True
    finally:
        tse.cuda.set_allow_tf32(False)
    tse.cuda.empty_cache()
    if not tse.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            tse.cuda.memory_cached(0)


@pytest.mark.skipif(not tse.cuda.is_available(), reason="needs a GPU")
def test_cuda_round_trip():
    x = tse.arange(6.0).reshape(2, 3)
    g = x.to("cuda")
    assert g.is_cuda and g.device == tse.device("cuda:0")
    assert "device='cuda:0'" in repr(g)
    with pytest.raises(TypeError, match="cpu"):
        g.numpy()
    np.testing.assert_array_equal(g.cpu().numpy(), x.numpy())
    np.testing.assert_array_equal(g.cuda(0).to("cpu").numpy(), x.numpy())
    assert g.__dlpack_device__() == (2, 0)


@pytest.mark.skipif(not tse.cuda.is_available(), reason="needs a GPU")
def test_cuda_matmul_matches_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 48)), rng.standard_normal((48, 32))
    got = (tse.from_numpy(a).to("cuda") @ tse.from_numpy(b).to("cuda")).cpu().numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12)
    assert tse.cuda.memory_cached(0) >= 0


def test_to_and_casts():
    t = tse.arange(4)
    assert t.to(tse.float64).dtype is tse.float64
    assert t.to("cpu").data_ptr() == t.data_ptr()
    assert t.to("cpu", tse.float32).dtype is tse.float32
    assert t.to(dtype=tse.float16).dtype is tse.float16
    assert t.to(tse.zeros(1, dtype=tse.float64)).dtype is tse.float64
    assert t.to(tse.int64, copy=True).data_ptr() != t.data_ptr()
    casts = {"float": tse.float32, "double": tse.float64, "half": tse.float16, "bfloat16": tse.bfloat16,
             "int": tse.int32, "long": tse.int64, "bool": tse.bool}
    for name, dtype in casts.items():
        assert getattr(t, name)().dtype is dtype
    np.testing.assert_array_equal(tse.tensor([1.7, -1.7]).long().numpy(), [1, -1])
    c = tse.arange(3.0).clone()
    assert c.data_ptr() != tse.arange(3.0).data_ptr()
    tt = tse.ones(2, 3).t()
    assert tt.contiguous().is_contiguous() and tt.contiguous().data_ptr() != tt.data_ptr()


def test_item_tolist_and_python_numbers():
    assert tse.tensor(2.5).item() == 2.5 and isinstance(tse.tensor(2.5).item(), float)
    big = 2**62 + 1
    assert tse.tensor([big]).item() == big
    assert tse.tensor(True).item() is True
    assert tse.arange(6).reshape(2, 3).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert tse.tensor(1.5).tolist() == 1.5
    assert float(tse.tensor([3.0])) == 3.0 and int(tse.tensor(7)) == 7
    assert bool(tse.tensor([1.0])) and not bool(tse.tensor(0))
    assert [0, 1, 2, 3][tse.tensor(2)] == 2
    assert f"{tse.tensor(3.14159):.2f}" == "3.14"
    with pytest.raises(ValueError, match="item"):
        tse.ones(2).item()


def test_repr_like_torch():
    assert repr(tse.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(tse.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tse.tensor([1.0], dtype=tse.float64)) == "tensor([1.], dtype=tse.float64)"
    assert repr(tse.ones(2, requires_grad=True)) == "tensor([1., 1.], requires_grad=True)"
    assert repr(tse.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert "..." in repr(tse.zeros(10000))
    assert "dtype=tse.bfloat16" in repr(tse.ones(2, dtype=tse.bfloat16))


def test_views_share_storage():
    t = tse.arange(24.0)
    v = t.view(2, 3, 4)
    assert v.shape == (2, 3, 4) and v.data_ptr() == t.data_ptr()
    assert t.view((4, 6)).shape == (4, 6) and t.view(-1, 8).shape == (3, 8)
    assert v.reshape(6, 4).data_ptr() == t.data_ptr()
    assert v.permute(2, 0, 1).shape == (4, 2, 3) and v.permute((2, 0, 1)).stride() == (1, 12, 4)
    assert v.transpose(0, 1).shape == (3, 2, 4) and v[0].t().shape == (4, 3) and v[0].T.shape == (4, 3)
    assert v.narrow(2, 1, 2).shape == (2, 3, 2) and v.select(1, 0).shape == (2, 4)
    assert v[:, :1].expand(2, 5, 4).shape == (2, 5, 4) and v[:, :1].expand(-1, 3, -1).shape == (2, 3, 4)
    assert v[:, :1].squeeze().shape == (2, 4) and v[:, :1].squeeze(1).shape == (2, 4)
    assert v.unsqueeze(0).shape == (1, 2, 3, 4) and v.flatten(1).shape == (2, 12)
    assert v.view_as(tse.zeros(6, 4)).shape == (6, 4) and v[:1, :1, :1].expand_as(v).shape == (2, 3, 4)
    assert tse.broadcast_to(tse.ones(3), (2, 3)).shape == (2, 3)
    assert tse.broadcast_shapes((2, 1), (3,)) == (2, 3)
    t2 = v.transpose(1, 2)
    with pytest.raises(ValueError, match="reshape"):
        t2.view(24)
    assert t2.reshape(24).data_ptr() != t.data_ptr()


INDICES = [
    1,
    -1,
    slice(None),
    slice(1, None),
    slice(None, None, 2),
    slice(-3, -1),
    slice(1, 100, 3),
    (0, 1),
    (slice(None), 2),
    (Ellipsis, 1),
    (1, Ellipsis),
    (None, 0),
    (slice(None), None, slice(1, 3)),
    (Ellipsis, None),
    (0, slice(None, None, 2), -1),
    (slice(5, 2),),
    [2, 0],
    (slice(None), [1, 1, 3]),
    (0, np.array([[0, 1], [2, 3]])),
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_getitem_matches_numpy(index):
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    t = tse.from_numpy(a)
    idx = index
    if isinstance(index, tuple):
        idx = tuple(tse.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)
    got = t[idx]
    np.testing.assert_array_equal(got.numpy(), a[index])
    advanced = any(isinstance(i, (list, np.ndarray)) for i in (index if isinstance(index, tuple) else (index,)))
    if not advanced and got.numel():
        assert np.shares_memory(got.numpy(), a)


def test_getitem_tensor_index_and_errors():
    t = tse.arange(10.0)
    np.testing.assert_array_equal(t[tse.tensor([1, 3])].numpy(), [1, 3])
    assert t[tse.tensor(4)].item() == 4
    with pytest.raises(IndexError, match="mask"):
        t[t > 3]
    with pytest.raises(IndexError, match="ellipsis"):
        t[..., ...]
    with pytest.raises(TypeError, match="valid indices"):
        t["a"]


def test_setitem():
    a = np.zeros((3, 4), dtype=np.float32)
    t = tse.from_numpy(a)
    t[0] = 1.0
    t[1, ::2] = tse.tensor([5.0, 6.0])
    t[2] = [7, 8, 9, 10]
    t[..., -1] = 3
    expected = np.zeros((3, 4), dtype=np.float32)
    expected[0] = 1
    expected[1, ::2] = [5, 6]
    expected[2] = [7, 8, 9, 10]
    expected[..., -1] = 3
    np.testing.assert_array_equal(a, expected)
    with pytest.raises(IndexError, match="scatter_add"):
        t[[0, 1]] = 0.0


def test_in_place_ops_return_self_and_bump_version():
    t = tse.zeros(3)
    v0 = t._version
    assert t.add_(1.0) is t and t.mul_(3.0) is t and t.sub_(tse.ones(3), alpha=0.5) is t
    assert t.div_(2.0) is t
    np.testing.assert_allclose(t.numpy(), [1.25, 1.25, 1.25])
    assert t._version > v0
    t.mul_(tse.tensor([1.0, 2.0, 4.0]))
    np.testing.assert_allclose(t.numpy(), [1.25, 2.5, 5.0])
    assert t.fill_(2.0) is t and t.zero_() is t and t.sum().item() == 0
    src = tse.tensor([1, 2, 3])
    assert t.copy_(src) is t and t.dtype is tse.float32
    np.testing.assert_array_equal(t.numpy(), [1, 2, 3])
    ptr = t.data_ptr()
    t += 1
    t *= tse.tensor(2.0)
    t -= tse.ones(3)
    t /= 2
    assert t.data_ptr() == ptr
    np.testing.assert_allclose(t.numpy(), [1.5, 2.5, 3.5])


def test_operators_with_python_scalars():
    x = tse.tensor([1.0, 2.0, 4.0])
    np.testing.assert_allclose((x + 1).numpy(), [2, 3, 5])
    np.testing.assert_allclose((1 + x).numpy(), [2, 3, 5])
    np.testing.assert_allclose((3 - x).numpy(), [2, 1, -1])
    np.testing.assert_allclose((2 * x).numpy(), [2, 4, 8])
    np.testing.assert_allclose((4 / x).numpy(), [4, 2, 1])
    np.testing.assert_allclose((2**x).numpy(), [2, 4, 16])
    np.testing.assert_allclose((x**2).numpy(), [1, 4, 16])
    np.testing.assert_allclose((-x).numpy(), [-1, -2, -4])
    np.testing.assert_allclose(abs(-x).numpy(), [1, 2, 4])
    np.testing.assert_allclose((x + np.float32(1)).numpy(), [2, 3, 5])
    assert (x + True).dtype is tse.float32
    assert (tse.tensor([True]) + 1).dtype is tse.int64
    assert (x == x).all() if hasattr(x, "all") else bool((x == x).logical_not().sum() == 0)
    assert (x == None) is False  # noqa: E711 (identity fallback, as for any object)
    assert hash(x) == hash(x)


def test_iteration():
    rows = list(tse.arange(6).reshape(3, 2))
    assert [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(TypeError):
        iter(tse.tensor(1.0))


def test_pickle_and_deepcopy():
    import copy

    for t in (tse.arange(6.0).reshape(2, 3).t(), tse.tensor([1, 2], dtype=tse.int32), tse.ones(2, dtype=tse.bfloat16)):
        u = pickle.loads(pickle.dumps(t))
        assert u.shape == t.shape and u.dtype is t.dtype and u.data_ptr() != t.data_ptr()
        np.testing.assert_array_equal(u.float().numpy(), t.float().numpy())
    w = tse.ones(3, requires_grad=True)
    w2 = copy.deepcopy(w)
    assert w2.requires_grad and w2.is_leaf and w2.detach().sum().item() == 3.0
