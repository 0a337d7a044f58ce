"""Weights files in the safetensors format (huggingface/safetensors), read and written natively.

Reading maps the file and validates the header with every check of the reference reader (sizes,
contiguous non-overlapping offsets covering the whole file, UTF-8 JSON without duplicate keys,
known dtypes): a malformed file raises RuntimeError naming the file and the rule it breaks.
Writing is atomic: a temp file in the same folder, fsync, rename over the target, fsync of the
folder; on failure the target keeps its old contents. The files interoperate with the PyPI
``safetensors`` package in both directions (tests/python/test_io.py checks it).
"""

import os

from . import _C

__all__ = ["load_safetensors", "save_safetensors", "metadata"]


def load_safetensors(path, half_to_f32=False):
    """``{name: Tensor}`` of a safetensors file, in file order.

    F16 and BF16 tensors load as ``tse.float16`` / ``tse.bfloat16`` unless ``half_to_f32``
    (exact widening). Dtypes a tse.Tensor cannot hold (U8, I8, I16, U16, U32, U64, C64, F8_*,
    F4, F6_*) raise NotImplementedError naming the tensor.
    """
    return _C.io.load_safetensors(os.fspath(path), half_to_f32)


def _as_tensor(name, value):
    if isinstance(value, _C.Tensor):
        return value
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency of the tests only
        np = None
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        a = np.asarray(value)  # not ascontiguousarray: it turns a 0-d array into shape (1,)
        return _C.from_numpy(a if a.flags.c_contiguous else a.copy(order="C"))
    raise TypeError(f"save_safetensors: the value of {name!r} must be a tse.Tensor or a numpy array, "
                    f"got {type(value).__name__}")


def save_safetensors(path, tensors, metadata=None):
    """Writes ``tensors`` (a dict ``{name: Tensor | numpy array}`` or a list of ``(name, value)``
    pairs) and ``metadata`` (``dict[str, str]`` or None) to ``path`` atomically.

    Views are written contiguous; the data is laid out largest element size first (input order
    within a size), so every tensor is aligned to its element size, as the reference writer does.
    ValueError for empty, duplicate or reserved (``__metadata__``) names, each naming the tensor.
    """
    items = tensors.items() if isinstance(tensors, dict) else tensors
    pairs = []
    for item in items:
        if isinstance(item, (str, bytes)) or len(item) != 2:
            raise TypeError("save_safetensors: tensors must be a dict {name: tensor} or a list of (name, tensor) pairs")
        name, value = item
        pairs.append((name, _as_tensor(name, value)))
    _C.io.save_safetensors(os.fspath(path), pairs, metadata)


def metadata(path):
    """The ``__metadata__`` dict (str -> str) of a safetensors file; reads only the header."""
    return _C.io.metadata(os.fspath(path))
