"""Time to generate 512 tokens with and without the KV cache (Chapter 10).

Run: ``.venv/bin/python benchmarks/bench_decoding.py`` (about a minute on 2 cores; ``--quick``
for a smoke run). Writes ``mha/results/decoding.json``, which Chapter 10 loads and plots.
This is a measurement, not a test.

Setup: one causal self-attention layer ``mha.MultiHeadAttention(256, 8)``, float32, batch 1,
1 thread (``--threads``), eval mode, ``no_grad``. A toy autoregressive loop: the next input
token is the layer norm of the last output. *Without the cache* every step runs the layer on
the whole prefix (``module(x, x, x, is_causal=True)``) and keeps the last row; *with the
cache* every step runs ``module.step`` on the new token. Both loops produce the same tokens
(checked, the max difference is recorded). The two loops alternate ``--reps`` times.
Recorded: per step the median and the minimum over the repetitions; the totals'
min/median/max. ``speedup`` is the ratio of the median totals; ``speedup_of_minima`` the
ratio of the sums of per-step minima, the estimate least touched by other jobs on a shared
machine. About 3 minutes with ``--reps 5`` on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import mha

OUT = Path(__file__).resolve().parent.parent / "mha" / "results" / "decoding.json"
E, H = 256, 8


def generate(m: mha.MultiHeadAttention, x0: torch.Tensor, steps: int, cached: bool):
    """``steps`` tokens from ``x0`` ``(1, 1, E)``; returns the tokens and per-step seconds."""
    tokens, times = [x0], []
    cache = m.new_cache(1, steps) if cached else None
    for _ in range(steps):
        t0 = time.perf_counter()
        if cached:
            out = m.step(tokens[-1], cache)
        else:
            x = torch.cat(tokens, dim=1)
            out = m(x, x, x, is_causal=True, need_weights=False)[0][:, -1:]
        tokens.append(F.layer_norm(out, (E,)))
        times.append(time.perf_counter() - t0)
    return torch.cat(tokens[1:], dim=1), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="64 steps, 2 repetitions")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    steps, reps = (64, 2) if args.quick else (args.steps, args.reps)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = mha.MultiHeadAttention(E, H).eval()
    x0 = torch.randn(1, 1, E)
    runs = {"cache": [], "no_cache": []}
    with torch.no_grad():
        generate(m, x0, 32, True), generate(m, x0, 32, False)  # warm-up
        for rep in range(reps):
            order = ["cache", "no_cache"] if rep % 2 == 0 else ["no_cache", "cache"]
            for name in order:
                runs[name].append(generate(m, x0, steps, name == "cache"))
    diff = (runs["cache"][0][0] - runs["no_cache"][0][0]).abs().max().item()
    result = {"setup": _setup(steps, reps), "max_token_diff": diff}
    for name, rs in runs.items():
        totals = [sum(t) for _, t in rs]
        per_step = list(zip(*(t for _, t in rs), strict=True))
        result[name] = {
            "total_s": {
                "min": min(totals),
                "median": statistics.median(totals),
                "max": max(totals),
            },
            "per_step_s": [statistics.median(ts) for ts in per_step],
            "per_step_min_s": [min(ts) for ts in per_step],
        }
    result["speedup"] = (
        result["no_cache"]["total_s"]["median"] / result["cache"]["total_s"]["median"]
    )
    minima = {name: sum(result[name]["per_step_min_s"]) for name in runs}
    result["speedup_of_minima"] = minima["no_cache"] / minima["cache"]
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"speedup {result['speedup']:.1f}x, token diff {diff:.1e}, wrote {args.out}")


def _setup(steps: int, reps: int) -> dict:
    """What was measured, and where."""
    return {
        "embed_dim": E,
        "num_heads": H,
        "dtype": "float32",
        "batch": 1,
        "steps": steps,
        "reps": reps,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "note": "shared machine (other jobs running): medians over alternating repetitions",
    }


if __name__ == "__main__":
    main()
