"""DLPack both ways: numpy consumes our capsules, we consume numpy's and our own."""

import numpy as np
import pytest

import tse


def test_numpy_from_dlpack_shares_memory():
    t = tse.arange(6.0).reshape(2, 3)
    n = np.from_dlpack(t)
    np.testing.assert_array_equal(n, np.arange(6.0).reshape(2, 3))
    t[0, 0] = 100.0
    assert n[0, 0] == 100.0
    assert n.ctypes.data == t.data_ptr()


def test_numpy_from_dlpack_noncontiguous():
    t = tse.arange(12.0).reshape(3, 4).t()
    n = np.from_dlpack(t)
    np.testing.assert_array_equal(n, np.arange(12.0).reshape(3, 4).T)
    assert n.strides == (4, 16)


def test_tse_from_dlpack_of_numpy_shares_memory():
    a = np.arange(8, dtype=np.int32).reshape(2, 4)
    t = tse.from_dlpack(a)
    assert t.dtype is tse.int32 and t.shape == (2, 4)
    a[1, 3] = -1
    assert t[1, 3].item() == -1
    t[0, 0] = 9
    assert a[0, 0] == 9
    assert t.data_ptr() == a.ctypes.data


def test_round_trip_through_capsules():
    t = tse.randn(3, 5)
    u = tse.from_dlpack(t)
    assert u.data_ptr() == t.data_ptr()
    u.fill_(2.0)
    assert t.sum().item() == 30.0
    back = tse.from_dlpack(np.from_dlpack(t))
    assert back.data_ptr() == t.data_ptr()


@pytest.mark.parametrize("max_version", [None, (1, 0)])
def test_capsule_is_consumed_once(max_version):
    t = tse.ones(4)
    cap = t.__dlpack__(max_version=max_version)
    name = "dltensor" if max_version is None else "dltensor_versioned"
    assert f'"{name}"' in repr(cap)
    u = tse.from_dlpack(cap)
    assert f'"used_{name}"' in repr(cap)
    assert u.data_ptr() == t.data_ptr()
    with pytest.raises(ValueError, match="consumed only once"):
        tse.from_dlpack(cap)


def test_unconsumed_capsule_frees_its_tensor():
    import gc

    t = tse.ones(4)
    cap = t.__dlpack__(max_version=(1, 0))
    del cap
    gc.collect()
    assert t.sum().item() == 4.0


def test_dlpack_device_and_copy():
    t = tse.zeros(3)
    assert t.__dlpack_device__() == (1, 0)
    copied = tse.from_dlpack(t.__dlpack__(max_version=(1, 0), copy=True))
    assert copied.data_ptr() != t.data_ptr()
    with pytest.raises(BufferError):
        t.__dlpack__(stream=1)


def test_read_only_producer_is_copied():
    a = np.arange(3, dtype=np.float32)
    a.flags.writeable = False
    t = tse.from_dlpack(a)
    assert t.data_ptr() != a.ctypes.data
    np.testing.assert_array_equal(t.numpy(), a)
    with pytest.raises(BufferError):
        tse.from_dlpack(a, copy=False)


def test_requires_grad_export_refused():
    w = tse.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        np.from_dlpack(w)
    assert np.from_dlpack(w.detach()).sum() == 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.bool_])
def test_dtypes_through_dlpack(dtype):
    a = np.array([1, 0, 1], dtype=dtype)
    t = tse.from_dlpack(a)
    n = np.from_dlpack(t)
    assert n.dtype == dtype and np.shares_memory(n, a)


def test_from_dlpack_rejects_other_objects():
    with pytest.raises(TypeError, match="__dlpack__"):
        tse.from_dlpack([1, 2, 3])
