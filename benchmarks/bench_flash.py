"""Memory and time of attention at long L: naive, flash-style (``mha.flash_attention``), SDPA.

Run: ``.venv/bin/python benchmarks/bench_flash.py`` (about 3 minutes on 2 cores; ``--quick``
for a smoke run at small L). Writes ``mha/results/flash_cost.json``, which Chapter 9 loads
and plots. This is a measurement, not a test.

Shapes: B=1, h=8, d=64, float32, self-attention (S = L), no mask, forward under ``no_grad``.

* Memory: every (implementation, L) runs in its own fresh process. The process allocates
  q, k, v, warms the implementation up on the first 512 positions, resets its peak-RSS
  counter (``/proc/self/clear_refs``), runs attention once, and reports
  ``extra = peak RSS - RSS before the call`` (``VmHWM`` and ``VmRSS`` from
  ``/proc/self/status``; ``resource.getrusage`` max RSS is recorded too). ``extra``
  includes the output itself; the target is ``extra <= 2 x output bytes`` for flash-style.
* Time: one process per L runs the three implementations interleaved (rotating order) after
  a warm-up, ``--reps`` times each; min / median / max seconds are recorded. The target is
  ``flash median <= 2 x SDPA median``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import mha

HEADS, D_HEAD = 8, 64
IMPLS = ("naive", "flash", "flash_256", "sdpa")  # flash: block_size 128 (the default)
OUT = Path(__file__).resolve().parent.parent / "mha" / "results" / "flash_cost.json"


def naive(q, k, v):
    """The textbook formula: builds the (L, S) scores and weights for every head."""
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v


def attend(impl: str, q, k, v, block_size: int):
    if impl == "naive":
        return naive(q, k, v)
    if impl.startswith("flash"):
        block = 256 if impl == "flash_256" else block_size
        return mha.flash_attention(q, k, v, block_size=block)
    return F.scaled_dot_product_attention(q, k, v)


def inputs(length: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1, HEADS, length, D_HEAD, generator=gen) for _ in range(3)]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_worker(impl: str, length: int, block_size: int) -> dict:
    """Runs in a fresh process: extra peak RSS of one call, in bytes."""
    q, k, v = inputs(length)
    warm = min(length, 512)  # load kernels and their workspaces first
    with torch.no_grad():
        attend(impl, q[..., :warm, :], k[..., :warm, :], v[..., :warm, :], block_size)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    with torch.no_grad():
        out = attend(impl, q, k, v, block_size)
    peak = _status_kib("VmHWM")
    return {
        "impl": impl,
        "L": length,
        "rss_before_bytes": before * 1024,
        "peak_rss_bytes": peak * 1024,
        "extra_bytes": (peak - before) * 1024,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "output_bytes": out.numel() * out.element_size(),
    }


def measure_memory(impl: str, length: int, block_size: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, str(length)]
    cmd += ["--block-size", str(block_size), "--threads", str(threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_time(length: int, block_size: int, reps: int) -> dict:
    """min / median / max seconds per implementation, interleaved in rotating order."""
    q, k, v = inputs(length)
    times = {impl: [] for impl in IMPLS}
    with torch.no_grad():
        outs = {impl: attend(impl, q, k, v, block_size) for impl in IMPLS}  # warm-up
        for rep in range(reps):
            for impl in IMPLS[rep % len(IMPLS) :] + IMPLS[: rep % len(IMPLS)]:
                t0 = time.perf_counter()
                attend(impl, q, k, v, block_size)
                times[impl].append(time.perf_counter() - t0)
    err = {impl: (outs[impl] - outs["sdpa"]).abs().max().item() for impl in IMPLS[:-1]}
    stats = {impl: _summary(ts) for impl, ts in times.items()}
    return {"L": length, "seconds": stats, "max_abs_diff_vs_sdpa": err}


def _summary(ts):
    return {"min": min(ts), "median": statistics.median(ts), "max": max(ts), "all": ts}


def machine(threads: int) -> dict:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return {
        "cpu_model": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": threads,
        "logical_cpus": len(__import__("os").sched_getaffinity(0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "L"), help=argparse.SUPPRESS)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="L = 256, 512; 2 reps; no JSON")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(memory_worker(args.worker[0], int(args.worker[1]), args.block_size)))
        return
    lengths, reps = ([256, 512], 2) if args.quick else (args.lengths, args.reps)
    memory = [measure_memory(i, n, args.block_size, args.threads) for n in lengths for i in IMPLS]
    for m in memory:
        print(f"memory {m['impl']:>5} L={m['L']:>5}: extra {m['extra_bytes'] / 2**20:8.1f} MiB"
              f" = {m['extra_bytes'] / m['output_bytes']:6.2f} x output")  # fmt: skip
    timing = [measure_time(n, args.block_size, reps) for n in lengths]
    for t in timing:
        med = {i: s["median"] for i, s in t["seconds"].items()}
        print(f"time L={t['L']:>5}: " + ", ".join(f"{i} {s:.3f} s" for i, s in med.items())
              + f"; flash / sdpa = {med['flash'] / med['sdpa']:.2f}")  # fmt: skip
    result = {
        "command": "python benchmarks/bench_flash.py " + " ".join(sys.argv[1:]),
        "shape": {"batch": 1, "heads": HEADS, "d_head": D_HEAD, "dtype": "float32"},
        "block_size": args.block_size,
        "reps": reps,
        "machine": machine(args.threads),
        "memory": memory,
        "time": timing,
    }
    if not args.quick:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
