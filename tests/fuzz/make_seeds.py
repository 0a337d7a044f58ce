"""Writes a small seed corpus of valid safetensors files for fuzz_safetensors (into argv[1]).

Built from the format's definition with json + struct only (no libtse, no safetensors package),
so the seeds do not inherit a bug of the code under test."""

import json
import pathlib
import struct
import sys


def pack(entries, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


SEEDS = {
    "empty": pack([]),
    "one_f32": pack([("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))]),
    "metadata": pack([("b", "I64", [1], struct.pack("<q", -1))], {"format": "pt", "sr": "32000"}),
    "mixed": pack([
        ("a.weight", "F64", [1, 2], struct.pack("<2d", 0.5, -2)),
        ("a.bias", "BF16", [3], b"\x80\x3f" * 3),
        ("h", "F16", [], b"\x00\x3c"),
        ("mask", "BOOL", [2], b"\x01\x00"),
        ("empty", "I32", [0, 4], b""),
        ("q", "F8_E4M3", [2], b"\x38\x40"),
        ("nib", "F4", [4], b"\x12\x34"),
    ]),
    "unpadded": pack([("x", "U8", [3], b"abc")], pad=False),
}

if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in SEEDS.items():
        (out / f"seed_{name}.safetensors").write_bytes(blob)
