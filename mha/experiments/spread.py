"""Chapter 7: how far do the experiments move when the CPU kernels change?

``python -m mha.experiments.spread`` re-runs one slice of every sweep (the
slices that ``tests/test_experiments.py`` re-runs) in a fresh subprocess under
each setting of :data:`KERNELS`: torch's SIMD level (``ATEN_CPU_CAPABILITY``),
MKL's conditional numerical reproducibility branch (``MKL_CBWR``) and the
thread count. Each setting sums in another order, and training amplifies the
round-off. It writes ``mha/results/kernel_spread.json``: every setting's
deviation from the native run, per slice, which sets the tolerance with which
the tests compare a re-run slice against the committed results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["KERNELS", "SLICES", "deviation", "run_slice_here", "measure"]

KERNELS = {  # name: environment; "native" lets torch and MKL pick the fastest path
    "native": {},
    "default, MKL compatible": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    "avx2, MKL avx2, 2 threads": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2",
                                  "OMP_NUM_THREADS": "2"},
}  # fmt: skip
SLICES = {  # sweep: (heads, seed) of a run that learned, re-run by the tests (first rate)
    "head_count": (4, 0), "overfitting": (2, 0), "fixed_d_head": (2, 0),
    "learning_rate": (16, 0), "pruning": (4, 0),
}  # fmt: skip
MEASURED = ("head_count", "overfitting", "pruning")  # the slices measured under every kernel


def run_slice_here(name: str, heads: int, seed: int) -> dict:
    """One run of sweep ``name`` in this process, with ``OMP_NUM_THREADS`` threads (default 1)."""
    import torch

    from mha.experiments.sweeps import DEFAULTS, run_sweep

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    lrs = DEFAULTS[name][2][:1]
    result = run_sweep(name, heads=[heads], seeds=[seed], progress=False, lrs=lrs)
    return result["runs"][0] | {"machine": result["machine"]}


def run_slice(name: str, heads: int, seed: int, env: dict) -> dict:
    """:func:`run_slice_here` in a fresh interpreter, under ``env`` (one thread unless it says)."""
    code = (f"import json; from mha.experiments.spread import run_slice_here; "
            f"print(json.dumps(run_slice_here({name!r}, {heads}, {seed})))")  # fmt: skip
    base = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    done = subprocess.run([sys.executable, "-c", code], env=base | {"OMP_NUM_THREADS": "1"} | env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout)


def deviation(got: dict, want: dict) -> dict:
    """Per top-level key of a run record: the largest relative difference of its floats,
    the number of its integers that differ and the largest difference (Chapter 7)."""

    def walk(g, w, acc):
        if isinstance(w, dict):
            for key in w:
                walk(g[key], w[key], acc)
        elif isinstance(w, list):
            for a, b in zip(g, w, strict=True):
                walk(a, b, acc)
        elif isinstance(w, float):
            acc[0] = max(acc[0], abs(g - w) / max(abs(w), 1e-300))
        elif isinstance(w, int):
            acc[1] += g != w
            acc[2] = max(acc[2], abs(g - w))

    out = {}
    for key in want:
        if key != "machine":
            acc = [0.0, 0, 0]
            walk(got[key], want[key], acc)
            out[key] = {"max_rel": acc[0], "int_mismatches": acc[1], "max_int_diff": acc[2]}
    return out


def measure(
    kernels: list[str] | None = None,
    slices: dict[str, tuple[int, int]] | None = None,
    native: dict | None = None,
) -> dict:
    """Run every slice under every kernel setting; deviations from ``native`` (Chapter 7).

    ``native`` maps a sweep to its native run when that is known already (the
    committed run, computed on this machine with the same code): it is not re-run.
    """
    native = native or {}
    kernels = kernels or list(KERNELS)
    slices = slices or {name: SLICES[name] for name in MEASURED}
    result = {"kernels": {k: KERNELS[k] for k in kernels}, "slices": {}}
    for name, (heads, seed) in slices.items():
        runs = {k: native[name] if k == "native" and name in native else
                run_slice(name, heads, seed, KERNELS[k]) for k in kernels}  # fmt: skip
        result["slices"][name] = {
            "heads": heads, "seed": seed, "machine": runs["native"]["machine"],
            "deviation": {k: deviation(runs[k], runs["native"]) for k in kernels if k != "native"},
            "test_correct": {k: r["test_correct"] for k, r in runs.items()},
            "curves": {k: r["curve"] for k, r in runs.items()},
        }  # fmt: skip
        print(name, json.dumps(result["slices"][name]["deviation"]), file=sys.stderr, flush=True)
    return result


def against_earlier(earlier: dict, runs: list[dict], prefix: str = "") -> dict:
    """Runs of an earlier result file (another machine) against the same runs here.

    Introduced in Chapter 7. For every run of ``earlier`` with the same head
    count and seed in ``runs`` (same configuration and code): the largest
    relative difference of the losses and the largest absolute difference of
    the test accuracy at the evaluation steps both have, the correct test
    positions on both, and the largest absolute difference of a head's shares
    (0 for runs without them) and of the importance scores, relative (0
    without). Keys are ``prefix`` + ``"h=4 seed 0"``.
    """
    here = {(r["num_heads"], r["seed"]): r for r in runs}
    out = {}
    for old in earlier["runs"]:
        new = here.get((old["num_heads"], old["seed"]))
        if new is None:
            continue
        at = {p["step"]: p for p in new["curve"]}
        pairs = [(p, at[p["step"]]) for p in old["curve"] if p["step"] in at]
        loss = max(
            abs(q[k] - p[k]) / abs(p[k]) for p, q in pairs for k in ("train_loss", "test_loss")
        )
        shares = [
            abs(a - b)
            for lo, ln in zip(old.get("roles", []), new.get("roles", []), strict=True)
            for k in ("prev_share", "marked_share")
            for a, b in zip(lo[k], ln[k], strict=True)
        ]
        acc = max(abs(q["test_acc"] - p["test_acc"]) for p, q in pairs)
        scores = [
            abs(b - a) / abs(a)
            for k in ("importance", "importance_raw")
            if k in old
            for ra, rb in zip(old[k], new[k], strict=True)
            for a, b in zip(ra, rb, strict=True)
        ]
        out[f"{prefix}h={old['num_heads']} seed {old['seed']}"] = {
            "loss_max_rel": loss,
            "test_acc_max_abs": acc,
            "test_correct": [old["test_correct"], new["test_correct"]],
            "share_max_abs": max(shares, default=0.0),
            "importance_max_rel": max(scores, default=0.0),
        }
    return out


def _cached_native(folder: Path, name: str) -> dict | None:
    """The native run of slice ``name`` from a ``--resume`` folder of the sweeps, if there."""
    from mha.experiments.sweeps import DEFAULTS, machine

    heads, seed = SLICES[name]
    file = folder / f"{name}.jsonl"
    for line in file.read_text().splitlines() if file.is_file() else []:
        r = json.loads(line)
        if (r["num_heads"], r["seed"], r["lr"]) == (heads, seed, DEFAULTS[name][2][0]):
            return r | {"machine": machine() | {"torch_threads": 1}}
    return None


if __name__ == "__main__":
    import argparse

    from mha.experiments.__main__ import RESULTS, dumps

    parser = argparse.ArgumentParser(prog="python -m mha.experiments.spread", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS / "kernel_spread.json")
    parser.add_argument("--slices", default=",".join(MEASURED), help="sweeps whose slice to run")
    parser.add_argument("--native-from", type=Path, help="a --resume folder of the sweeps: take "
                        "the native runs from there instead of re-running them")  # fmt: skip
    args = parser.parse_args()
    slices = {name: SLICES[name] for name in args.slices.split(",")}
    found = {n: _cached_native(args.native_from, n) for n in slices} if args.native_from else {}
    native = {n: r for n, r in found.items() if r is not None}
    result = measure(None, slices, native)
    args.out.write_text(dumps({"command": "python -m mha.experiments.spread", **result}))
