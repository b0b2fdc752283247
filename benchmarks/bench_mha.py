"""Benchmark: mha.MultiHeadAttention against torch.nn.MultiheadAttention(batch_first=True).

Run: ``.venv/bin/python benchmarks/bench_mha.py`` (about 8 minutes on 2 idle cores;
``--quick`` for a short smoke run). This is a benchmark, not a test: it prints a ratio table
(ours / PyTorch; below 1 means we are faster), min / median / max milliseconds of both sides,
the fraction of the machine's measured float32 matmul peak that each run reaches, and the
floor: the ratio an implementation would get if it ran the same FLOPs at 100% of that peak.
A target below the floor cannot be met on that machine.

Like with like:

* eval runs twice: with PyTorch's fast path (``nn.MultiheadAttention`` then calls
  ``_native_multi_head_attention``, an unfused bmm + softmax) and with
  ``torch.backends.mha.set_fastpath_enabled(False)`` (it then calls the same fused
  ``F.scaled_dot_product_attention`` kernel as ``mha``). The kernels that ran on each side are
  printed, from ``torch.profiler`` op names;
* both sides' outputs (and, in training, input gradients) are compared before timing;
* the matmul peak is the best of several repetitions over several shapes, the layer's own
  among them (projections, output projection, scores), measured with the thread count of
  the table.

Method: both modules share weights; for each point the two are timed interleaved in one
process (A, B, A, B, ...) after a warm-up. Everything runs once with 1 thread and once with 2.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from contextlib import contextmanager

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import mha

E, H, BATCH = 512, 8, 8
TARGETS = {"train": 1.0, "eval": 0.8, "eval-nofast": 0.8}  # eval targets apply at L >= 512
MODES = (("eval", False), ("eval-nofast", False), ("train", True), ("train", False))
KERNEL_WORDS = ("attention", "softmax", "bmm", "baddbmm", "addmm", "linear", "matmul")


def matmul_shapes(lengths) -> list[tuple[int, int, int]]:
    """(m, k, n): a square, and the layer's own products at every benchmarked length."""
    shapes = [(2048, 2048, 2048)]
    for length in lengths:
        rows = BATCH * length
        shapes += [(rows, E, 3 * E), (rows, E, E)]  # in-projection, out-projection
    return shapes


def matmul_peak(threads: int, lengths, reps: int = 7) -> tuple[float, tuple]:
    """Best float32 GFLOP/s over ``reps`` repetitions of every shape (and the scores' bmm)."""
    torch.set_num_threads(threads)
    best = (0.0, None)
    for m, k, n in matmul_shapes(lengths):
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        seconds = min(_time(lambda a=a, b=b: a @ b) for _ in range(reps))
        best = max(best, (2 * m * k * n / seconds / 1e9, ("mm", m, k, n)))
    length = max(lengths)  # the scores: (B h, L, d_head) x (B h, d_head, L)
    q, kt = torch.randn(BATCH * H, length, E // H), torch.randn(BATCH * H, E // H, length)
    torch.bmm(q, kt)
    seconds = min(_time(lambda: torch.bmm(q, kt)) for _ in range(reps))
    flops = 2 * BATCH * H * length * length * (E // H)
    return max(best, (flops / seconds / 1e9, ("bmm", BATCH * H, length, E // H, length)))


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def flops(length: int, train: bool) -> float:
    """Forward FLOPs of self-attention (4 projections + scores + weighted sum); x3 for training."""
    proj = 4 * 2 * BATCH * length * E * E
    attn = 2 * 2 * BATCH * length * length * E
    return (proj + attn) * (3 if train else 1)


@contextmanager
def fastpath(enabled: bool):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def step(module: nn.Module, x: torch.Tensor, mode: str, need_weights: bool):
    """One timed unit of work: forward + backward (train) or forward under no_grad (eval)."""
    if mode == "train":
        out, _ = module(x, x, x, need_weights=need_weights)
        out.sum().backward()
        return out
    with torch.no_grad(), fastpath(mode == "eval"):
        return module(x, x, x, need_weights=need_weights)[0]


def kernels(module, x, mode, need_weights) -> list[str]:
    """The aten ops of interest that one step ran, in order of first appearance."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(module, x, mode, need_weights)
    names = [e.name for e in prof.events() if e.name.startswith("aten::")]
    seen = dict.fromkeys(n for n in names if any(w in n for w in KERNEL_WORDS))
    return [n.removeprefix("aten::") for n in seen]


def check_equal(ours, theirs, x, mode, need_weights) -> float:
    """Max |diff| of outputs (and of input gradients in training); raises if above 1e-4."""
    diffs = []
    for attempt in ("ours", "theirs"):
        if x.grad is not None:
            x.grad = None
        m = ours if attempt == "ours" else theirs
        out = step(m, x, mode, need_weights).detach()
        diffs.append((out, None if x.grad is None else x.grad.clone()))
    (o1, g1), (o2, g2) = diffs
    err = (o1 - o2).abs().max().item()
    if g1 is not None:
        err = max(err, (g1 - g2).abs().max().item())
    if not err <= 1e-4:
        raise AssertionError(f"outputs differ by {err:.1e} ({mode}, need_weights={need_weights})")
    return err


def compare(length: int, mode: str, need_weights: bool, reps: int, warmup: int = 2):
    """Seconds for (ours, torch), interleaved; plus the max |diff| and the kernels of each."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(E, H, batch_first=True)
    ours = mha.MultiHeadAttention.from_torch(theirs)
    for m in (theirs, ours):
        m.train(mode == "train")
    x = torch.randn(BATCH, length, E, requires_grad=mode == "train")
    err = check_equal(ours, theirs, x, mode, need_weights)
    ran = {
        name: kernels(m, x, mode, need_weights) for name, m in (("ours", ours), ("torch", theirs))
    }
    times = {"ours": [], "torch": []}
    for i in range(warmup + reps):
        for name, m in (
            (("ours", ours), ("torch", theirs)) if i % 2 else (("torch", theirs), ("ours", ours))
        ):
            t = _time(lambda m=m: step(m, x, mode, need_weights))
            if i >= warmup:
                times[name].append(t)
    return times, err, ran


def run(threads: int, lengths, reps: int):
    torch.set_num_threads(threads)
    peak, shape = matmul_peak(threads, lengths)
    print(f"\n## {threads} thread(s): float32 matmul peak {peak:.1f} GFLOP/s (best shape {shape})")
    print(f"{'mode':<12}{'weights':>8}{'L':>6}{'ours ms min/med/max':>25}"
          f"{'torch ms min/med/max':>25}{'ratio':>7}{'target':>7}{'ok':>4}{'ours%pk':>8}"
          f"{'torch%pk':>9}{'floor':>6}{'max|diff|':>10}")  # fmt: skip
    rows, kernel_log, best_pct = [], {}, 0.0
    for mode, need in MODES:
        for length in lengths:
            times, err, ran = compare(length, mode, need, reps)
            kernel_log.setdefault((mode, need), ran)
            ours, theirs = (statistics.median(times[k]) for k in ("ours", "torch"))
            ratio = ours / theirs
            target = TARGETS[mode] if (mode == "train" or length >= 512) else None
            ok = "" if target is None else ("yes" if ratio <= target else "NO")
            ideal = flops(length, mode == "train") / 1e9 / peak  # seconds at 100% of peak
            tgt = f"{target:.1f}" if target else "-"
            print(f"{mode:<12}{need!s:>8}{length:>6}{_mmm(times['ours']):>25}{_mmm(times['torch']):>25}"
                  f"{ratio:>7.2f}{tgt:>7}{ok:>4}{100 * ideal / ours:>7.0f}%"
                  f"{100 * ideal / theirs:>8.0f}%{ideal / theirs:>6.2f}{err:>10.1e}")  # fmt: skip
            rows.append((mode, need, length, round(ratio, 3), ok))
            best_pct = max(best_pct, 100 * ideal / min(ours, theirs))
    again, shape = matmul_peak(threads, lengths)
    print(f"matmul peak re-measured after the table: {again:.1f} GFLOP/s (best shape {shape})")
    if best_pct > 100 or again > 1.1 * peak:
        print("WARNING: a point exceeds 100% of the peak or the peak rose by >10%: the machine's")
        print("load changed during the run; read %peak and floor as rough, not as bounds.")
    print("kernels that ran (aten ops, first appearance order):")
    for (mode, need), ran in kernel_log.items():
        for side, names in ran.items():
            print(f"  {mode:<12} need_weights={need!s:<5} {side:<5}: {', '.join(names)}")
    return rows


def _mmm(ts) -> str:
    return "/".join(f"{1e3 * t:.1f}" for t in (min(ts), statistics.median(ts), max(ts)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short lengths, few repeats")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    lengths = [64, 128] if args.quick else [128, 512, 1024]
    reps = 3 if args.quick else args.reps
    cuda = torch.cuda.is_available()
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {platform.machine()}, CPU capability {capability}, "
          f"E={E}, h={H}, batch={BATCH}, float32")  # fmt: skip
    print(f"GPU: {'available (not benchmarked by this CPU script)' if cuda else 'none'}")
    print("ratio = ours / torch median time (below 1: ours is faster); eval = PyTorch fast path")
    print("on, eval-nofast = torch.backends.mha.set_fastpath_enabled(False)")
    print(
        "floor = the lowest ratio any implementation of the same FLOPs could reach at 100% of peak"
    )
    failed = []
    for threads in args.threads:
        failed += [r for r in run(threads, lengths, reps) if r[-1] == "NO"]
    print(f"\n{len(failed)} point(s) miss their target" + (f": {failed}" if failed else ""))


if __name__ == "__main__":
    main()
