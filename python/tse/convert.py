"""``python -m tse convert``: official CLAPSep checkpoints -> a libtse CLAPSep safetensors file.

    python -m tse convert IN OUT.safetensors [--clap CLAP.pt] [--merge-lora] [--dtype float32]

``IN`` is a CLAPSep checkpoint in the official parameter namespace (MODELS.md A s.9.2):

- a ``.ckpt`` / ``.pt`` written by ``torch.save``: a Lightning checkpoint (a dict with
  ``"state_dict"``) or a flat ``{name: tensor}`` dict such as the released ``best_model.ckpt``;
- a ``.safetensors`` file with the same names.

The converter takes ``"state_dict"`` when there is one, strips DDP ``module.`` prefixes and ignores
non-tensor entries. It drops what the separation path does not use: the frozen query CLAP
(``clap_model.*``), HTSAT's classifier (``audio_branch.tscam_conv.*``, ``audio_branch.head.*``),
``*position_ids``, ``logit_scale_*`` and ``*_transform.*``. Computed constants (STFT / iSTFT
rows, the OLA window, melW, relative-position indices, shift masks, the resampler kernel) are
kept: the model checks them against its own values. Any other key that is not a CLAPSep
parameter is an error naming it.

The released ``best_model.ckpt`` stores only the trained tensors (``decoder_model.*``, the LoRA
A/B and the encoder's ``attn.qkv`` / ``attn.proj`` biases, s.9.3): ``--clap`` names the LAION
CLAP ``.pt`` whose ``audio_branch.*`` weights fill in every encoder tensor ``IN`` lacks (s.9.4).

The configuration is read off the tensor shapes (widths, depths, heads, window, LoRA rank,
MaskNet size). What shapes cannot tell (``lora_alpha``, sample rate, drop-path rates) takes the
released values, or the values in the metadata of a libtse-written ``IN``. The model is built
and loaded strictly, so every key, shape and constant is checked. ``--merge-lora`` writes
W + (alpha / r) B A into a model without LoRA tensors (``lora_rank`` 0): the same outputs,
faster inference, no fine-tuning of the LoRA.

``.pt`` / ``.ckpt`` files are read with torch when it is installed. Without torch a small reader
of torch's zip format is used: it never runs code from the file (unknown classes in the pickle,
such as Lightning's bookkeeping, become inert placeholders). Legacy (pre-1.6, non-zip) torch
files need torch.
"""

import collections
import hashlib
import io
import json
import os
import pickle
import re
import zipfile

import numpy as np

__all__ = ["convert", "read_checkpoint", "infer_config", "ConversionResult"]

# ---- reading checkpoints ----------------------------------------------------------------------

_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickle of torch's 0x1950a86a20f9469cfc6c

_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "ComplexFloatStorage": "c8", "ComplexDoubleStorage": "c16",
}


class _Placeholder(dict):
    """Stands in for any class or function the checkpoint's pickle names that the reader does not
    know (Lightning's AttributeDict, enums, callbacks' state, ...): it accepts every way pickle
    builds an object and keeps what it was given, but does nothing."""

    _qualname = "?"

    def __init__(self, *args, **kwargs):  # pickle's REDUCE calls the "class" with its arguments
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.__dict__.setdefault("items_", []).append(item)

    def extend(self, items):
        self.__dict__.setdefault("items_", []).extend(items)

    def __repr__(self):
        return f"<{self._qualname} (not loaded)>"


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage of the archive (data/<key>), read only when a tensor on it is materialized."""

    def __init__(self, source, key, code, numel):
        self.source, self.key, self.code, self.numel = source, key, code, int(numel)


class _LazyArray:
    """A tensor of a torch zip file: its shape now, its data (a numpy array) on materialize()."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, size, stride

    def materialize(self):
        data = self.storage.source.read(self.storage)
        numel = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        if numel == 0:
            return np.zeros(self.shape, dtype=data.dtype)
        contiguous = tuple(int(np.prod(self.shape[i + 1:], dtype=np.int64)) for i in range(len(self.shape)))
        if self.offset == 0 and numel == data.size and (self.stride == contiguous or numel == 1):
            return data.reshape(self.shape)  # the whole storage, in order: no copy
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.shape,
                                               strides=tuple(st * data.itemsize for st in self.stride))
        return np.array(view, copy=True)


def _numpy_global(name):
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return {"scalar": multiarray.scalar, "_reconstruct": multiarray._reconstruct}[name]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise ValueError("a tensor refers to a storage that is not in the file")
    size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise ValueError(f"a tensor has an invalid size {size} / stride {stride} / offset {offset}: "
                         "the file is corrupt")
    if all(size):
        extent = offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1
        if extent > storage.numel:
            raise ValueError(f"a tensor of size {list(size)} reaches past the end of its storage data/{storage.key} "
                             f"({extent} > {storage.numel} elements): the file is corrupt")
    return _LazyArray(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


def _rebuild_from_type(func, new_type, args, state=None):
    return func(*args)


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch._tensor", "_rebuild_from_type"): _rebuild_from_type,
    ("torch", "Size"): tuple,
}

def _latin1_bytes(text, encoding="latin1", errors="strict"):
    """Protocol-2 pickles store bytes as _codecs.encode(str, "latin1"): allow only that."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1", errors)


_SAFE_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "complex"): complex,
    ("builtins", "slice"): slice, ("builtins", "range"): range, ("builtins", "bytearray"): bytearray,
    ("builtins", "object"): object, ("builtins", "dict"): dict, ("builtins", "list"): list,
    ("builtins", "tuple"): tuple, ("builtins", "int"): int, ("builtins", "float"): float,
    ("builtins", "str"): str, ("builtins", "bytes"): bytes, ("builtins", "bool"): bool,
    ("copyreg", "_reconstructor"): None,  # resolved below
    ("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
}


class _ZipUnpickler(pickle.Unpickler):
    """torch's data.pkl, with tensors rebuilt as lazy numpy arrays over the archive's
    data/<key> records. Only the globals above resolve to real objects; every other one is a
    placeholder."""

    def __init__(self, file, source):
        super().__init__(file)
        self._source = source
        self._storages = {}
        self.unsupported = set()

    def find_class(self, module, name):
        key = (module, name)
        if key in _TORCH_GLOBALS:
            return _TORCH_GLOBALS[key]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if key == ("copyreg", "_reconstructor"):
            import copyreg
            return copyreg._reconstructor
        if key in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[key]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("scalar", "_reconstruct"):
            return _numpy_global(name)
        qualname = f"{module}.{name}"
        if module.startswith("torch") and "_rebuild" in name:
            self.unsupported.add(qualname)  # a tensor kind this reader cannot rebuild (quantized, sparse, ...)
        return type(name, (_Placeholder,), {"_qualname": qualname, "__module__": __name__})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r:.80}")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(self._source, key, storage_type.dtype, numel)
        return self._storages[key]


class _ZipSource:
    """An open torch zip archive: its records, read on demand."""

    def __init__(self, path):
        self.path = path
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"{path}: not a readable zip archive ({e}): truncated or corrupt?") from None
        self.names = set(self.zf.namelist())
        pkl = [n for n in self.names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            self.zf.close()
            raise ValueError(f"{path}: a zip archive but not a torch checkpoint (no <archive>/data.pkl)")
        self.prefix = pkl[0][: -len("data.pkl")]
        self.byteorder = "little"
        if self.prefix + "byteorder" in self.names:
            self.byteorder = self.record("byteorder").decode("ascii", "replace").strip()
            if self.byteorder not in ("little", "big"):
                raise ValueError(f"{path}: unknown byteorder record {self.byteorder!r}")

    def __del__(self):
        zf = getattr(self, "zf", None)
        if zf is not None:
            zf.close()

    def _fail(self, name, e):
        if isinstance(e, KeyError):
            return ValueError(f"{self.path}: the checkpoint refers to {self.prefix + name}, which the archive lacks")
        return ValueError(f"{self.path}: cannot read {self.prefix + name} ({e}): truncated or corrupt?")

    def record(self, name):
        try:
            return self.zf.read(self.prefix + name)
        except (KeyError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise self._fail(name, e) from None

    def read(self, storage):
        """The storage's elements, a writable native-order numpy array (bfloat16 widened to float32)."""
        name = f"data/{storage.key}"
        code = storage.code
        endian = "<" if self.byteorder == "little" else ">"
        dt = np.dtype("u2" if code == "bf16" else code)
        if dt.itemsize > 1:
            dt = dt.newbyteorder(endian)
        try:
            info = self.zf.getinfo(self.prefix + name)
            if info.file_size < storage.numel * dt.itemsize:
                raise ValueError(f"{self.path}: {self.prefix + name} has {info.file_size} bytes, the pickle says "
                                 f"{storage.numel} x {dt.itemsize}: the file is corrupt")
            out = np.empty(storage.numel, dtype=dt)
            with self.zf.open(info) as f:
                got = f.readinto(memoryview(out).cast("B")) if out.nbytes else 0
            if got != out.nbytes:
                raise EOFError(f"read {got} of {out.nbytes} bytes")
        except ValueError as e:
            if str(e).startswith(self.path):
                raise
            raise self._fail(name, e) from None
        except (KeyError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise self._fail(name, e) from None
        if code == "bf16":  # numpy has no bfloat16: widen exactly to float32
            return (out.astype(np.uint32) << 16).view(np.float32)
        return out if out.dtype.isnative else out.astype(out.dtype.newbyteorder("="))


def _read_torch_zip(path):
    """The object a torch.save zip file holds, without torch (tensors as _LazyArray)."""
    source = _ZipSource(path)
    unpickler = _ZipUnpickler(io.BytesIO(source.record("data.pkl")), source)
    try:
        obj = unpickler.load()
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # UnpicklingError, EOFError, TypeError from a malformed pickle, ...
        raise ValueError(f"{path}: cannot unpickle data.pkl ({type(e).__name__}: {e}): corrupt?") from None
    if unpickler.unsupported:
        raise ValueError(f"{path}: holds tensors of a kind this torch-free reader cannot rebuild "
                         f"({', '.join(sorted(unpickler.unsupported))}): install torch to read it")
    return obj


def _torch_available():
    try:
        import torch  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return False
    return True


def _read_with_torch(path):
    import torch
    with open(path, "rb") as f:
        is_zip = f.read(2) == b"PK"
    kwargs = {"map_location": "cpu", "weights_only": False}
    if is_zip:
        kwargs["mmap"] = True  # torch >= 2.1: tensors stay on disk until used (a CLAP .pt carries its optimizer)
    try:
        while True:
            try:
                obj = torch.load(path, **kwargs)
                break
            except TypeError as e:  # an older torch without mmap / weights_only
                dropped = next((k for k in ("mmap", "weights_only") if k in kwargs and k in str(e)), None)
                if dropped is None:
                    raise
                del kwargs[dropped]
    except Exception as e:
        raise ValueError(f"{path}: torch.load failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}): "
                         "truncated or corrupt?") from None

    def to_numpy(v):
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu()
            if v.dtype == torch.bfloat16:
                v = v.float()
            return v.numpy()
        return v

    try:
        if isinstance(obj, dict):
            sd = obj.get("state_dict") if isinstance(obj.get("state_dict"), dict) else None
            if sd is not None:
                obj = dict(obj)
                obj["state_dict"] = {k: to_numpy(v) for k, v in sd.items()}
            else:
                obj = {k: to_numpy(v) for k, v in obj.items()}
    except RuntimeError as e:  # torch cannot convert to this NumPy
        raise RuntimeError(f"{path}: torch read the file but could not hand its tensors to NumPy ({e})") from None
    return obj


def read_checkpoint(path, reader="auto", lazy=False):
    """``(tensors, metadata)`` of a checkpoint file: ``tensors`` maps every tensor entry of its
    state dict (``"state_dict"`` taken when present, ``module.`` prefixes stripped, non-tensor
    entries left out) to a numpy array or tse.Tensor; ``metadata`` is the safetensors metadata
    (empty for torch files). ``reader``: ``"auto"`` (torch when installed, else the built-in zip
    reader), ``"torch"`` or ``"zip"``. ``lazy``: the zip reader's tensors stay unread (objects
    with ``.shape`` and ``.materialize()``) until used. Raises ValueError for a missing, corrupt
    or foreign file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(16)
    metadata = {}
    if path.endswith(".safetensors") or (len(head) >= 9 and head[8:9] == b"{" and not head.startswith(b"PK")):
        from . import io as tio
        try:
            obj = tio.load_safetensors(path, half_to_f32=True)
            metadata = dict(tio.metadata(path))
        except (RuntimeError, ValueError, OSError) as e:
            raise ValueError(f"{path}: not a readable safetensors file: {str(e).splitlines()[0]}") from None
    else:
        if reader not in ("auto", "torch", "zip"):
            raise ValueError(f"reader must be 'auto', 'torch' or 'zip', got {reader!r}")
        use_torch = reader == "torch" or (reader == "auto" and _torch_available())
        obj = None
        if use_torch:
            try:
                obj = _read_with_torch(path)
            except (ValueError, RuntimeError):
                # "auto" means whatever works: a zip checkpoint that this torch cannot hand over
                # (e.g. a torch built for NumPy 1.x beside NumPy 2: "Numpy is not available") is
                # read by the built-in reader, which gives its own errors for a damaged file.
                if reader == "torch" or not head.startswith(b"PK"):
                    raise
        if obj is None:
            if head.startswith(b"PK"):
                obj = _read_torch_zip(path)
            elif head.startswith(_LEGACY_MAGIC):
                raise ValueError(f"{path} is a legacy (pre-1.6, non-zip) torch checkpoint, which only torch can "
                                 "read: install torch (pip install torch), or re-save it with a recent torch")
            else:
                raise ValueError(f"{path}: not a torch checkpoint (neither a zip archive nor a legacy torch pickle) "
                                 "nor a safetensors file: truncated or corrupt?")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a dict of tensors")
    tensors = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not _is_tensor(value):
            continue
        while name.startswith("module."):
            name = name[len("module."):]
        if name in tensors:
            raise ValueError(f"{path}: key {name!r} appears twice (with and without a 'module.' prefix)")
        tensors[name] = value
    if not lazy:
        tensors = {k: v.materialize() if isinstance(v, _LazyArray) else v for k, v in tensors.items()}
    return tensors, metadata


def _is_tensor(value):
    from . import _C
    return isinstance(value, (np.ndarray, _C.Tensor, _LazyArray))


# ---- which keys go where --------------------------------------------------------------------

_DROP_RULES = [
    ("clap_model.*", lambda k: k.startswith("clap_model.")),
    ("tscam/head", lambda k: k.startswith(("audio_branch.tscam_conv.", "audio_branch.head."))),
    ("position_ids", lambda k: k.endswith("position_ids")),
    ("logit_scale", lambda k: k.split(".")[-1].startswith("logit_scale")),
    ("*_transform.*", lambda k: any(part.endswith("_transform") for part in k.split(".")[:-1])),
]


def _drop_reason(key):
    for reason, rule in _DROP_RULES:
        if rule(key):
            return reason
    return None


def _shape(value):
    return tuple(int(s) for s in value.shape)


def _listing(keys, limit=8):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _indices(shapes, pattern):
    rx = re.compile(pattern)
    out = set()
    for k in shapes:
        m = rx.match(k)
        if m:
            out.add(int(m.group(1)))
    return out


def infer_config(shapes, hints=None):
    """A CLAPSep config dict read off ``shapes`` ``{name: shape}`` (official names). ``hints``
    supplies what shapes cannot tell (lora_alpha, sample_rate, hop_length, drop-path rates); the
    rest of the released defaults fill any encoder value the shapes lack (the error about the
    missing tensors then names them)."""
    hints = hints or {}
    cfg = {}

    def get(name, dim=None):
        s = shapes.get(name)
        if s is None:
            return None
        return s if dim is None else s[dim]

    def need(name, what):
        if name not in shapes:
            raise ValueError(f"cannot read {what} from the checkpoint: it has no {name!r} "
                             "(is this a CLAPSep checkpoint in the official namespace?)")
        return shapes[name]

    # -- decoder -----------------------------------------------------------------------------
    if not any(k.startswith("decoder_model.") for k in shapes):
        raise ValueError("the checkpoint has no decoder_model.* tensors: not a CLAPSep checkpoint "
                         f"(its keys start {_listing({k.split('.')[0] + '.*' for k in shapes}, 6) or 'nothing'})")
    dec_levels = _indices(shapes, r"decoder_model\.layers\.(\d+)\.")
    if dec_levels != {0, 1, 2, 3}:
        raise ValueError(f"the decoder must have 4 levels (decoder_model.layers.0-3), found {sorted(dec_levels)}")
    cfg["decoder_embed_dim"] = need("decoder_model.inverse_patch_embed.norm.weight", "the decoder width")[0]
    depths, heads = [], []
    for s in range(4):  # config index s = finest first; layers.{3 - s} (ModuleList[::-1])
        i = 3 - s
        blocks = _indices(shapes, rf"decoder_model\.layers\.{i}\.blocks\.(\d+)\.")
        if not blocks or blocks != set(range(len(blocks))):
            raise ValueError(f"decoder_model.layers.{i} has blocks {sorted(blocks)}: expected 0..n-1")
        depths.append(len(blocks))
        heads.append(need(f"decoder_model.layers.{i}.blocks.0.attn.relative_position_bias_table",
                          "the decoder's heads")[1])
    cfg["decoder_depths"], cfg["decoder_num_heads"] = depths, heads
    d_attn, d_in = need("decoder_model.mask_net.0.weight", "d_attn")
    cfg["d_attn"] = d_attn
    n_bins = need("decoder_model.spec_norm.weight", "the STFT size")[0]
    cfg["n_fft"] = 2 * (n_bins - 1)
    layers = _indices(shapes, r"decoder_model\.mask_net\.2\.layers\.(\d+)\.")
    if not layers or layers != set(range(len(layers))):
        raise ValueError(f"decoder_model.mask_net.2 has layers {sorted(layers)}: expected 0..n-1")
    cfg["n_masker_layer"] = len(layers)
    cond = need("decoder_model.film.skip_conv.gamma.weight", "the condition size")[1]
    if cond % 2:
        raise ValueError(f"decoder_model.film.skip_conv.gamma.weight takes a condition of {cond}: not 2 x an embedding")
    cfg["embedding_dim"] = cond // 2
    table = need("decoder_model.layers.0.blocks.0.attn.relative_position_bias_table", "the window")[0]
    window = (round(table ** 0.5) + 1) // 2
    if (2 * window - 1) ** 2 != table:
        raise ValueError(f"a relative_position_bias_table has {table} rows: not (2 w - 1)^2 for a window w")
    fc1 = need("decoder_model.layers.0.blocks.0.mlp.fc1.weight", "the MLP ratio")
    mlp_ratio = fc1[0] / fc1[1]

    # -- encoder -----------------------------------------------------------------------------
    enc_dim = get("audio_branch.patch_embed.proj.weight", 0)
    if enc_dim is None:
        enc_dim = get("audio_branch.layers.0.blocks.0.attn.qkv.lora_A", 1)
    if enc_dim is None:
        film_in = need("decoder_model.film.feature_proj.weight", "the encoder width")[1]
        enc_dim = film_in // 8
    cfg["encoder_embed_dim"] = enc_dim
    stages = _indices(shapes, r"audio_branch\.layers\.(\d+)\.")
    enc_depths, enc_heads = [], []
    released_depths = [2, 2, 12, 2]
    for s in range(4):
        blocks = _indices(shapes, rf"audio_branch\.layers\.{s}\.blocks\.(\d+)\.")
        if blocks and blocks != set(range(len(blocks))):
            raise ValueError(f"audio_branch.layers.{s} has blocks {sorted(blocks)}: expected 0..n-1")
        enc_depths.append(len(blocks) if blocks else released_depths[s])
        h = get(f"audio_branch.layers.{s}.blocks.0.attn.relative_position_bias_table", 1)
        enc_heads.append(h if h is not None else heads[s])  # the official code uses the same heads
    if stages - {0, 1, 2, 3}:
        raise ValueError(f"the encoder must have 4 stages (audio_branch.layers.0-3), found {sorted(stages)}")
    cfg["encoder_depths"], cfg["encoder_num_heads"] = enc_depths, enc_heads
    enc_table = get("audio_branch.layers.0.blocks.0.attn.relative_position_bias_table", 0)
    if enc_table is not None and enc_table != table:
        raise ValueError(f"the encoder's relative_position_bias_table has {enc_table} rows, the decoder's {table}: "
                         "one window size is shared")
    enc_fc1 = get("audio_branch.layers.0.blocks.0.mlp.fc1.weight")
    if enc_fc1 is not None and enc_fc1[0] / enc_fc1[1] != mlp_ratio:
        raise ValueError(f"the encoder's MLP ratio {enc_fc1[0] / enc_fc1[1]:g} differs from the decoder's "
                         f"{mlp_ratio:g}")
    cfg["window_size"], cfg["mlp_ratio"] = window, mlp_ratio
    ranks = {s[0] for k, s in shapes.items() if k.startswith("audio_branch.") and k.endswith(".lora_A")}
    if len(ranks) > 1:
        raise ValueError(f"the encoder's LoRA tensors have different ranks {sorted(ranks)}")
    cfg["lora_rank"] = ranks.pop() if ranks else 0
    if any(k.startswith("decoder_model.") and ".lora_" in k for k in shapes):
        raise ValueError("the decoder holds LoRA tensors: CLAPSep puts LoRA on the encoder only")

    for key in ("lora_alpha", "sample_rate", "hop_length", "encoder_drop_path", "decoder_drop_path"):
        if key in hints:
            cfg[key] = hints[key]
    return cfg


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _one_line(e):
    out = ""
    for line in (l.strip() for l in str(e).splitlines()):
        if line:
            out += ("" if not out else " " if out.endswith(":") else "; ") + line
    return out


def _to_tse(value):
    from . import _C
    if isinstance(value, _C.Tensor):
        return value
    a = value.materialize() if isinstance(value, _LazyArray) else np.asarray(value)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    if not a.flags.c_contiguous or not a.flags.writeable:
        a = np.array(a, order="C", copy=True)
    return _C.from_numpy(a)


class ConversionResult:
    """What convert() did: the output path, the config, the counts and the one-line summary."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return f"ConversionResult({self.summary})"


def _dtype(name):
    from . import _C
    table = {"float32": _C.float32, "float64": _C.float64}
    if name not in table:
        raise ValueError(f"--dtype must be one of {', '.join(table)}, got {name!r}")
    return table[name]


def convert(input_path, output_path, clap=None, merge_lora=False, dtype="float32", reader="auto"):
    """Converts the CLAPSep checkpoint ``input_path`` (with encoder base weights from the CLAP
    checkpoint ``clap`` where it lacks them) into a libtse CLAPSep file at ``output_path``;
    returns a ConversionResult. ValueError for every problem with the inputs."""
    from . import models

    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    target_dtype = _dtype(dtype)
    tensors, meta = read_checkpoint(input_path, reader, lazy=True)
    n_read = len(tensors)
    dropped = collections.Counter()
    state = {}
    for k, v in tensors.items():
        reason = _drop_reason(k)
        if reason:
            dropped[reason] += 1
        else:
            state[k] = v

    hints = {}
    if meta.get("model_type") == "CLAPSep" and "config" in meta:
        try:
            hints = json.loads(meta["config"])
        except ValueError:
            hints = {}

    # Build a model from what the shapes say, so that the expected key set is known.
    def build(cfg, dt):
        try:
            return models.CLAPSep(cfg, dtype=dt)
        except (ValueError, TypeError, RuntimeError) as e:
            raise ValueError(f"{input_path}: the shapes give an invalid CLAPSep config ({_one_line(e)}): "
                             f"{cfg}") from None

    from_clap = set()
    clap_sha = None
    if clap is not None:
        clap = os.fspath(clap)
        clap_tensors, _ = read_checkpoint(clap, reader, lazy=True)
        branch = {k: v for k, v in clap_tensors.items() if k.startswith("audio_branch.") and not _drop_reason(k)}
        if not branch:
            raise ValueError(f"--clap {clap}: holds no audio_branch.* tensors (is it a LAION CLAP checkpoint?)")
        for k, v in branch.items():  # the encoder's base weights, where IN lacks them (s.9.4)
            if k not in state:
                state[k] = v
                from_clap.add(k)
        clap_sha = _sha256(clap)
    n_clap = len(from_clap)

    shapes = {k: _shape(v) for k, v in state.items()}
    try:
        cfg = infer_config(shapes, hints)
    except ValueError as e:
        raise ValueError(f"{input_path}{' + ' + clap if clap else ''}: {e}") from None
    merging = merge_lora and cfg["lora_rank"] > 0
    # Merging folds W + (alpha / r) B A in double and rounds once; the float32 weights widen exactly.
    probe = build(cfg, _dtype("float64") if merging else target_dtype)
    params = set(probe.state_dict())
    constants = set(probe.constant_names())
    unknown = set(state) - params - constants
    if unknown - from_clap:
        bad = unknown - from_clap
        raise ValueError(f"{input_path}: {len(bad)} key(s) that are not CLAPSep parameters: {_listing(bad)}")
    if unknown:
        raise ValueError(f"--clap {clap}: {len(unknown)} audio_branch key(s) that this CLAPSep's encoder does not "
                         f"have: {_listing(unknown)}")

    missing = params - set(state)
    if missing:
        enc_missing = {k for k in missing if k.startswith("audio_branch.")}
        if enc_missing and clap is None and enc_missing == missing:
            raise ValueError(f"{input_path} lacks {len(missing)} encoder base weight(s) ({_listing(missing, 6)}), "
                             "as the released best_model.ckpt does: pass --clap CLAP.pt (the LAION CLAP checkpoint) "
                             "to fill them")
        raise ValueError(f"{input_path}{' + ' + clap if clap else ''}: {len(missing)} missing tensor(s): "
                         f"{_listing(missing)}")

    model = probe
    del probe
    try:
        model.load_state_dict({k: _to_tse(v) for k, v in state.items()}, strict=True)
    except ValueError as e:
        raise ValueError(f"{input_path}: {_one_line(e)}") from None
    n_constants = len(set(state) & constants)

    out_cfg = dict(model.config)
    if merging:
        from . import nn
        merged = {}
        for name, module in model.named_modules():
            if isinstance(module, nn.LoRALinear) and module.r > 0:
                merged[f"{name}.weight"] = module.merged_weight()
        out_state = {k: merged.get(k, v) for k, v in model.state_dict().items() if ".lora_" not in k}
        out_cfg["lora_rank"] = 0
        model = build(out_cfg, target_dtype)
        try:
            model.load_state_dict(out_state, strict=True)
        except ValueError as e:  # pragma: no cover - the merged key set is the rank-0 model's by construction
            raise ValueError(f"merging LoRA: {_one_line(e)}") from None
        n_merged = len(merged)
    else:
        n_merged = 0

    extra = {"converted_from": os.path.basename(input_path), "source_sha256": _sha256(input_path),
             "converter": "tse convert"}
    if clap is not None:
        extra.update({"clap_source": os.path.basename(clap), "clap_sha256": clap_sha})
    if n_merged:
        extra["lora_merged"] = "true"
    try:
        model.save(output_path, extra_metadata=extra)
    except (RuntimeError, OSError, ValueError) as e:
        raise ValueError(f"cannot write {output_path}: {_one_line(e)}") from None

    c = model.config
    drops = ", ".join(f"{n} {r}" for r, n in dropped.most_common())
    if n_merged:
        lora = f"LoRA r {cfg['lora_rank']} merged"
    else:
        lora = f"LoRA r {c['lora_rank']}" + (f" alpha {c['lora_alpha']:g}" if c["lora_rank"] else "")
    summary = (f"{os.path.basename(input_path)} -> {output_path}: read {n_read} tensors"
               + (f" + {n_clap} encoder tensors from {os.path.basename(clap)}" if clap else "")
               + f", dropped {sum(dropped.values())}" + (f" ({drops})" if drops else "")
               + (f", checked {n_constants} constants" if n_constants else "")
               + (f", merged LoRA into {n_merged} weights" if n_merged else "")
               + f"; CLAPSep {model.num_parameters():,} parameters ({dtype}): encoder {c['encoder_embed_dim']} "
               f"x {c['encoder_depths']} heads {c['encoder_num_heads']}, {lora}, decoder {c['decoder_embed_dim']} "
               f"x {c['decoder_depths']} heads {c['decoder_num_heads']}, MaskNet {c['d_attn']} "
               f"x {c['n_masker_layer']}, n_fft {c['n_fft']}")
    return ConversionResult(output=output_path, config=c, read=n_read, from_clap=n_clap,
                            dropped=dict(dropped), constants=n_constants, merged=n_merged,
                            parameters=model.num_parameters(), summary=summary)
