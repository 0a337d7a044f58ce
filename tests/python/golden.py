"""Reads the golden files of ../shared/golden (made by the official code) into numpy arrays.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian data. This reader is written
from that definition alone, independently of libtse's own, so the two cross-check each other.
"""

import json
import os
import pathlib
import struct

import numpy as np
import pytest

# The repository sits next to shared/ (../shared from its root); TSE_GOLDEN_DIR overrides.
GOLDEN = pathlib.Path(
    os.environ.get("TSE_GOLDEN_DIR", pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "golden")
)

_DTYPES = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4", "BOOL": "?"}


def load(relpath):
    """{name: array} and the metadata dict of a golden file; fails (never skips) when missing."""
    path = GOLDEN / relpath
    if not path.exists():
        pytest.fail(f"golden file {path} is missing: the tests need ../shared/golden next to the repository")
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = {}
    for key, value in header.pop("__metadata__", {}).items():  # safetensors metadata are strings
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    base = 8 + n
    out = {}
    for name, info in header.items():
        lo, hi = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + lo : base + hi], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out, meta


def rel_to_peak(got, want):
    """max |got - want| / max |want|, the golden files' measure."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
