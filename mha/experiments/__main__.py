"""Run the sweeps of Chapter 7: ``python -m mha.experiments <sweep|all> [options]``.

Each sweep writes ``mha/results/<sweep>.json`` with the command, the
configuration, the seeds, the package versions, the machine (CPU model,
torch's CPU capability, threads, kernel settings) and every number. The runs
are independent, so ``--jobs`` worker processes (one thread each) share them;
a progress bar over all runs shows the elapsed time and an ETA. A run's numbers
do not depend on which worker ran it. ``all`` runs the sweeps block of seeds by
block, so a stopped run leaves every sweep with balanced seeds; ``--resume DIR``
keeps each finished run in ``DIR`` and skips it when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from mha.experiments.sweeps import (
    SWEEPS,
    one_thread,
    run_job,
    sweep_configs,
    sweep_jobs,
    sweep_result,
)

RESULTS = Path(__file__).resolve().parent.parent / "results"


def dumps(result: dict) -> str:
    """JSON with one key per line, but every list of plain numbers on a single line."""
    text = json.dumps(result, indent=1)
    one_line = lambda m: " ".join(m.group().split()).replace("[ ", "[").replace(" ]", "]")  # noqa: E731
    return re.sub(r"\[[-+0-9.eE,\s]*\]", one_line, text) + "\n"


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mha.experiments", description=__doc__)
    parser.add_argument("sweep", choices=[*SWEEPS, "all"])
    parser.add_argument("--heads", type=_ints, help="comma-separated head counts (default: all)")
    parser.add_argument("--seeds", type=_ints, help="comma-separated seeds (default: all)")
    parser.add_argument("--lrs", type=_floats, help="comma-separated learning rates (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument(
        "--resume",
        type=Path,
        help="folder that keeps every finished run (jsonl) and skips those on a re-run",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


BLOCK = 5  # `all` runs seeds 0-4 of every sweep, seed by seed, then 5-9, ...


def _ordered(jobs: dict[str, list]) -> list[tuple[str, int]]:
    """``(sweep, index)`` of every job: block of seeds by block, sweeps in priority order,
    then seed by seed, so that a stopped run leaves whole seeds of every sweep."""
    names = list(jobs)
    pairs = [(name, i) for name in names for i in range(len(jobs[name]))]
    seed = lambda t: jobs[t[0]][t[1]][2]  # noqa: E731
    return sorted(pairs, key=lambda t: (seed(t) // BLOCK, names.index(t[0]), seed(t), t[1]))


def _cached(path: Path | None) -> dict:
    """Records already computed, by ``(sweep, heads, d_model, lr, seed)``, from ``--resume``."""
    found = {}
    for file in path.glob("*.jsonl") if path and path.is_dir() else []:
        for line in file.read_text().splitlines():
            r = json.loads(line)
            found[(file.stem, r["num_heads"], r["d_model"], r["lr"], r["seed"])] = r
    return found


def _key(name: str, job) -> tuple:
    cfg, seed = job[1], job[2]
    return (name, cfg.num_heads, cfg.d_model, cfg.lr, seed)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    names = list(SWEEPS) if args.sweep == "all" else [args.sweep]
    jobs = {n: sweep_jobs(n, args.heads, args.seeds, args.lrs) for n in names}
    args.out.mkdir(parents=True, exist_ok=True)
    cache = _cached(args.resume)
    done = {
        n: {i: cache[_key(n, j)] for i, j in enumerate(js) if _key(n, j) in cache}
        for n, js in jobs.items()
    }
    todo = [(n, i) for n, i in _ordered(jobs) if i not in done[n]]
    one_thread()
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=args.no_progress, file=sys.stderr)
    context = multiprocessing.get_context("spawn")  # no forked OpenMP state
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=one_thread) as pool:
        futures = {pool.submit(run_job, jobs[n][i]): (n, i) for n, i in todo}
        for future in as_completed(futures):
            name, i = futures[future]
            done[name][i] = future.result()
            _remember(args.resume, name, done[name][i])
            if len(done[name]) % _points(name, args) == 0:  # a seed may be complete: write
                _write(args, name, done[name])
            bar.update()
    bar.close()
    for name in names:  # the final state of every sweep
        _write(args, name, done[name])
    print(f"{len(todo)} runs in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def _points(name: str, args) -> int:
    """Runs per seed of sweep ``name``: its head counts times its learning rates."""
    return len(sweep_configs(name, args.heads, args.lrs))


def _remember(path: Path | None, name: str, record: dict) -> None:
    if path:
        path.mkdir(parents=True, exist_ok=True)
        with open(path / f"{name}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def _write(args, name: str, done: dict[int, dict]) -> None:
    """Write the sweep's JSON from its finished runs by job index, in job order, with the
    seeds done so far (``"complete"`` says if all)."""
    runs = [done[i] for i in sorted(done)]
    result = sweep_result(name, args.heads, args.seeds, args.lrs, runs)
    result["machine"]["jobs"] = args.jobs
    command = ["python", "-m", "mha.experiments", name]
    for flag in ("heads", "seeds", "lrs"):  # the options that select runs (not --out or --jobs)
        if getattr(args, flag):
            command += [f"--{flag}", ",".join(str(v) for v in getattr(args, flag))]
    path = args.out / f"{name}.json"
    path.write_text(dumps({"command": " ".join(command), **result}))


if __name__ == "__main__":
    main()
