"""The data pipeline (built-in sounds, on-the-fly mixing) and the Trainer (``tse::train``)."""

from . import _C

# ---- data pipeline (tse/train/data.hpp) ------------------------------------------------------
#
# The built-in dataset is real recordings from Debian packages (sound-icons, alsa-utils,
# sound-theme-freedesktop, oxygen-sounds) read where apt installs them; scripts/setup-deps
# installs them. 18 labels from file names (see the table in src/train/data.cpp):
#
#     >>> import tse
#     >>> train_bank, test_bank = tse.train.split_builtin(sample_rate=32000)
#     >>> sampler = tse.train.MixtureSampler(train_bank, tse.train.MixtureOptions(snr_db_min=-5), seed=0)
#     >>> b = sampler.batch(0, 16)          # a pure function of (seed, 0, 16)
#     >>> b.mixture.shape, b.target_label[:3]
#     >>> test = tse.train.make_test_mixtures(test_bank)   # 200 fixed mixtures at 0 dB

SoundClip = _C.train.SoundClip
SoundCatalog = _C.train.SoundCatalog
BankClip = _C.train.BankClip
ClipBank = _C.train.ClipBank
MixtureOptions = _C.train.MixtureOptions
MixtureBatch = _C.train.MixtureBatch
MixtureSampler = _C.train.MixtureSampler
TEST_MIXTURE_SEED = _C.train.TEST_MIXTURE_SEED
trim_silence = _C.train.trim_silence
split = _C.train.split
split_builtin = _C.train.split_builtin
make_test_mixtures = _C.train.make_test_mixtures

# ---- trainer (tse/train/trainer.hpp) ---------------------------------------------------------
#
# The Trainer runs the whole loop in C++ (data, forward, backward, clipping, update, schedule)
# with the GIL released; config keys are TrainerConfig's (unknown keys are errors):
#
#     >>> model = tse.models.ConformerTSE(num_layers=4, d_model=128, ffn_dim=512)
#     >>> queries = tse.models.LabelQueryEncoder(train_bank.labels)
#     >>> trainer = tse.train.Trainer(model, queries, sampler, {"max_steps": 2000, "output_dir": "run"})
#     >>> trainer.set_validation(test)
#     >>> result = trainer.fit()           # Ctrl-C stops between steps
#     >>> result.mean, result.class_mean   # SI-SDRi, dB
#     >>> trainer.resume("run")            # newest loadable checkpoint; continues bit-exactly

StepStats = _C.train.StepStats
EvalResult = _C.train.EvalResult
Trainer = _C.train.Trainer
evaluate = _C.train.evaluate

__all__ = [
    "SoundClip",
    "SoundCatalog",
    "BankClip",
    "ClipBank",
    "MixtureOptions",
    "MixtureBatch",
    "MixtureSampler",
    "TEST_MIXTURE_SEED",
    "trim_silence",
    "split",
    "split_builtin",
    "make_test_mixtures",
    "StepStats",
    "EvalResult",
    "Trainer",
    "evaluate",
]
