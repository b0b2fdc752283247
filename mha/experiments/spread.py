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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = [
    "KERNELS",
    "SLICES",
    "NOT_LEARNED",
    "deviation",
    "run_slice_here",
    "measure",
    "tolerance",
]

KERNELS = {  # name: environment; "native" lets torch and MKL pick the fastest path
    "native": {},
    "native, 2 threads": {"OMP_NUM_THREADS": "2"},
    "default, MKL compatible": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    "avx2, MKL avx2, 2 threads": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2",
                                  "OMP_NUM_THREADS": "2"},
    "avx512, MKL auto": {"ATEN_CPU_CAPABILITY": "avx512"},
}  # fmt: skip
SLICES = {  # sweep: (heads, seed) of a run that settled (learned, or fitted its training set)
    "head_count": (4, 0), "overfitting": (2, 0), "fixed_d_head": (2, 0),
    "learning_rate": (16, 0), "pruning": (4, 0),
}  # fmt: skip
MEASURED = tuple(SLICES)  # the slices measured under every kernel
NOT_LEARNED = {
    "head_count h=1 seed 0": ("head_count", 1, 0)
}  # a run that wanders: shown, not a tolerance


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


def capability(env: dict) -> str:
    """torch's CPU capability in a fresh interpreter under ``env`` (``"AVX2"``, ``"DEFAULT"``)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env=os.environ | env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo``, or ``None`` where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    lines = [line for line in text.splitlines() if line.startswith("flags")]
    return set(lines[0].split(":", 1)[1].split()) if lines else None


NEEDS = {"avx2": "avx2", "avx512": "avx512f"}  # ATEN_CPU_CAPABILITY -> the CPU flag it needs


def available(kernels: list[str]) -> tuple[list[str], dict[str, str]]:
    """The settings this CPU can run, and why each other one cannot (it asks for SIMD it lacks).

    torch reports the capability that ``ATEN_CPU_CAPABILITY`` asks for even where
    the CPU lacks it (its kernels would then stop on an illegal instruction), so
    the CPU's own flags decide.
    """
    flags, runnable, missing = cpu_flags(), [], {}
    for k in kernels:
        wanted = KERNELS[k].get("ATEN_CPU_CAPABILITY", "")
        need = NEEDS.get(wanted)
        if need and flags is not None and need not in flags:
            missing[k] = f"this CPU lacks {need} (native: {capability({})})"
        else:
            runnable.append(k)
    return runnable, missing


def _runs(jobs: dict[tuple, tuple], workers: int) -> dict[tuple, dict]:
    """``run_slice(*args)`` for every job, ``workers`` subprocesses at a time."""
    with ThreadPoolExecutor(workers) as pool:
        futures = {key: pool.submit(run_slice, *args) for key, args in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def _summary(heads: int, seed: int, runs: dict[str, dict]) -> dict:
    native = runs["native"]
    return {
        "heads": heads, "seed": seed, "machine": native["machine"],
        "deviation": {k: deviation(r, native) for k, r in runs.items() if k != "native"},
        "test_correct": {k: r["test_correct"] for k, r in runs.items()},
        "curves": {k: r["curve"] for k, r in runs.items()},
    }  # fmt: skip


def measure(
    kernels: list[str] | None = None,
    slices: dict[str, tuple[int, int]] | None = None,
    native: dict | None = None,
    workers: int = 2,
) -> dict:
    """Run every slice under every kernel setting; deviations from ``native`` (Chapter 7).

    ``native`` maps a sweep to its native run when that is known already (the
    committed run, computed on this machine with the same code): it is not re-run.
    Settings that ask for SIMD this CPU lacks are listed under ``"unavailable"``.
    The :data:`NOT_LEARNED` run is measured under the same settings, for the chapter.
    """
    native = native or {}
    kernels, unavailable = available(kernels or list(KERNELS))
    slices = slices or {name: SLICES[name] for name in MEASURED}
    cases = {name: (name, h, s) for name, (h, s) in slices.items()} | NOT_LEARNED
    jobs = {(c, k): (n, h, s, KERNELS[k]) for c, (n, h, s) in cases.items() for k in kernels
            if not (k == "native" and c in native)}  # fmt: skip
    done = _runs(jobs, workers) | {(c, "native"): r for c, r in native.items()}
    result = {"kernels": {k: KERNELS[k] for k in kernels}, "unavailable": unavailable}
    for group, names in (("slices", slices), ("not_learned", NOT_LEARNED)):
        result[group] = {
            c: _summary(*cases[c][1:], {k: done[c, k] for k in kernels}) for c in names
        }
    for c, s in result["slices"].items():
        print(c, json.dumps({k: v["curve"]["max_rel"] for k, v in s["deviation"].items()}),
              file=sys.stderr, flush=True)  # fmt: skip
    return result


def tolerance(spread: dict, factor: float = 10.0) -> tuple[float, int]:
    """Relative float tolerance and integer tolerance: ``factor`` times the measured spread.

    Introduced in Chapter 7. ``spread`` is ``mha/results/kernel_spread.json``: every
    slice's deviations under the other kernel settings and thread counts, and, under
    ``"earlier_machine"``, the slices' deviations between an earlier machine and this
    one. Runs with one head, or that did not learn, wander much further (``"not_learned"``);
    every slice that the tests re-run is a run with several heads that learned.
    """
    devs = [
        d for s in spread["slices"].values() for k in s["deviation"].values() for d in k.values()
    ]
    rel, ints = max(d["max_rel"] for d in devs), max(d["max_int_diff"] for d in devs)
    for name, (heads, seed) in SLICES.items():
        key = f"h={heads} seed {seed}" if name == "head_count" else f"{name} h={heads} seed {seed}"
        if d := spread.get("earlier_machine", {}).get(key):
            rel = max(rel, d["loss_max_rel"], d["test_acc_max_abs"], d["share_max_abs"],
                      d.get("importance_max_rel", 0.0))  # fmt: skip
            ints = max(ints, abs(d["test_correct"][0] - d["test_correct"][1]))
    return max(factor * rel, 1e-9), int(factor * ints)


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


def _cached_native(folder: Path, name: str, heads: int, seed: int) -> dict | None:
    """The native run of sweep ``name`` (``heads``, ``seed``, first rate) from a ``--resume``
    folder of the sweeps, if there."""
    from mha.experiments.sweeps import DEFAULTS, machine

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
    cases = {n: (n, *slices[n]) for n in slices} | NOT_LEARNED
    found = (
        {c: _cached_native(args.native_from, *a) for c, a in cases.items()}
        if args.native_from
        else {}
    )
    native = {c: r for c, r in found.items() if r is not None}
    result = measure(None, slices, native)
    kept = json.loads(args.out.read_text()) if args.out.is_file() else {}
    kept = {k: v for k, v in kept.items() if k == "earlier_machine"}  # measured once, kept
    args.out.write_text(dumps({"command": "python -m mha.experiments.spread", **result, **kept}))
