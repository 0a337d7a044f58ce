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
    "adamw.conformer_tse": "ConformerTSE's ~32M f32 params, one step",
}
# The whole ConformerTSE at the paper size (opt in with --models: seconds per call on this CPU).
MODEL_CASES = {
    "conformer_tse.fwd_b1": "[1, 320000] paper size, forward (no grad)",
    "conformer_tse.fwd_bwd_b1": "[1, 320000] paper size, forward + backward",
    "train_step.demo_b16": "[16, 32000] the demo's 4 x 128 model: fwd, -SI-SDR, bwd, clip, AdamW",
    "train_step.paper_b4": "[4, 32000] paper size: fwd, -SI-SDR, bwd, clip, AdamW",
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
import math
nn = torch.nn
class RelMHA(nn.Module):  # ESPnet's RelPositionMultiHeadedAttention, written from MODELS.md B s.2.3
    def __init__(s, H, D):
        super().__init__(); s.H, s.dk = H, D // H
        s.linear_q, s.linear_k, s.linear_v, s.linear_out = (nn.Linear(D, D) for _ in range(4))
        s.linear_pos = nn.Linear(D, D, bias=False)
        s.pos_bias_u = nn.Parameter(torch.randn(H, s.dk) * 0.1); s.pos_bias_v = nn.Parameter(torch.randn(H, s.dk) * 0.1)
    def forward(s, x, pos):
        B, T, D = x.shape
        q = s.linear_q(x).view(B, T, s.H, s.dk)
        k = s.linear_k(x).view(B, T, s.H, s.dk).transpose(1, 2)
        v = s.linear_v(x).view(B, T, s.H, s.dk).transpose(1, 2)
        p = s.linear_pos(pos).view(1, -1, s.H, s.dk).transpose(1, 2)
        ac = (q + s.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        bd = (q + s.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1)
        P = bd.size(-1)  # rel_shift: pad a zero column, fold, drop the first row, keep T columns
        bd = torch.cat([bd.new_zeros(B, s.H, T, 1), bd], -1).view(B, s.H, P + 1, T)[:, :, 1:].reshape(B, s.H, T, P)[..., :T]
        a = torch.softmax((ac + bd) / math.sqrt(s.dk), -1)
        return s.linear_out((a @ v).transpose(1, 2).reshape(B, T, D))
class FF(nn.Module):
    def __init__(s, D, Fh): super().__init__(); s.w_1, s.w_2 = nn.Linear(D, Fh), nn.Linear(Fh, D)
    def forward(s, x): return s.w_2(torch.nn.functional.silu(s.w_1(x)))
class ConvModule(nn.Module):
    def __init__(s, D, K):
        super().__init__(); s.pw1 = nn.Conv1d(D, 2 * D, 1); s.dw = nn.Conv1d(D, D, K, padding=K // 2, groups=D)
        s.norm = nn.GroupNorm(8, D); s.pw2 = nn.Conv1d(D, D, 1)
    def forward(s, x):
        y = torch.nn.functional.glu(s.pw1(x.transpose(1, 2)), dim=1)
        return s.pw2(torch.nn.functional.silu(s.norm(s.dw(y)))).transpose(1, 2)
class Layer(nn.Module):
    def __init__(s, D, H, Fh, K):
        super().__init__(); s.att = RelMHA(H, D); s.ff1, s.ff2 = FF(D, Fh), FF(D, Fh); s.conv = ConvModule(D, K)
        s.n = nn.ModuleList(nn.LayerNorm(D, eps=1e-12) for _ in range(5))
    def forward(s, x, pos):
        x = x + 0.5 * s.ff1(s.n[0](x)); h = s.n[1](x); x = x + s.att(h, pos)
        x = x + s.conv(s.n[2](x)); x = x + 0.5 * s.ff2(s.n[3](x)); return s.n[4](x)
class Cond(nn.Module):
    def __init__(s, D, Q):
        super().__init__(); s.l1, s.l2, s.g, s.b = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(Q, D), nn.Linear(Q, D)
    def forward(s, h, q):
        z = torch.nn.functional.silu(s.l1(h)); return h + s.l2(s.g(q)[:, None] * z + s.b(q)[:, None])
class ConformerTSE(nn.Module):  # MODELS.md B s.2: 16 x 256, 4 heads, FFN 1024, kernel 33, query 512
    def __init__(s, L=16, D=256, H=4, Fh=1024, K=33, Q=512, F=513):
        super().__init__(); s.D = D; s.embed = nn.Sequential(nn.Linear(F, D), nn.LayerNorm(D))
        s.layers = nn.ModuleList(Layer(D, H, Fh, K) for _ in range(L)); s.conds = nn.ModuleList(Cond(D, Q) for _ in range(L))
        s.after_norm = nn.LayerNorm(D, eps=1e-12); s.head = nn.Linear(D, F); s.win = torch.hann_window(1024)
    def forward(s, mix, q):
        X = torch.stft(mix, 1024, 512, window=s.win, center=True, pad_mode="reflect", return_complex=True)
        T = X.size(-1); r = torch.arange(T - 1, -T, -1.0)[:, None]; w = 10000 ** (-torch.arange(0, s.D, 2.0) / s.D)
        pos = torch.stack([torch.sin(r * w), torch.cos(r * w)], -1).reshape(1, 2 * T - 1, s.D)
        x = s.embed(X.abs().transpose(1, 2)) * math.sqrt(s.D)
        for c, l in zip(s.conds, s.layers): x = l(c(x, q), pos)
        m = torch.sigmoid(s.head(s.after_norm(x))).transpose(1, 2)
        return torch.istft(X * m, 1024, 512, window=s.win, length=mix.size(-1))
def case(name):
    if name == "adamw.conformer_tse":  # torch's multi-tensor (foreach) AdamW
        ps = list(ConformerTSE().parameters())
        for p in ps: p.grad = rnd(*p.shape)
        return torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2, foreach=True).step
    if name.startswith("train_step"):
        demo = name.endswith("demo_b16"); B = 16 if demo else 4
        model = ConformerTSE(L=4, D=128, Fh=512) if demo else ConformerTSE()
        mix, tgt, q = rnd(B, 32000), rnd(B, 32000), rnd(B, 512)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2, foreach=True)
        def step():
            with torch.enable_grad():
                opt.zero_grad(); est = model(mix, q)
                s_ = (est * tgt).sum(-1, keepdim=True) / (tgt * tgt).sum(-1, keepdim=True) * tgt
                loss = -(10 * torch.log10((s_ * s_).sum(-1) / ((est - s_) ** 2).sum(-1))).mean()
                loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0); opt.step()
        return step
    if name.startswith("conformer_tse"):
        model = ConformerTSE(); mix, q = rnd(1, 320000), rnd(1, 512)
        if name.endswith("fwd_bwd_b1"):
            def step():
                with torch.enable_grad():
                    model.zero_grad(); (model(mix, q) * mix).mean().backward()
            return step
        return lambda: model(mix, q)
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
    if name == "adamw.conformer_tse":
        ps = tse.models.ConformerTSE().parameters()
        for p in ps:
            p.grad = rnd(*p.shape)
        return tse.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2).step
    if name.startswith("train_step"):
        demo = name.endswith("demo_b16")
        B = 16 if demo else 4
        model = (tse.models.ConformerTSE(num_layers=4, d_model=128, ffn_dim=512) if demo
                 else tse.models.ConformerTSE())
        mix, tgt, q = rnd(B, 32000), rnd(B, 32000), rnd(B, 512)
        params = model.parameters()
        opt = tse.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
        loss_fn = tse.nn.NegSISDR()

        def step():
            with tse.enable_grad():
                opt.zero_grad()
                loss_fn(model(mix, q), tgt).backward()
                tse.optim.clip_grad_norm_(params, 5.0)
                opt.step()
        return step
    if name.startswith("conformer_tse"):
        model, mix, q = tse.models.ConformerTSE(), rnd(1, SECONDS * SR), rnd(1, 512)
        if name.endswith("fwd_bwd_b1"):
            def step():
                with tse.enable_grad():
                    model.zero_grad()
                    (model(mix, q) * mix).mean().backward()
            return step
        return lambda: model(mix, q)
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
    p.add_argument("--models", action="store_true", help="also the whole ConformerTSE (slow: seconds per call)")
    args = p.parse_args()
    torch_python = os.environ.get("TSE_TORCH_PYTHON", "/usr/bin/python3")
    env = dict(os.environ, OPENBLAS_CORETYPE="SkylakeX")  # Debian's OpenBLAS mis-detects this CPU
    if not shutil.which(torch_python) or subprocess.run([torch_python, "-c", "import torch"], env=env,
                                                        capture_output=True).returncode != 0:
        print(f"bench_torch: no PyTorch under {torch_python}; nothing to compare (apt-get install python3-torch)")
        return 0
    cases = dict(CASES, **MODEL_CASES) if args.models else CASES
    names = [n for n in cases if not args.filter or any(f in n for f in args.filter)]
    print(f"{'case':24} {'shape':44} {'thr':>3} {'tse ms':>9} {'torch ms':>9} {'ratio':>6}")
    for threads in [int(t) for t in args.threads.split(",")]:
        tse.set_num_threads(threads)
        peer = json.loads(subprocess.run([torch_python, "-c", TORCH_SIDE, ",".join(names), str(threads),
                                          str(args.repeats)], env=env, capture_output=True, text=True,
                                         check=True).stdout)
        for n in names:
            t_ours = time_ours(n, args.repeats)
            print(f"{n:24} {cases[n]:44} {threads:3d} {t_ours * 1e3:9.3f} {peer[n] * 1e3:9.3f} "
                  f"{peer[n] / t_ours:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
