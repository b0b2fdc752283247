"""Run the sweeps of Chapter 7: ``python -m mha.experiments <sweep|all> [options]``.

Each sweep writes ``mha/results/<sweep>.json`` with the command, the
configuration, the seeds, the package versions, the machine (CPU model,
torch's CPU capability, threads, kernel settings) and every number. The runs
are independent, so ``--jobs`` worker processes (one thread each) share them;
a progress bar over all runs shows the elapsed time and an ETA. A run's numbers
do not depend on which worker ran it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from mha.experiments.sweeps import SWEEPS, one_thread, run_job, sweep_jobs, sweep_result

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
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    names = list(SWEEPS) if args.sweep == "all" else [args.sweep]
    jobs = {n: sweep_jobs(n, args.heads, args.seeds, args.lrs) for n in names}
    args.out.mkdir(parents=True, exist_ok=True)
    one_thread()
    context = multiprocessing.get_context("spawn")  # no forked OpenMP state
    start, total = time.perf_counter(), sum(len(j) for j in jobs.values())
    bar = tqdm(total=total, desc="runs", unit="run", disable=args.no_progress, file=sys.stderr)
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=one_thread) as pool:
        pending = {n: [pool.submit(run_job, job) for job in j] for n, j in jobs.items()}
        for future in (f for fs in pending.values() for f in fs):
            future.add_done_callback(lambda _: bar.update())  # counts each run as it lands
        for name in names:  # a sweep's file is written as soon as all of its runs are in
            _write(args, name, [future.result() for future in pending[name]])
            bar.write(
                f"{name}: {len(pending[name])} runs, {time.perf_counter() - start:.0f} s so far"
            )
    bar.close()


def _write(args, name: str, runs: list[dict]) -> None:
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
