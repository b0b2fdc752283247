"""Tensor-parallel attention: 2 ranks (1 thread each) against one process with 2 threads.

Run: ``.venv/bin/python benchmarks/bench_tp.py`` (a few minutes on 2 cores). Writes
``mha/results/tensor_parallel.json``, which Chapter 11 loads. This is a measurement, not a test.

Setup: ``mha.MultiHeadAttention(512, 8)``, float32, self-attention on ``(N, L, E) = (4, 256,
512)``, training step forward + backward (loss ``out.sum()``), gradients cleared each step.

* single: one process, ``torch.set_num_threads(2)``; single1, for context, with 1 thread;
* tensor parallel: ``torchrun`` with 2 processes on 127.0.0.1 (gloo), 1 thread each,
  ``TensorParallelMultiHeadAttention``. A step starts after a barrier; rank 0 times it.
  Every ``dist.all_reduce`` call is timed too (its time includes waiting for the other rank);
  ``all_reduce_share`` is their sum over the step time.

Each configuration runs in a fresh process, ``--rounds`` times alternately, ``--iters`` timed
steps after 3 warm-up steps; the ratio is the median over all TP steps over the median over
all single-process steps. The machine is shared with other jobs, so the numbers are noisy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

import mha
from mha.course.tp_demo import torchrun_command

OUT = Path(__file__).resolve().parent.parent / "mha" / "results" / "tensor_parallel.json"
E, H, N, L = 512, 8, 4, 256


def _module() -> mha.MultiHeadAttention:
    torch.manual_seed(0)
    return mha.MultiHeadAttention(E, H)


def _steps(layer, iters: int, before=lambda: None) -> list[float]:
    """Seconds of ``iters`` forward + backward steps, after 3 warm-up steps."""
    torch.manual_seed(1)
    x = torch.randn(N, L, E, requires_grad=True)
    times = []
    for i in range(iters + 3):
        layer.zero_grad(set_to_none=True)
        x.grad = None
        before()
        t0 = time.perf_counter()
        layer(x, x, x)[0].sum().backward()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return times


def single(iters: int, threads: int = 2) -> dict:
    """One process, ``threads`` threads."""
    torch.set_num_threads(threads)
    return {"step_s": _steps(_module(), iters)}


def tensor_parallel(iters: int) -> dict:
    """One rank of the 2-rank job (under torchrun), 1 thread; rank 0 returns the times."""
    from mha.parallel import TensorParallelMultiHeadAttention

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    orig, spent = dist.all_reduce, []

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = orig(*args, **kwargs)
        spent.append(time.perf_counter() - t0)
        return out

    tp = TensorParallelMultiHeadAttention.from_module(_module())
    dist.all_reduce = timed
    marks: list[int] = []
    times = _steps(tp, iters, before=lambda: (dist.barrier(), marks.append(len(spent))))
    dist.all_reduce = orig
    marks.append(len(spent))
    per_step = [sum(spent[a:b]) for a, b in itertools.pairwise(marks[3:])]
    dist.destroy_process_group()
    return {"step_s": times, "all_reduce_s": per_step, "all_reduces_per_step": marks[4] - marks[3]}


def _run(kind: str, iters: int) -> dict:
    """Run one configuration in a fresh process; its last stdout line is JSON."""
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    worker = ["-m", "benchmarks.bench_tp", "--worker", kind, "--iters", str(iters)]
    if kind.startswith("single"):
        cmd = [sys.executable, *worker]
    else:
        cmd = torchrun_command("benchmarks.bench_tp", 2, *worker[2:])
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=root)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["single", "single1", "tp"])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.worker in ("single", "single1"):
        print(json.dumps(single(args.iters, 1 if args.worker == "single1" else 2)))
        return
    if args.worker == "tp":
        result = tensor_parallel(args.iters)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(result))
        return
    runs = {"single": [], "single1": [], "tp": []}
    for r in range(args.rounds):
        for kind in ("single", "single1", "tp")[:: 1 if r % 2 == 0 else -1]:
            runs[kind].append(_run(kind, args.iters))
    args.out.write_text(json.dumps(_summary(runs, args), indent=1) + "\n")
    print(args.out.read_text())


def _summary(runs: dict, args: argparse.Namespace) -> dict:
    """Medians (and min/max) over every timed step of every round."""
    stats = {}
    for kind, rs in runs.items():
        steps = [t for r in rs for t in r["step_s"]]
        stats[kind] = {"min": min(steps), "median": statistics.median(steps), "max": max(steps)}
    shares = [
        a / t for r in runs["tp"] for a, t in zip(r["all_reduce_s"], r["step_s"], strict=True)
    ]
    return {
        "setup": {
            "embed_dim": E,
            "num_heads": H,
            "batch": N,
            "seq": L,
            "dtype": "float32",
            "iters": args.iters,
            "rounds": args.rounds,
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "note": "shared 2-core machine: medians over alternating fresh processes",
        },
        "single_2_threads_step_s": stats["single"],
        "single_1_thread_step_s": stats["single1"],
        "tp_2_ranks_step_s": stats["tp"],
        "ratio": stats["tp"]["median"] / stats["single"]["median"],
        "all_reduces_per_step": runs["tp"][0]["all_reduces_per_step"],
        "all_reduce_share": {
            "min": min(shares),
            "median": statistics.median(shares),
            "max": max(shares),
        },
    }


if __name__ == "__main__":
    main()
