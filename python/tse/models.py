"""The models: ``ConformerTSE`` (Saijo et al.'s Conformer-FiLM extractor, ESPnet parameter names),
``CLAPSep`` (Ma et al.: LoRA-tuned HTSAT encoder, FiLM Swin U-Net decoder, MaskNet; official
parameter names), ``HTSAT`` / ``CLAPAudioEncoder`` (CLAP's audio branch and 512-d embedding), and
the query encoders (``LabelQueryEncoder`` until the CLAP text encoder lands).
``load_separator(path)`` rebuilds a saved model with its query encoder; ``separate_waveform`` runs
a model on user audio at any rate and channel count.

``tse.models.ConformerTSE()`` builds the paper size (16 x 256, 4 heads, FFN 1024, kernel 33,
query 512: 32,004,353 parameters); keyword arguments override the config, e.g.
``ConformerTSE(num_layers=4, d_model=128)``. ``tse.models.CLAPSep()`` is the released size
(``CLAPSep("tiny")`` the golden test config); ``model.separate(mixture, positive=e_pos,
negative=e_neg)`` takes 32 kHz audio of any length (10 s windows, overlap-added, ``progress=True``
for a bar).
"""

from ._C.models import (
    HTSAT,
    CLAPAudioEncoder,
    CLAPSep,
    CLAPSepDecoder,
    ConformerTSE,
    LabelQueryEncoder,
    LoadedSeparator,
    QueryEncoder,
    Separator,
    load_separator,
    separate_chunked,
    separate_waveform,
)

__all__ = ["CLAPAudioEncoder", "CLAPSep", "CLAPSepDecoder", "ConformerTSE", "HTSAT", "LabelQueryEncoder", "LoadedSeparator", "QueryEncoder", "Separator", "load_separator",
           "separate_chunked", "separate_waveform"]
