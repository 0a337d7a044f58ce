"""CLAPSep from Python against the golden files of ../shared/golden/clapsep (official CLAPSep /
LAION-CLAP / loralib / torch code, random weights): the Swin blocks with LoRA (forward and
backward), the patch and FiLM pieces, the MaskNet layer, the whole tiny model and its taps; then
the user-facing API: separate() on batches and long audio with progress, the released size, bad
inputs, save / load_separator, and the computed constants kept out of state_dict()."""

import numpy as np
import pytest

import tse
from golden import load, rel_to_peak

DTYPES = [(tse.float64, np.float64), (tse.float32, np.float32)]
DTYPE_IDS = ["float64", "float32"]


def _tol(meta, name, dtype):
    """The README's rule: 1e-10 in float64; max(3e-6, the per-output value) in float32."""
    if dtype == tse.float64:
        return 1e-10
    return max(3e-6, meta["tolerance_f32_per_output"].get(name, 3e-6))


def _params(g, skip=()):
    return {k: tse.tensor(v) for k, v in g.items() if not k.startswith(("input.", "output") + tuple(skip))}


def _input(g, name, np_dtype, requires_grad=False):
    return tse.tensor(g["input." + name].astype(np_dtype), requires_grad=requires_grad)


def _check(meta, g, name, got, dtype):
    err = rel_to_peak(got.detach().numpy(), g["output." + name])
    assert err <= _tol(meta, "output." + name, dtype), f"{name}: {err:.3g}"


# ---- golden: the building blocks ------------------------------------------------------------


@pytest.mark.parametrize("case,shift", [("swin_block_shifted", 4), ("swin_block_plain", 0)])
@pytest.mark.parametrize("dtype,np_dtype", DTYPES, ids=DTYPE_IDS)
def test_swin_block_with_lora_forward_and_backward(case, shift, dtype, np_dtype):
    g, meta = load(f"clapsep/{case}.safetensors")
    block = tse.nn.SwinTransformerBlock(128, (32, 32), 4, window_size=8, shift_size=shift, lora_rank=16, lora_alpha=1.0,
                                        dtype=dtype)
    block.load_state_dict(_params(g))  # carries attn_mask / relative_position_index: checked, not loaded
    block.eval()
    x = _input(g, "x", np_dtype, requires_grad=True)
    y = block(x)
    assert y.dtype == dtype
    _check(meta, g, "y", y, dtype)
    (y * _input(g, "R", np_dtype)).sum().backward()
    _check(meta, g, "grad.x", x.grad, dtype)
    for lin in ("qkv", "proj"):
        layer = block.get_submodule("attn." + lin)
        for p in ("lora_A", "lora_B", "bias"):
            _check(meta, g, f"grad.attn.{lin}.{p}", getattr(layer, p).grad, dtype)


@pytest.mark.parametrize("dtype,np_dtype", DTYPES, ids=DTYPE_IDS)
def test_patch_merging_expand_and_inverse_patch_embed(dtype, np_dtype):
    cases = [
        ("patch_merging", tse.nn.PatchMerging((16, 16), 128, dtype=dtype), "y"),
        ("patch_expand", tse.nn.PatchExpand((8, 8), 256, dtype=dtype), "y"),
        ("inverse_patch_embed", tse.nn.InversePatchEmbed(4, 1, 128, dtype=dtype), "image"),
    ]
    for case, module, out in cases:
        g, meta = load(f"clapsep/{case}.safetensors")
        module.load_state_dict(_params(g))
        module.eval()
        _check(meta, g, out, module(_input(g, "x", np_dtype)), dtype)


@pytest.mark.parametrize("dtype,np_dtype", DTYPES, ids=DTYPE_IDS)
def test_patch_embed_and_wav_to_image(dtype, np_dtype):
    g, meta = load("clapsep/patch_embed.safetensors")
    image = tse.nn.wav_to_image(_input(g, "logmel", np_dtype))
    assert np.array_equal(image.numpy(), g["output.image"].astype(np_dtype)), "the fold is an exact permutation"
    assert np.array_equal(tse.nn.image_to_wav(image).numpy(), g["input.logmel"].astype(np_dtype))
    embed = tse.nn.PatchEmbed(4, 1, 16, dtype=dtype)
    embed.load_state_dict(_params(g))
    embed.eval()
    _check(meta, g, "tokens", embed(image), dtype)


@pytest.mark.parametrize("dtype,np_dtype", DTYPES, ids=DTYPE_IDS)
def test_film_skip_with_and_without_residual(dtype, np_dtype):
    g, meta = load("clapsep/film_skip.safetensors")
    skip = tse.nn.FiLMSkip(128, 128, 1024, dtype=dtype)
    skip.load_state_dict(_params(g))
    skip.eval()
    y = skip(_input(g, "skip", np_dtype), _input(g, "embed", np_dtype), x=_input(g, "x", np_dtype))
    _check(meta, g, "y", y, dtype)

    g, meta = load("clapsep/film.safetensors")
    film = tse.nn.FiLMSkip(64, 64, 1024, dtype=dtype)
    film.load_state_dict(_params(g))
    film.eval()
    _check(meta, g, "y", film(_input(g, "hidden", np_dtype), _input(g, "embed", np_dtype)), dtype)


@pytest.mark.parametrize("dtype,np_dtype", DTYPES, ids=DTYPE_IDS)
def test_masknet_layer_is_torchs_transformer_encoder_layer(dtype, np_dtype):
    g, meta = load("clapsep/masknet_layer.safetensors")
    layer = tse.nn.TransformerEncoderLayer(64, 8, 256, dtype=dtype)
    layer.load_state_dict(_params(g))
    layer.eval()
    _check(meta, g, "y", layer(_input(g, "x", np_dtype)), dtype)


# ---- golden: the whole tiny model -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_golden():
    return load("clapsep/clapsep_tiny.safetensors")


def _tiny_model(g, dtype):
    model = tse.models.CLAPSep("tiny", dtype=dtype)
    model.load_state_dict(_params(g, skip=("audio_branch.tscam_conv.", "audio_branch.head.")))
    return model.eval()


TAPS = ["waveform", "mask", "cond", "enc.patch_embed", *(f"enc.layers.{i}" for i in range(4)), "dec.film",
        *(f"dec.skip.{i}" for i in range(4)), "dec.h_d"]


@pytest.mark.parametrize("dtype,np_dtype", DTYPES, ids=DTYPE_IDS)
def test_clapsep_tiny_taps_and_separate(tiny_golden, dtype, np_dtype):
    g, meta = tiny_golden
    model = _tiny_model(g, dtype)
    mixture, pos, neg = (_input(g, n, np_dtype) for n in ("mixture", "embed_pos", "embed_neg"))
    q = model.condition(pos, neg)
    want_q = np.concatenate([g["input.embed_pos"], g["input.embed_neg"]], axis=1).astype(np_dtype)
    assert np.array_equal(q.numpy(), want_q), "condition() concatenates; forward() normalises (taps['cond'])"
    taps = model.forward_taps(mixture, q)
    for name in TAPS:
        _check(meta, g, name, taps[name], dtype)

    wave = taps["waveform"].detach().numpy()
    out = model.separate(mixture, positive=pos, negative=neg).numpy()
    assert out.shape == (2, 64000) and rel_to_peak(out, wave) <= 1e-12
    tight = 1e-12 if dtype == tse.float64 else 1e-6  # float32 BLAS may block a batch of 1 differently
    one = model.separate(mixture[0], positive=pos[0], negative=neg[0]).numpy()
    assert one.shape == (64000,) and rel_to_peak(one, wave[0]) <= tight
    no_negative = model.separate(mixture[1], positive=pos[1]).numpy()  # item 1 has e_N = 0
    assert rel_to_peak(no_negative, wave[1]) <= tight


def test_long_audio_runs_in_windows_with_progress(capfd):
    tse.manual_seed(0)
    model = tse.models.CLAPSep("tiny").eval()
    mixture = 0.1 * tse.randn(12 * 32000)
    pos = tse.randn(512)
    calls = []
    out = model.separate(mixture, positive=pos, progress=lambda done, total: calls.append((done, total)))
    assert out.shape == mixture.shape and np.all(np.isfinite(out.numpy()))
    assert calls and calls[-1] == (2, 2) and all(t == 2 for _, t in calls)
    capfd.readouterr()
    again = model.separate(mixture, positive=pos, progress=True)
    assert np.array_equal(again.numpy(), out.numpy())
    assert "2/2" in capfd.readouterr().err  # a tqdm bar or, without tqdm, a line on stderr


def test_released_config_size():
    assert tse.models.CLAPSep().num_parameters(trainable_only=True) == 44359616


# ---- bad inputs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    tse.manual_seed(1)
    return tse.models.CLAPSep("tiny").eval()


@pytest.mark.parametrize("make,words", [
    (lambda: (tse.zeros(0), {"positive": tse.randn(512)}), "empty"),
    (lambda: (tse.full((32000,), float("nan")), {"positive": tse.randn(512)}), "nan"),
    (lambda: (tse.randn(32000), {"positive": tse.randn(100)}), "positive embedding must be (512)"),
    (lambda: (tse.randn(32000), {"query": tse.randn(1, 1000)}), "query must be (b, 1024)"),
    (lambda: (tse.randn(32000), {}), "give a positive or a negative"),
    (lambda: (tse.randn(32000), {"positive": tse.randn(512), "query": tse.randn(1024)}), "not both"),
])
def test_bad_inputs_are_value_errors_naming_the_problem(tiny, make, words):
    mixture, kwargs = make()
    with pytest.raises(ValueError) as e:
        tiny.separate(mixture, **kwargs)
    assert words in str(e.value).lower(), str(e.value)


def test_bad_config_and_progress(tiny):
    with pytest.raises(ValueError, match="foo"):
        tse.models.CLAPSep(foo=1)
    with pytest.raises(TypeError, match="progress"):
        tiny.separate(tse.randn(32000), positive=tse.randn(512), progress="yes")


# ---- persistence and constants --------------------------------------------------------------


def test_save_and_load_separator_round_trip(tiny, tmp_path):
    path = tmp_path / "clapsep.safetensors"
    tiny.save(path)
    loaded = tse.models.load_separator(path)
    assert isinstance(loaded.model, tse.models.CLAPSep) and loaded.model.config == tiny.config
    mixture, pos, neg = tse.randn(32000), tse.randn(512), tse.randn(512)
    want = tiny.separate(mixture, positive=pos, negative=neg).numpy()
    got = loaded.model.eval().separate(mixture, positive=pos, negative=neg).numpy()
    assert np.array_equal(got, want)


def test_computed_constants_are_not_in_the_state_dict():
    block = tse.nn.SwinTransformerBlock(32, (16, 16), 2, window_size=8, shift_size=4)
    names = block.constant_names()
    assert set(names) == {"attn_mask", "attn.relative_position_index"}
    assert not set(names) & set(block.state_dict())
    assert dict(block.named_constants())["attn_mask"].shape == (4, 64, 64)
