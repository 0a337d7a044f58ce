"""numpy <-> tse: zero-copy both ways, strides, dtypes, lifetimes, and the copying tse.tensor."""

import gc

import numpy as np
import pytest

import tse


def test_from_numpy_shares_memory_both_ways():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = tse.from_numpy(a)
    assert t.shape == (3, 4) and t.dtype is tse.float32
    a[1, 2] = -5.0
    assert t[1, 2].item() == -5.0
    t[0, 0] = 42.0
    assert a[0, 0] == 42.0
    assert np.shares_memory(t.numpy(), a)


def test_numpy_is_zero_copy_and_writable():
    t = tse.zeros(2, 3)
    n = t.numpy()
    n[1, 1] = 7.0
    assert t[1, 1].item() == 7.0
    t.fill_(3.0)
    assert np.all(n == 3.0)
    assert n.ctypes.data == t.data_ptr()


def test_numpy_of_noncontiguous_views_keeps_strides():
    base = tse.from_numpy(np.arange(24, dtype=np.float64).reshape(2, 3, 4))
    ref = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    views = {
        "transpose": (base.transpose(0, 2), ref.transpose(2, 1, 0)),
        "permute": (base.permute(1, 2, 0), ref.transpose(1, 2, 0)),
        "slice_step": (base[:, ::2, 1::2], ref[:, ::2, 1::2]),
        "select": (base[:, 1], ref[:, 1]),
        "expand": (base[:1, :1, :1].expand(2, 3, 4), np.broadcast_to(ref[:1, :1, :1], (2, 3, 4))),
    }
    for name, (t, expected) in views.items():
        n = t.numpy()
        np.testing.assert_array_equal(n, expected, err_msg=name)
        assert n.strides == tuple(s * 8 for s in t.stride()), name
        assert np.shares_memory(n, base.numpy()), name


def test_from_numpy_noncontiguous_input():
    a = np.arange(20, dtype=np.float32).reshape(4, 5)[::2, 1:4]
    t = tse.from_numpy(a)
    assert not t.is_contiguous()
    assert t.stride() == (10, 1)
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal((t * 2).numpy(), a * 2)


def test_from_numpy_rejects_negative_strides():
    a = np.arange(6, dtype=np.float32)[::-1]
    with pytest.raises(ValueError, match="negative"):
        tse.from_numpy(a)


def test_from_numpy_rejects_unaligned_strides():
    raw = np.zeros(16, dtype=np.uint8)
    a = np.lib.stride_tricks.as_strided(raw.view(np.float32)[:2], shape=(2,), strides=(6,))
    with pytest.raises(ValueError, match="multiple of the itemsize"):
        tse.from_numpy(a)


def test_from_numpy_rejects_read_only():
    a = np.arange(4, dtype=np.float32)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        tse.from_numpy(a)
    t = tse.tensor(a)  # the documented way: a copy
    assert not np.shares_memory(t.numpy(), a)
    np.testing.assert_array_equal(t.numpy(), a)


def test_from_numpy_unsupported_dtype():
    with pytest.raises(TypeError, match="uint8"):
        tse.from_numpy(np.zeros(3, dtype=np.uint8))
    with pytest.raises(TypeError, match="ndarray"):
        tse.from_numpy([1.0, 2.0])


@pytest.mark.parametrize(
    "np_dtype,tse_dtype",
    [
        (np.float32, tse.float32),
        (np.float64, tse.float64),
        (np.float16, tse.float16),
        (np.int32, tse.int32),
        (np.int64, tse.int64),
        (np.bool_, tse.bool),
    ],
)
def test_dtype_round_trip_zero_copy(np_dtype, tse_dtype):
    a = np.array([[1, 0, 1], [0, 1, 1]], dtype=np_dtype)
    t = tse.from_numpy(a)
    assert t.dtype is tse_dtype
    n = t.numpy()
    assert n.dtype == np_dtype
    assert np.shares_memory(n, a)


def test_bfloat16_numpy_raises_and_float_copies():
    t = tse.tensor([1.5, -2.0], dtype=tse.bfloat16)
    with pytest.raises(TypeError, match="bfloat16"):
        t.numpy()
    np.testing.assert_array_equal(t.float().numpy(), [1.5, -2.0])
    np.testing.assert_array_equal(t.numpy(force=True), [1.5, -2.0])
    assert t.tolist() == [1.5, -2.0]


def test_numpy_of_requires_grad_tensor_raises_like_torch():
    w = tse.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"detach\(\)"):
        w.numpy()
    assert np.shares_memory(w.detach().numpy(), w.detach().numpy())
    np.testing.assert_array_equal(w.numpy(force=True), [1, 1, 1])


def test_memory_outlives_the_other_side():
    a = np.arange(5, dtype=np.float64)
    t = tse.from_numpy(a)
    del a
    gc.collect()
    np.testing.assert_array_equal(t.numpy(), np.arange(5))

    n = tse.arange(0.0, 4.0).numpy()
    gc.collect()
    np.testing.assert_array_equal(n, [0, 1, 2, 3])

    v = tse.arange(10.0)[2:5].numpy()  # a view's array keeps the whole storage alive
    gc.collect()
    np.testing.assert_array_equal(v, [2, 3, 4])


def test_storage_released_from_another_thread():
    import threading

    a = np.ones(1000, dtype=np.float32)
    holder = [tse.from_numpy(a) * 1.0, tse.from_numpy(a)]

    def drop():
        holder.clear()  # the last tensor over a's memory dies here, off the main thread

    th = threading.Thread(target=drop)
    th.start()
    th.join()
    assert a.sum() == 1000


def test_tensor_copies_and_infers_dtypes():
    a = np.arange(3, dtype=np.float64)
    t = tse.tensor(a)
    assert t.dtype is tse.float64 and not np.shares_memory(t.numpy(), a)
    assert tse.tensor([1.0, 2.0]).dtype is tse.float32
    assert tse.tensor([1, 2]).dtype is tse.int64
    assert tse.tensor([True, False]).dtype is tse.bool
    assert tse.tensor(3.5).shape == ()
    assert tse.tensor(3.5).item() == 3.5
    assert tse.tensor([[1, 2], [3, 4]], dtype=tse.float64).dtype is tse.float64
    assert tse.tensor([1, 2], dtype=np.float32).dtype is tse.float32
    assert tse.tensor([1, 2], dtype="float16").dtype is tse.float16
    t2 = tse.tensor(t)
    assert t2.data_ptr() != t.data_ptr()
    assert tse.tensor([[1.0, 2.0]], requires_grad=True).requires_grad
    with pytest.raises(TypeError):
        tse.tensor(["a", "b"])


def test_as_tensor_shares_when_possible():
    a = np.arange(4, dtype=np.float32)
    assert np.shares_memory(tse.as_tensor(a).numpy(), a)
    b = tse.as_tensor(a, dtype=tse.float64)
    assert b.dtype is tse.float64 and not np.shares_memory(b.numpy(), a)


def test_array_protocol():
    t = tse.arange(6).reshape(2, 3)
    n = np.asarray(t)
    assert n.dtype == np.int64 and np.shares_memory(n, t.numpy())
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float32), np.arange(6).reshape(2, 3))
