"""Spectrogram pictures without a plotting library: log-magnitude STFTs drawn as PNG images
(written with zlib from the standard library), several signals stacked top to bottom on one
colour scale, so a mixture, an estimate and a reference can be compared at a glance."""

import os
import struct
import zlib

import numpy as np

from . import _C

__all__ = ["spectrogram_db", "write_png", "save_spectrograms"]

# A perceptually ordered dark-blue -> green -> yellow ramp (anchor points, linearly interpolated).
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def spectrogram_db(wave, n_fft=1024, hop_length=256):
    """``wave`` (L,) -> (F, T) magnitude in dB (20 log10, floor 1e-5)."""
    x = _C.from_numpy(np.ascontiguousarray(np.asarray(wave, dtype=np.float32)))
    spec = _C.audio.stft(x, n_fft, hop_length=hop_length).numpy()
    mag = np.sqrt(spec[..., 0] ** 2 + spec[..., 1] ** 2)
    return 20.0 * np.log10(np.maximum(mag, 1e-5))


def _colour(v):
    """v in [0, 1] (H, W) -> (H, W, 3) uint8 on the ramp."""
    pos = np.clip(v, 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.minimum(pos.astype(np.int64), len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    return np.round(_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).astype(np.uint8)


def write_png(path, rgb):
    """Writes an (H, W, 3) uint8 image as an 8-bit RGB PNG (atomically: temp file + rename)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"write_png: expected an (H, W, 3) image, got shape {rgb.shape}")
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(h))  # filter type 0 per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_spectrograms(path, waves, n_fft=1024, hop_length=256, dynamic_range_db=80.0, gap=4, width=768):
    """Draws each wave's spectrogram (low frequencies at the bottom), stacked top to bottom in
    the given order, all on one dB scale (the loudest bin of all minus ``dynamic_range_db``),
    separated by ``gap`` white rows; time frames are widened to about ``width`` pixels."""
    specs = [spectrogram_db(w, n_fft, hop_length)[::-1] for w in waves]
    scale = max(1, round(width / max(s.shape[1] for s in specs)))
    top = max(float(s.max()) for s in specs)
    panels = []
    for i, s in enumerate(specs):
        img = _colour((s - (top - dynamic_range_db)) / dynamic_range_db)
        panels.append(np.repeat(img, scale, axis=1))
        if i + 1 < len(specs):
            panels.append(np.full((gap, panels[-1].shape[1], 3), 255, dtype=np.uint8))
    width = max(p.shape[1] for p in panels)
    panels = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in panels]
    write_png(path, np.concatenate(panels, axis=0))
