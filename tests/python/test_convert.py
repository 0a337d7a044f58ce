"""`python -m tse convert`: official CLAPSep checkpoints -> libtse files, checked end to end on the
golden tiny model (../shared/golden/clapsep/clapsep_tiny, official code, random weights): the
converted file, loaded with load_separator, reproduces the official waveform. Inputs: the
official-namespace safetensors, Lightning / flat torch zip checkpoints written here without torch
(and, when Debian's python3 has torch, by a real torch.save), the released layout
(best_model.ckpt + the CLAP .pt via --clap), and broken files, each an exit 2 with one line."""

import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tse
from tse import convert as tconvert

from golden import load, rel_to_peak

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch (the tests' only use of torch)


# ---- the golden tiny model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    g, meta = load("clapsep/clapsep_tiny.safetensors")
    weights = {k: np.array(v) for k, v in g.items() if not k.startswith(("input.", "output"))}
    assert len(weights) == 300
    return g, weights


@pytest.fixture(scope="module")
def constants():
    """The computed constants under their official names, as float32 (what a torch file stores)."""
    model = tse.models.CLAPSep("tiny")
    return {k: v.numpy().astype(np.float32 if v.numpy().dtype.kind == "f" else v.numpy().dtype)
            for k, v in model.named_constants()}


def check_output(tiny, path, tol=3e-6, dtype=tse.float32):
    """The converted file, loaded as a libtse model, gives the official waveform."""
    g, _ = tiny
    loaded = tse.models.load_separator(path, dtype=dtype)
    model = loaded.model.eval()
    assert isinstance(model, tse.models.CLAPSep)
    np_dtype = np.float64 if dtype == tse.float64 else np.float32
    pos, neg, mixture = (tse.tensor(g[f"input.{n}"].astype(np_dtype)) for n in ("embed_pos", "embed_neg", "mixture"))
    query = model.condition(pos, neg)
    wave = model.forward(mixture, query).detach().numpy()
    err = rel_to_peak(wave, g["output.waveform"])
    assert err <= tol, f"{path}: waveform off by {err:.3g} (rel to peak) > {tol}"
    return loaded


def run_cli(*args, python=sys.executable, env=None, timeout=300):
    env = dict(os.environ if env is None else env, TSE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([python, "-m", "tse", *args], capture_output=True, text=True, timeout=timeout, env=env)


def convert_ok(*args, **kw):
    p = run_cli("convert", *map(str, args), **kw)
    assert p.returncode == 0, f"convert {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def convert_fails(*args):
    p = run_cli("convert", *map(str, args))
    assert p.returncode == 2, f"convert {args} exited {p.returncode}, expected 2\n{p.stdout}\n{p.stderr}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m tse convert: error: "), p.stderr
    return lines[0]


def save_safetensors(path, tensors):
    tse.io.save_safetensors(path, {k: np.array(v, order="C") for k, v in tensors.items()})  # keeps 0-d shapes


# ---- a torch zip checkpoint written without torch --------------------------------------------
# torch.save's format: a zip archive (stored, not compressed) of <archive>/data.pkl, a pickle
# (protocol 2) in which a tensor is a call torch._utils._rebuild_tensor_v2(storage, offset,
# size, stride, requires_grad, backward_hooks) and a storage is the persistent id
# ("storage", torch.<Type>Storage, key, location, numel) whose bytes are <archive>/data/<key>.


class Global:
    """A global the pickle names (torch._utils._rebuild_tensor_v2, a Lightning class) without
    importing it."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable; never called
        raise AssertionError


class Storage:
    KINDS = {"float32": "FloatStorage", "float64": "DoubleStorage", "int64": "LongStorage", "int32": "IntStorage",
             "float16": "HalfStorage"}

    def __init__(self, key, flat, kind=None):
        self.key, self.flat = key, flat
        self.kind = kind or self.KINDS[str(flat.dtype)]


class FakeTensor:
    def __init__(self, storage, offset, shape, stride, parameter=False):
        self.args = (storage, offset, tuple(shape), tuple(stride), False, collections.OrderedDict())
        self.parameter = parameter

    def __reduce__(self):
        tensor = (Global("torch._utils", "_rebuild_tensor_v2"), self.args)
        if not self.parameter:
            return tensor
        return Global("torch._utils", "_rebuild_parameter"), (_Rebuilt(tensor), True, collections.OrderedDict())


class _Rebuilt:
    def __init__(self, reduce):
        self.reduce = reduce

    def __reduce__(self):
        return self.reduce


class Opaque:
    """An object of a class the reader does not know (Lightning's AttributeDict, a callback)."""

    def __init__(self, module, name, state=None, items=None):
        self.cls, self.state, self.items = Global(module, name), state, items

    def __reduce__(self):
        return self.cls, (), self.state, None, iter(self.items.items()) if self.items else None


class TorchPickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    dispatch = dict(pickle._Pickler.dispatch)

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", Global("torch", obj.kind), obj.key, "cpu", obj.flat.size)
        return None


def _save_global(pickler, obj):
    pickler.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())


TorchPickler.dispatch[Global] = _save_global


def write_torch_zip(path, build, archive="archive", byteorder="little"):
    """build(tensor) -> the object to save, where tensor(array, layout=..., parameter=...) makes a
    fake torch tensor: layout "contiguous", "transposed" (column-major storage, strides
    reversed) or "offset" (inside a larger storage, at an offset); kind names the storage type
    (default: from the dtype; "BFloat16Storage" takes the uint16 bit patterns)."""
    storages = []
    endian = "<" if byteorder == "little" else ">"

    def tensor(array, layout="contiguous", parameter=False, kind=None):
        a = np.asarray(array)
        key = str(len(storages))
        if layout == "transposed" and a.ndim == 2:
            flat = np.ascontiguousarray(a.T).reshape(-1)
            stride, offset = (1, a.shape[0]), 0
        elif layout == "offset":
            flat = np.concatenate([np.full(5, -7, dtype=a.dtype), a.reshape(-1), np.full(3, 9, dtype=a.dtype)])
            stride = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim))
            offset = 5
        else:
            flat = np.ascontiguousarray(a).reshape(-1)
            stride, offset = tuple(int(np.prod(a.shape[i + 1:])) for i in range(a.ndim)), 0
        s = Storage(key, flat, kind)
        storages.append(s)
        return FakeTensor(s, offset, a.shape, stride, parameter)

    obj = build(tensor)
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", buf.getvalue())
        z.writestr(f"{archive}/byteorder", byteorder)
        for s in storages:
            z.writestr(f"{archive}/data/{s.key}", s.flat.astype(s.flat.dtype.newbyteorder(endian)).tobytes())
        z.writestr(f"{archive}/version", "3\n")
    return path


def lightning_extras():
    return {"epoch": 3, "global_step": 4620, "pytorch-lightning_version": "2.1.0",
            "hyper_parameters": Opaque("lightning.fabric.utilities.data", "AttributeDict",
                                       items={"lr": 1e-4, "use_lora": True, "rank": 16}),
            "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": Opaque(
                "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint",
                state={"best_model_score": np.float64(9.51), "monitor": "val_loss"})},
            "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4}}}},
            "best_score": np.float32(10.05)}


# ---- 1. the official-namespace safetensors ------------------------------------------------------


def test_safetensors_in_official_namespace(tiny, tmp_path):
    _, weights = tiny
    src = tmp_path / "clapsep_tiny_weights.safetensors"
    save_safetensors(src, weights)
    out = tmp_path / "converted.safetensors"
    summary = convert_ok(src, out)
    assert len(summary.strip().splitlines()) == 1
    assert "read 300 tensors" in summary and "dropped 4" in summary and "706,188 parameters" in summary, summary
    loaded = check_output(tiny, out)
    md = loaded.metadata
    assert md["converted_from"] == src.name and md["converter"] == "tse convert"
    assert len(md["source_sha256"]) == 64
    import hashlib
    assert md["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert loaded.model.config == tse.models.CLAPSep("tiny").config  # every shape-given key inferred
    stored = tse.io.load_safetensors(out)
    assert not any(k.startswith("audio_branch.tscam_conv.") or k.startswith("audio_branch.head.") for k in stored)
    # The converted file converts again to itself (a libtse file is in the official namespace).
    again = tmp_path / "again.safetensors"
    convert_ok(out, again)
    a, b = tse.io.load_safetensors(out), tse.io.load_safetensors(again)
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_safetensors_merge_lora(tiny, tmp_path):
    _, weights = tiny
    src = tmp_path / "w.safetensors"
    save_safetensors(src, weights)
    out = tmp_path / "merged.safetensors"
    summary = convert_ok(src, out, "--merge-lora")
    assert "merged LoRA into 16 weights" in summary, summary
    stored = tse.io.load_safetensors(out)
    assert not [k for k in stored if "lora_" in k]
    loaded = check_output(tiny, out, tol=1e-5)
    assert loaded.model.config["lora_rank"] == 0 and loaded.metadata["lora_merged"] == "true"
    k = "audio_branch.layers.2.blocks.1.attn.qkv"
    want = weights[f"{k}.weight"].astype(np.float64) + weights[f"{k}.lora_B"].astype(np.float64) @ \
        weights[f"{k}.lora_A"].astype(np.float64) / 16
    got = stored[f"{k}.weight"].numpy()
    assert np.max(np.abs(got - want)) <= 1e-7 * np.max(np.abs(want))  # folded in double, rounded once


def test_float64_output(tiny, tmp_path):
    _, weights = tiny
    src = tmp_path / "w.safetensors"
    save_safetensors(src, weights)
    out = tmp_path / "f64.safetensors"
    convert_ok(src, out, "--dtype", "float64")
    assert tse.io.load_safetensors(out)["decoder_model.mask_net.0.weight"].dtype == tse.float64
    check_output(tiny, out, tol=1e-9, dtype=tse.float64)  # float32 weights, widened exactly


# ---- 2. torch zip checkpoints without torch ---------------------------------------------------


def test_lightning_zip_checkpoint_without_torch(tiny, constants, tmp_path):
    _, weights = tiny
    layouts = ["contiguous", "transposed", "offset"]

    def build(tensor):
        sd = collections.OrderedDict()
        for i, (k, v) in enumerate(weights.items()):
            sd["module." + k] = tensor(v, layout=layouts[i % 3], parameter=v.dtype == np.float32 and i % 2 == 0)
        for k, v in constants.items():  # the computed constants a LightningModule carries: verified
            sd["module." + k] = tensor(v)
        sd["module.clap_model.model.audio_branch.bn0.weight"] = tensor(np.ones(64, np.float32))
        sd["module.clap_model.model.logit_scale_a"] = tensor(np.array(2.5, np.float32))
        sd["module.decoder_model.some_count"] = 7  # non-tensor entries are ignored
        return {"state_dict": sd, "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}],
                **lightning_extras()}

    src = write_torch_zip(tmp_path / "epoch=3-step=4620.ckpt", build, archive="epoch=3-step=4620")
    out = tmp_path / "lightning.safetensors"
    result = tconvert.convert(src, out, reader="zip")
    assert result.read == 300 + len(constants) + 2 and result.constants == len(constants) == 24
    assert result.dropped == {"tscam/head": 4, "clap_model.*": 2}
    check_output(tiny, out)
    if not tconvert._torch_available():  # the CLI picks the same reader
        out2 = tmp_path / "cli.safetensors"
        convert_ok(src, out2, "--merge-lora")
        check_output(tiny, out2, tol=1e-5)


def test_auto_reader_falls_back_to_the_zip_reader_when_torch_fails(tiny, tmp_path, monkeypatch):
    """reader="auto" with a torch that cannot hand its tensors over (a torch built for NumPy 1.x
    beside NumPy 2) reads a zip checkpoint with the built-in reader; reader="torch" keeps the error."""
    _, weights = tiny
    src = write_torch_zip(tmp_path / "model.ckpt",
                          lambda tensor: {"state_dict": collections.OrderedDict(
                              (k, tensor(v)) for k, v in weights.items())})

    def broken_torch(path):
        raise RuntimeError("Numpy is not available")

    monkeypatch.setattr(tconvert, "_torch_available", lambda: True)
    monkeypatch.setattr(tconvert, "_read_with_torch", broken_torch)
    out = tmp_path / "auto.safetensors"
    assert tconvert.convert(src, out, reader="auto").read == 300
    check_output(tiny, out)
    with pytest.raises(RuntimeError, match="Numpy is not available"):
        tconvert.convert(src, tmp_path / "torch.safetensors", reader="torch")


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_reader_rebuilds_views_dtypes_and_placeholders(tmp_path, byteorder):
    a = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
    bf16 = (a.view(np.uint32) >> 16).astype(np.uint16)  # these values are exact in bfloat16

    def build(tensor):
        return {"state_dict": {"t": tensor(a, "transposed"), "o": tensor(a, "offset"),
                               "p": tensor(a.astype(np.float64), parameter=True), "i": tensor(np.arange(5)),
                               "s": tensor(np.array(3, np.int64)), "e": tensor(np.zeros((0, 4), np.float32)),
                               "h": tensor(a.astype(np.float16)), "b": tensor(bf16, kind="BFloat16Storage"),
                               "not_a_tensor": np.float64(1.0), "text": "x"},
                **lightning_extras()}

    path = write_torch_zip(tmp_path / "x.pt", build, byteorder=byteorder)
    tensors, meta = tconvert.read_checkpoint(path, reader="zip")
    assert meta == {} and set(tensors) == {"t", "o", "p", "i", "s", "e", "h", "b"}
    for k in "tophb":
        assert np.array_equal(tensors[k], a), k
    assert tensors["p"].dtype == np.float64 and tensors["i"].dtype == np.int64 and tensors["b"].dtype == np.float32
    assert np.array_equal(tensors["i"], np.arange(5))
    assert tensors["s"].shape == () and tensors["s"] == 3 and tensors["e"].shape == (0, 4)


# ---- 3. a real torch.save checkpoint --------------------------------------------------------------


def _system_torch():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX")
    env.pop("PYTHONPATH", None)
    try:
        p = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


TORCH_SAVE = r"""
import collections, sys
import numpy as np, torch
data = np.load(sys.argv[1])
sd = collections.OrderedDict()
for i, k in enumerate(data.files):
    t = torch.from_numpy(data[k].copy())
    if i % 5 == 0 and t.dtype == torch.float32:
        t = t.t().contiguous().t() if t.dim() == 2 else t  # column-major storage
    sd["module." + k] = torch.nn.Parameter(t, requires_grad=False) if i % 2 and t.is_floating_point() else t
sd["module.clap_model.model.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
ckpt = {"state_dict": sd, "epoch": 3, "hyper_parameters": {"lr": 1e-4, "rank": 16}, "best": np.float64(9.5),
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}}]}
torch.save(ckpt, sys.argv[2])
torch.save(collections.OrderedDict((k[len("module."):], v) for k, v in sd.items()), sys.argv[3],
           _use_new_zipfile_serialization=False)
"""


@pytest.fixture(scope="module")
def torch_files(tiny, tmp_path_factory):
    if not _system_torch():
        pytest.skip(f"{SYSTEM_PYTHON} cannot import torch")
    _, weights = tiny
    tmp = tmp_path_factory.mktemp("torch")
    np.savez(tmp / "w.npz", **weights)
    script = tmp / "save.py"
    script.write_text(TORCH_SAVE)
    env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX")
    env.pop("PYTHONPATH", None)
    zip_ckpt, legacy = tmp / "real.ckpt", tmp / "legacy.pt"
    p = subprocess.run([SYSTEM_PYTHON, str(script), str(tmp / "w.npz"), str(zip_ckpt), str(legacy)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    return zip_ckpt, legacy


def test_real_torch_checkpoint_read_without_torch(tiny, torch_files, tmp_path):
    zip_ckpt, _ = torch_files
    out = tmp_path / "real.safetensors"
    result = tconvert.convert(zip_ckpt, out, reader="zip")
    assert result.read == 301 and result.dropped == {"tscam/head": 4, "clap_model.*": 1}
    check_output(tiny, out)


def test_real_torch_checkpoint_read_with_torch(tiny, torch_files, tmp_path):
    zip_ckpt, legacy = torch_files
    # Only this tse package on the path, not the site-packages it sits in: that one's NumPy may be
    # 2.x, which a system torch built against NumPy 1.x cannot use ("Numpy is not available").
    only_tse = tmp_path / "only-tse"
    only_tse.mkdir()
    (only_tse / "tse").symlink_to(os.path.dirname(tse.__file__), target_is_directory=True)
    env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX", PYTHONPATH=str(only_tse))
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import tse, torch; torch.zeros(1).numpy()"], capture_output=True,
                           env=env, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"{SYSTEM_PYTHON} cannot run this tse build next to its torch: {probe.stderr.decode()[-300:]}")
    for src in (zip_ckpt, legacy):  # torch reads the legacy format too
        out = tmp_path / (src.stem + ".safetensors")
        convert_ok(src, out, python=SYSTEM_PYTHON, env=env)
        check_output(tiny, out)


def test_legacy_checkpoint_without_torch_is_a_clear_error(torch_files):
    if tconvert._torch_available():
        pytest.skip("torch is importable here: it reads legacy files")
    _, legacy = torch_files
    line = convert_fails(legacy, legacy.with_suffix(".safetensors"))
    assert "legacy" in line and "install torch" in line, line


# ---- 4. the released layout: best_model.ckpt + the CLAP .pt -------------------------------------


def _is_trained(k):  # the repo's save filter (MODELS.md s.9.3)
    return "lora" in k or "attn.qkv.bias" in k or "attn.proj.bias" in k or "decoder_model" in k


@pytest.fixture(scope="module")
def released_layout(tiny, constants, tmp_path_factory):
    _, weights = tiny
    tmp = tmp_path_factory.mktemp("released")
    rng = np.random.default_rng(0)

    def best(tensor):  # flat dict, as the official inference's load_state_dict(strict=False) needs
        sd = collections.OrderedDict((k, tensor(v)) for k, v in weights.items() if _is_trained(k))
        for k, v in weights.items():  # the filter also keeps the frozen CLAP's copies of the biases
            if k.startswith("audio_branch.") and ("attn.qkv.bias" in k or "attn.proj.bias" in k):
                sd["clap_model.model." + k] = tensor(v + 1)
        return sd

    def clap(tensor):  # LAION CLAP: the untuned encoder (its own biases) and the text side
        sd = collections.OrderedDict()
        for k, v in weights.items():
            if k.startswith("audio_branch.") and "lora" not in k:
                sd["module." + k] = tensor(v if not _is_trained(k) else rng.standard_normal(v.shape).astype(v.dtype))
        for k, v in constants.items():
            if k.startswith("audio_branch."):
                sd["module." + k] = tensor(v)
        sd["module.text_branch.embeddings.word_embeddings.weight"] = tensor(np.ones((50, 16), np.float32))
        sd["module.text_branch.embeddings.position_ids"] = tensor(np.arange(514)[None])
        sd["module.text_projection.0.weight"] = tensor(np.ones((4, 16), np.float32))
        sd["module.audio_projection.0.weight"] = tensor(np.ones((4, 64), np.float32))
        sd["module.logit_scale_a"] = tensor(np.array(2.0, np.float32))
        sd["module.text_transform.sequential.0.weight"] = tensor(np.ones((4, 4), np.float32))
        return {"epoch": 15, "name": "tiny-clap", "state_dict": sd,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.99)}]}}

    return (write_torch_zip(tmp / "best_model.ckpt", best, archive="best_model"),
            write_torch_zip(tmp / "tiny_clap.pt", clap, archive="tiny_clap"))


def test_released_layout_with_clap(tiny, released_layout, tmp_path):
    best, clap = released_layout
    out = tmp_path / "released.safetensors"
    result = tconvert.convert(best, out, clap=clap, reader="zip")
    assert result.dropped == {"clap_model.*": 16}
    check_output(tiny, out)  # best_model's trained biases win over CLAP's
    md = tse.io.metadata(out)
    assert md["converted_from"] == "best_model.ckpt" and md["clap_source"] == "tiny_clap.pt"
    if not tconvert._torch_available():
        out2 = tmp_path / "released_merged.safetensors"
        summary = convert_ok(best, out2, "--clap", clap, "--merge-lora")
        assert "from tiny_clap.pt" in summary and "merged" in summary, summary
        check_output(tiny, out2, tol=1e-5)


def test_released_layout_without_clap_names_the_missing_keys(released_layout, tmp_path):
    best, _ = released_layout
    with pytest.raises(ValueError) as e:
        tconvert.convert(best, tmp_path / "x.safetensors", reader="zip")
    msg = str(e.value)
    assert "--clap" in msg and "audio_branch.bn0.bias" in msg and "\n" not in msg, msg
    if not tconvert._torch_available():
        line = convert_fails(best, tmp_path / "x.safetensors")
        assert "--clap" in line and "audio_branch.bn0.bias" in line, line
    assert not (tmp_path / "x.safetensors").exists()


# ---- 5. bad inputs --------------------------------------------------------------------------------


@pytest.fixture()
def good_src(tiny, tmp_path):
    _, weights = tiny
    path = tmp_path / "good.safetensors"
    save_safetensors(path, weights)
    return path


def test_missing_file(tmp_path):
    line = convert_fails(tmp_path / "nope.ckpt", tmp_path / "out.safetensors")
    assert "not found" in line and "nope.ckpt" in line, line


def test_truncated_files(good_src, tiny, tmp_path):
    raw = good_src.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) // 2])
    line = convert_fails(cut, tmp_path / "out.safetensors")
    assert "cut.safetensors" in line and "safetensors" in line, line

    _, weights = tiny
    src = write_torch_zip(tmp_path / "full.ckpt", lambda t: {"state_dict": {k: t(v) for k, v in weights.items()}})
    raw = src.read_bytes()
    for name, data in (("cut.ckpt", raw[: len(raw) // 2]), ("head.ckpt", raw[:100]), ("empty.ckpt", b""),
                       ("junk.ckpt", b"hello, not a checkpoint\n" * 10)):
        (tmp_path / name).write_bytes(data)
        line = convert_fails(tmp_path / name, tmp_path / "out.safetensors")
        assert name in line and ("corrupt" in line or "truncated" in line or "not a" in line), line
    assert not (tmp_path / "out.safetensors").exists()


def test_zip_records_are_read_only_when_used(tiny, tmp_path):
    _, weights = tiny
    n = len(weights)
    src = write_torch_zip(tmp_path / "full.ckpt", lambda t: {"state_dict": {k: t(v) for k, v in weights.items()},
                                                              "optimizer": {"exp_avg": t(np.ones(1000, np.float32))}})

    def without(record, name):
        out = tmp_path / name
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
            for item in zin.infolist():
                if item.filename != record:
                    zout.writestr(item, zin.read(item.filename))
        return out

    # The optimizer's storage (the last one) is never read: a CLAP .pt's AdamW moments stay on disk.
    no_optimizer = without(f"archive/data/{n}", "no_optimizer.ckpt")
    tconvert.convert(no_optimizer, tmp_path / "ok.safetensors", reader="zip")
    no_weight = without("archive/data/7", "no_weight.ckpt")
    with pytest.raises(ValueError, match="archive/data/7"):
        tconvert.read_checkpoint(no_weight, reader="zip")
    with pytest.raises(ValueError, match="archive/data/7, which the archive lacks"):
        tconvert.convert(no_weight, tmp_path / "bad.safetensors", reader="zip")
    assert not (tmp_path / "bad.safetensors").exists()


@pytest.mark.parametrize("case,words", [
    ("unknown_key", ["1 key(s) that are not CLAPSep parameters", "decoder_model.extra.weight"]),
    ("golden_io", ["not CLAPSep parameters", "input.mixture", "output.waveform"]),
    ("wrong_shape", ["size mismatch", "decoder_model.mask_net.3.bias", "[512]"]),
    ("bad_constant", ["constants that differ", "istft.ola_window"]),
    ("missing_decoder_key", ["missing", "decoder_model.spec_norm.running_var"]),
    ("no_decoder", ["no decoder_model"]),
])
def test_bad_contents(tiny, constants, tmp_path, case, words):
    g, weights = tiny
    w = dict(weights)
    if case == "unknown_key":
        w["decoder_model.extra.weight"] = np.zeros(3, np.float32)
    elif case == "golden_io":
        w["input.mixture"], w["output.waveform"] = g["input.mixture"], g["output.waveform"]
    elif case == "wrong_shape":
        w["decoder_model.mask_net.3.bias"] = np.zeros(512, np.float32)
    elif case == "bad_constant":
        w["istft.ola_window"] = constants["istft.ola_window"] * np.float32(1.01)
    elif case == "missing_decoder_key":
        del w["decoder_model.spec_norm.running_var"]
    elif case == "no_decoder":
        w = {k: v for k, v in w.items() if not k.startswith("decoder_model.")}
    src = tmp_path / f"{case}.safetensors"
    save_safetensors(src, w)
    line = convert_fails(src, tmp_path / "out.safetensors")
    for word in words:
        assert word in line, line
    assert not (tmp_path / "out.safetensors").exists()


def test_bad_options(good_src, tmp_path):
    p = run_cli("convert", str(good_src), str(tmp_path / "o.safetensors"), "--dtype", "int8")
    assert p.returncode == 2 and "invalid choice" in p.stderr  # argparse's own usage error
    line = convert_fails(good_src, tmp_path / "o.safetensors", "--clap", tmp_path / "no_clap.pt")
    assert "no_clap.pt" in line and "not found" in line, line
    text_only = tmp_path / "text_only.safetensors"
    save_safetensors(text_only, {"text_branch.pooler.dense.weight": np.ones((4, 4), np.float32)})
    line = convert_fails(good_src, tmp_path / "o.safetensors", "--clap", text_only)
    assert "text_only.safetensors" in line and "no audio_branch" in line, line
    assert not (tmp_path / "o.safetensors").exists()
