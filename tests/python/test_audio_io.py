"""tse.audio file I/O (libsndfile), mixing at an SNR and segment helpers: round trips for each
container and subtype, clipping, atomic writes, and every bad file named in the issue."""

import numpy as np
import pytest
import scipy.io.wavfile

import tse
import tse.audio as A


def _tone(sr=16000, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = np.stack([0.5 * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(channels)]).astype(np.float32)
    return x


@pytest.mark.parametrize(
    "name,subtype,tol",
    [("a.wav", "FLOAT", 0.0), ("a.wav", "PCM_16", 1 / 32767), ("a.wav", "PCM_24", 1 / 8388607),
     ("a.flac", "PCM_16", 1 / 32767), ("a.flac", "PCM_24", 1 / 8388607)],
)
def test_lossless_round_trips(tmp_path, name, subtype, tol):
    x = _tone(channels=2)
    path = str(tmp_path / name)
    assert A.save(path, tse.from_numpy(x), 16000, subtype=subtype) == 0
    info = A.info(path)
    assert info["sample_rate"] == 16000 and info["channels"] == 2 and info["frames"] == x.shape[1]
    assert info["subtype"] == subtype
    y, sr = A.load(path)
    assert sr == 16000 and y.shape == (2, x.shape[1]) and y.dtype == tse.float32
    assert np.max(np.abs(y.numpy() - x)) <= tol


@pytest.mark.parametrize("name", ["a.ogg", "a.opus", "a.mp3"])
def test_lossy_round_trips_keep_the_tone(tmp_path, name):
    x = _tone(sr=48000, seconds=1.0)
    path = str(tmp_path / name)
    A.save(path, tse.from_numpy(x[0]), 48000)
    y, sr = A.load(path, mono=True)
    assert sr == 48000
    y = y.numpy()[0]
    # Codecs add delay and padding: compare the spectral peak, not samples.
    spec = np.abs(np.fft.rfft(y[: 48000] if len(y) >= 48000 else np.pad(y, (0, 48000 - len(y)))))
    assert abs(np.argmax(spec) - 440) <= 2


def test_load_resamples_and_mixes_down(tmp_path):
    x = _tone(sr=44100, seconds=0.5, channels=2)
    path = str(tmp_path / "s.wav")
    A.save(path, tse.from_numpy(x), 44100)
    y, sr = A.load(path, sr=16000, mono=True)
    assert sr == 16000 and y.shape == (1, 8000)
    want = A.resample(tse.from_numpy(x.mean(0, keepdims=True)), 44100, 16000, method="soxr_hq").numpy()
    np.testing.assert_allclose(y.numpy(), want, atol=1e-6)


def test_pcm_saves_clip_and_count(tmp_path):
    x = np.array([0.0, 0.5, 1.5, -2.0, 1.0, -1.0], dtype=np.float32)
    path = str(tmp_path / "c.wav")
    assert A.save(path, tse.from_numpy(x), 8000, subtype="PCM_16") == 2
    y, _ = A.load(path)
    assert y.numpy()[0, 2] == pytest.approx(32767 / 32768, abs=1e-4)  # clipped to full scale, not wrapped
    assert y.numpy()[0, 3] == pytest.approx(-1.0)
    assert A.save(str(tmp_path / "f.wav"), tse.from_numpy(x), 8000) == 0  # FLOAT keeps > 1 values
    np.testing.assert_array_equal(A.load(str(tmp_path / "f.wav"))[0].numpy()[0], x)


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "keep.wav"
    A.save(str(path), tse.from_numpy(_tone()), 16000)
    with pytest.raises(ValueError):
        A.save(str(path), tse.tensor([0.0, float("nan")]), 16000)
    assert A.info(str(path))["frames"] == 8000  # the old file survived the failed save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(RuntimeError, match="no such file.*missing.wav"):
        A.load(str(tmp_path / "missing.wav"))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(RuntimeError, match="junk.wav"):
        A.load(str(junk))
    random_bytes = tmp_path / "noise.flac"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(RuntimeError, match="noise.flac"):
        A.load(str(random_bytes))
    good = tmp_path / "t.wav"
    A.save(str(good), tse.from_numpy(_tone()), 16000, subtype="PCM_16")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(RuntimeError, match="truncated"):
        A.load(str(truncated))
    empty = tmp_path / "empty.wav"
    scipy.io.wavfile.write(str(empty), 16000, np.zeros(0, dtype=np.int16))
    with pytest.raises(RuntimeError, match="no audio frames"):
        A.load(str(empty))
    nan = tmp_path / "nan.wav"
    scipy.io.wavfile.write(str(nan), 16000, np.array([0.0, np.nan, 0.1], dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite.*nan.wav|nan.wav.*non-finite"):
        A.load(str(nan))
    with pytest.raises(RuntimeError, match="directory"):
        A.load(str(tmp_path))


def test_save_argument_errors(tmp_path):
    x = tse.zeros(100)
    with pytest.raises(ValueError, match="extension"):
        A.save(str(tmp_path / "a.xyz"), x, 16000)
    with pytest.raises(ValueError, match="subtype"):
        A.save(str(tmp_path / "a.wav"), x, 16000, subtype="PCM_7")
    with pytest.raises(ValueError, match="sr"):
        A.save(str(tmp_path / "a.wav"), x, 0)
    with pytest.raises(ValueError, match="non-finite"):
        A.save(str(tmp_path / "a.wav"), tse.tensor([float("inf")]), 16000)


def test_mix_at_snr_follows_the_dcase_recipe(rng):
    s = rng.standard_normal((2, 16000)) * 0.1
    n = rng.standard_normal((2, 16000)) * 0.3
    m, st, ns, gain = A.mix_at_snr(tse.from_numpy(s), tse.from_numpy(n), 5.0, peak_normalize=False)
    snr = 10 * np.log10(np.mean(st.numpy() ** 2, -1) / np.mean(ns.numpy() ** 2, -1))
    np.testing.assert_allclose(snr, [5.0, 5.0], atol=1e-9)
    np.testing.assert_allclose(m.numpy(), st.numpy() + ns.numpy())
    np.testing.assert_array_equal(gain.numpy(), [1.0, 1.0])
    # Peaks above 1 are normalised to 0.9, the target with them.
    loud = s * 40
    m, st, ns, gain = A.mix_at_snr(tse.from_numpy(loud), tse.from_numpy(n), 0.0)
    np.testing.assert_allclose(np.max(np.abs(m.numpy()), -1), [0.9, 0.9])
    np.testing.assert_allclose(st.numpy(), loud * gain.numpy()[:, None])
    # Silent noise stays silent.
    m, _, ns, _ = A.mix_at_snr(tse.from_numpy(s), tse.zeros(2, 16000, dtype=tse.float64), 0.0)
    assert np.all(ns.numpy() == 0) and np.all(np.isfinite(m.numpy()))


def test_segment_helpers():
    x = tse.arange(10, dtype=tse.float32).reshape(1, 10)
    np.testing.assert_array_equal(A.pad_or_trim(x, 4).numpy(), [[0, 1, 2, 3]])
    np.testing.assert_array_equal(A.pad_or_trim(x, 12).numpy()[0, 10:], [0, 0])
    tse.manual_seed(3)
    seg = A.random_segment(x, 4).numpy()[0]
    assert np.all(np.diff(seg) == 1) and 0 <= seg[0] <= 6
    np.testing.assert_array_equal(A.random_segment(x, 12).numpy()[0, :10], np.arange(10))


def _scipy_test_wavs():
    import pathlib

    import scipy

    return sorted((pathlib.Path(scipy.__file__).parent / "io" / "tests" / "data").glob("*.wav"))


@pytest.mark.parametrize("path", _scipy_test_wavs(), ids=lambda p: p.name)
def test_odd_wav_files_load_or_raise_a_clear_error(path):
    """scipy's test WAVs: early EOF, incomplete chunks, 5-64-bit, big-endian, mu-law, extensible."""
    try:
        x, sr = A.load(str(path))
    except (RuntimeError, ValueError) as e:
        assert path.name in str(e)
        return
    assert x.dtype == tse.float32 and x.dim() == 2 and sr > 0
    assert np.all(np.isfinite(x.numpy()))
