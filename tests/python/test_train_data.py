"""tse.train data pipeline through Python: the built-in catalog (a synthetic copy of the installed
file names and the installed Debian sounds), the held-out split, sampler determinism (also
across threads and Python threads), SNR / peak invariants, the fixed test set and argument
errors. The C++ suite (tests/cpp/test_data.cpp) covers the same contracts in more depth."""

import math
import os
import threading

import numpy as np
import pytest

import tse
import tse.train as T

ROOT = "/usr/share/sounds"
LABELS = sorted(["speech", "noise", "harpsichord", "piano", "guitar", "trumpet", "cello", "xylophone",
                 "percussion", "cymbals", "bird", "cat", "beetle", "water", "pipe", "bell", "phone_ring",
                 "alarm"])

# A few installed names per package, with their labels ("" = left out by the table).
FAKE = {
    "alsa/Front_Center.wav": "speech", "alsa/Front_Left.wav": "speech", "alsa/Front_Right.wav": "speech",
    "alsa/Rear_Center.wav": "speech", "alsa/Rear_Left.wav": "speech", "alsa/Rear_Right.wav": "speech",
    "alsa/Side_Left.wav": "speech", "alsa/Side_Right.wav": "speech", "alsa/Noise.wav": "noise",
    **{f"sound-icons/cembalo-{i}.wav": "harpsichord" for i in (1, 2, 3, 6, 10, 11, 12)},
    "sound-icons/piano-3.wav": "piano", "sound-icons/electric-piano-3.wav": "piano",
    "sound-icons/klavichord-4.wav": "piano", "sound-icons/guitar-12.wav": "guitar",
    "sound-icons/guitar-13.wav": "guitar", "sound-icons/trumpet-1.wav": "trumpet",
    "sound-icons/trumpet-12.wav": "trumpet", "sound-icons/violoncello-7.wav": "cello",
    "sound-icons/xylofon.wav": "xylophone",
    **{f"sound-icons/percussion-{i}.wav": "percussion" for i in (10, 12, 28, 50)},
    "sound-icons/cymbaly-1.wav": "cymbals", "sound-icons/canary-long.wav": "bird",
    "sound-icons/gummy-cat-2.wav": "cat", "sound-icons/cockchafer-gentleman-1.wav": "beetle",
    "sound-icons/glass-water-1.wav": "water", "sound-icons/pipe.wav": "pipe", "sound-icons/prompt.wav": "",
    "freedesktop/stereo/bell.ogg": "bell", "freedesktop/stereo/phone-incoming-call.ogg": "phone_ring",
    "freedesktop/stereo/alarm-clock-elapsed.ogg": "alarm", "freedesktop/stereo/audio-channel-front-left.ogg": "",
    "Oxygen-Im-Phone-Ring.ogg": "phone_ring",
}


def _tone(f, seconds=0.3, sr=16000, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    x = np.concatenate([np.zeros(sr // 20), amp * np.sin(2 * np.pi * f * t), np.zeros(sr // 20)])
    return tse.from_numpy(x.astype(np.float32))


@pytest.fixture
def fake_root(tmp_path):
    for i, name in enumerate(FAKE):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        # freedesktop's .oga files: written as .ogg (the container comes from the extension), renamed
        tse.audio.save(str(p), _tone(200 + 37 * i), 16000)
        if name.startswith("freedesktop"):
            p.rename(p.with_suffix(".oga"))
    (tmp_path / "sound-icons/at").symlink_to("cembalo-6.wav")
    (tmp_path / "sound-icons/cembalo-99.wav").symlink_to("cembalo-1.wav")
    return tmp_path


@pytest.fixture(scope="module")
def installed():
    return T.split_builtin(ROOT)


def _np(t):
    return np.asarray(t.numpy())


def test_label_table_on_the_installed_names_skips_aliases(fake_root):
    c = T.SoundCatalog.builtin(fake_root)
    assert c.labels == LABELS
    got = {os.path.relpath(clip.path, fake_root): clip.label for clip in c.clips}
    want = {n.replace(".ogg", ".oga") if n.startswith("freedesktop") else n: lab for n, lab in FAKE.items() if lab}
    assert got == want
    assert not any(os.path.islink(clip.path) for clip in c.clips)
    assert c.label_index("cat") == LABELS.index("cat")
    with pytest.raises(ValueError, match="unknown label 'violin'.*harpsichord"):
        c.label_index("violin")


def test_missing_root_and_files_name_setup_deps(tmp_path, fake_root):
    with pytest.raises(RuntimeError, match=r"scripts/setup-deps.*sound-icons"):
        T.SoundCatalog.builtin(tmp_path / "nowhere")
    (fake_root / "alsa/Noise.wav").unlink()
    with pytest.raises(RuntimeError, match=r"Noise\.wav.*alsa-utils.*scripts/setup-deps"):
        T.SoundCatalog.builtin(fake_root)


def test_from_csv(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d/list.csv").write_text("path,label\na.wav,dog\n/x/b.wav,cat\n")
    c = T.SoundCatalog.from_csv(tmp_path / "d/list.csv")
    assert c.labels == ["cat", "dog"]
    assert [x.path for x in c.clips] == [str(tmp_path / "d/a.wav"), "/x/b.wav"]
    m = T.SoundCatalog([T.SoundClip("/y/b.wav", "owl"), T.SoundClip(tmp_path / "a.wav", "bat")])
    assert m.labels == ["bat", "owl"] and len(m) == 2 and m.label_index("owl") == 1
    with pytest.raises(ValueError, match="empty path or label"):
        T.SoundCatalog([T.SoundClip("/y/c.wav", "")])


def test_installed_split_is_disjoint(installed):
    train, test = installed
    cat = T.SoundCatalog.builtin(ROOT)
    assert len(cat) == 39 and cat.labels == LABELS
    files = {lab: sum(c.label == lab for c in cat.clips) for lab in LABELS}
    for li, lab in enumerate(LABELS):
        tr = {train.clip(i).source: (train.clip(i).start, train.clip(i).end) for i in train.clips_of(li)}
        te = {test.clip(i).source: (test.clip(i).start, test.clip(i).end) for i in test.clips_of(li)}
        if files[lab] >= 4:
            assert not set(tr) & set(te), lab
            assert len(te) == max(1, round(files[lab] / 4)), lab
        else:
            assert set(tr) == set(te), lab
            for src, (b, e) in te.items():
                assert tr[src][1] == b and e > b, (lab, src)
    assert train.speeds == [0.9, 0.95, 1.0, 1.05, 1.1] and test.speeds == [1.0]
    for clip in train.clips + test.clips:
        assert np.isfinite(_np(clip.samples)).all()


def test_batches_are_pure_functions_of_seed_and_index(installed):
    train, _ = installed
    s = T.MixtureSampler(train, T.MixtureOptions(), seed=5)
    saved = tse.get_num_threads()
    try:
        tse.set_num_threads(1)
        a = s.batch(2, 8)
        tse.set_num_threads(2)
        b = s.batch(2, 8)
    finally:
        tse.set_num_threads(saved)
    for name in ("mixture", "target", "interference"):
        assert np.array_equal(_np(getattr(a, name)), _np(getattr(b, name)))
    assert a.target_label == b.target_label and a.snr_db == b.snr_db
    assert not np.array_equal(_np(a.mixture), _np(s.batch(3, 8).mixture))
    assert a.mixture.shape == (8, 32000) and len(a) == 8
    # Concurrent Python threads (the GIL is released in batch()) see the same bits.
    out = [None] * 4

    def work(k):
        out[k] = _np(s.batch(2, 8).mixture)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in out:
        assert np.array_equal(o, _np(a.mixture))


def test_labels_snr_and_peak(installed):
    train, _ = installed
    o = T.MixtureOptions(snr_db_min=-3.0, snr_db_max=4.0)
    b = T.MixtureSampler(train, o, 9).batch(0, 32)
    m, t, n = _np(b.mixture).astype(np.float64), _np(b.target).astype(np.float64), _np(b.interference).astype(np.float64)
    for i in range(32):
        assert b.target_label[i] != b.interference_label[i]
        assert -3.0 <= b.snr_db[i] <= 4.0
        snr = 10 * math.log10((t[i] ** 2).sum() / (n[i] ** 2).sum())
        assert snr == pytest.approx(b.snr_db[i], abs=1e-3)
        assert np.abs(m[i]).max() <= 1.0
        assert np.abs(m[i] - t[i] - n[i]).max() < 1e-6
    loud = T.MixtureSampler(train, T.MixtureOptions(gain_db_min=20, gain_db_max=20), 9).batch(0, 8)
    assert np.abs(_np(loud.mixture)).max(axis=1) == pytest.approx(0.9, rel=1e-6)


def test_fixed_test_set_is_class_balanced(installed):
    _, test = installed
    a = T.make_test_mixtures(test)
    b = T.make_test_mixtures(test, 200, 0.0, 32000, T.TEST_MIXTURE_SEED)
    assert np.array_equal(_np(a.mixture), _np(b.mixture))
    assert a.mixture.shape == (200, 32000)
    counts = np.bincount(a.target_label, minlength=len(LABELS))
    assert counts.sum() == 200 and counts.min() >= 11 and counts.max() <= 12
    assert all(x != y for x, y in zip(a.target_label, a.interference_label))
    assert set(a.snr_db) == {0.0}


def test_bad_arguments_name_the_argument(installed):
    train, _ = installed
    s = T.MixtureSampler(train, None, 0)
    with pytest.raises(ValueError, match="batch_size"):
        s.batch(0, 0)
    with pytest.raises(ValueError, match="snr_db_min"):
        T.MixtureSampler(train, T.MixtureOptions(snr_db_min=3, snr_db_max=1), 0)
    with pytest.raises(ValueError, match="sample_rate"):
        T.MixtureSampler(train, T.MixtureOptions(sample_rate=16000), 0)
    empty = T.ClipBank(["a", "b"], 32000)
    with pytest.raises(ValueError, match="bank"):
        T.MixtureSampler(empty, T.MixtureOptions(), 0)
    with pytest.raises(ValueError, match="empty"):
        T.make_test_mixtures(empty)
    with pytest.raises(TypeError):
        T.MixtureOptions(snr_db=3)  # unknown keyword


def test_in_memory_bank_and_options_round_trip():
    bank = T.ClipBank(["a", "b"], 8000, [0.9, 1.0])
    bank.add(0, _tone(300, sr=8000), "a0")
    bank.add(1, _tone(900, sr=8000), "b0")
    assert len(bank) == 2 and bank.present_labels == [0, 1] and bank.unit_speed == 1
    assert abs(bank.clip(0).variants[0].shape[0] - bank.clip(0).samples.shape[0] / 0.9) <= 1
    o = T.MixtureOptions(sample_rate=8000, segment_samples=4000, augment=False)
    o.loop_probability = 0.25
    s = T.MixtureSampler(bank, o, 1)
    assert s.options.loop_probability == 0.25 and s.options.segment_samples == 4000
    b = s.batch(0, 4)
    assert b.mixture.shape == (4, 4000)
    assert sorted(set(b.target_label) | set(b.interference_label)) == [0, 1]
