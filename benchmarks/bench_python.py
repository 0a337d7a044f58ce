#!/usr/bin/env python3
"""Times libtse from Python against numpy on the same work as tse-bench.

Each case builds float32 numpy inputs, wraps them with tse.from_numpy (zero copy), checks
np.allclose(ours, numpy) once, and only then times both sides: median (and min) per call of
repeated timeit samples. ratio = numpy time / ours time (> 1: libtse faster). numpy runs its
elementwise ops and reductions on one thread whatever --threads says; --threads sets
tse.set_num_threads only. The dispatch rows time a 1-element tse.add and np.add: the cost of a
call from Python, in microseconds.

    python3 benchmarks/bench_python.py --threads 1,2
"""

import argparse
import statistics
import sys
import timeit

import numpy as np

import tse

N4M = 4 << 20
F32 = 4

try:
    from scipy.special import erfc as _erfc
except ImportError:
    _erfc = None


def _gelu():
    nn = getattr(tse, "nn", None)
    functional = getattr(nn, "functional", None)
    return getattr(functional, "gelu", None) or tse.gelu


def _uniform(shape, lo, hi, seed):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


class Case:
    def __init__(self, name, shape, nbytes, make, ours, peer, rtol=1e-5, atol=1e-6, micros=False):
        self.name, self.shape, self.nbytes = name, shape, nbytes
        self.make, self.ours, self.peer = make, ours, peer
        self.rtol, self.atol, self.micros = rtol, atol, micros


def _cases():
    gelu = _gelu()
    m, n = 4096, 1024

    def vec(lo=-1.0, hi=1.0, count=1):
        return lambda: [_uniform((N4M,), lo, hi, s) for s in range(count)]

    def mat(lo=-1.0, hi=1.0):
        return lambda: [_uniform((m, n), lo, hi, 7)]

    cases = [
        Case("eltwise.add", "[4194304] + [4194304]", 3 * N4M * F32, vec(count=2),
             lambda a, b: tse.add(a, b), np.add, rtol=1e-6),
        Case("eltwise.mul", "[4194304] * [4194304]", 3 * N4M * F32, vec(count=2),
             lambda a, b: tse.mul(a, b), np.multiply, rtol=1e-6),
        Case("eltwise.add_row_bcast", "[4096, 1024] + [1024]", (2 * m * n + n) * F32,
             lambda: [_uniform((m, n), -1, 1, 5), _uniform((n,), -1, 1, 6)],
             lambda a, b: tse.add(a, b), np.add, rtol=1e-6),
        Case("act.sigmoid", "[4194304]", 2 * N4M * F32, vec(-8, 8),
             lambda x: tse.sigmoid(x), lambda x: 1 / (1 + np.exp(-x))),
        Case("act.tanh", "[4194304]", 2 * N4M * F32, vec(-4, 4), lambda x: tse.tanh(x), np.tanh),
        Case("eltwise.exp", "[4194304]", 2 * N4M * F32, vec(-4, 4), lambda x: tse.exp(x), np.exp),
        Case("copy.transpose", "[2048, 2048].t() -> contiguous", 2 * 2048 * 2048 * F32,
             lambda: [_uniform((2048, 2048), -1, 1, 8)],
             lambda x: x.t().contiguous(), lambda x: np.ascontiguousarray(x.T), rtol=0),
        Case("reduce.sum_all", "[4194304] -> []", N4M * F32, vec(0, 1),
             lambda x: tse.sum(x), lambda x: x.sum()),
        Case("reduce.sum_rows", "[4096, 1024] -> [4096]", (m * n + m) * F32, mat(0, 1),
             lambda x: tse.sum(x, dim=1), lambda x: x.sum(axis=1)),
        Case("reduce.sum_cols", "[4096, 1024] -> [1024]", (m * n + n) * F32, mat(0, 1),
             lambda x: tse.sum(x, dim=0), lambda x: x.sum(axis=0)),
        Case("reduce.mean_rows", "[4096, 1024] -> [4096]", (m * n + m) * F32, mat(0, 1),
             lambda x: tse.mean(x, dim=1), lambda x: x.mean(axis=1)),
        Case("reduce.amax_rows", "[4096, 1024] -> [4096]", (m * n + m) * F32, mat(0, 1),
             lambda x: tse.amax(x, dim=1), lambda x: x.max(axis=1), rtol=0),
        Case("dispatch.add", "[1] (python call)", 0, lambda: [_uniform((1,), -1, 1, 9), _uniform((1,), -1, 1, 10)],
             lambda a, b: tse.add(a, b), np.add, rtol=0, micros=True),
    ]
    if _erfc is not None:
        inv_sqrt2 = np.float32(0.7071067811865476)
        cases.insert(3, Case("act.gelu", "[4194304]", 2 * N4M * F32, vec(-6, 6),
                             lambda x: gelu(x), lambda x: np.float32(0.5) * x * _erfc(-x * inv_sqrt2)))
    return cases


def _measure(fn, repeats, min_time):
    timer = timeit.Timer(fn)
    number, elapsed = 1, 0.0
    # Warm-up, growing the batch until one sample lasts long enough for the clock.
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= 2e-4:
            break
        number *= 10
    samples = []
    total = 0.0
    while len(samples) < repeats or total < min_time:
        t = timer.timeit(number)
        total += t
        samples.append(t / number)
    return statistics.median(samples), min(samples)


def _fmt_time(s, micros):
    return f"{s * 1e6:9.3f} us" if micros else f"{s * 1e3:9.3f} ms"


def _fmt_rate(nbytes, s):
    return f"{nbytes / s * 1e-9:7.2f} GB/s" if nbytes else "          -"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filter", action="append", default=[], help="run cases whose name contains this")
    p.add_argument("--threads", default=None, help="comma-separated libtse thread counts, e.g. 1,2")
    p.add_argument("--repeats", type=int, default=10, help="minimum timed samples per side")
    p.add_argument("--min-time-ms", type=float, default=200, help="minimum timed milliseconds per side")
    args = p.parse_args()
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [tse.get_num_threads()]
    cases = [c for c in _cases() if not args.filter or any(f in c.name for f in args.filter)]
    if not cases:
        sys.exit("bench_python.py: no case matches the filters")

    print(f"# bench_python.py: tse {getattr(tse, '__version__', '?')} vs numpy {np.__version__}; times per call, "
          f"median (and min) of >= {args.repeats} samples and >= {args.min_time_ms:g} ms per side")
    print("# peer = numpy (one thread); ratio = numpy time / ours time (> 1: libtse faster)")
    if _erfc is None:
        print("# act.gelu skipped: numpy has no erfc and scipy is not installed")
    print(f"# {'case':<22} {'shape':<31} {'thr':>3} {'ours med':>12} {'ours min':>12} {'ours rate':>11} "
          f"{'numpy med':>12} {'numpy rate':>11} {'ratio':>6}  gate")
    failed = False
    for nt in threads:
        tse.set_num_threads(nt)
        for c in cases:
            arrays = c.make()
            tensors = [tse.from_numpy(a) for a in arrays]
            head = f"  {c.name:<22} {c.shape:<31} {nt:>3}"
            try:
                got, want = c.ours(*tensors).numpy(), c.peer(*arrays)
                ok = got.shape == np.shape(want) and np.allclose(got, want, rtol=c.rtol, atol=c.atol)
                if not ok:
                    print(f"{head} FAIL: np.allclose(rtol={c.rtol}, atol={c.atol}) is false")
            except Exception as e:  # a failing gate must not stop the other cases
                ok = False
                print(f"{head} FAIL: {type(e).__name__}: {e}")
            if not ok:
                print(f"      repro: python3 benchmarks/bench_python.py --filter {c.name} --threads {nt}")
                failed = True
                continue
            ours = _measure(lambda: c.ours(*tensors), args.repeats, args.min_time_ms * 1e-3)
            peer = _measure(lambda: c.peer(*arrays), args.repeats, args.min_time_ms * 1e-3)
            print(f"{head} {_fmt_time(ours[0], c.micros):>12} {_fmt_time(ours[1], c.micros):>12} "
                  f"{_fmt_rate(c.nbytes, ours[0]):>11} {_fmt_time(peer[0], c.micros):>12} "
                  f"{_fmt_rate(c.nbytes, peer[0]):>11} {peer[0] / ours[0]:6.2f}  ok", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
