"""The command line (`python -m tse train / separate / eval`) on the built-in sounds with a tiny
model: exact resume after SIGKILL, checkpoints that survive a failed write, separation of a
real file at its own rate and channel count, and clear errors for bad input."""

import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tse

TINY = """
[model]
num_layers = 1
d_model = 32
num_heads = 2
ffn_dim = 64
conv_kernel = 7

[data]
seed = 3
test_mixtures = 16

[data.options]
segment_samples = 16000

[train]
max_steps = {steps}
batch_size = 4
lr = 2e-3
schedule = "constant"
checkpoint_every = {every}
keep_last = 50
log_every = 2
eval_batch_size = 8
progress = false
"""

REAL_FILE = "/usr/share/sounds/alsa/Front_Center.wav"  # 48 kHz mono speech (alsa-utils)


def run_cli(*args, check=True, timeout=600, **kw):
    env = dict(os.environ, TSE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "tse", *args], capture_output=True, text=True, timeout=timeout, env=env,
                       **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"python -m tse {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def write_config(tmp_path, steps=12, every=3, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(TINY.format(steps=steps, every=every))
    return path


def weights(path):
    return {k: v.numpy().copy() for k, v in tse.io.load_safetensors(path).items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An uninterrupted 12-step run: its output folder."""
    tmp = tmp_path_factory.mktemp("cli")
    cfg = write_config(tmp)
    out = tmp / "straight"
    p = run_cli("train", "--config", str(cfg), "-o", str(out))
    assert "mean SI-SDRi:" in p.stdout
    return out


def test_train_writes_model_checkpoints_and_metrics(trained):
    assert (trained / "model.safetensors").is_file()
    ckpts = sorted(os.listdir(trained / "checkpoints"))
    assert "step-00000012.safetensors" in ckpts and "latest" in ckpts
    assert (trained / "checkpoints" / "latest").read_text().strip() == "step-00000012.safetensors"
    rows = (trained / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,grad_norm,mixtures_per_s,val_si_sdri"
    steps = [int(r.split(",")[0]) for r in rows[1:]]
    assert steps == sorted(steps) and steps[-1] == 12
    assert rows[-1].split(",")[-1] != ""  # the final validation


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, trained):
    cfg = write_config(tmp_path)
    out = tmp_path / "killed"
    env = dict(os.environ, TSE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "tse", "train", "--config", str(cfg), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    target = out / "checkpoints" / "step-00000006.safetensors"
    deadline = time.time() + 300
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists(), "the run did not reach its step-6 checkpoint"
    assert not (out / "model.safetensors").exists(), "the run finished before it was killed"
    p = run_cli("train", "--config", str(cfg), "-o", str(out), "--resume")
    assert "resuming from" in p.stdout
    a, b = weights(trained / "model.safetensors"), weights(out / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs after kill + resume"
    # The checkpoint (weights + optimiser state) is identical too.
    a = weights(trained / "checkpoints" / "step-00000012.safetensors")
    b = weights(out / "checkpoints" / "step-00000012.safetensors")
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs in the final checkpoint"


def test_a_checkpoint_cut_off_mid_write_never_replaces_a_good_one(tmp_path):
    cfg = write_config(tmp_path, steps=3, every=3)
    out = tmp_path / "cut"
    run_cli("train", "--config", str(cfg), "-o", str(out))
    good = out / "checkpoints" / "step-00000003.safetensors"
    before = good.read_bytes()
    size = len(before)

    def limit_file_size():  # writes past half a checkpoint fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    cfg6 = write_config(tmp_path, steps=6, every=3, name="six.toml")
    p = run_cli("train", "--config", str(cfg6), "-o", str(out), "--resume", check=False,
                preexec_fn=limit_file_size)
    assert p.returncode != 0 and "step-00000006" in p.stderr, p.stderr
    ckpts = sorted(n for n in os.listdir(out / "checkpoints"))
    assert ckpts == ["latest", "step-00000003.safetensors"], ckpts  # no partial file left, no new name
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000003.safetensors"
    assert good.read_bytes() == before
    # ... and the run resumes from it.
    p = run_cli("train", "--config", str(cfg6), "-o", str(out), "--resume")
    assert "step-00000003" in p.stdout


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, trained):
    import shutil
    out = tmp_path / "damaged"
    shutil.copytree(trained, out)
    newest = out / "checkpoints" / "step-00000012.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])  # truncated by some other tool
    cfg = write_config(tmp_path)
    p = run_cli("train", "--config", str(cfg), "-o", str(out), "--resume")
    assert "skipping" in p.stderr and "step-00000009" in p.stdout


def test_separate_a_real_file_at_its_rate_and_channels(tmp_path, trained):
    info = tse.audio.info(REAL_FILE)
    out = tmp_path / "speech.wav"
    p = run_cli("separate", REAL_FILE, "--query", "speech", "--checkpoint", str(trained / "model.safetensors"),
                "-o", str(out))
    assert "separated" in p.stdout
    y, sr = tse.audio.load(out)
    assert sr == info["sample_rate"] and y.shape == (info["channels"], info["frames"])
    assert np.isfinite(y.numpy()).all()
    # Stereo at 44.1 kHz in -> stereo at 44.1 kHz out.
    x, _ = tse.audio.load(REAL_FILE, sr=44100)
    stereo = tmp_path / "stereo.wav"
    tse.audio.save(stereo, tse.cat([x, x * 0.5], 0), 44100)
    run_cli("separate", str(stereo), "--query", "speech", "--checkpoint", str(trained / "model.safetensors"),
            "-o", str(tmp_path / "stereo-out.wav"))
    y, sr = tse.audio.load(tmp_path / "stereo-out.wav")
    assert sr == 44100 and y.shape == (2, x.shape[1])


def test_eval_reports_the_mean(trained):
    p = run_cli("eval", "--checkpoint", str(trained / "model.safetensors"), "--mixtures", "16", "--seconds", "0.5")
    assert "mean SI-SDRi:" in p.stdout and "all" in p.stdout


def test_separate_and_eval_with_bf16_gemms_stay_close_to_f32(tmp_path, trained):
    ckpt = str(trained / "model.safetensors")
    for flag, name in (([], "f32.wav"), (["--bf16"], "bf16.wav")):
        run_cli("separate", REAL_FILE, "--query", "speech", "--checkpoint", ckpt, "-o", str(tmp_path / name), *flag)
    f32, _ = tse.audio.load(tmp_path / "f32.wav")
    bf16, _ = tse.audio.load(tmp_path / "bf16.wav")
    a, b = f32.numpy().astype(np.float64), bf16.numpy().astype(np.float64)
    err = np.max(np.abs(a - b)) / np.max(np.abs(a))
    assert 0 < err <= 5e-2, err  # bf16 GEMM operands: close, not equal
    means = []
    for flag in ([], ["--bf16"]):
        p = run_cli("eval", "--checkpoint", ckpt, "--mixtures", "16", "--seconds", "0.5", *flag)
        means.append(float(p.stdout.split("mean SI-SDRi:")[1].split("dB")[0]))
    assert abs(means[0] - means[1]) <= 0.5, means


@pytest.mark.parametrize("case", ["empty", "nan", "unknown_label", "negative", "missing_ckpt", "corrupt_ckpt",
                                  "missing_input"])
def test_separate_bad_inputs_give_clear_errors(tmp_path, trained, case):
    ckpt = str(trained / "model.safetensors")
    src = REAL_FILE
    args = ["--query", "speech"]
    expect = ""
    if case == "empty":
        src = str(tmp_path / "empty.wav")
        _write_float_wav(src, np.zeros((1, 0), dtype=np.float32), 16000)  # a valid header, zero frames
        expect = "empty.wav"
    elif case == "nan":
        src = str(tmp_path / "nan.wav")
        a = np.zeros((1, 1600), dtype=np.float32)
        a[0, 10] = np.nan
        _write_float_wav(src, a, 16000)
        expect = "non-finite sample"
    elif case == "unknown_label":
        args = ["--query", "didgeridoo"]
        expect = "unknown label \"didgeridoo\""
    elif case == "negative":
        args = ["--query", "speech", "--negative", "cat"]
        expect = "does not support negative queries"
    elif case == "missing_ckpt":
        ckpt = str(tmp_path / "nope.safetensors")
        expect = "checkpoint not found"
    elif case == "corrupt_ckpt":
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes((trained / "model.safetensors").read_bytes()[:1000])
        ckpt = str(bad)
        expect = "bad.safetensors"
    elif case == "missing_input":
        src = str(tmp_path / "missing.wav")
        expect = "missing.wav"
    p = run_cli("separate", src, *args, "--checkpoint", ckpt, "-o", str(tmp_path / "o.wav"), check=False)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "error:" in p.stderr and expect in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def _write_float_wav(path, a, sr):
    """A float32 WAV written by hand (tse.audio.save rightly refuses NaN)."""
    import struct
    data = np.ascontiguousarray(a.T, dtype="<f4").tobytes()
    ch = a.shape[0]
    fmt = struct.pack("<HHIIHH", 3, ch, sr, sr * 4 * ch, 4 * ch, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("text,expect", [
    ("[model]\nnum_layer = 2\n", "unknown key \"num_layer\""),
    ("[train]\nlr = \"fast\"\n", "\"lr\" must be a number"),
    ("[train]\nbatch_size = 0\n", "batch_size must be positive"),
    ("[trian]\nlr = 1.0\n", "unknown key(s) trian"),
    ("[train\n", "not valid TOML"),
    ("[data]\ndataset = \"/nonexistent/manifest.csv\"\n", "manifest.csv"),
])
def test_train_bad_configs_give_clear_errors(tmp_path, text, expect):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    p = run_cli("train", "--config", str(cfg), "-o", str(tmp_path / "o"), check=False)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert expect in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_missing_config_file(tmp_path):
    p = run_cli("train", "--config", str(tmp_path / "none.toml"), check=False)
    assert p.returncode == 2 and "config file not found" in p.stderr


def test_demo_config_is_the_example_toml():
    from pathlib import Path
    from tse import cli
    toml = Path(__file__).resolve().parents[2] / "examples" / "configs" / "demo.toml"
    assert cli.load_toml(toml) == cli.demo_config()


def test_paper_config_builds_the_paper_model():
    from pathlib import Path
    from tse import cli
    cfg = cli.load_toml(Path(__file__).resolve().parents[2] / "examples" / "configs" / "conformer_tse_paper.toml")
    run = cli.build_run(cfg)
    assert run.model.num_parameters() == 32004353
    assert run.trainer.config["schedule"] == "warmup_hold_decay" and run.trainer.config["warmup_steps"] == 4000


def test_trainer_from_python(tmp_path):
    """The Trainer API: a dict config, a stopping callback, evaluation, export and reload."""
    from tse import cli
    cfg = cli.load_toml(write_config(tmp_path))
    run = cli.build_run(cfg, tmp_path / "py")
    seen = []
    result = run.trainer.fit(lambda s: seen.append(s.loss) or s.step < 4)
    assert run.trainer.step == 4 and len(seen) == 4 and all(np.isfinite(seen))
    assert len(result.si_sdri) == 16 and np.isfinite(result.mean)
    again = tse.train.evaluate(run.model, run.queries, run.labels, run.test, 8)
    assert np.allclose(again.si_sdri, result.si_sdri, atol=1e-4)
    run.trainer.export_model(tmp_path / "m.safetensors")
    loaded = tse.models.load_separator(tmp_path / "m.safetensors")
    assert loaded.queries.vocabulary == run.labels and loaded.metadata["trained_steps"] == "4"
    with pytest.raises(ValueError, match="unknown key \"max_step\""):
        tse.train.Trainer(run.model, run.queries, run.data, {"max_step": 3})
    with pytest.raises(ValueError, match="batch_size must be positive"):
        tse.train.Trainer(run.model, run.queries, run.data, batch_size=0)


# ---- CLAPSep from a TOML config -------------------------------------------------------------

TINY_CLAPSEP = """
[model]
type = "clapsep"
preset = "tiny"
n_masker_layer = 1

[data]
seed = 5
test_mixtures = 4

[data.options]
segment_samples = 16000

[train]
max_steps = 2
batch_size = 2
loss = "clapsep"
lr = 1e-3
schedule = "constant"
checkpoint_every = 1
log_every = 1
eval_batch_size = 4
progress = false
"""


@pytest.fixture(scope="module")
def clapsep_trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clapsep-cli")
    cfg = tmp / "clapsep.toml"
    cfg.write_text(TINY_CLAPSEP)
    p = run_cli("train", "--config", str(cfg), "-o", str(tmp / "run"))
    assert "mean SI-SDRi:" in p.stdout
    return tmp / "run"


def test_clapsep_trains_from_toml_and_separates_with_a_negative_query(tmp_path, clapsep_trained):
    model = clapsep_trained / "model.safetensors"
    loaded = tse.models.load_separator(model)
    assert loaded.metadata["model_type"] == "CLAPSep" and loaded.metadata["trained_steps"] == "2"
    assert loaded.model.config["n_masker_layer"] == 1 and loaded.model.config["encoder_embed_dim"] == 8
    outs = {}
    for name, extra in (("pos", []), ("pos_neg", ["--negative", "cat"])):
        out = tmp_path / f"{name}.wav"
        p = run_cli("separate", REAL_FILE, "--query", "speech", *extra, "--checkpoint", str(model), "-o", str(out))
        assert "separated" in p.stdout
        outs[name], sr = tse.audio.load(out)
        assert sr == tse.audio.info(REAL_FILE)["sample_rate"] and np.isfinite(outs[name].numpy()).all()
    # The negative side is part of the condition, so it changes the estimate.
    assert np.abs(outs["pos"].numpy() - outs["pos_neg"].numpy()).max() > 1e-6
    p = run_cli("eval", "--checkpoint", str(model), "--mixtures", "4", "--seconds", "0.5")
    assert "mean SI-SDRi:" in p.stdout


def test_clapsep_resume_continues_from_the_checkpoint(tmp_path, clapsep_trained):
    cfg = tmp_path / "clapsep.toml"
    cfg.write_text(TINY_CLAPSEP.replace("max_steps = 2", "max_steps = 3"))
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(clapsep_trained, run_dir)
    p = run_cli("train", "--config", str(cfg), "-o", str(run_dir), "--resume")
    assert "resuming from" in p.stdout and "step-00000002" in p.stdout
    assert tse.models.load_separator(run_dir / "model.safetensors").metadata["trained_steps"] == "3"


def test_clapsep_paper_config_builds_the_released_model():
    from pathlib import Path
    from tse import cli
    cfg = cli.load_toml(Path(__file__).resolve().parents[2] / "examples" / "configs" / "clapsep_paper.toml")
    cfg["data"]["test_mixtures"] = 2  # 200 mixtures of 10 s are not needed to check the build
    run = cli.build_run(cfg)
    assert isinstance(run.model, tse.models.CLAPSep)
    assert run.model.num_parameters(trainable_only=True) == 44359616
    assert run.queries.embedding_dim == 512 and run.model.query_dim == 1024
    tc = run.trainer.config
    assert (tc["loss"], tc["schedule"], tc["lr"], tc["grad_clip"], tc["negative_queries"]) == \
        ("clapsep", "plateau", 1e-4, 5.0, "clapsep")
    assert run.options.segment_samples == 320000 and run.options.snr_db_min == run.options.snr_db_max == 0.0


@pytest.mark.parametrize("model,extra,expect", [
    ('type = "clapsep"\npreset = "tiny"\nnum_layers = 2\n', "", "unknown key \"num_layers\""),
    ('type = "clapsep"\npreset = "huge"\n', "", "preset must be \"released\" or \"tiny\""),
    ('type = "clapsep"\nweights = "/nonexistent.safetensors"\n', "", "weights file not found"),
    ('type = "clapsep"\nweights = "x.safetensors"\nlora_rank = 4\n', "", "remove lora_rank"),
    ('type = "transformer"\n', "", "type must be one of conformer_tse, clapsep"),
    ('preset = "tiny"\n', "", "'preset' is a CLAPSep key"),
    ('type = "clapsep"\npreset = "tiny"\n', "[queries]\ndim = 1024\n", "[queries] dim (1024) must equal half"),
])
def test_clapsep_bad_model_tables_give_clear_errors(tmp_path, model, extra, expect):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[model]\n{model}{extra}[data]\ntest_mixtures = 2\n")
    p = run_cli("train", "--config", str(cfg), "-o", str(tmp_path / "o"), check=False)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert expect in p.stderr and "Traceback" not in p.stderr, p.stderr
