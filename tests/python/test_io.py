"""tse.io safetensors files: round trips, agreement with the PyPI safetensors package (the
reference implementation) in both directions, metadata, and malformed files raising errors that
name the file. The C++ suite (tests/cpp/test_safetensors.cpp) covers each validation rule."""

import json
import struct
import time

import numpy as np
import pytest
import safetensors.numpy as st

import tse
import tse.io as tio

from golden import GOLDEN, load as golden_load

_NUMPY_DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_]


def _arrays(rng):
    out = {}
    for i, dt in enumerate(_NUMPY_DTYPES):
        name = f"t.{np.dtype(dt).name}"
        if dt is np.bool_:
            out[name] = rng.random((3, 4)) > 0.5
        elif np.issubdtype(dt, np.integer):
            out[name] = rng.integers(-(2**30), 2**30, size=(2, 3, i + 1)).astype(dt)
        else:
            out[name] = rng.standard_normal((5, i + 1)).astype(dt)
    out["scalar"] = np.array(3.5, dtype=np.float32)
    out["empty"] = np.zeros((0, 7), dtype=np.float32)
    return out


def _raw(header, data=b"", n=None):
    text = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(text) if n is None else n) + text + data


def test_round_trip_every_dtype_and_metadata(tmp_path, rng):
    arrays = _arrays(rng)
    path = tmp_path / "w.safetensors"
    meta = {"format": "libtse-v1", "config": json.dumps({"sr": 32000})}
    tio.save_safetensors(path, {k: tse.from_numpy(v) for k, v in arrays.items()}, meta)
    got = tio.load_safetensors(path)
    assert sorted(got) == sorted(arrays)
    for name, a in arrays.items():
        t = got[name]
        assert isinstance(t, tse.Tensor)
        assert t.numpy().dtype == a.dtype and t.numpy().shape == a.shape, name
        np.testing.assert_array_equal(t.numpy(), a)
    assert tio.metadata(path) == meta
    assert tio.metadata(str(path)) == meta


def test_numpy_arrays_list_of_pairs_and_views_are_saved(tmp_path, rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    path = tmp_path / "v.safetensors"
    tio.save_safetensors(path, [("at", a.T), ("sl", tse.from_numpy(a)[:, 1::2]), ("np_scalar", np.float64(2.0))])
    got = tio.load_safetensors(path)
    np.testing.assert_array_equal(got["at"].numpy(), a.T)
    np.testing.assert_array_equal(got["sl"].numpy(), a[:, 1::2])
    assert got["np_scalar"].numpy().shape == () and float(got["np_scalar"].numpy()) == 2.0
    assert tio.metadata(path) == {}


def test_reference_package_reads_our_files(tmp_path, rng):
    arrays = _arrays(rng)
    path = tmp_path / "ours.safetensors"
    tio.save_safetensors(path, arrays, {"k": "v"})
    theirs = st.load_file(str(path))
    assert sorted(theirs) == sorted(arrays)
    for name, a in arrays.items():
        assert theirs[name].dtype == a.dtype and theirs[name].shape == a.shape, name
        np.testing.assert_array_equal(theirs[name], a)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"k": "v"}


def test_we_read_reference_package_files(tmp_path, rng):
    arrays = _arrays(rng)
    path = tmp_path / "theirs.safetensors"
    st.save_file(arrays, str(path), metadata={"sr": "32000", "name": "x"})
    ours = tio.load_safetensors(path)
    assert sorted(ours) == sorted(arrays)
    for name, a in arrays.items():
        np.testing.assert_array_equal(ours[name].numpy(), a)
        assert ours[name].numpy().dtype == a.dtype
    assert tio.metadata(path) == {"sr": "32000", "name": "x"}


def test_same_bytes_as_the_reference_writer(tmp_path, rng):
    # One dtype per element size fixes the data order (largest first, as both writers lay it out);
    # with the compact JSON and the space padding to 8 the two files are then identical.
    arrays = {
        "b": rng.random(5) > 0.5,
        "d": rng.standard_normal((2, 3)),
        "f": rng.standard_normal(7).astype(np.float32),
        "h": rng.standard_normal((1, 3)).astype(np.float16),
    }
    ours, theirs = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    tio.save_safetensors(ours, arrays, {"m": "1"})
    st.save_file(arrays, str(theirs), metadata={"m": "1"})
    assert ours.read_bytes() == theirs.read_bytes()
    # With several dtypes of one size the order within a size may differ; each tensor's bytes agree.
    arrays = _arrays(rng)
    tio.save_safetensors(ours, arrays)
    st.save_file(arrays, str(theirs))
    a, b = ours.read_bytes(), theirs.read_bytes()
    (na,) = struct.unpack("<Q", a[:8])
    (nb,) = struct.unpack("<Q", b[:8])
    ha, hb = json.loads(a[8 : 8 + na]), json.loads(b[8 : 8 + nb])
    assert na % 8 == 0 and sorted(ha) == sorted(hb)
    for name in ha:
        (lo, hi), (lo2, hi2) = ha[name]["data_offsets"], hb[name]["data_offsets"]
        assert ha[name]["dtype"] == hb[name]["dtype"] and ha[name]["shape"] == hb[name]["shape"]
        assert a[8 + na + lo : 8 + na + hi] == b[8 + nb + lo2 : 8 + nb + hi2]


def test_half_to_f32_and_bfloat16(tmp_path):
    bits_f16 = np.array([0x3C00, 0xC000, 0x7BFF, 0x0001], dtype="<u2")
    bits_bf16 = np.array([0x3F80, 0x4049, 0xC2F7], dtype="<u2")
    header = {
        "h": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]},
        "b": {"dtype": "BF16", "shape": [3], "data_offsets": [8, 14]},
    }
    path = tmp_path / "h.safetensors"
    path.write_bytes(_raw(json.dumps(header), bits_f16.tobytes() + bits_bf16.tobytes()))
    wide = tio.load_safetensors(path, half_to_f32=True)
    assert wide["h"].dtype == tse.float32 and wide["b"].dtype == tse.float32
    np.testing.assert_array_equal(wide["h"].numpy(), np.array([1.0, -2.0, 65504.0, 2.0**-24], dtype=np.float32))
    np.testing.assert_array_equal(wide["b"].numpy(), np.array([1.0, 3.140625, -123.5], dtype=np.float32))
    kept = tio.load_safetensors(path)
    assert kept["h"].dtype == tse.float16 and kept["b"].dtype == tse.bfloat16
    np.testing.assert_array_equal(kept["h"].numpy().view("<u2"), bits_f16)


def test_golden_file_matches_the_independent_reader():
    path = GOLDEN / "conformer" / "rel_pos_mhsa.safetensors"
    want, meta = golden_load("conformer/rel_pos_mhsa.safetensors")
    got = tio.load_safetensors(path)
    assert list(got) == list(want)  # file order
    for name, a in want.items():
        np.testing.assert_array_equal(got[name].numpy(), a)
    assert tio.metadata(path)["format"] == meta["format"]


@pytest.mark.parametrize(
    "blob,rule",
    [
        (b"\x01\x02", "less than the 8-byte header length"),
        (_raw("{}", n=10**9), "exceeds the limit"),
        (_raw("{}", n=50), "runs past the end of the file"),
        (_raw("{not json}"), "not valid JSON"),
        (_raw('["a"]'), "starting with '{'"),
        (_raw('{"a":{"dtype":"F32","shape":[1]}}', b"abcd"), "has no 'data_offsets'"),
        (_raw('{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', b"a"), "unknown dtype 'Q4'"),
        (_raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', b"abcd"), "needs 8 bytes"),
        (_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"abcdEXTRA"), "trailing bytes"),
        (_raw('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],'
              '"data_offsets":[0,1]}}', b"a"), "holds the key 'a' twice"),
        (_raw('{"__metadata__":{"n":1}}'), "must be a string"),
        (_raw(b'{"\xc3(":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"a"), "not valid UTF-8"),
    ],
)
def test_malformed_files_raise_naming_the_file(tmp_path, blob, rule):
    path = tmp_path / "bad_file.safetensors"
    path.write_bytes(blob)
    with pytest.raises(RuntimeError) as e:
        tio.load_safetensors(path)
    assert str(path) in str(e.value) and rule in str(e.value)
    with pytest.raises(RuntimeError, match="bad_file"):
        tio.metadata(path)


def test_unsupported_dtype_and_missing_file(tmp_path):
    path = tmp_path / "u8.safetensors"
    path.write_bytes(_raw('{"q":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', b"ab"))
    with pytest.raises(NotImplementedError, match="tensor 'q' has dtype U8"):
        tio.load_safetensors(path)
    with pytest.raises(RuntimeError, match="nope.safetensors"):
        tio.load_safetensors(tmp_path / "nope.safetensors")


def test_save_errors_and_atomicity(tmp_path):
    path = tmp_path / "keep.safetensors"
    tio.save_safetensors(path, {"w": tse.ones(3)})
    before = path.read_bytes()
    with pytest.raises(ValueError, match="'w' appears twice"):
        tio.save_safetensors(path, [("w", tse.zeros(2)), ("w", tse.zeros(2))])
    with pytest.raises(ValueError, match="reserved"):
        tio.save_safetensors(path, {"__metadata__": tse.zeros(1)})
    with pytest.raises(TypeError, match="'x'"):
        tio.save_safetensors(path, {"x": [1.0, 2.0]})
    with pytest.raises(TypeError):
        tio.save_safetensors(path, {"w": tse.zeros(1)}, {"k": 1})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.safetensors"]
    with pytest.raises(RuntimeError, match="no_such_dir"):
        tio.save_safetensors(tmp_path / "no_such_dir" / "w.safetensors", {"w": tse.zeros(1)})


def test_load_and_save_release_the_gil(tmp_path):
    from test_gil import _long_call_window, _tick_rate

    threads = tse.get_num_threads()
    tse.set_num_threads(1)  # leave a core for the main thread
    try:
        weights = {"w": tse.ones(1 << 24)}  # 64 MiB
        path = tmp_path / "big.safetensors"
        calls = {
            "save": lambda: tio.save_safetensors(path, weights),
            "load": lambda: [tio.load_safetensors(path) for _ in range(4)],
        }
        tio.save_safetensors(path, weights)
        for name, call in calls.items():
            start, end, ticks = _long_call_window(call)
            free = _tick_rate(*_long_call_window(lambda: time.sleep(end - start)))
            # Holding the GIL leaves the main thread ~2% of its free rate (see test_gil.py).
            assert _tick_rate(start, end, ticks) > 0.1 * free, name
    finally:
        tse.set_num_threads(threads)
