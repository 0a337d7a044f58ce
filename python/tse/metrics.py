"""Separation metrics and losses. Arguments are (estimate, reference[, mixture]); the names say
which definition is meant: ``snr`` (AudioSep's "SDR", CLAPSep's loss SNR), ``si_sdr``
(torchmetrics' defaults), ``sdr_bss`` (BSS-eval SDR with a 512-tap filter, CLAPSep's code)."""

from ._C.metrics import clapsep_loss, neg_si_sdr, sdr_bss, sdri_bss, si_sdr, si_sdri, snr, snri

__all__ = ["clapsep_loss", "neg_si_sdr", "sdr_bss", "sdri_bss", "si_sdr", "si_sdri", "snr", "snri"]
