"""``python -m tse``: the command line.

    python -m tse demo [-o DIR]                 train a small ConformerTSE on the built-in sounds,
                                                evaluate it, separate one held-out mixture
    python -m tse train --config FILE.toml      train from a TOML config (resumes when asked)
    python -m tse separate IN.wav --query LABEL [--checkpoint PATH] -o OUT.wav
    python -m tse eval --checkpoint PATH        SI-SDRi on the built-in held-out mixtures
    python -m tse convert IN OUT.safetensors [--clap CLAP.pt] [--merge-lora] [--dtype float32]
                                                an official CLAPSep checkpoint -> a libtse model file

A TOML config has four tables, each mapped onto the C++ config of the same part (unknown keys
are errors naming the key): ``[model]`` (``type = "conformer_tse"``, the default: ConformerTSEConfig;
``type = "clapsep"``: CLAPSepConfig, see ``model_from_config``), ``[data]`` (the dataset and
MixtureOptions), ``[queries]`` (the label query encoder) and ``[train]`` (TrainerConfig).
Keys a config leaves out take the demo's values (``demo_config()``,
``examples/configs/demo.toml``); a CLAPSep model takes no ConformerTSE defaults.
"""

import argparse
import copy
import os
import sys
import time

from . import _C, amp

__all__ = ["main", "demo_config", "build_run", "load_toml", "model_from_config"]

MODEL_TYPES = ("conformer_tse", "clapsep")

DEFAULT_DEMO_DIR = "tse-demo"


def demo_config():
    """The demo's configuration: a 4-layer, 128-wide ConformerTSE (the paper's architecture,
    smaller) trained on 1 s mixtures of the built-in sounds at 32 kHz."""
    return {
        "model": {"num_layers": 4, "d_model": 128, "num_heads": 4, "ffn_dim": 512, "conv_kernel": 33,
                  "sample_rate": 32000, "n_fft": 1024, "hop_length": 512},
        "data": {"dataset": "builtin", "seed": 0, "test_mixtures": 200, "test_snr_db": 0.0,
                 "options": {"segment_samples": 32000, "snr_db_min": -5.0, "snr_db_max": 5.0,
                             "loop_probability": 0.8}},
        "queries": {"dim": 512, "seed": 0},
        "train": {"max_steps": 2000, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-2,
                  "schedule": "cosine", "warmup_steps": 100, "min_lr": 1e-5, "grad_clip": 5.0,
                  "eval_every": 0, "checkpoint_every": 500, "keep_last": 2, "log_every": 20, "seed": 0},
    }


def load_toml(path):
    import tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None


def _merge(base, override):
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _check_keys(table, where, known):
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"config [{where}]: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")


def model_from_config(table):
    """The ``[model]`` table -> a fresh model.

    ``type = "conformer_tse"`` (the default): the other keys are ConformerTSEConfig fields.
    ``type = "clapsep"``: ``preset = "released"`` (the default, the paper's model) or ``"tiny"``,
    the other keys CLAPSepConfig fields overriding the preset; or ``weights = "FILE"`` (a libtse
    CLAPSep file, e.g. from ``python -m tse convert``) to fine-tune it, its config then coming
    from the file (no other keys)."""
    from . import models
    table = dict(table)
    kind = table.pop("type", "conformer_tse")
    if kind not in MODEL_TYPES:
        raise ValueError(f"config [model]: type must be one of {', '.join(MODEL_TYPES)}, got {kind!r}")
    if kind == "conformer_tse":
        for key in ("preset", "weights"):
            if key in table:
                raise ValueError(f"config [model]: {key!r} is a CLAPSep key (set type = \"clapsep\")")
        return models.ConformerTSE(table)
    weights = table.pop("weights", None)
    if weights is not None:
        if table:
            raise ValueError(f"config [model]: with weights the config comes from the file; remove "
                             f"{', '.join(sorted(table))}")
        if not os.path.exists(weights):
            raise ValueError(f"config [model]: weights file not found: {weights}")
        model = models.CLAPSep.load(weights)
        model.freeze_for_finetuning()
        return model
    preset = table.pop("preset", "released")
    if preset not in ("released", "tiny"):
        raise ValueError(f"config [model]: preset must be \"released\" or \"tiny\", got {preset!r}")
    return models.CLAPSep(preset, **table)


def _model_table(config):
    """The [model] table with the demo's ConformerTSE defaults only for a ConformerTSE."""
    table = config.get("model", {})
    if table.get("type", "conformer_tse") == "conformer_tse":
        return _merge(demo_config()["model"], table)
    return dict(table)


class Run:
    """Everything a training run is made of, built from a config dict."""

    def __init__(self, config, output_dir=None):
        from . import models, train
        _check_keys(config, "top level", ("model", "data", "queries", "train"))
        cfg = _merge(demo_config(), {k: v for k, v in config.items() if k != "model"})
        cfg["model"] = _model_table(config)
        data_cfg = cfg["data"]
        _check_keys(data_cfg, "data", ("dataset", "root", "seed", "test_mixtures", "test_snr_db", "options"))
        self.config = cfg
        self.model = model_from_config(cfg["model"])
        sr = self.model.sample_rate
        dataset = data_cfg.get("dataset", "builtin")
        if dataset == "builtin":
            catalog = train.SoundCatalog.builtin(data_cfg.get("root", "/usr/share/sounds"))
        else:
            catalog = train.SoundCatalog.from_csv(dataset)
        self.catalog = catalog
        self.train_bank, self.test_bank = train.split(catalog, sample_rate=sr)
        options = dict(data_cfg.get("options", {}))
        options.setdefault("sample_rate", sr)
        try:
            self.options = train.MixtureOptions(**options)
        except TypeError as e:  # an unknown keyword
            raise ValueError(f"config [data.options]: {e}") from None
        self.data = train.MixtureSampler(self.train_bank, self.options, int(data_cfg.get("seed", 0)))
        self.test = train.make_test_mixtures(self.test_bank, int(data_cfg.get("test_mixtures", 200)),
                                             float(data_cfg.get("test_snr_db", 0.0)),
                                             int(self.options.segment_samples))
        q = cfg["queries"]
        _check_keys(q, "queries", ("dim", "seed"))
        # A model with negative queries takes concat(positive, negative): two embeddings.
        embedding_dim = self.model.query_dim // (2 if self.model.supports_negative_queries else 1)
        dim = int(config.get("queries", {}).get("dim", embedding_dim))  # the demo's 512 is no default here
        if dim != embedding_dim:
            what = "half the model's query_dim (positive and negative side by side)" \
                if self.model.supports_negative_queries else "[model] query_dim"
            raise ValueError(f"config: [queries] dim ({dim}) must equal {what}: {embedding_dim}")
        self.labels = list(self.train_bank.labels)
        self.queries = models.LabelQueryEncoder(self.labels, dim, int(q.get("seed", 0)))
        tcfg = dict(cfg["train"])
        if output_dir is not None:
            tcfg["output_dir"] = os.fspath(output_dir)
        self.trainer = train.Trainer(self.model, self.queries, self.data, tcfg)
        self.trainer.set_validation(self.test)


def build_run(config, output_dir=None):
    return Run(config, output_dir)


def format_eval(result):
    """The per-class table of an EvalResult, then the overall mean and median."""
    lines = [f"{'class':<16}{'mixtures':>9}{'mean SI-SDRi':>14}{'median':>9}"]
    for name, n, mean, med in zip(result.labels, result.class_count, result.class_mean, result.class_median):
        if n:
            lines.append(f"{name:<16}{n:>9}{mean:>11.2f} dB{med:>6.2f} dB")
    lines.append(f"{'all':<16}{len(result.si_sdri):>9}{result.mean:>11.2f} dB{result.median:>6.2f} dB")
    return "\n".join(lines)


def ideal_ratio_mask_si_sdri(mixtures, n_fft, hop_length):
    """Mean SI-SDRi of the oracle ideal ratio mask sqrt(|S|^2 / (|S|^2 + |N|^2))
    applied to the mixture STFT (mixture phase): the ceiling of a magnitude mask on these mixtures."""
    import numpy as np
    from . import audio, metrics
    S = audio.stft(mixtures.target, n_fft, hop_length=hop_length).numpy()
    N = audio.stft(mixtures.interference, n_fft, hop_length=hop_length).numpy()
    X = audio.stft(mixtures.mixture, n_fft, hop_length=hop_length).numpy()
    ps, pn = (S ** 2).sum(-1), (N ** 2).sum(-1)
    mask = np.sqrt(ps / np.maximum(ps + pn, 1e-20))[..., None]
    est = audio.istft(_C.tensor((X * mask).astype(np.float32)), n_fft, hop_length=hop_length,
                      length=mixtures.mixture.shape[-1])
    return float(metrics.si_sdri(est, mixtures.target, mixtures.mixture).numpy().mean())


def _fit(run):
    start = time.perf_counter()
    first = run.trainer.step
    result = run.trainer.fit()
    seconds = time.perf_counter() - start
    steps = run.trainer.step - first
    rate = steps * run.trainer.config["batch_size"] / seconds if seconds > 0 and steps else float("nan")
    return result, steps, seconds, rate


def cmd_demo(args):
    from . import audio, plot
    import numpy as np
    if args.threads:
        _C.set_num_threads(args.threads)
    out = os.path.abspath(args.output)
    os.makedirs(out, exist_ok=True)
    cfg = demo_config()
    if args.steps is not None:
        cfg["train"]["max_steps"] = args.steps
    run = build_run(cfg, out)
    if not args.resume and os.path.isdir(os.path.join(out, "checkpoints")):
        import shutil
        shutil.rmtree(os.path.join(out, "checkpoints"))
    if args.resume and run.trainer.latest_checkpoint(out):
        print(f"resuming from {run.trainer.resume(out)}")
    m = cfg["model"]
    print(f"demo: ConformerTSE {m['num_layers']} layers x {m['d_model']}, {m['num_heads']} heads, FFN {m['ffn_dim']}, "
          f"kernel {m['conv_kernel']} ({run.model.num_parameters():,} parameters), STFT {m['n_fft']}/{m['hop_length']} "
          f"at {m['sample_rate']} Hz")
    print(f"data: {len(run.labels)} classes of built-in sounds, {run.train_bank.size} training clips, "
          f"{run.test_bank.size} held-out; {len(run.test.target_label)} held-out mixtures at "
          f"{cfg['data']['test_snr_db']:g} dB; {_C.get_num_threads()} threads")
    print(f"training {cfg['train']['max_steps']} steps of {cfg['train']['batch_size']} mixtures "
          f"({cfg['data']['options']['segment_samples'] / m['sample_rate']:g} s each)")
    result, steps, seconds, rate = _fit(run)
    run.trainer.export_model(os.path.join(out, "model.safetensors"))
    print(format_eval(result))
    irm = ideal_ratio_mask_si_sdri(run.test, m["n_fft"], m["hop_length"])
    print(f"(the ideal ratio mask on the same mixtures: {irm:.2f} dB)")
    print(f"training speed: {rate:.1f} mixtures/s ({steps} steps in {seconds:.0f} s)")
    print(f"mean SI-SDRi: {result.mean:.2f} dB")

    # One held-out mixture, separated by its query.
    i = 0
    label = run.labels[run.test.target_label[i]]
    mixture = run.test.mixture[i]
    reference = run.test.target[i]
    estimate = run.model.separate(mixture, run.queries.encode_text(label))
    sr = run.model.sample_rate
    for name, wave in (("mixture", mixture), ("estimate", estimate), ("reference", reference)):
        audio.save(os.path.join(out, f"{name}.wav"), wave, sr)
    plot.save_spectrograms(os.path.join(out, "spectrogram.png"),
                           [np.asarray(w.detach().numpy()) for w in (mixture, estimate, reference)])
    print(f"separated held-out mixture 0 by the query \"{label}\" "
          f"(SI-SDRi {result.si_sdri[i]:.2f} dB); wrote mixture.wav, estimate.wav, reference.wav and "
          f"spectrogram.png (mixture, estimate, reference) to {out}")
    return 0


def cmd_train(args):
    if args.threads:
        _C.set_num_threads(args.threads)
    cfg = load_toml(args.config)
    out = args.output or cfg.get("train", {}).get("output_dir") or os.path.splitext(os.path.basename(args.config))[0]
    run = build_run(cfg, out)
    if args.resume:
        latest = run.trainer.latest_checkpoint(out)
        if latest:
            print(f"resuming from {run.trainer.resume(out)}")
        else:
            print(f"no checkpoint in {out}/checkpoints: starting from step 0")
    result, steps, seconds, rate = _fit(run)
    run.trainer.export_model(os.path.join(out, "model.safetensors"))
    print(format_eval(result))
    print(f"training speed: {rate:.1f} mixtures/s ({steps} steps in {seconds:.0f} s)")
    print(f"mean SI-SDRi: {result.mean:.2f} dB")
    print(f"model: {os.path.join(out, 'model.safetensors')}")
    return 0


def _load_checkpoint(path):
    from . import models
    if path is None:
        path = os.path.join(DEFAULT_DEMO_DIR, "model.safetensors")
        if not os.path.exists(path):
            raise ValueError(f"no --checkpoint given and no demo model at {path}: run `python -m tse demo` "
                             "first or pass --checkpoint PATH")
    if not os.path.exists(path):
        raise ValueError(f"checkpoint not found: {path}")
    loaded = models.load_separator(path)
    if loaded.queries is None:
        raise ValueError(f"{path} names no query encoder, so it cannot take a --query")
    return loaded


def cmd_separate(args):
    from . import audio
    loaded = _load_checkpoint(args.checkpoint)
    if args.negative is not None and not loaded.model.supports_negative_queries:
        raise ValueError(f"--negative: this {loaded.metadata.get('model_type', 'model')} does not support negative "
                         "queries (CLAPSep does)")
    x, sr = audio.load(args.input)
    query = loaded.queries.encode_text(args.query)
    if loaded.model.supports_negative_queries:  # CLAPSep: concat(positive, negative), zeros for no --negative
        negative = loaded.queries.encode_text(args.negative) if args.negative is not None else None
        query = loaded.model.condition(query, negative)
    with amp.autocast(enabled=args.bf16):
        y = _C.models.separate_waveform(loaded.model, x, sr, query)
    clipped = audio.save(args.output, y, sr, args.subtype)
    print(f"separated \"{args.query}\" from {args.input} ({x.shape[0]} ch, {sr} Hz, {x.shape[1] / sr:.2f} s) "
          f"-> {args.output}" + (f" ({clipped} samples clipped)" if clipped else ""))
    return 0


def cmd_eval(args):
    from . import train
    if args.threads:
        _C.set_num_threads(args.threads)
    loaded = _load_checkpoint(args.checkpoint)
    catalog = train.SoundCatalog.builtin(args.root)
    _, test_bank = train.split(catalog, sample_rate=loaded.model.sample_rate)
    labels = list(test_bank.labels)
    known = getattr(loaded.queries, "vocabulary", labels)
    missing = [l for l in labels if l not in known]
    if missing:
        raise ValueError(f"{args.checkpoint} was not trained on the built-in labels (missing: {', '.join(missing)})")
    test = train.make_test_mixtures(test_bank, args.mixtures, args.snr, int(loaded.model.sample_rate * args.seconds))
    with amp.autocast(enabled=args.bf16):
        result = train.evaluate(loaded.model, loaded.queries, labels, test, args.batch_size)
    print(format_eval(result))
    print(f"mean SI-SDRi: {result.mean:.2f} dB")
    return 0


def cmd_convert(args):
    from . import convert
    result = convert.convert(args.input, args.output, clap=args.clap, merge_lora=args.merge_lora, dtype=args.dtype)
    print(result.summary)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tse", description="libtse: query-conditioned target sound extraction")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a small ConformerTSE on the built-in sounds and separate with it")
    d.add_argument("-o", "--output", default=DEFAULT_DEMO_DIR, help="output folder (default: %(default)s)")
    d.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's 2000)")
    d.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    d.add_argument("--resume", action="store_true", help="continue from the output folder's last checkpoint")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train from a TOML config")
    t.add_argument("--config", required=True, help="TOML file with [model], [data], [queries], [train]")
    t.add_argument("-o", "--output", default=None, help="output folder (default: [train] output_dir or the config name)")
    t.add_argument("--resume", action="store_true", help="continue from the output folder's newest checkpoint")
    t.add_argument("--threads", type=int, default=0)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("separate", help="extract the queried sound from an audio file")
    s.add_argument("input", help="audio file (any rate and channel count)")
    s.add_argument("--query", required=True, help="what to extract (a label the model knows)")
    s.add_argument("--negative", default=None, help="what to remove (models with negative queries only)")
    s.add_argument("--checkpoint", default=None, help=f"model file (default: {DEFAULT_DEMO_DIR}/model.safetensors)")
    s.add_argument("-o", "--output", required=True, help="output audio file (written at the input's rate)")
    s.add_argument("--subtype", default="", help="output sample format, e.g. FLOAT, PCM_16 (default: FLOAT for WAV)")
    s.add_argument("--bf16", action="store_true", help="bf16 GEMMs (tse.autocast): about 1.5x faster with AVX512_BF16")
    s.set_defaults(func=cmd_separate)

    e = sub.add_parser("eval", help="SI-SDRi of a model on the built-in held-out mixtures")
    e.add_argument("--checkpoint", default=None)
    e.add_argument("--root", default="/usr/share/sounds")
    e.add_argument("--mixtures", type=int, default=200)
    e.add_argument("--snr", type=float, default=0.0)
    e.add_argument("--seconds", type=float, default=1.0, help="mixture length")
    e.add_argument("--batch-size", type=int, default=20)
    e.add_argument("--threads", type=int, default=0)
    e.add_argument("--bf16", action="store_true", help="bf16 GEMMs (tse.autocast)")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("convert", help="convert an official CLAPSep checkpoint (.ckpt/.pt/.safetensors) "
                       "to a libtse model file")
    c.add_argument("input", help="CLAPSep checkpoint: a Lightning .ckpt, a flat .pt/.ckpt (best_model.ckpt) "
                   "or .safetensors")
    c.add_argument("output", help="the libtse model file to write (.safetensors)")
    c.add_argument("--clap", default=None, help="LAION CLAP .pt whose audio_branch.* fills the encoder weights "
                   "the input lacks (needed for the released best_model.ckpt)")
    c.add_argument("--merge-lora", action="store_true",
                   help="fold the encoder's LoRA into its weights (W + (alpha/r) B A)")
    c.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="stored dtype (default: %(default)s)")
    c.set_defaults(func=cmd_convert)

    args = p.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, OSError, NotImplementedError) as e:
        print(f"python -m tse {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"python -m tse {args.command}: interrupted", file=sys.stderr)
        return 130
