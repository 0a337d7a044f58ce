#!/usr/bin/env python3
"""libtse against PyTorch on the same work, when a PyTorch is around (a speed peer only, never a
test dependency). PyTorch runs in a subprocess of the interpreter that has it (Debian's
python3-torch under /usr/bin/python3 by default; TSE_TORCH_PYTHON overrides), so the two never
share a process or a thread pool. Both sides time float32 work on the same shapes, with the same
thread count, medians of repeated calls; ratio = torch time / libtse time (> 1: libtse faster).

    python3 benchmarks/bench_torch.py --threads 1,2
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import tse
import tse.audio as A
import tse.nn.functional as F

SECONDS = 10
SR = 32000
N_FFT, HOP = 1024, 320

# name: the shape it runs at (ours() below and case() in TORCH_SIDE build the same work).
CASES = {
    "stft_istft.b1": "[1, 320000] n_fft 1024 hop 320, round trip",
    "stft_istft.b8": "[8, 320000] n_fft 1024 hop 320, round trip",
    "conv1d.depthwise_k33": "[1, 256, 626] k 33 groups 256",
    "softmax.masknet": "[8, 1001, 1001] dim -1",
    "layer_norm.swin": "[4096, 128]",
}
# No GEMM rows: Debian's torch 1.13 multiplies through a slow BLAS path here (about 2 GFLOP/s at
# the MaskNet's 1001x640x2560), so GEMMs are compared with raw oneDNN in tse-bench instead.

TORCH_SIDE = r"""
import json, statistics, sys, time
import torch
names, threads, repeats = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
def rnd(*s):
    return torch.rand(*s, generator=g) * 2 - 1
def case(name):
    if name.startswith("stft_istft"):
        b = int(name.split(".b")[1]); x = rnd(b, 320000); w = torch.hann_window(1024)
        return lambda: torch.istft(torch.stft(x, 1024, 320, window=w, center=True, pad_mode="reflect",
                                              return_complex=True), 1024, 320, window=w, length=320000)
    if name == "conv1d.depthwise_k33":
        x, k = rnd(1, 256, 626), rnd(256, 1, 33)
        return lambda: torch.nn.functional.conv1d(x, k, padding=16, groups=256)
    if name == "softmax.masknet":
        x = rnd(8, 1001, 1001); return lambda: torch.softmax(x, -1)
    if name == "layer_norm.swin":
        x, w, b = rnd(4096, 128), rnd(128), rnd(128)
        return lambda: torch.nn.functional.layer_norm(x, (128,), w, b)
    raise KeyError(name)
out = {}
with torch.no_grad():
    for n in names:
        f = case(n); f()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter(); f(); samples.append(time.perf_counter() - t0)
        out[n] = statistics.median(samples)
print(json.dumps(out))
"""


def ours(name):
    rng = np.random.default_rng(0)

    def rnd(*s):
        return tse.from_numpy(rng.uniform(-1, 1, size=s).astype(np.float32))

    if name.startswith("stft_istft"):
        x = rnd(int(name.split(".b")[1]), SECONDS * SR)
        return lambda: A.istft(A.stft(x, N_FFT, hop_length=HOP), N_FFT, hop_length=HOP, length=SECONDS * SR)
    if name == "conv1d.depthwise_k33":
        x, k = rnd(1, 256, 626), rnd(256, 1, 33)
        return lambda: F.conv1d(x, k, padding=16, groups=256)
    if name == "softmax.masknet":
        x = rnd(8, 1001, 1001)
        return lambda: F.softmax(x, -1)
    if name == "layer_norm.swin":
        x, w, b = rnd(4096, 128), rnd(128), rnd(128)
        return lambda: F.layer_norm(x, (128,), w, b)
    raise KeyError(name)


def time_ours(name, repeats):
    f = ours(name)
    with tse.no_grad():
        f()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f()
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1", help="comma-separated thread counts")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--filter", action="append", default=[])
    args = p.parse_args()
    torch_python = os.environ.get("TSE_TORCH_PYTHON", "/usr/bin/python3")
    env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX")  # Debian's OpenBLAS mis-detects this CPU
    if not shutil.which(torch_python) or subprocess.run([torch_python, "-c", "import torch"], env=env,
                                                        capture_output=True).returncode != 0:
        print(f"bench_torch: no PyTorch under {torch_python}; nothing to compare (apt-get install python3-torch)")
        return 0
    names = [n for n in CASES if not args.filter or any(f in n for f in args.filter)]
    print(f"{'case':24} {'shape':44} {'thr':>3} {'tse ms':>9} {'torch ms':>9} {'ratio':>6}")
    for threads in [int(t) for t in args.threads.split(",")]:
        tse.set_num_threads(threads)
        peer = json.loads(subprocess.run([torch_python, "-c", TORCH_SIDE, ",".join(names), str(threads),
                                          str(args.repeats)], env=env, capture_output=True, text=True,
                                         check=True).stdout)
        for n in names:
            t_ours = time_ours(n, args.repeats)
            print(f"{n:24} {CASES[n]:44} {threads:3d} {t_ours * 1e3:9.3f} {peer[n] * 1e3:9.3f} "
                  f"{peer[n] / t_ours:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
