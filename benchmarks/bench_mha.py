"""Benchmark: mha.MultiHeadAttention against torch.nn.MultiheadAttention(batch_first=True).

Run: ``.venv/bin/python benchmarks/bench_mha.py`` (about 5 minutes on 2 cores;
``--quick`` for a 30-second smoke run). This is a benchmark, not a test: it
prints a ratio table (ours / PyTorch; below 1 means we are faster), the
fraction of the machine's measured float32 matmul peak that each run reaches,
and the floor: the ratio an implementation would get if it ran the same FLOPs
at 100% of that peak. A target below the floor cannot be met on that machine.

Method: both modules share weights; for each point the two are timed
interleaved in one process (A, B, A, B, ...) after a warm-up, and the medians
are compared. Everything runs once with 1 thread and once with 2.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

import mha

E, H, BATCH = 512, 8, 8
TARGETS = {"train": 1.0, "eval": 0.8}  # eval target applies at L >= 512


def matmul_peak(threads: int, reps: int = 5) -> float:
    """Best float32 GFLOP/s over a square matmul and the benchmark's own projection shape."""
    torch.set_num_threads(threads)
    shapes = [(2048, 2048, 2048), (BATCH * 512, E, 3 * E)]  # (m, k, n)
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        seconds = min(_time(lambda a=a, b=b: a @ b) for _ in range(reps))
        best = max(best, 2 * m * k * n / seconds / 1e9)
    return best


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def flops(length: int, train: bool) -> float:
    """Forward FLOPs of self-attention (4 projections + scores + weighted sum); x3 for training."""
    proj = 4 * 2 * BATCH * length * E * E
    attn = 2 * 2 * BATCH * length * length * E
    return (proj + attn) * (3 if train else 1)


def step(module: nn.Module, x: torch.Tensor, mode: str, need_weights: bool):
    """One timed unit of work: forward + backward (train) or forward under no_grad (eval)."""
    if mode == "train":
        out, _ = module(x, x, x, need_weights=need_weights)
        out.sum().backward()
        return
    with torch.no_grad():
        module(x, x, x, need_weights=need_weights)


def compare(length: int, mode: str, need_weights: bool, reps: int, warmup: int = 2):
    """Median seconds for (ours, torch), interleaved."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(E, H, batch_first=True)
    ours = mha.MultiHeadAttention.from_torch(theirs)
    for m in (theirs, ours):
        m.train(mode == "train")
    x = torch.randn(BATCH, length, E, requires_grad=mode == "train")
    times = {"ours": [], "torch": []}
    for i in range(warmup + reps):
        for name, m in (
            (("ours", ours), ("torch", theirs)) if i % 2 else (("torch", theirs), ("ours", ours))
        ):
            t = _time(lambda m=m: step(m, x, mode, need_weights))
            if i >= warmup:
                times[name].append(t)
    return statistics.median(times["ours"]), statistics.median(times["torch"])


def run(threads: int, lengths, reps: int):
    torch.set_num_threads(threads)
    peak = matmul_peak(threads)
    print(f"\n## {threads} thread(s): float32 matmul peak {peak:.1f} GFLOP/s")
    print(f"{'mode':<7}{'need_weights':>13}{'L':>6}{'ours ms':>10}{'torch ms':>10}{'ratio':>8}"
          f"{'target':>8}{'ok':>4}{'ours %peak':>11}{'torch %peak':>12}{'floor':>7}")  # fmt: skip
    rows = []
    for mode, need in (("train", True), ("train", False), ("eval", False)):
        for length in lengths:
            ours, theirs = compare(length, mode, need, reps)
            ratio = ours / theirs
            target = TARGETS[mode] if (mode == "train" or length >= 512) else None
            ok = "" if target is None else ("yes" if ratio <= target else "NO")
            ideal = flops(length, mode == "train") / 1e9 / peak  # seconds at 100% of peak
            tgt = f"{target:.1f}" if target else "-"
            print(f"{mode:<7}{need!s:>13}{length:>6}{ours * 1e3:>10.1f}{theirs * 1e3:>10.1f}"
                  f"{ratio:>8.2f}{tgt:>8}{ok:>4}{100 * ideal / ours:>10.0f}%"
                  f"{100 * ideal / theirs:>11.0f}%{ideal / theirs:>7.2f}")  # fmt: skip
            rows.append((mode, need, length, ratio, ok))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short lengths, few repeats")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    lengths = [64, 128] if args.quick else [128, 512, 1024]
    reps = 3 if args.quick else args.reps
    print(f"torch {torch.__version__}, {platform.machine()}, E={E}, h={H}, batch={BATCH}")
    print("ratio = ours / torch median time (below 1: ours is faster)")
    print(
        "floor = the lowest ratio any implementation of the same FLOPs could reach at 100% of peak"
    )
    failed = []
    for threads in args.threads:
        failed += [r for r in run(threads, lengths, reps) if r[-1] == "NO"]
    print(f"\n{len(failed)} point(s) miss their target" + (f": {failed}" if failed else ""))


if __name__ == "__main__":
    main()
