"""tse.audio against the golden front-end file (official torchaudio / torchlibrosa / librosa code)
and against independent numpy implementations written here from the definitions."""

import math

import numpy as np
import pytest

import tse
import tse.audio as A
from golden import load, rel_to_peak


@pytest.fixture(scope="module")
def frontend():
    return load("clapsep/frontend.safetensors")


def _tol(meta, name):
    return meta["tolerance_f32_per_output"].get(name, 3e-6)


# ---- golden: the official front-end ----------------------------------------------------------


def test_resampler_kernel_matches_torchaudio(frontend):
    g, _ = frontend
    k32 = A.sinc_resample_kernel(2, 3, dtype=tse.float32).numpy()
    assert np.array_equal(k32, g["output_f32.resampler_kernel"][:, 0, :]), "float32 kernel must be bit-exact (D1)"
    k64 = A.sinc_resample_kernel(2, 3, dtype=tse.float64).numpy()
    assert rel_to_peak(k64, g["output.resampler_kernel"][:, 0, :]) <= 1e-10


def test_resample_32k_to_48k_matches_torchaudio(frontend):
    g, meta = frontend
    x = g["input.wave_32k"]
    y64 = A.resample(tse.from_numpy(x.astype(np.float64)), 32000, 48000).numpy()
    assert y64.shape == (1, 48000)
    assert rel_to_peak(y64, g["output.resampled_48k"]) <= 1e-10
    y32 = A.resample(tse.from_numpy(x.copy()), 32000, 48000).numpy()
    assert rel_to_peak(y32, g["output.resampled_48k"]) <= _tol(meta, "output.resampled_48k")
    assert rel_to_peak(y32, g["output_f32.resampled_48k"]) <= 1e-6


def _htsat_power(wave):
    spec = A.stft(wave, 1024, hop_length=480)
    return (spec * spec).sum(-1)  # (..., 513, T)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_htsat_power_logmel_and_padding_match_the_official_front_end(frontend, dtype):
    g, meta = frontend
    tol = lambda name: 1e-10 if dtype == "float64" else _tol(meta, name)  # noqa: E731
    wave = tse.from_numpy(g["output.resampled_48k"].astype(dtype))
    power = _htsat_power(wave).numpy().transpose(0, 2, 1)[:, None]  # (1, 1, T, 513), torchlibrosa's layout
    assert rel_to_peak(power, g["output.htsat_power"]) <= tol("output.htsat_power")
    logmel = A.clap_logmel(wave).numpy()[:, None]
    assert logmel.shape == (1, 1, 101, 64)
    assert rel_to_peak(logmel, g["output.htsat_logmel"]) <= tol("output.htsat_logmel")
    padded = A.clap_logmel(wave, length="pad").numpy()[:, None]
    assert padded.shape == (1, 1, 1024, 64)
    assert np.all(padded[0, 0, 101:] == -100.0)
    assert rel_to_peak(padded, g["output.htsat_logmel_padded"]) <= tol("output.htsat_logmel_padded")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clapsep_stft_magnitude_matches(frontend, dtype):
    g, meta = frontend
    tol = 1e-10 if dtype == "float64" else _tol(meta, "output.stft_mag")
    x = tse.from_numpy(g["input.wave_32k"].astype(dtype))
    mag = A.magnitude(A.stft(x, 1024, hop_length=320)).numpy().transpose(0, 2, 1)[:, None]
    assert rel_to_peak(mag, g["output.stft_mag"]) <= tol


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_query_bicubic_stretch_matches(frontend, dtype):
    g, meta = frontend
    tol = 1e-10 if dtype == "float64" else _tol(meta, "output.query_stretched")
    q = tse.from_numpy(g["input.logmel_query"].astype(dtype))
    out = tse.nn.functional.interpolate(q, size=(1024, 64), mode="bicubic", align_corners=True).numpy()
    assert rel_to_peak(out, g["output.query_stretched"]) <= tol


def test_clap_logmel_stretch_is_the_bicubic_resize_of_the_plain_logmel(frontend):
    g, _ = frontend
    wave = tse.from_numpy(g["output.resampled_48k"].copy())
    plain = A.clap_logmel(wave)
    stretched = A.clap_logmel(wave, length="stretch").numpy()
    want = tse.nn.functional.interpolate(plain[:, None], size=(1024, 64), mode="bicubic", align_corners=True)
    np.testing.assert_array_equal(stretched, want.numpy()[:, 0])


# ---- independent numpy references ----------------------------------------------------------------


def _np_stft(x, n_fft, hop, center=True):
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    if center:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)], mode="reflect")
    frames = 1 + (x.shape[-1] - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.fft.rfft(x[..., idx] * w, axis=-1)  # (..., T, F)
    spec = np.swapaxes(spec, -1, -2)
    return np.stack([spec.real, spec.imag], axis=-1)


@pytest.mark.parametrize("n_fft,hop", [(1024, 320), (1024, 512), (512, 160), (400, 100)])
def test_stft_matches_numpy_rfft(rng, n_fft, hop):
    x = rng.standard_normal((2, 8000))
    got = A.stft(tse.from_numpy(x), n_fft, hop_length=hop).numpy()
    want = _np_stft(x, n_fft, hop)
    assert got.shape == want.shape
    assert rel_to_peak(got, want) <= 1e-12


def test_istft_inverts_and_matches_the_overlap_add_definition(rng):
    n_fft, hop = 1024, 320
    x = rng.standard_normal((3, 16000))
    spec = A.stft(tse.from_numpy(x), n_fft, hop_length=hop)
    y = A.istft(spec, n_fft, hop_length=hop, length=16000).numpy()
    assert np.max(np.abs(y - x)) <= 1e-12
    # The definition on a random spectrum (not a valid STFT): irfft, window, overlap-add, / sum w^2.
    s = rng.standard_normal((1, n_fft // 2 + 1, 20, 2))
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.fft.irfft(s[0, ..., 0].T + 1j * s[0, ..., 1].T, n=n_fft, axis=-1) * w
    full = n_fft + hop * 19
    ola, env = np.zeros(full), np.zeros(full)
    for t in range(20):
        ola[t * hop : t * hop + n_fft] += frames[t]
        env[t * hop : t * hop + n_fft] += w * w
    want = (ola / np.maximum(env, 1e-11))[n_fft // 2 : full - n_fft // 2]
    got = A.istft(tse.from_numpy(s), n_fft, hop_length=hop).numpy()[0]
    assert rel_to_peak(got, want) <= 1e-12


def _slaney_mel_np(sr, n_fft, n_mels, fmin, fmax):
    """The Slaney filterbank from its closed form, in float64 throughout."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f < 1000, 3 * f / 200, 15 + 27 * np.log(np.maximum(f, 1e-300) / 1000) / np.log(6.4))

    def mel_to_hz(m):
        return np.where(m < 15, 200 * m / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))

    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fft_f = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for i in range(n_mels):
        up = (fft_f - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        down = (mel_f[i + 2] - fft_f) / (mel_f[i + 2] - mel_f[i + 1])
        fb[i] = np.maximum(0, np.minimum(up, down)) * 2 / (mel_f[i + 2] - mel_f[i])
    return fb


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(48000, 1024, 64, 50, 14000), (32000, 1024, 128, 0, 16000),
                                                       (16000, 512, 40, 20, 8000)])
def test_mel_filterbank_matches_the_closed_form_slaney_formula(sr, n_fft, n_mels, fmin, fmax):
    got = A.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, dtype=tse.float64).numpy()
    want = _slaney_mel_np(sr, n_fft, n_mels, fmin, fmax)
    assert got.shape == want.shape
    # librosa's values are float32 (rounded twice): agreement to float32 precision.
    assert np.max(np.abs(got - want)) <= 2e-7 * np.max(want)
    f32 = A.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax).numpy()
    assert f32.dtype == np.float32 and np.array_equal(f32.astype(np.float64), got)


def test_mel_filterbank_htk_and_no_norm():
    fb = A.mel_filterbank(16000, 512, 10, htk=True, norm="none", dtype=tse.float64).numpy()
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    pts = 700 * (10 ** (np.linspace(mel(0), mel(8000), 12) / 2595) - 1)
    peaks = np.argmax(fb, axis=1) * 16000 / 512
    assert np.all(np.abs(peaks - pts[1:-1]) <= 16000 / 512)
    assert np.max(fb) <= 1.0 + 1e-7


def test_power_to_db_follows_librosa():
    x = tse.tensor([0.0, 1e-12, 1e-3, 1.0, 100.0], dtype=tse.float64)
    np.testing.assert_allclose(A.power_to_db(x).numpy(), [-100.0, -100.0, -30.0, 0.0, 20.0], atol=1e-12)
    np.testing.assert_allclose(A.power_to_db(x, ref=10.0).numpy(), [-110.0, -110.0, -40.0, -10.0, 10.0], atol=1e-12)
    np.testing.assert_allclose(A.power_to_db(x, top_db=80.0).numpy(), [-60.0, -60.0, -30.0, 0.0, 20.0], atol=1e-12)


def test_resample_matches_the_polyphase_formula_for_other_ratios(rng):
    for orig, new in [(44100, 32000), (16000, 48000), (48000, 32000)]:
        g = math.gcd(orig, new)
        o, n = orig // g, new // g
        x = rng.standard_normal(1000)
        k = A.sinc_resample_kernel(o, n, dtype=tse.float64).numpy()
        width = (k.shape[1] - o) // 2
        xp = np.pad(x, (width, width + o))
        frames = (len(xp) - k.shape[1]) // o + 1
        want = np.stack([[xp[m * o : m * o + k.shape[1]] @ k[j] for j in range(n)] for m in range(frames)]).ravel()
        want = want[: math.ceil(n * len(x) / o)]
        got = A.resample(tse.from_numpy(x), orig, new).numpy()
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 1e-12


def test_soxr_resampler_keeps_a_tone():
    t = np.arange(44100) / 44100
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = A.resample(tse.from_numpy(x), 44100, 16000, method="soxr_hq").numpy()
    assert y.shape == (16000,)
    ref = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.max(np.abs(y[200:-200] - ref[200:-200])) < 2e-3


def test_spectral_helpers():
    z = tse.tensor([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], dtype=tse.float64)
    np.testing.assert_allclose(A.magnitude(z).numpy(), [5.0, 0.0, 1.0])
    np.testing.assert_allclose(A.phasor(z).numpy(), [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(A.polar(tse.tensor([2.0, 1.0, 3.0], dtype=tse.float64), A.phasor(z)).numpy(),
                               [[1.2, 1.6], [0.0, 0.0], [-3.0, 0.0]])
    w = tse.tensor([[0.0, 1.0]], dtype=tse.float64)
    np.testing.assert_allclose(A.complex_mul(z, w).numpy(), [[-4.0, 3.0], [0.0, 0.0], [0.0, -1.0]])
    m = tse.tensor([0.5, 1.0, -1.0], dtype=tse.float64)
    np.testing.assert_allclose(A.mask_apply(m, z).numpy(), [[1.5, 2.0], [0.0, 0.0], [0.0, 0.0]])


def test_bad_audio_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="n_fft"):
        A.stft(tse.zeros(100), 0)
    with pytest.raises(ValueError, match="reflect"):
        A.stft(tse.zeros(10), 64)
    with pytest.raises(ValueError, match="sample rates"):
        A.resample(tse.zeros(10), 0, 16000)
    with pytest.raises(ValueError, match="method"):
        A.resample(tse.zeros(10), 8000, 16000, method="linear")
    with pytest.raises(ValueError, match="length"):
        A.clap_logmel(tse.zeros(48000), length="crop")
    with pytest.raises(ValueError, match="fmax"):
        A.mel_filterbank(16000, 512, 40, fmin=100, fmax=9000)
