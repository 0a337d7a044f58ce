"""The models: ``ConformerTSE`` (Saijo et al.'s Conformer-FiLM extractor, ESPnet parameter names)
and the query encoders (``LabelQueryEncoder`` until the CLAP encoders land).
``load_separator(path)`` rebuilds a saved model with its query encoder; ``separate_waveform`` runs
a model on user audio at any rate and channel count.

``tse.models.ConformerTSE()`` builds the paper size (16 x 256, 4 heads, FFN 1024, kernel 33,
query 512: 32,004,353 parameters); keyword arguments override the config, e.g.
``ConformerTSE(num_layers=4, d_model=128)``.
"""

from ._C.models import (
    ConformerTSE,
    LabelQueryEncoder,
    LoadedSeparator,
    QueryEncoder,
    Separator,
    load_separator,
    separate_waveform,
)

__all__ = ["ConformerTSE", "LabelQueryEncoder", "LoadedSeparator", "QueryEncoder", "Separator", "load_separator",
           "separate_waveform"]
